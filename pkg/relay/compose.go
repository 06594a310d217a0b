package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// composer builds the copies of one post.
type composer struct {
	cfg    settings
	a      *inbound.Accepted
	p      *post
	id     string
	author *directory.Contact
	now    time.Time
	secret *keys.Secret
}

// subject is the protected Subject of every copy: tag, label, the
// original subject, the alert id.
func (c *composer) subject() string {
	s := c.cfg.Tag + " [TLP:" + c.p.tlp + "]"
	if c.p.subject != "" {
		s += " " + c.p.subject
	}
	return s + " [alert " + c.id + "]"
}

// listName is the list's display name.
func (c *composer) listName() string { return c.cfg.info.Name }

// block is the short text at the top of each copy: the alert, the label,
// the author and the verdict on their signature.
func (c *composer) block(skipped []Skipped) string {
	var b strings.Builder
	rule := strings.Repeat("-", 72)
	b.WriteString(rule + "\n")
	fmt.Fprintf(&b, "%s alert %s -- TLP:%s\n", c.cfg.Tag, c.id, c.p.tlp)
	fmt.Fprintf(&b, "  TLP:%s: %s", c.p.tlp, tlpMeaning[c.p.tlp])
	if !c.p.labelled {
		b.WriteString(" (no label given: the list's default)")
	}
	b.WriteString("\n")
	tlds := make([]string, 0, len(c.author.Roles))
	for _, r := range c.author.Roles {
		tlds = append(tlds, "."+r.TLD)
	}
	fmt.Fprintf(&b, "From:      %s <%s>, %s\n", printable(c.author.Name), c.author.Email, strings.Join(tlds, ", "))
	fmt.Fprintf(&b, "Key:       %s (%s)\n", groupHex(c.a.Key.Fingerprint), c.a.Key.Algorithm)
	enc := "sent in clear to the list"
	if c.a.Encrypted {
		enc = "encrypted to the directory"
	}
	fmt.Fprintf(&b, "Signature: good, made %s with the key registered for this\n           contact; the post was %s\n",
		c.a.SignedAt.UTC().Format("2006-01-02 15:04:05 UTC"), enc)
	if c.p.hasTo {
		fmt.Fprintf(&b, "To:        only the contacts the author named: %s\n", strings.Join(quoteNames(c.p.to), ", "))
	} else {
		fmt.Fprintf(&b, "To:        every contact of %s\n", printable(c.listName()))
	}
	fmt.Fprintf(&b, "Reply:     to acknowledge, send a signed mail to %s with the line\n           ACK %s\n", c.cfg.info.Address, c.id)
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "\nNote for the author: %d %s no copy (no usable key):\n", len(skipped), map[bool]string{true: "recipient gets", false: "recipients get"}[len(skipped) == 1])
		for _, s := range skipped {
			fmt.Fprintf(&b, "  %s (%s): %s\n", s.Email, dotted(s.TLDs), s.Reason)
		}
	}
	b.WriteString(rule + "\n\n")
	return b.String()
}

func quoteNames(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = printable(n)
	}
	return out
}

func dotted(tlds []string) string {
	out := make([]string, len(tlds))
	for i, t := range tlds {
		out[i] = "." + t
	}
	return strings.Join(out, ", ")
}

// printable replaces control and format characters.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return '?'
		}
		return r
	}, s)
}

func groupHex(fpr string) string {
	var b strings.Builder
	for i := 0; i < len(fpr); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(fpr[i:min(i+4, len(fpr))])
	}
	return b.String()
}

// parts are the copy's leaves: the block and the original text, then the
// original attachments, their bodies unchanged.
func (c *composer) parts(skipped []Skipped) ([]pgpmime.Part, error) {
	parts := []pgpmime.Part{{ContentType: "text/plain", Body: []byte(c.block(skipped) + c.a.Text)}}
	if len(c.a.Attachments) > pgpmime.MaxParts-1 {
		return nil, fmt.Errorf("%d attachments, at most %d", len(c.a.Attachments), pgpmime.MaxParts-1)
	}
	for i, at := range c.a.Attachments {
		parts = append(parts, attachment(at, i))
	}
	return parts, nil
}

