package pgpmime

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-message/mail"
	"net/textproto"
)

// Outer are the visible headers of a mail. They never carry the real
// subject: that is in the protected headers of the encrypted entity.
type Outer struct {
	From mail.Address
	To   mail.Address
	// Subject is neutral, the same for every message ("ccTLD directory").
	Subject   string
	Date      time.Time
	MessageID string // without angle brackets
	// Extra fields, written in order after Message-ID, such as
	// {"Auto-Submitted", "auto-generated"} or {"List-Id", "<...>"}. Values
	// must be printable ASCII (encode them first); fields that
	// BuildEncrypted writes itself, address fields and Content-* fields are
	// refused.
	Extra []Field
}

// Field is one extra header field.
type Field struct{ Key, Value string }

// reservedFields may not be given as Outer.Extra.
var reservedFields = map[string]bool{
	"From": true, "To": true, "Cc": true, "Bcc": true, "Sender": true, "Subject": true,
	"Date": true, "Message-Id": true, "Mime-Version": true, "Return-Path": true,
	"Resent-From": true, "Resent-To": true, "Resent-Cc": true, "Resent-Bcc": true,
	"Resent-Sender": true, "Resent-Date": true, "Resent-Message-Id": true,
}

const encryptedPreamble = "This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\r\n"

// BuildEncrypted writes a whole RFC 5322 message (CRLF line endings): the
// outer headers and a multipart/encrypted body (RFC 3156 §4) whose first
// part is application/pgp-encrypted "Version: 1" and whose second part is
// application/octet-stream; name="encrypted.asc", 7bit, holding armored
// (an armored OpenPGP message as Encrypt or SignEncrypt write it; its line
// endings become CRLF). Nothing is written if the headers or armored are
// invalid. The output depends only on the input.
func BuildEncrypted(w io.Writer, o Outer, armored []byte) error {
	asc, err := checkArmored(armored)
	if err != nil {
		return err
	}
	// The armored text is random: its ends and length are enough to derive
	// a boundary (and the check below makes any boundary safe).
	bnd := boundary("encrypted", asc[:min(len(asc), 2048)], asc[max(0, len(asc)-2048):], []byte(fmt.Sprint(len(asc))))
	if bytes.Contains(asc, []byte("--"+bnd)) {
		return fmt.Errorf("%w: armored message contains the MIME boundary", ErrEntity)
	}
	var out bytes.Buffer
	out.Grow(len(asc) + 2048)
	if err := writeEncryptedHead(&out, o, bnd); err != nil {
		return err
	}
	out.Write(asc)
	out.WriteString("\r\n--" + bnd + "--\r\n")
	_, err = w.Write(out.Bytes())
	return err
}

// writeEncryptedHead writes the outer headers of o and the
// multipart/encrypted body up to where the armored message begins.
func writeEncryptedHead(out *bytes.Buffer, o Outer, bnd string) error {
	var hf fields
	if err := checkAddress("From", o.From); err != nil {
		return err
	}
	hf.address("From", o.From)
	if err := checkAddress("To", o.To); err != nil {
		return err
	}
	hf.address("To", o.To)
	if err := checkText("Subject", o.Subject); err != nil {
		return err
	}
	hf.subject(o.Subject)
	if o.Date.IsZero() {
		return fmt.Errorf("%w: no Date", ErrHeader)
	}
	hf.date(o.Date)
	if err := checkMessageID(o.MessageID); err != nil {
		return err
	}
	hf.messageID(o.MessageID)
	for _, f := range o.Extra {
		if err := checkExtra(f); err != nil {
			return err
		}
		hf.add(f.Key, f.Value)
	}
	ct, err := contentType("multipart/encrypted", map[string]string{
		"boundary": bnd,
		"protocol": "application/pgp-encrypted",
	})
	if err != nil {
		return err
	}
	hf.add("MIME-Version", "1.0")
	hf.add("Content-Type", ct)

	var p1, p2 fields
	p1.add("Content-Type", "application/pgp-encrypted")
	p1.add("Content-Description", "PGP/MIME version identification")
	p2.add("Content-Type", `application/octet-stream; name="encrypted.asc"`)
	p2.add("Content-Description", "OpenPGP encrypted message")
	p2.add("Content-Disposition", `inline; filename="encrypted.asc"`)
	p2.add("Content-Transfer-Encoding", "7bit")

	if err := hf.write(out); err != nil {
		return err
	}
	out.WriteString(encryptedPreamble)
	out.WriteString("--" + bnd + "\r\n")
	if err := p1.write(out); err != nil {
		return err
	}
	out.WriteString("Version: 1\r\n")
	out.WriteString("\r\n--" + bnd + "\r\n")
	return p2.write(out)
}

// checkArmored requires one armored PGP MESSAGE block of printable ASCII
// lines of at most 76 characters and returns it with CRLF line endings.
func checkArmored(a []byte) ([]byte, error) {
	a = bytes.TrimRight(a, "\r\n")
	if !bytes.HasPrefix(a, []byte("-----BEGIN PGP MESSAGE-----")) || !bytes.HasSuffix(a, []byte("-----END PGP MESSAGE-----")) {
		return nil, fmt.Errorf("%w: not an armored PGP MESSAGE", ErrEntity)
	}
	for rest := a; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) > 76 {
			return nil, fmt.Errorf("%w: armored message has a line over 76 characters", ErrEntity)
		}
		if !printable(line) {
			return nil, fmt.Errorf("%w: armored message has a byte outside printable ASCII", ErrEntity)
		}
	}
	if bytes.Count(a, []byte("\n")) != bytes.Count(a, []byte("\r\n")) || bytes.Count(a, []byte("\r")) != bytes.Count(a, []byte("\r\n")) {
		a = crlf(a)
	}
	return append(a[:len(a):len(a)], '\r', '\n'), nil
}

// printable reports whether b is printable ASCII (0x20-0x7e), eight bytes
// at a time.
func printable(b []byte) bool {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		// A byte with the high bit, below 0x20, or equal to 0x7f.
		if x&hi != 0 || (x-lo*0x20)&^x&hi != 0 || ((x^lo*0x7f)-lo)&^(x^lo*0x7f)&hi != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c < ' ' || c > '~' {
			return false
		}
	}
	return true
}

func checkExtra(f Field) error {
	if f.Key == "" || len(f.Key) > 76 {
		return fmt.Errorf("%w: header field name %q", ErrHeader, f.Key)
	}
	for i := 0; i < len(f.Key); i++ {
		if c := f.Key[i]; c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("%w: header field name %q", ErrHeader, f.Key)
		}
	}
	k := textproto.CanonicalMIMEHeaderKey(f.Key)
	if reservedFields[k] || strings.HasPrefix(k, "Content-") {
		return fmt.Errorf("%w: header field %s may not be set as an extra field", ErrHeader, k)
	}
	if f.Value == "" || len(f.Value) > maxHeaderText {
		return fmt.Errorf("%w: %s value %q", ErrHeader, k, f.Value)
	}
	for i := 0; i < len(f.Value); i++ {
		if c := f.Value[i]; c < ' ' || c > '~' {
			return fmt.Errorf("%w: %s value %q: only printable ASCII is allowed", ErrHeader, k, f.Value)
		}
	}
	return nil
}
