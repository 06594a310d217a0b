package inbound

import (
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-message/mail"
)

// Loop returns a Drop refusal for mail that must never be answered, or
// nil: a bounce (empty envelope sender, MAILER-DAEMON), an automatic
// message (Auto-Submitted other than "no"), bulk or list mail
// (Precedence), mail from one of own (envelope or From header) and mail
// whose X-Loop names one of own. own are the addresses mail is answered
// from, compared case-insensitively. The pipeline runs it on every
// message; receive runs it on key requests, which go through no pipeline.
func Loop(own []string, env Envelope, h mail.Header) *Refusal {
	c := Config{Addresses: own}
	from := trimAddr(env.From)
	if from == "" {
		return drop("bounce (empty envelope sender): not answered")
	}
	if local, _, _ := strings.Cut(from, "@"); strings.EqualFold(local, "mailer-daemon") {
		return drop("bounce (MAILER-DAEMON): not answered")
	}
	if v := strings.ToLower(strings.TrimSpace(h.Get("Auto-Submitted"))); v != "" {
		if kw, _, _ := strings.Cut(v, ";"); strings.TrimSpace(kw) != "no" {
			return drop("automatic message (Auto-Submitted: " + sanitizeLine(v) + "): not answered")
		}
	}
	switch strings.ToLower(strings.TrimSpace(h.Get("Precedence"))) {
	case "bulk", "list", "junk":
		return drop("bulk or list mail (Precedence): not answered")
	}
	if c.ours(from) != "" {
		return drop("mail from the directory's own address: not answered")
	}
	if list, err := h.AddressList("From"); err == nil {
		for _, a := range list {
			if c.ours(a.Address) != "" {
				return drop("mail from the directory's own address: not answered")
			}
		}
	} else if raw := h.Get("From"); raw != "" {
		for _, a := range c.Addresses {
			if strings.Contains(strings.ToLower(raw), strings.ToLower(a)) {
				return drop("mail from the directory's own address: not answered")
			}
		}
	}
	for _, v := range h.Values("X-Loop") {
		v = strings.ToLower(v)
		for _, a := range c.Addresses {
			if strings.Contains(v, strings.ToLower(a)) {
				return drop("mail loop (X-Loop): not answered")
			}
		}
	}
	return nil
}

// Bindings: how the signed content names the address a message was sent
// to (Accepted.Binding).
const (
	BindingDirectoryLine   = "directory-line"   // a DIRECTORY line of the command block (ScanBlock)
	BindingProtectedHeader = "protected-header" // a signed (protected) To or Cc header
)

// bound reports how the signed content names the address the message was
// sent to (to, one of ours): the address in the protected To/Cc headers,
// or a DIRECTORY line of the command block; "" if it does not. Naming
// another of our addresses is not enough: a command mail caught on its way
// must not be re-sent to the list (or a post to the command address).
func (c Config) bound(block Block, protected []string, to string) string {
	for _, a := range protected {
		if ours := c.ours(a); ours != "" && strings.EqualFold(ours, to) {
			return BindingProtectedHeader
		}
	}
	for _, d := range block.Directories {
		if ours := c.ours(d); ours != "" && strings.EqualFold(ours, to) {
			return BindingDirectoryLine
		}
	}
	return ""
}

// trimAddr strips white space and angle brackets from an address.
func trimAddr(s string) string {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "<")
	s = strings.TrimSuffix(s, ">")
	return strings.TrimSpace(s)
}

func equalFoldASCII(a, b string) bool { return strings.EqualFold(a, b) }

// sanitizeLine makes header text safe for a log line or a reply's
// Subject: control characters become spaces, runs of white space one
// space, at most 200 characters.
func sanitizeLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200])
	}
	return s
}

// MessageID returns the Message-ID of h without angle brackets if it is a
// plausible id-left@id-right of printable ASCII, else "": what a reply
// may put in its In-Reply-To.
func MessageID(h mail.Header) string {
	id, err := h.MessageID()
	if err != nil || id == "" || len(id) > 250 || !strings.Contains(id, "@") {
		return ""
	}
	for _, r := range id {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune(`<>()[]\",;`, r) {
			return ""
		}
	}
	return id
}

func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
