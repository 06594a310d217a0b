package pgpmime

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"
)

// Part is one leaf of the inner entity. The first part given to BuildInner
// is the text body; the others are attachments (or inline parts if they
// have no Filename).
type Part struct {
	// ContentType is the media type without parameters, e.g. "text/plain",
	// "text/vcard", "application/json". Empty means text/plain for the
	// first part and application/octet-stream for the others.
	ContentType string
	// Params are extra Content-Type parameters. A text/* part always gets
	// charset=utf-8 (another charset is refused).
	Params map[string]string
	// Filename makes the part an attachment (Content-Disposition:
	// attachment; filename=...; RFC 2231 for non-ASCII names).
	Filename string
	// Body is the content, not transfer-encoded. Text (text/*) must be
	// UTF-8; its line endings become CRLF.
	Body []byte
}

// Protected are the real headers of a message, carried inside the signed
// entity (protected headers "v1") while the outer headers stay neutral.
type Protected struct {
	From mail.Address
	// To lists the recipients. If it is empty, ToGroup names them instead
	// as an empty group ("ccTLD security contacts:;"), which lets one
	// signed entity go to every recipient of a digest.
	To      []mail.Address
	ToGroup string
	Subject string
	Date    time.Time // zero: no Date field
	// MessageID without angle brackets; empty: no Message-ID field.
	MessageID string
}

// Limits for BuildInner.
const (
	// MaxParts caps the parts of an inner entity (BuildInner, ParseInner).
	MaxParts = 32
)

// BuildInner returns the inner MIME entity (CRLF line endings): a
// multipart/mixed entity with protected-headers="v1" and the protected
// headers on it; parts[0] is the text/plain; charset=utf-8 body. Every
// text/* part, and every other part whose body reads as text (textLike:
// JSON, armored keys and signatures), is quoted-printable
// (quotedPrintable, which a reader decodes to the very bytes given),
// every other part base64. The output depends only on the input.
func BuildInner(p Protected, parts []Part) ([]byte, error) {
	if len(parts) == 0 {
		return nil, fmt.Errorf("%w: no parts", ErrEntity)
	}
	if len(parts) > MaxParts {
		return nil, fmt.Errorf("%w: %d parts, at most %d allowed", ErrTooLarge, len(parts), MaxParts)
	}
	var hf fields
	if err := protectedFields(&hf, p); err != nil {
		return nil, err
	}

	encoded := make([][]byte, len(parts))
	for i, part := range parts {
		b, err := encodePart(part, i == 0)
		if err != nil {
			return nil, fmt.Errorf("part %d: %w", i+1, err)
		}
		encoded[i] = b
	}
	var hb bytes.Buffer
	if err := hf.write(&hb); err != nil {
		return nil, err
	}
	bnd := boundary("mixed", append([][]byte{hb.Bytes()}, encoded...)...)
	for _, b := range encoded {
		if bytes.Contains(b, []byte("--"+bnd)) {
			return nil, fmt.Errorf("%w: part contains the MIME boundary", ErrEntity)
		}
	}
	ct, err := contentType("multipart/mixed", map[string]string{"boundary": bnd, "protected-headers": "v1"})
	if err != nil {
		return nil, err
	}
	hf.add("MIME-Version", "1.0")
	hf.add("Content-Type", ct)

	var out bytes.Buffer
	if err := hf.write(&out); err != nil {
		return nil, err
	}
	for _, b := range encoded {
		out.WriteString("--" + bnd + "\r\n")
		out.Write(b)
		out.WriteString("\r\n")
	}
	out.WriteString("--" + bnd + "--\r\n")
	return out.Bytes(), nil
}

func protectedFields(hf *fields, p Protected) error {
	if err := checkAddress("From", p.From); err != nil {
		return err
	}
	hf.address("From", p.From)
	switch {
	case len(p.To) > 0:
		if p.ToGroup != "" {
			return fmt.Errorf("%w: both To and ToGroup given", ErrHeader)
		}
		for _, a := range p.To {
			if err := checkAddress("To", a); err != nil {
				return err
			}
		}
		hf.addresses("To", p.To)
	case p.ToGroup != "":
		if err := checkText("To group", p.ToGroup); err != nil {
			return err
		}
		hf.group("To", p.ToGroup)
	default:
		return fmt.Errorf("%w: no To and no ToGroup", ErrHeader)
	}
	if err := checkText("Subject", p.Subject); err != nil {
		return err
	}
	hf.subject(p.Subject)
	if !p.Date.IsZero() {
		hf.date(p.Date)
	}
	if p.MessageID != "" {
		if err := checkMessageID(p.MessageID); err != nil {
			return err
		}
		hf.messageID(p.MessageID)
	}
	return nil
}

