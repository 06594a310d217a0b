package export

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

const rule = "========================================================================"

// WriteText writes the directory as the plain text of a digest: a header
// (name, addresses, serial, head hash, date of the head entry, counts),
// every member sorted by code with its contacts, security first, then a
// footer with the directory key's fingerprint. The text is UTF-8 with LF
// line endings, no trailing spaces, and lines of at most 100 columns
// unless a name or address is longer than that.
func WriteText(w io.Writer, s *directory.Snapshot) error {
	t := &textWriter{w: bufio.NewWriter(w)}
	t.header(s)
	t.members(s)
	t.footer(s)
	if t.err != nil {
		return t.err
	}
	return t.w.Flush()
}

type textWriter struct {
	w   *bufio.Writer
	err error
}

// line writes one line, without trailing spaces. A line that would start
// with "From " gets a leading space, so that no mbox or quoted-printable
// layer mangles it into ">From ".
func (t *textWriter) line(format string, args ...any) {
	if t.err != nil {
		return
	}
	s := strings.TrimRight(fmt.Sprintf(format, args...), " ")
	if strings.HasPrefix(s, "From ") {
		s = " " + s
	}
	_, t.err = t.w.WriteString(s + "\n")
}

// field writes "label: value" with the values aligned, indented by indent.
func (t *textWriter) field(indent, label, value string) {
	t.line("%s%-13s%s", indent, label+":", value)
}

func (t *textWriter) header(s *directory.Snapshot) {
	keys := 0
	for _, c := range s.Contacts {
		if c.Key != nil {
			keys++
		}
	}
	name := printable(s.Info.Name)
	if name == "" {
		name = "ccdir directory"
	}
	t.line("%s", name)
	t.line("%s", strings.Repeat("=", min(len([]rune(name)), len(rule))))
	t.field("", "Address", printable(s.Info.Address))
	if s.Info.ListAddress != "" {
		t.field("", "List", printable(s.Info.ListAddress))
	}
	t.field("", "Serial", fmt.Sprint(s.Head.Serial))
	t.field("", "Head", s.Head.Hash)
	t.field("", "Date", headDate(s.Time))
	t.field("", "Contents", fmt.Sprintf("%s, %s, %s",
		plural(len(s.Members), "ccTLD", "ccTLDs"),
		plural(len(s.Contacts), "contact", "contacts"),
		plural(keys, "key", "keys")))
}

// members writes every member of s, sorted by code, with its contacts:
// the directory proper, the same in an export and in a digest.
func (t *textWriter) members(s *directory.Snapshot) {
	for _, m := range sortedMembers(s) {
		t.member(s, m)
	}
}

func (t *textWriter) member(s *directory.Snapshot, m directory.Member) {
	tld := cctld(m.TLD)
	t.line("")
	t.line("%s", rule)
	t.line("%s  %s", tld.Display(), printable(m.Org))
	t.line("%s", rule)
	country := printable(m.Country)
	if m.Country != "" && m.Country == tld.Country && tld.Name != "" {
		country += " (" + tld.Name + ")"
	}
	if country == "" {
		country = "not given"
	}
	t.field("", "Country", country)
	t.field("", "Status", printable(m.Status))
	contacts := s.ContactsOf(m.TLD)
	if len(contacts) == 0 {
		t.line("")
		t.line("  (no contacts)")
	}
	for i := range contacts {
		t.contact(s, m.TLD, &contacts[i])
	}
}

func (t *textWriter) contact(s *directory.Snapshot, tld string, c *directory.Contact) {
	const in = "    "
	t.line("")
	t.line("  %s <%s>", printable(c.Name), printable(c.Email))
	t.field(in, "Role", printable(c.RoleFor(tld)))
	if len(c.Phones) == 0 {
		t.field(in, "Phone", "none")
	}
	for i, p := range c.Phones {
		label := ""
		if i == 0 {
			label = "Phone"
			if len(c.Phones) > 1 {
				label = "Phones"
			}
		}
		v := printable(p.Number)
		if p.Emergency {
			v += " (emergency)"
		}
		if label == "" {
			t.line("%s%-13s%s", in, "", v)
		} else {
			t.field(in, label, v)
		}
	}
	t.field(in, "24x7", yesNo(c.Always))
	t.field(in, "Languages", orNotGiven(printable(strings.Join(c.Languages, ", "))))
	t.field(in, "Time zone", orNotGiven(printable(c.TimeZone)))
	if c.Key == nil {
		t.field(in, "Key", "no key")
	} else {
		t.field(in, "Key", keys.GroupFingerprint(printable(c.Key.Fingerprint)))
		t.field(in, "Key expires", keyExpiry(s, c.Key))
	}
	// Contact.Confirmed is the time of the entry's last ledger change,
	// not an answer to a reachability check: shown as "Changed".
	changed := "unknown"
	if c.Confirmed != "" {
		changed = printable(date(c.Confirmed))
	}
	t.field(in, "Changed", changed)
}

func (t *textWriter) footer(s *directory.Snapshot) {
	t.line("")
	t.line("%s", rule)
	fp := "unknown"
	if s.Info.KeyFingerprint != "" {
		fp = keys.GroupFingerprint(printable(s.Info.KeyFingerprint))
	}
	t.line("Directory key: %s", fp)
	t.line("Serial %d, head %s.", s.Head.Serial, shortHash(s.Head.Hash))
}

// keyExpiry says when a key expires, and whether it had already expired
// at the time of the head entry.
func keyExpiry(s *directory.Snapshot, k *directory.Key) string {
	if k.Expires == "" {
		return "never"
	}
	v := printable(date(k.Expires))
	exp, ok1 := parseTime(k.Expires)
	head, ok2 := parseTime(s.Time)
	if ok1 && ok2 && !exp.After(head) {
		v += " (expired)"
	}
	return v
}

// headDate formats the time of the head entry in UTC.
func headDate(s string) string {
	if s == "" {
		return "unknown"
	}
	if t, ok := parseTime(s); ok {
		return t.UTC().Format(time.DateTime) + " UTC"
	}
	return printable(s)
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return printable(h)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orNotGiven(s string) string {
	if s == "" {
		return "not given"
	}
	return s
}
