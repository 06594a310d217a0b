package relay

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/inbound"
)

// TLP labels (FIRST TLP 2.0), least restrictive first.
const (
	TLPClear       = "CLEAR"
	TLPGreen       = "GREEN"
	TLPAmber       = "AMBER"
	TLPAmberStrict = "AMBER+STRICT"
	TLPRed         = "RED"
)

var tlpOrder = []string{TLPClear, TLPGreen, TLPAmber, TLPAmberStrict, TLPRed}

// tlpMeaning is what each label asks of recipients, shown on every copy.
var tlpMeaning = map[string]string{
	TLPClear:       "disclosure is not limited",
	TLPGreen:       "share within the community, not publicly",
	TLPAmber:       "share only within your organisation and its clients, on a need-to-know basis",
	TLPAmberStrict: "share only within your organisation, on a need-to-know basis",
	TLPRed:         "for the named recipients only: do not share",
}

// tlpRE finds a label; TLP:WHITE (TLP 1.0) is TLP:CLEAR.
var tlpRE = regexp.MustCompile(`(?i)\bTLP\s?:\s?(CLEAR|WHITE|GREEN|AMBER\+STRICT|AMBER|RED)\b`)

// ParseTLP returns the most restrictive TLP label in s, or "".
func ParseTLP(s string) string {
	best := -1
	for _, m := range tlpRE.FindAllStringSubmatch(s, -1) {
		l := strings.ToUpper(m[1])
		if l == "WHITE" {
			l = TLPClear
		}
		best = max(best, slices.Index(tlpOrder, l))
	}
	if best < 0 {
		return ""
	}
	return tlpOrder[best]
}

// NormalizeTLP returns the canonical label for s ("amber", "TLP:AMBER"),
// or "".
func NormalizeTLP(s string) string {
	if l := ParseTLP(s); l != "" {
		return l
	}
	return ParseTLP("TLP:" + s)
}

// maxLeadLines caps the lines at the top of a post read for directives.
const maxLeadLines = 10

// post is what the author's signed text and subject ask for.
type post struct {
	tlp      string // the label that applies
	labelled bool   // the author gave it (false: the default)
	// shown is the most restrictive label anywhere in the post as people
	// see it (the unsigned Subject, any line of the text, quoted or not),
	// and shownAt where: a post is never relayed under a weaker label.
	shown, shownAt string
	to             []string // the names on TO: lines, as written
	hasTo          bool
	subject        string // the original subject without tag and label
}

// leadLines returns the lines at the top of text (after leading blank
// lines, up to the first blank line), at most maxLeadLines.
func leadLines(text string) []string {
	var out []string
	started := false
	for line := range strings.SplitSeq(text, "\n") {
		t := strings.TrimSpace(line)
		if t == "" {
			if started {
				break
			}
			continue
		}
		started = true
		out = append(out, t)
		if len(out) == maxLeadLines {
			break
		}
	}
	return out
}

// parsePost reads the directives of a post: the TLP label (subject, or
// the first lines of the text; the most restrictive wins) and TO: lines.
// DIRECTORY lines are skipped: the binding is inbound's (its command block,
// Accepted.Binding). The first lines are not cut at a quoted line as the
// command block is: a label in a quoted alert still counts.
//
// unsigned is the outer Subject when it is not signed: it never sets the
// label, but a label in it counts for shown, as one in any of the other
// texts a reader sees (inbound's Accepted.Shown: other text parts and
// attachments, the HTML alternative, attached messages).
func parsePost(subject, unsigned, text string, others []inbound.Shown, tag, defaultTLP string) *post {
	p := &post{}
	p.shown, p.shownAt = shownLabel(subject, unsigned, text, others)
	labels := subject
	for _, line := range leadLines(text) {
		if _, ok := inbound.IsDirectoryLine(line); ok {
			continue
		}
		if len(line) >= 3 && strings.EqualFold(line[:3], "TO:") {
			p.hasTo = true
			p.to = append(p.to, strings.FieldsFunc(line[3:], func(r rune) bool { return r == ',' || r == ';' || unicode.IsSpace(r) })...)
			continue
		}
		labels += "\n" + line
	}
	p.tlp = ParseTLP(labels)
	p.labelled = p.tlp != ""
	if !p.labelled {
		p.tlp = defaultTLP
	}
	p.subject = cleanSubject(subject, tag)
	return p
}