// attachment makes an original attachment fit for BuildInner without
// changing its bytes: a text part that BuildInner would re-encode (not
// UTF-8, another charset, bare line ends) travels as
// application/octet-stream; unsafe file names are reduced.
func attachment(p pgpmime.Part, i int) pgpmime.Part {
	mt := strings.ToLower(p.ContentType)
	if mt == "" || strings.HasPrefix(mt, "multipart/") || strings.HasPrefix(mt, "message/") {
		mt = "application/octet-stream"
	}
	params := map[string]string{}
	if strings.HasPrefix(mt, "text/") {
		cs := strings.ToLower(p.Params["charset"])
		if (cs != "" && cs != "utf-8" && cs != "us-ascii") || !utf8.Valid(p.Body) || !crlfOnly(p.Body) {
			mt = "application/octet-stream"
		}
	}
	name := p.Filename
	if name != "" {
		name = path.Base(strings.ReplaceAll(name, `\`, "/"))
		name = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
				return -1
			}
			return r
		}, name)
		if name == "" || name == "." || name == "/" || len(name) > 200 {
			name = fmt.Sprintf("attachment-%d", i+1)
		}
	} else {
		name = fmt.Sprintf("attachment-%d", i+1)
	}
	return pgpmime.Part{ContentType: mt, Params: params, Filename: name, Body: p.Body}
}

// crlfOnly reports whether every line end in b is CRLF (BuildInner would
// rewrite the others).
func crlfOnly(b []byte) bool {
	for i, ch := range b {
		if ch == '\n' && (i == 0 || b[i-1] != '\r') || ch == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return false
		}
	}
	return true
}

// protected are the real headers of a copy.
func (c *composer) protected() pgpmime.Protected {
	p := pgpmime.Protected{
		From:    mail.Address{Name: c.author.Name + " via " + c.listName(), Address: c.cfg.ListAddress},
		ToGroup: c.listName() + " members",
		Subject: c.subject(),
		Date:    c.a.SignedAt.UTC(),
	}
	if c.cfg.KeepMessageID {
		// Only a signed Message-ID is kept: the outer one can be set by
		// anyone on the way, and the copies are signed by the directory.
		p.MessageID = c.ownMessageID()
		if c.a.MessageIDSigned {
			p.MessageID = c.a.MessageID
		}
	}
	return p
}

// ownMessageID is the protected Message-ID of the copies of a post that
// brings no signed one of its own: the same in every copy.
func (c *composer) ownMessageID() string {
	return fmt.Sprintf("alert-%s@%s", strings.ToLower(c.id), domainOf(c.cfg.ListAddress))
}

// sealed builds the inner entity (with a note about skipped recipients,
// for the author), signs it and encrypts it once for all its copies.
func (c *composer) sealed(skipped []Skipped, rand io.Reader) (*pgpmime.Sealed, error) {
	parts, err := c.parts(skipped)
	if err != nil {
		return nil, err
	}
	prot := c.protected()
	inner, err := pgpmime.BuildInner(prot, parts)
	if err != nil && prot.MessageID != "" && errors.Is(err, pgpmime.ErrHeader) {
		prot.MessageID = c.ownMessageID() // an original Message-ID we cannot write
		inner, err = pgpmime.BuildInner(prot, parts)
	}
	if err != nil {
		return nil, fmt.Errorf("relay: build copy: %w", err)
	}
	signed, err := pgpmime.Sign(inner, c.secret)
	if err != nil {
		return nil, fmt.Errorf("relay: sign copy: %w", err)
	}
	enc, err := pgpmime.NewEncrypter(signed, c.now)
	if err != nil {
		return nil, err
	}
	return enc.Seal(rand), nil
}

// listID is the List-Id field (RFC 2919): the list's name and the list
// address with '@' made a dot.
func (c *composer) listID() string {
	name := asciiPhrase(c.listName())
	id := strings.ToLower(strings.Replace(c.cfg.ListAddress, "@", ".", 1))
	if name == "" {
		return "<" + id + ">"
	}
	return name + " <" + id + ">"
}

// asciiPhrase is s as a printable ASCII phrase, quoted if needed.
func asciiPhrase(s string) string {
	var b strings.Builder
	special := false
	for _, r := range s {
		switch {
		case r < 0x20 || r > 0x7e:
			continue
		case r == '"' || r == '\\':
			continue
		case strings.ContainsRune("()<>[]:;@,.", r):
			special = true
		}
		b.WriteRune(r)
	}
	out := strings.TrimSpace(b.String())
	if special && out != "" {
		return `"` + out + `"`
	}
	return out
}

// outer are the visible headers of a copy to rcpt.
func (c *composer) outer(rcpt *directory.Contact) pgpmime.Outer {
	sum := sha256.Sum256([]byte(rcpt.Email))
	return pgpmime.Outer{
		From:      mail.Address{Name: c.listName(), Address: c.cfg.ListAddress},
		To:        mail.Address{Name: rcpt.Name, Address: rcpt.Email},
		Subject:   OuterSubject,
		Date:      c.now,
		MessageID: fmt.Sprintf("alert-%s-%s@%s", strings.ToLower(c.id), hex.EncodeToString(sum[:6]), domainOf(c.cfg.ListAddress)),
		Extra: []pgpmime.Field{
			{Key: "List-Id", Value: c.listID()},
			{Key: "List-Post", Value: "<mailto:" + c.cfg.ListAddress + ">"},
			{Key: "List-Help", Value: "<mailto:" + c.cfg.info.Address + "?subject=help>"},
			{Key: "Precedence", Value: "list"},
			{Key: "X-Loop", Value: c.cfg.ListAddress},
		},
	}
}
