package export

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// bodyWidth is the width the body's own text is wrapped to; the directory
// part is laid out by [WriteText], whose lines are shorter.
const (
	bodyWidth = 100
	noteWidth = 72
)

// BodyOptions says what a digest's body shows besides the directory. The
// zero value is a first digest without a note.
type BodyOptions struct {
	Now        time.Time // date of the digest
	PrevSerial int64     // serial of the last digest, 0 if there was none
	PrevHead   string    // head hash of the last digest
	Changes    []Change  // from [Diff]; ignored when PrevSerial is 0
	// Recipient is the contact the body is for, nil for everyone (an
	// operator preview). The body depends on it only through [KeyNote],
	// so recipients with the same note can share one signed body.
	Recipient   *directory.Contact
	KeyNoteDays int // warn about the recipient's key this many days ahead; 0 means DefaultKeyNoteDays
	// Keys judges the contacts' keys at Now, for the note and the count
	// of usable keys (see [KeyCheck]; the zero value reads each key).
	Keys KeyCheck
	// Reachability, when not empty, is written after the directory in a
	// section of its own, headed as operational and not part of the
	// signed directory: when each contact last answered a reachability
	// check. It is the same for every recipient.
	Reachability []Reach
}

// Reach is one line of a body's reachability section: a contact, and when
// it last answered a reachability check, in words (liveness.ConfirmedText).
type Reach struct {
	Name, Email string
	Text        string
}

// WriteBody writes the text/plain body of a digest of s: the directory's
// name; the note of [KeyNote] for opts.Recipient, if any; date, serial,
// head hash, the last digest's serial and head hash, and counts; the changes since the last digest, by ccTLD; the
// directory exactly as [WriteText] lays it out; opts.Reachability, if
// any, apart from the directory; and a footer on querying the directory
// by mail, with the directory key's fingerprint.
//
// The text is UTF-8 with LF line endings (the MIME layer converts), has no
// trailing spaces and no line starting with "From ", and its lines are at
// most 100 columns unless a name or address is longer than that. It reads
// no clock: opts.Now is the date of the digest.
func WriteBody(w io.Writer, s *directory.Snapshot, opts BodyOptions) error {
	if opts.KeyNoteDays <= 0 {
		opts.KeyNoteDays = DefaultKeyNoteDays
	}
	check := opts.Keys.resolve(opts.Now)
	t := &textWriter{w: bufio.NewWriter(w)}

	name := printable(s.Info.Name)
	if name == "" {
		name = "ccdir directory"
	}
	t.line("%s", name)
	t.line("%s", strings.Repeat("=", min(utf8.RuneCountInString(name), len(rule))))
	if note := KeyNote(opts.Recipient, opts.Now, opts.KeyNoteDays, check); note != "" {
		t.line("")
		for l := range strings.SplitSeq(note, "\n") {
			t.line("%s", l)
		}
	}

	keys, usableKeys := 0, 0
	for i := range s.Contacts {
		c := &s.Contacts[i]
		if c.Key == nil {
			continue
		}
		keys++
		if keyStatus(c, opts.Now, 0, check).kind != ChangeKeyUnusable {
			usableKeys++
		}
	}
	t.line("")
	t.field("", "Digest of", opts.Now.UTC().Format(time.DateTime)+" UTC")
	t.field("", "Serial", fmt.Sprint(s.Head.Serial))
	t.field("", "Head", printable(s.Head.Hash))
	if opts.PrevSerial == 0 {
		t.field("", "Previous", "none: the first digest")
	} else {
		t.field("", "Previous", fmt.Sprintf("serial %d, head %s", opts.PrevSerial, printable(opts.PrevHead)))
	}
	t.field("", "Last change", headDate(s.Time))
	t.field("", "Contents", fmt.Sprintf("%s, %s, %d with a usable key",
		plural(len(s.Members), "ccTLD", "ccTLDs"),
		plural(len(s.Contacts), "contact", "contacts"),
		usableKeys))

	t.changes(s, opts)
	t.members(s)
	t.reachability(opts.Reachability)
	t.bodyFooter(s)
	if t.err != nil {
		return t.err
	}
	return t.w.Flush()
}