// cleanSubject drops the list tag and TLP labels from an original
// subject (a reply to a copy carries both), so that each copy shows them
// once, in front.
func cleanSubject(s, tag string) string {
	if tag != "" {
		s = strings.ReplaceAll(s, tag, "")
	}
	s = tlpRE.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "[]", "")
	s = strings.Join(strings.Fields(s), " ")
	const max = 400
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8Start(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func utf8Start(b byte) bool { return b&0xc0 != 0x80 }

// target is a contact who gets a copy.
type target struct {
	contact directory.Contact
	tlds    []string // the contact's active ccTLDs
	author  bool
}

// targets returns who gets the post: every contact that receives directory
// data (directory.Snapshot.Reachable: a role at an active ccTLD), or those
// of them the TO: lines name; the author first if copy is set. A name that
// matches nobody is an error for the author.
func (p *post) targets(snap *directory.Snapshot, author *directory.Contact, copyAuthor bool) ([]target, error) {
	active := map[string]bool{}
	for _, m := range snap.Members {
		if m.Status == directory.StatusActive {
			active[m.TLD] = true
		}
	}
	var out []target
	if copyAuthor {
		out = append(out, target{contact: *author, tlds: snap.ActiveTLDs(author), author: true})
	}
	want := map[string]bool{} // emails
	wantTLD := map[string]bool{}
	if p.hasTo {
		var unknown []string
		for _, name := range p.to {
			if strings.Contains(name, "@") {
				e, err := directory.NormalizeEmail(strings.Trim(name, "<>"))
				if err == nil && slices.ContainsFunc(snap.Contacts, func(c directory.Contact) bool {
					return c.Email == e && snap.Reachable(&c)
				}) {
					want[e] = true
					continue
				}
			} else if t, err := directory.LookupCCTLD(strings.TrimPrefix(name, ".")); err == nil && active[t.Code] {
				wantTLD[t.Code] = true
				continue
			}
			unknown = append(unknown, name)
		}
		switch {
		case len(unknown) > 0:
			return nil, fmt.Errorf("the TO: line names %s, which %s not an active ccTLD of the directory nor the email of one of its contacts",
				strings.Join(quoteAll(unknown), ", "), map[bool]string{true: "is", false: "are"}[len(unknown) == 1])
		case len(want) == 0 && len(wantTLD) == 0:
			return nil, fmt.Errorf("the TO: line names nobody")
		}
	}
	for i := range snap.Contacts {
		c := &snap.Contacts[i]
		if c.Email == author.Email {
			continue
		}
		if !snap.Reachable(c) {
			continue
		}
		tlds := snap.ActiveTLDs(c)
		if p.hasTo && !want[c.Email] && !slices.ContainsFunc(tlds, func(t string) bool { return wantTLD[t] }) {
			continue
		}
		out = append(out, target{contact: *c, tlds: tlds})
	}
	return out, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 80 {
			s = s[:80]
		}
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// shownLabel is the most restrictive TLP label a reader of the post sees,
// and where: in its Subject (signed or not), on which line of its text, or
// on which line of which other text.
func shownLabel(subject, unsigned, text string, others []inbound.Shown) (label, where string) {
	rank := func(l string) int { return slices.Index(tlpOrder, l) }
	consider := func(l, at string) {
		if l != "" && rank(l) > rank(label) {
			label, where = l, at
		}
	}
	consider(ParseTLP(unsigned), "the unsigned Subject")
	consider(ParseTLP(subject), "the Subject")
	n := 0
	for line := range strings.SplitSeq(text, "\n") {
		n++
		consider(ParseTLP(line), fmt.Sprintf("line %d of the text", n))
	}
	for _, o := range others {
		if o.Field {
			consider(ParseTLP(o.Text), o.Where)
			continue
		}
		n := 0
		for line := range strings.SplitSeq(o.Text, "\n") {
			n++
			consider(ParseTLP(line), fmt.Sprintf("line %d of %s", n, o.Where))
		}
	}
	return label, where
}
