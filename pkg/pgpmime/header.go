package pgpmime

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	netmail "net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
)

// maxHeaderText caps a text header value (subject, display name, file
// name) in bytes, before encoding. Longer values are refused rather than
// folded into something else.
const maxHeaderText = 900

// checkText refuses text that could change header structure or that a
// reader would see differently: invalid UTF-8, control characters (C0, DEL,
// C1, including CR, LF and TAB), Unicode line and paragraph separators, and
// values longer than maxHeaderText bytes.
func checkText(what, s string) error {
	if len(s) > maxHeaderText {
		return fmt.Errorf("%w: %s is %d bytes long, at most %d allowed", ErrHeader, what, len(s), maxHeaderText)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrHeader, what)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%w: %s %q contains the control character %U", ErrHeader, what, s, r)
		}
	}
	return nil
}

// checkAddress accepts local@domain with a dot-atom local part and a
// domain of ASCII letters, digits, hyphens and dots (IDN domains as
// A-labels). Quoted local parts, comments and anything else are refused,
// so an address is always written exactly as given.
func checkAddress(what string, a mail.Address) error {
	if err := checkText(what+" name", a.Name); err != nil {
		return err
	}
	addr := a.Address
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 || at == len(addr)-1 || len(addr) > 254 {
		return fmt.Errorf("%w: %s address %q", ErrHeader, what, addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if !dotAtom(local) || !hostname(domain) {
		return fmt.Errorf("%w: %s address %q", ErrHeader, what, addr)
	}
	// Belt and braces: the standard parser must read it back unchanged.
	p, err := netmail.ParseAddress(addr)
	if err != nil || p.Address != addr {
		return fmt.Errorf("%w: %s address %q", ErrHeader, what, addr)
	}
	return nil
}

func dotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.':
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func hostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// checkMessageID accepts id-left@id-right in printable ASCII without
// brackets, quotes, backslashes or white space (angle brackets are added
// when written).
func checkMessageID(id string) error {
	at := strings.IndexByte(id, '@')
	if at <= 0 || at == len(id)-1 || strings.Count(id, "@") != 1 || len(id) > 250 {
		return fmt.Errorf("%w: message ID %q", ErrHeader, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`<>"\()[],;:`, c) >= 0 {
			return fmt.Errorf("%w: message ID %q", ErrHeader, id)
		}
	}
	return nil
}

// field is one header field, already encoded.
type field struct{ key, value string }

// fields collects header fields in the order they are to be written.
// go-message's Header writes fields in the reverse order of Add, so header
// adds them back to front.
type fields []field

func (fs *fields) add(k, v string) { *fs = append(*fs, field{k, v}) }

// address formats one address through go-message (net/mail quoting and
// RFC 2047 encoding of the name).
func (fs *fields) address(k string, a mail.Address) {
	fs.addresses(k, []mail.Address{a})
}

func (fs *fields) addresses(k string, as []mail.Address) {
	ps := make([]*mail.Address, len(as))
	for i := range as {
		ps[i] = &as[i]
	}
	var h mail.Header
	h.SetAddressList(k, ps)
	fs.add(k, h.Get(k))
}

func (fs *fields) subject(s string) {
	var h mail.Header
	h.SetSubject(s)
	fs.add("Subject", h.Get("Subject"))
}

func (fs *fields) date(t time.Time) {
	var h mail.Header
	h.SetDate(t)
	fs.add("Date", h.Get("Date"))
}

func (fs *fields) messageID(id string) {
	var h mail.Header
	h.SetMessageID(id)
	fs.add("Message-Id", h.Get("Message-Id"))
}

// group formats an empty RFC 5322 group, "name:;": a To field that names
// the recipients without listing them.
func (fs *fields) group(k, name string) {
	fs.add(k, phrase(name)+":;")
}

// phrase encodes a display name the way net/mail does for addresses.
func phrase(name string) string {
	s := (&netmail.Address{Name: name, Address: "x@x"}).String()
	return strings.TrimSuffix(s, " <x@x>")
}

// header returns the fields as a go-message header, folded.
func (fs fields) header() (textproto.Header, error) {
	var h textproto.Header
	for i := len(fs) - 1; i >= 0; i-- {
		raw, err := fold(fs[i].key, fs[i].value)
		if err != nil {
			return h, err
		}
		h.AddRaw(raw)
	}
	return h, nil
}

// write writes the fields and the empty line.
func (fs fields) write(w io.Writer) error {
	h, err := fs.header()
	if err != nil {
		return err
	}
	if err := textproto.WriteHeader(w, h); err != nil {
		return fmt.Errorf("%w: %v", ErrHeader, err)
	}
	return nil
}

const (
	foldAt     = 76  // preferred line length (RFC 5322 §2.1.1: 78)
	maxLineLen = 998 // hard limit
)

// fold formats "key: value\r\n", folding at white space (a CRLF is inserted
// before a space or tab, so unfolding restores the value) to keep lines
// within foldAt characters where the words allow it. go-message folds the
// same way but does not fold right after the colon, which leaves a subject
// of several encoded words on one long line.
//
// A value with CR or LF is refused (as go-message does), as are field
// names outside printable ASCII and lines over 998 characters.
func fold(k, v string) ([]byte, error) {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c > '~' || c == ':' {
			return nil, fmt.Errorf("%w: field name %q", ErrHeader, k)
		}
	}
	if strings.ContainsAny(v, "\r\n") {
		return nil, fmt.Errorf("%w: %s value contains CR or LF", ErrHeader, k)
	}
	b := make([]byte, 0, len(k)+len(v)+8+len(v)/foldAt*3)
	b = append(b, k...)
	b = append(b, ':')
	// v is written after a separating space, which is a fold point too.
	rest := " " + v
	lineLen := len(b)
	for rest != "" {
		// rest starts with white space; the next fold point is the next
		// white space after the first byte.
		next := strings.IndexAny(rest[1:], " \t")
		word := rest
		if next >= 0 {
			word = rest[:next+1]
		}
		if lineLen+len(word) > foldAt && lineLen > len(k)+1 && strings.TrimSpace(word) != "" {
			b = append(b, '\r', '\n')
			lineLen = 0
		} else if lineLen+len(word) > foldAt && lineLen == len(k)+1 && len(k)+1+len(word) > foldAt {
			// The first word does not fit after "key:": fold right after
			// the colon.
			b = append(b, '\r', '\n')
			lineLen = 0
		}
		b = append(b, word...)
		lineLen += len(word)
		if lineLen > maxLineLen {
			return nil, fmt.Errorf("%w: %s value has a word too long for a header line", ErrHeader, k)
		}
		rest = rest[len(word):]
	}
	return append(b, '\r', '\n'), nil
}

// boundary derives a MIME boundary from the content it separates: the same
// content gives the same boundary. "=_" cannot occur in base64 or
// quoted-printable text, and callers check that the delimiter does not
// occur in the content at all.
func boundary(kind string, content ...[]byte) string {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, c := range content {
		fmt.Fprintf(h, "\x00%d\x00", len(c))
		h.Write(c)
	}
	return "=_ccdir-" + kind + "-" + hex.EncodeToString(h.Sum(nil)[:12])
}

// contentType formats a media type with parameters (RFC 2231 for
// non-ASCII values), refusing what mime cannot format.
func contentType(t string, params map[string]string) (string, error) {
	for k, v := range params {
		if err := checkText("parameter "+k, v); err != nil {
			return "", err
		}
	}
	v := mime.FormatMediaType(t, params)
	if v == "" {
		return "", fmt.Errorf("%w: media type %q with parameters %q", ErrHeader, t, params)
	}
	return v, nil
}
