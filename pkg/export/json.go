package export

import (
	"encoding/hex"
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
//	        "confirmed": "<RFC 3339>"}]}],
//	  "chain": {…}
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
// "chain" is in a digest's directory.json only (omitted elsewhere): see
// [ExportChain].
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
	Chain     *ExportChain    `json:"chain,omitempty"`
}

// ExportChain is what a digest's directory.json carries so that a member
// who holds an earlier digest can check that this one extends it (ccdir
// check, or the README's procedure):
//
//	"chain": {
//	  "prev_serial": 40, "prev_head": "<hash>",
//	  "entries": [{"seq": 41, "time": …, "actor": …, "op": …, "prev_hash": …,
//	               "evidence_sha256": "<hex, empty without evidence>", "payload": "<canonical JSON text>",
//	               "hash": …, "sig": "<base64 OpenPGP signature>"}, …],
//	  "keys": [{"fingerprint": …, "from_serial": 1, "key": "<armored public key>", "link": null}]
//	}
//
// prev_serial and prev_head are the previous digest's serial and head
// (0 and "" for the first digest). entries are the ledger entries after
// that head up to and including the export's head, each with every field
// its hash covers (the evidence by its SHA-256, see
// directory.HashedEntry) and the directory key's signature over
// "ccdir ledger entry SEQ HASH\n"; the first digest carries the last
// [FirstDigestEntries] entries at most (all of them from genesis for a
// smaller ledger). keys is the chain of directory keys, oldest first,
// each signing from from_serial on; a key after the first is linked to
// the one before by link, the ledger entry that made it (signed by both).
type ExportChain struct {
	PrevSerial int64         `json:"prev_serial"`
	PrevHead   string        `json:"prev_head"`
	Entries    []ExportEntry `json:"entries"`
	Keys       []ExportKeyOf `json:"keys"`
}

// FirstDigestEntries caps the entries the first digest carries.
const FirstDigestEntries = 1000

// ExportEntry is one ledger entry of an [ExportChain].
type ExportEntry struct {
	Seq            int64  `json:"seq"`
	Time           string `json:"time"`
	Actor          string `json:"actor"`
	Op             string `json:"op"`
	PrevHash       string `json:"prev_hash"`
	EvidenceSHA256 string `json:"evidence_sha256"`
	Payload        string `json:"payload"`
	// Version is the entry's version (1, 2, 3; absent: 1); a version 2
	// or 3 entry's hash covers SHA-256(salt || payload), or
	// payload_digest once its payload was erased, and a version 3
	// entry's its subject too, in clear (absent: none; see
	// directory.HashedEntry and directory.EntrySubject).
	Version       int    `json:"version,omitempty"`
	Salt          string `json:"salt,omitempty"`
	PayloadDigest string `json:"payload_digest,omitempty"`
	Subject       string `json:"subject,omitempty"`
	Hash          string `json:"hash"`
	Sig           []byte `json:"sig"`
}

// ExportKeyOf is one directory key of an [ExportChain].
type ExportKeyOf struct {
	Fingerprint string       `json:"fingerprint"`
	FromSerial  int64        `json:"from_serial"`
	Key         string       `json:"key"`
	Link        *ExportEntry `json:"link"`
}

// NewExportEntry is e as an [ExportChain] carries it.
func NewExportEntry(e *directory.Entry) ExportEntry {
	h := directory.Hashed(e)
	return ExportEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Op: e.Op, PrevHash: e.PrevHash,
		EvidenceSHA256: hex.EncodeToString(h.EvidenceSHA256), Payload: e.Payload, Version: e.Version, Salt: e.Salt,
		PayloadDigest: e.PayloadDigest, Subject: e.Subject, Hash: e.Hash, Sig: e.Sig}
}

// Hashed is what x's hash covers; an evidence_sha256 that is not hex
// gives an error.
func (x *ExportEntry) Hashed() (directory.HashedEntry, error) {
	h := directory.HashedEntry{Seq: x.Seq, Time: x.Time, Actor: x.Actor, Op: x.Op, PrevHash: x.PrevHash, Payload: x.Payload,
		Version: x.Version, Salt: x.Salt, PayloadDigest: x.PayloadDigest, Subject: x.Subject}
	if x.EvidenceSHA256 != "" {
		sum, err := hex.DecodeString(x.EvidenceSHA256)
		if err != nil || len(sum) != 32 {
			return h, fmt.Errorf("entry %d: evidence_sha256 %q is not a SHA-256 in hex", x.Seq, x.EvidenceSHA256)
		}
		h.EvidenceSHA256 = sum
	}
	return h, nil
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

// WriteDigestJSON writes s as a digest's directory.json: an [Export]
// with its chain.
func WriteDigestJSON(w io.Writer, s *directory.Snapshot, chain *ExportChain) error {
	e := NewExport(s)
	e.Chain = chain
	return encodeExport(w, e)
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