// encodePart returns one part: its header and transfer-encoded body (the
// CRLF before the next boundary is not included).
func encodePart(p Part, first bool) ([]byte, error) {
	t := strings.ToLower(strings.TrimSpace(p.ContentType))
	if t == "" {
		t = "application/octet-stream"
		if first {
			t = "text/plain"
		}
	}
	if first && t != "text/plain" {
		return nil, fmt.Errorf("%w: the first part must be text/plain, not %q", ErrEntity, t)
	}
	if mt, _, err := mime.ParseMediaType(t); err != nil || mt != t || !strings.Contains(t, "/") ||
		strings.HasPrefix(t, "multipart/") || strings.HasPrefix(t, "message/") {
		return nil, fmt.Errorf("%w: media type %q", ErrHeader, p.ContentType)
	}
	params := make(map[string]string, len(p.Params)+1)
	for k, v := range p.Params {
		k = strings.ToLower(k)
		if k == "boundary" || k == "protected-headers" {
			return nil, fmt.Errorf("%w: parameter %q not allowed on a leaf part", ErrHeader, k)
		}
		params[k] = v
	}
	text := strings.HasPrefix(t, "text/")
	body := p.Body
	if text {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return nil, fmt.Errorf("%w: charset %q, only utf-8 is written", ErrHeader, cs)
		}
		params["charset"] = "utf-8"
		if !utf8.Valid(body) {
			return nil, fmt.Errorf("%w: %s body is not valid UTF-8", ErrEntity, t)
		}
		body = crlf(body)
	}
	ct, err := contentType(t, params)
	if err != nil {
		return nil, err
	}
	var hf fields
	hf.add("Content-Type", ct)
	if p.Filename != "" {
		if err := checkText("file name", p.Filename); err != nil {
			return nil, err
		}
		if strings.ContainsAny(p.Filename, `/\`) {
			return nil, fmt.Errorf("%w: file name %q contains a path separator", ErrHeader, p.Filename)
		}
		cd, err := contentType("attachment", map[string]string{"filename": p.Filename})
		if err != nil {
			return nil, err
		}
		hf.add("Content-Disposition", cd)
	} else if !first {
		hf.add("Content-Disposition", "inline")
	}

	// Text is quoted-printable, always: what gpg -d shows stays
	// readable, whatever the script of the names in it, and compresses
	// (OpenPGP compresses the entity) where base64 would not; so is a
	// part that reads as text (JSON, an armored key), its bytes kept as
	// they are. The rest is base64.
	enc, cte := quotedPrintable(body), "quoted-printable"
	if !text && !textLike(body) {
		enc, cte = base64Lines(body), "base64"
	}
	hf.add("Content-Transfer-Encoding", cte)
	var out bytes.Buffer
	if err := hf.write(&out); err != nil {
		return nil, err
	}
	out.Write(enc)
	return out.Bytes(), nil
}

// crlf turns bare LF and bare CR line endings into CRLF.
func crlf(b []byte) []byte {
	if !bytes.ContainsAny(b, "\r\n") {
		return b
	}
	out := make([]byte, 0, len(b)+len(b)/40)
	for i := 0; i < len(b); i++ {
		switch c := b[i]; c {
		case '\r':
			out = append(out, '\r', '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
		case '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, c)
		}
	}
	return out
}

// qpLine is the longest encoded line quotedPrintable writes, the "="
// of a soft line break included (RFC 2045 §6.7 allows 76).
const qpLine = 76

// quotedPrintable encodes body as RFC 2045 §6.7 quoted-printable,
// losslessly: printable ASCII as itself (but "="), a space or tab as
// itself unless it ends a line, CRLF as a hard line break, every other
// octet as "=XX" (a bare LF as "=0A" followed by a soft line break, so
// LF-only text keeps its lines), lines of at most qpLine octets with
// soft breaks ("=" CRLF) between. No encoded line starts with "From "
// (mbox-style delivery would turn it into ">From ", breaking the
// signature) or "." (an SMTP hop that does not dot-stuff would end the
// data there): such a first octet is written "=46" or "=2E".
func quotedPrintable(body []byte) []byte {
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(body)+len(body)/8)
	soft := func() { out = append(out, '=', '\r', '\n') }
	col := 0
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\r' && i+1 < len(body) && body[i+1] == '\n' {
			out = append(out, '\r', '\n')
			col = 0
			i++
			continue
		}
		// ends: c is the last octet of its encoded line (a hard break
		// or the end follows), so it needs no room for a soft break and
		// cannot be white space written as itself.
		ends := i+1 == len(body) || i+2 < len(body) && body[i+1] == '\r' && body[i+2] == '\n'
		literal := (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !ends)
		if col == 0 && (c == '.' || c == 'F' && bytes.HasPrefix(body[i:], []byte("From "))) {
			literal = false
		}
		width := 1
		if !literal {
			width = 3
		}
		room := qpLine - 1
		if ends {
			room = qpLine
		}
		if col+width > room {
			soft()
			col = 0
			if c == '.' || c == 'F' && bytes.HasPrefix(body[i:], []byte("From ")) {
				literal, width = false, 3
			}
		}
		if literal {
			out = append(out, c)
		} else {
			out = append(out, '=', hex[c>>4], hex[c&15])
		}
		col += width
		if c == '\n' && !ends {
			soft()
			col = 0
		}
	}
	return out
}

// textLike reports whether b reads as text: valid UTF-8 without control
// characters but tab, CR and LF (JSON, armored OpenPGP data), which
// quoted-printable keeps readable where base64 would not.
func textLike(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\r' && c != '\n' || c == 0x7f {
			return false
		}
	}
	return true
}

// base64Lines encodes b in lines of 76 characters, each ending in CRLF.
func base64Lines(b []byte) []byte {
	const chunk = 57 // 76 characters
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(b))+2*(len(b)/chunk+1))
	for len(b) > 0 {
		n := min(chunk, len(b))
		out = base64.StdEncoding.AppendEncode(out, b[:n])
		out = append(out, '\r', '\n')
		b = b[n:]
	}
	return out
}