// changes writes the section on what changed since the last digest.
func (t *textWriter) changes(s *directory.Snapshot, opts BodyOptions) {
	t.line("")
	if opts.PrevSerial == 0 {
		t.heading("Changes since the last digest")
		t.line("None listed: this is the first digest. The next one will list what changed")
		t.line("since this one.")
		return
	}
	t.heading(fmt.Sprintf("Changes since the last digest (serial %d%s%d)", opts.PrevSerial, arrow, s.Head.Serial))
	if len(opts.Changes) == 0 {
		t.line("No changes.")
		return
	}
	removedOrg := map[string]string{}
	for _, c := range opts.Changes {
		if c.Kind == ChangeMemberRemoved {
			removedOrg[c.TLD] = c.Name
		}
	}
	for i, c := range opts.Changes {
		if i == 0 || c.TLD != opts.Changes[i-1].TLD {
			if i > 0 {
				t.line("")
			}
			t.groupHeading(s, c.TLD, removedOrg[c.TLD])
		}
		text := c.String()
		if c.Kind == ChangeMemberAdded || c.Kind == ChangeMemberRemoved {
			text = c.Kind.String() // the org is in the heading
		}
		t.wrapped("  - ", "      ", printable(text), bodyWidth)
	}
}

// heading writes a line underlined with dashes.
func (t *textWriter) heading(h string) {
	t.line("%s", h)
	t.line("%s", strings.Repeat("-", utf8.RuneCountInString(h)))
}

// groupHeading names the ccTLD of a group of changes.
func (t *textWriter) groupHeading(s *directory.Snapshot, tld, removedOrg string) {
	if tld == "" {
		t.line("(no ccTLD)")
		return
	}
	org := memberOrg(s, tld)
	if org == "" {
		org = removedOrg
	}
	t.line("%s  %s", display(tld), printable(org))
}

// words splits text at spaces, but keeps the groups of a fingerprint
// ("AAAA 1111 …") together.
func words(text string) []string {
	var out []string
	prevGroup := false
	for _, w := range strings.Split(text, " ") {
		group, last := hexGroup(w)
		if group && prevGroup {
			out[len(out)-1] += " " + w
		} else {
			out = append(out, w)
		}
		prevGroup = group && !last
	}
	return out
}

// hexGroup reports whether w is a group of a fingerprint, and whether it
// ends one: "AAAA", or "AAAA:" at the end.
func hexGroup(w string) (group, last bool) {
	if len(w) == 5 && strings.ContainsRune(".,:;)", rune(w[4])) {
		w, last = w[:4], true
	}
	if len(w) != 4 {
		return false, false
	}
	for _, r := range w {
		if !('0' <= r && r <= '9' || 'A' <= r && r <= 'F') {
			return false, false
		}
	}
	return true, last
}

// wrapped writes text after first, wrapped at width columns, continuation
// lines indented by cont. It breaks before an arrow ("old → new") first,
// then between words; a word longer than a line, or a fingerprint, is not
// broken.
func (t *textWriter) wrapped(first, cont, text string, width int) {
	for _, l := range wrap(first, cont, text, width) {
		t.line("%s", l)
	}
}

func wrap(first, cont, text string, width int) []string {
	if utf8.RuneCountInString(first+text) <= width {
		return []string{first + text}
	}
	var lines []string
	cur := first
	fresh := true // cur holds only its indent
	for i, seg := range strings.Split(text, arrow) {
		if i > 0 {
			// An arrow starts a new line: "old" above, "→ new" below.
			lines = append(lines, cur)
			cur, fresh = cont, true
			seg = "→ " + seg
		}
		for _, word := range words(seg) {
			if !fresh && utf8.RuneCountInString(cur)+1+utf8.RuneCountInString(word) > width {
				lines = append(lines, cur)
				cur, fresh = cont, true
			}
			if !fresh {
				cur += " "
			}
			cur += word
			fresh = false
		}
	}
	return append(lines, cur)
}

