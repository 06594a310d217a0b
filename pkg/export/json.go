package export

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/ccdir/ccdir/directory"
)

// The JSON export identifies itself with these values.
const (
	JSONFormat  = "ccdir-directory"
	JSONVersion = 1
)

// MaxJSONBytes caps what [ParseJSON] reads.
const MaxJSONBytes = 64 << 20

// Export is the JSON snapshot of the directory (format "ccdir-directory",
// version 1), written by [WriteJSON] and attached to digests as
// directory.json:
//
//	{
//	  "format": "ccdir-directory",
//	  "version": 1,
//	  "directory": {"name": …, "address": …, "list_address": …, "key_fingerprint": …},
//	  "serial": 42,
//	  "head": "<hex hash of the head entry>",
//	  "time": "<RFC 3339 time of the head entry>",
//	  "members": [
//	    {"tld": "xn--p1ai", "unicode": "рф", "org": …, "country": "RU", "status": "active",
//	     "contacts": [
//	       {"email": …, "name": …, "role": "security",
//	        "phones": [{"number": "+7…", "emergency": true}],
//	        "languages": ["ru", "en"], "timezone": "Europe/Moscow", "24x7": true,
//	        "key": {"fingerprint": …, "algorithm": …, "created": …, "expires": …},
//	        "confirmed": "<RFC 3339>"}]}]
//	}
//
// Every field is always present: strings are "" when unknown (a key's
// "expires" is "" when it never expires), lists are [] when empty, and
// "key" is null for a contact without a key. Members are sorted by "tld"
// (the A-label; "unicode" is the U-label, equal to "tld" for ASCII
// ccTLDs); a member's contacts are listed security first, then by name; a
// contact serving several ccTLDs appears under each with its role there.
// Armored keys are not included: they are in the keys export.
//
// Readers must refuse another "format" and a "version" they do not know,
// and ignore fields they do not know: fields may be added within a
// version, never removed or changed in meaning.
type Export struct {
	Format    string          `json:"format"`
	Version   int             `json:"version"`
	Directory ExportDirectory `json:"directory"`
	Serial    int64           `json:"serial"`
	Head      string          `json:"head"`
	Time      string          `json:"time"`
	Members   []ExportMember  `json:"members"`
}

// ExportDirectory is the directory's identity in an [Export].
type ExportDirectory struct {
	Name           string `json:"name"`
	Address        string `json:"address"`
	ListAddress    string `json:"list_address"`
	KeyFingerprint string `json:"key_fingerprint"`
}

// ExportMember is one ccTLD of an [Export].
type ExportMember struct {
	TLD      string          `json:"tld"`
	Unicode  string          `json:"unicode"`
	Org      string          `json:"org"`
	Country  string          `json:"country"`
	Status   string          `json:"status"`
	Contacts []ExportContact `json:"contacts"`
}

// ExportContact is a contact of one [ExportMember], with its role there.
type ExportContact struct {
	Email     string        `json:"email"`
	Name      string        `json:"name"`
	Role      string        `json:"role"`
	Phones    []ExportPhone `json:"phones"`
	Languages []string      `json:"languages"`
	TimeZone  string        `json:"timezone"`
	Always    bool          `json:"24x7"`
	Key       *ExportKey    `json:"key"`
	Confirmed string        `json:"confirmed"`
}

// ExportPhone is a phone number in E.164 form.
type ExportPhone struct {
	Number    string `json:"number"`
	Emergency bool   `json:"emergency"`
}

// ExportKey describes a contact's OpenPGP key, without the key itself.
type ExportKey struct {
	Fingerprint string `json:"fingerprint"`
	Algorithm   string `json:"algorithm"`
	Created     string `json:"created"`
	Expires     string `json:"expires"`
}

// NewExport builds the [Export] of s.
func NewExport(s *directory.Snapshot) *Export {
	e := &Export{
		Format:  JSONFormat,
		Version: JSONVersion,
		Directory: ExportDirectory{
			Name:           s.Info.Name,
			Address:        s.Info.Address,
			ListAddress:    s.Info.ListAddress,
			KeyFingerprint: s.Info.KeyFingerprint,
		},
		Serial:  s.Head.Serial,
		Head:    s.Head.Hash,
		Time:    s.Time,
		Members: []ExportMember{},
	}
	for _, m := range sortedMembers(s) {
		em := ExportMember{
			TLD:      m.TLD,
			Unicode:  unicodeLabel(m.TLD),
			Org:      m.Org,
			Country:  m.Country,
			Status:   m.Status,
			Contacts: []ExportContact{},
		}
		for _, c := range s.ContactsOf(m.TLD) {
			em.Contacts = append(em.Contacts, exportContact(&c, m.TLD))
		}
		e.Members = append(e.Members, em)
	}
	return e
}

func exportContact(c *directory.Contact, tld string) ExportContact {
	ec := ExportContact{
		Email:     c.Email,
		Name:      c.Name,
		Role:      c.RoleFor(tld),
		Phones:    []ExportPhone{},
		Languages: append([]string{}, c.Languages...),
		TimeZone:  c.TimeZone,
		Always:    c.Always,
		Confirmed: c.Confirmed,
	}
	for _, p := range c.Phones {
		ec.Phones = append(ec.Phones, ExportPhone{Number: p.Number, Emergency: p.Emergency})
	}
	if c.Key != nil {
		ec.Key = &ExportKey{
			Fingerprint: c.Key.Fingerprint,
			Algorithm:   c.Key.Algorithm,
			Created:     c.Key.Created,
			Expires:     c.Key.Expires,
		}
	}
	return ec
}

// WriteJSON writes s as an [Export], indented with two spaces, with a
// final newline.
func WriteJSON(w io.Writer, s *directory.Snapshot) error {
	return encodeExport(w, NewExport(s))
}

func encodeExport(w io.Writer, e *Export) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(e)
}

// ErrNotExport is wrapped by the errors of [ParseJSON] for a document that
// is not a ccdir JSON export of a version it knows.
var ErrNotExport = errors.New("not a ccdir directory export")

// ParseJSON reads an [Export] written by [WriteJSON]. It refuses input
// larger than [MaxJSONBytes], another format, a version other than
// [JSONVersion], and trailing data; unknown fields are ignored.
func ParseJSON(r io.Reader) (*Export, error) {
	lr := &io.LimitedReader{R: r, N: MaxJSONBytes + 1}
	dec := json.NewDecoder(lr)
	var e Export
	if err := dec.Decode(&e); err != nil {
		if lr.N <= 0 {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrNotExport, MaxJSONBytes)
		}
		return nil, fmt.Errorf("%w: %v", ErrNotExport, err)
	}
	if e.Format != JSONFormat {
		return nil, fmt.Errorf("%w: format is %q, want %q", ErrNotExport, e.Format, JSONFormat)
	}
	if e.Version != JSONVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrNotExport, e.Version, JSONVersion)
	}
	if _, err := dec.Token(); err != io.EOF {
		if lr.N <= 0 {
			return nil, fmt.Errorf("%w: larger than %d bytes", ErrNotExport, MaxJSONBytes)
		}
		return nil, fmt.Errorf("%w: data after the JSON document", ErrNotExport)
	}
	return &e, nil
}