// bodyFooter says how to query the directory by mail and which key signs
// it.
// reachability writes the operational section of last confirmations: not
// signed state (the pings table), so set apart from the directory and
// labelled as not part of it.
func (t *textWriter) reachability(rs []Reach) {
	if len(rs) == 0 {
		return
	}
	t.line("")
	t.line("%s", rule)
	t.heading("Reachability (operational, not part of the signed directory)")
	t.wrapped("", "", "When each contact last answered a reachability check (a signed PONG to an encrypted"+
		" challenge), from the directory's operational records. These lines are not in the signed entries"+
		" above nor in the attached exports; an entry's \"Changed\" is when its signed entry last changed.", noteWidth)
	t.line("")
	for _, r := range rs {
		t.line("  %s <%s>: %s", printable(r.Name), printable(r.Email), printable(r.Text))
	}
}

func (t *textWriter) bodyFooter(s *directory.Snapshot) {
	t.line("")
	t.line("%s", rule)
	if addr := printable(s.Info.Address); addr != "" {
		t.wrapped("", "", "To query the directory by mail, send a signed mail with HELP to "+addr+
			": it answers, encrypted to your key, with the commands it knows (such as SHOW <tld>"+
			" and KEY <email>). Only mail signed by a key in this directory is answered.", noteWidth)
		t.line("")
	}
	if list := printable(s.Info.ListAddress); list != "" {
		t.wrapped("", "", "To post an alert to every member, write to the list at "+list+
			", signed with your key and encrypted to the directory key, with the line \"DIRECTORY "+list+
			"\" at the top of the text: every member gets it, encrypted to their key.", noteWidth)
		t.line("")
	}
	fp := "unknown"
	if s.Info.KeyFingerprint != "" {
		fp = keys.GroupFingerprint(printable(s.Info.KeyFingerprint))
	}
	t.line("Directory key: %s", fp)
	t.line("This digest is signed by that key; check its fingerprint before you trust it.")
	if strings.TrimSpace(s.Info.PublicKey) != "" {
		// The digest attaches s.Info.PublicKey (pkg/digest).
		t.line("The attached %s is that key: import it to write to the addresses above.", DirectoryKeyFile)
	}
	t.line("Serial %d, head %s.", s.Head.Serial, shortHash(s.Head.Hash))
}

// KeyNote returns the note a digest addresses to c about its own key, or
// "" if there is none: when the key cannot be used (check.Usable refuses
// it, or it has stopped working) or stops working within days after now
// (0 means [DefaultKeyNoteDays]), by when it stops working (check.Until:
// a subkey that expires before the primary key gives its date).
//
// The note is a pure function of its arguments, at most a few lines of at
// most 72 columns (unless a name is longer), without a final newline: a
// digest job can sign one body per distinct note.
func KeyNote(c *directory.Contact, now time.Time, days int, check KeyCheck) string {
	if c == nil || c.Key == nil {
		return ""
	}
	if days <= 0 {
		days = DefaultKeyNoteDays
	}
	st := keyStatus(c, now, days, check.resolve(now))
	fp := keys.GroupFingerprint(printable(c.Key.Fingerprint))
	on := st.expires.UTC().Format(time.DateOnly)
	var text string
	switch {
	case st.kind == 0:
		return ""
	case st.err != nil:
		text = "Your OpenPGP key " + fp + " cannot be used: " + printable(st.err.Error()) +
			". Digests are only sent encrypted to a key that can be used: please send your new" +
			" public key to the directory's operator."
	case st.kind == ChangeKeyUnusable:
		text = "Your OpenPGP key " + fp + " expired on " + on +
			", so digests can no longer be encrypted to it: please send your new public key" +
			" to the directory's operator."
	default:
		text = "Your OpenPGP key " + fp + " expires on " + on +
			". Before then, please extend its expiry (or make a new key) and send the" +
			" public key to the directory's operator: digests are only sent encrypted, to" +
			" a key that can be used."
	}
	lines := []string{fmt.Sprintf("Note for %s <%s>:", printable(c.Name), printable(c.Email))}
	lines = append(lines, wrap("", "", text, noteWidth)...)
	return strings.Join(lines, "\n")
}
