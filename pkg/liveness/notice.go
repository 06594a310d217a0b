package liveness

import (
	"errors"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// KindNotice is the outbox kind of the notice of a change: a change of a
// contact announced to the contacts it concerns (mailcmd's KindNotify).
const KindNotice = "notify"

// Notices are the notices of the changes one transaction makes, by mail
// (mailcmd) or by the operator (the CLI): who is told what. It is the
// one mechanism of change notices: collect them with Announce while the
// changes are made, then build them with Mailer.Messages and queue them
// in the same transaction, so that no change goes without its notices
// and no notice without its change.
type Notices struct {
	view *directory.Snapshot
	skip string
	list []*Notice
	// NoKey are the addresses that would be told but have no key: they
	// get nothing (contact data never leaves unencrypted).
	NoKey []string
}

// Notice is what one recipient is told about the changes of one
// transaction.
type Notice struct {
	Email, Name string
	Key         *directory.Key // the key the notice is encrypted to
	Lines       []string       // what changed (Announce)
	// Asked are the changes asked for that wait (AnnouncePending of a
	// waiting change), Waiting those changes (each once), for how to
	// stop them; Decided what became of changes that waited (vetoed,
	// cancelled, expired, superseded, applied).
	Asked, Decided []string
	Waiting        []*Pending
	// vetoTLDs are, by change id, the ccTLDs whose admin contacts may
	// veto a waiting change (its contact's, as told).
	vetoTLDs map[string][]string
}

// NewNotices collects the notices of changes to view, the directory as
// the changes so far leave it (the caller keeps it so: Announce reads it
// when called). skip is an address told otherwise (the sender of a
// command mail gets the reply), which is told only of a change to its
// own entry.
func NewNotices(view *directory.Snapshot, skip string) *Notices {
	return &Notices{view: view, skip: skip}
}

// Announce records the notice of a change of one contact, from before to
// after (before nil: the contact was added; after nil: it was removed),
// said by lines, for the ccTLDs tlds. It is told to the contact at its
// previous address and key, and at its new ones when they differ (a new
// email or key), whatever its ccTLDs' status: it is its own data, and
// the notice to the previous address and key is how it learns of a
// change it did not make. And to the other contacts of those ccTLDs who
// receive directory data (directory.Snapshot.Reachable: a role at an
// active ccTLD), except skip.
func (n *Notices) Announce(before, after *directory.Contact, tlds []string, lines []string) {
	n.announce(before, after, tlds, lines, nil, false)
}

// AnnouncePending records the notice of what happens to the pending
// change p of the contact c (as c is now: its address and key are the
// ones the change replaces), said by lines, for the ccTLDs tlds (nil:
// c's). It is told as Announce tells a change from c to c with the new
// address or key: to c, to the new address or key, and to the other
// contacts of its ccTLDs who receive directory data. A waiting p (just
// proposed) is told as asked for, with how to stop it (VETO p.ID); any
// other state as decided.
func (n *Notices) AnnouncePending(c *directory.Contact, p *Pending, tlds []string, lines []string) {
	after := *c
	switch p.Kind {
	case ChangeKey:
		after.Key = p.NewKey
	case ChangeEmail:
		after.Email = p.NewEmail
	}
	if tlds == nil {
		tlds = RoleTLDs(c, nil)
	}
	q := *p
	n.announce(c, &after, tlds, lines, &q, true)
}

func (n *Notices) announce(before, after *directory.Contact, tlds []string, lines []string, p *Pending, pending bool) {
	who := before
	if who == nil {
		who = after
	}
	if who == nil {
		return
	}
	told := make([]string, len(lines))
	for i, l := range lines {
		told[i] = fmt.Sprintf("%s (%s): %s", who.Email, strings.Join(displayAll(tlds), ", "), l)
	}
	add := func(c *directory.Contact) {
		if !pending {
			n.Add(c, told)
			return
		}
		x := n.notice(c)
		if x == nil {
			return
		}
		if p.State == StateWaiting {
			x.Asked = appendNew(x.Asked, told)
			if !slices.ContainsFunc(x.Waiting, func(w *Pending) bool { return w.ID == p.ID }) {
				x.Waiting = append(x.Waiting, p)
				if x.vetoTLDs == nil {
					x.vetoTLDs = map[string][]string{}
				}
				x.vetoTLDs[p.ID] = tlds
			}
		} else {
			x.Decided = appendNew(x.Decided, told)
		}
	}
	add(who)
	if after != nil && after != who && (after.Email != who.Email || fingerprint(after.Key) != fingerprint(who.Key)) {
		add(after)
	}
	for _, tld := range tlds {
		for _, c := range n.view.ContactsOf(tld) {
			if c.Email == who.Email || (after != nil && c.Email == after.Email) || c.Email == n.skip || !n.view.Reachable(&c) {
				continue
			}
			add(&c)
		}
	}
}

// Add tells c lines (each once), at c's address and key; a contact
// without a key is only recorded in NoKey.
func (n *Notices) Add(c *directory.Contact, lines []string) {
	if x := n.notice(c); x != nil {
		x.Lines = appendNew(x.Lines, lines)
	}
}

// notice is c's notice (at its address and key), made if need be; nil
// (and c in NoKey) for a contact without a key.
func (n *Notices) notice(c *directory.Contact) *Notice {
	if c.Key == nil {
		if !slices.Contains(n.NoKey, c.Email) {
			n.NoKey = append(n.NoKey, c.Email)
		}
		return nil
	}
	i := slices.IndexFunc(n.list, func(x *Notice) bool { return x.Email == c.Email && x.Key.Fingerprint == c.Key.Fingerprint })
	if i < 0 {
		k := *c.Key
		n.list = append(n.list, &Notice{Email: c.Email, Name: c.Name, Key: &k})
		i = len(n.list) - 1
	}
	return n.list[i]
}

func appendNew(list, lines []string) []string {
	for _, l := range lines {
		if !slices.Contains(list, l) {
			list = append(list, l)
		}
	}
	return list
}

// List is the notices, in the order their recipients were first told.
func (n *Notices) List() []*Notice { return n.list }

func fingerprint(k *directory.Key) string {
	if k == nil {
		return ""
	}
	return k.Fingerprint
}

// Change is what every notice of one transaction says of its changes,
// and how they are filed in the outbox.
type Change struct {
	// Via is what made the changes, for the title: "signed mail", "the
	// operator".
	Via string
	// By says who made them: "a mail signed by Ana <ana@dns.pt> (key
	// F…)", "the operator Rita Lopes"; shown as is.
	By      string
	Subject string         // the protected (real) Subject
	Head    directory.Head // the directory after the changes
	Ref     string         // the outbox ref of every notice
	// MessageID gives the local part of a notice's Message-ID for its
	// recipient (the address, then a space and the key's fingerprint for
	// a second notice to one address); the domain is the directory's.
	MessageID func(rcpt string) string
}

// Mailer builds notices as personal messages of the directory: signed by
// its key and encrypted to the recipient's (fanout.Personal).
type Mailer struct {
	Info   directory.Info
	From   string // the directory's address; empty: Info.Address
	Secret *keys.Secret
	Keys   *fanout.Keys // the key cache; nil: one for this call
	// OuterSubject is the neutral outer Subject (digest.subject); empty:
	// "Encrypted message".
	OuterSubject string
}

// Messages builds the notices ns of change c at now. A recipient whose
// key cannot be used (keys.Unusable) gets nothing: it is in skipped,
// with the reason. sent are the addresses of the messages built.
func (m *Mailer) Messages(ns []*Notice, c Change, now time.Time) (msgs []outbox.Message, sent []string, skipped []Skipped, err error) {
	cache := m.Keys
	if cache == nil {
		cache = fanout.NewKeys()
	}
	from := m.From
	if from == "" {
		from = m.Info.Address
	}
	outer := m.OuterSubject
	if outer == "" {
		outer = "Encrypted message"
	}
	seen := map[string]bool{}
	for _, n := range ns {
		pub, err := cache.Public(n.Key, now)
		if err != nil {
			if keys.Unusable(err) || errors.Is(err, keys.ErrNoKey) {
				skipped = append(skipped, Skipped{Email: n.Email, Reason: keys.Reason(err)})
				continue
			}
			return nil, nil, nil, err
		}
		// A second notice to one address (its old and its new key) is
		// filed apart: the outbox keeps one message per kind, ref and
		// recipient.
		ref, rcpt := c.Ref, n.Email
		if seen[n.Email] {
			ref, rcpt = c.Ref+"-"+n.Key.Fingerprint, n.Email+" "+n.Key.Fingerprint
		}
		seen[n.Email] = true
		p := &fanout.Personal{Kind: KindNotice, Ref: ref, Envelope: from,
			From:    mail.Address{Name: m.Info.Name, Address: from},
			To:      mail.Address{Name: n.Name, Address: n.Email},
			Subject: c.Subject, OuterSubject: outer, Date: now,
			MessageID: c.MessageID(rcpt) + "@" + from[strings.LastIndexByte(from, '@')+1:],
			Parts:     []pgpmime.Part{{ContentType: "text/plain", Body: []byte(noticeBody(m.Info, from, c, n, now))}},
			Extra:     []pgpmime.Field{{Key: "Auto-Submitted", Value: "auto-generated"}}}
		msg, err := p.Message(m.Secret, pub)
		if err != nil {
			if keys.Unusable(err) {
				skipped = append(skipped, Skipped{Email: n.Email, Reason: keys.Reason(err)})
				continue
			}
			return nil, nil, nil, err
		}
		msgs = append(msgs, msg)
		sent = append(sent, n.Email)
	}
	return msgs, sent, skipped, nil
}

// noticeBody tells a contact about the changes that concern it: what
// changed, what was asked for and waits (with how to stop it), what
// became of changes that waited.
func noticeBody(info directory.Info, from string, c Change, n *Notice, now time.Time) string {
	var b strings.Builder
	what := "a change made by"
	if len(n.Lines) == 0 && len(n.Asked) > 0 {
		what = "a change asked for by"
	}
	fmt.Fprintf(&b, "%s: %s %s\n\n", info.Name, what, c.Via)
	fmt.Fprintf(&b, "At %s, %s\n", now.UTC().Format("2006-01-02 15:04:05 UTC"), c.By)
	sections := []struct {
		head  string
		lines []string
	}{
		{"changed the directory", n.Lines},
		{"asked for changes that wait before they take effect", n.Asked},
		{"decided on changes that waited", n.Decided},
	}
	first := true
	for _, s := range sections {
		if len(s.lines) == 0 {
			continue
		}
		if !first {
			b.WriteString("\nand ")
		}
		first = false
		fmt.Fprintf(&b, "%s:\n\n", s.head)
		for _, l := range s.lines {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	for _, p := range n.Waiting {
		fmt.Fprintf(&b, "\nChange %s takes effect at %s unless it is stopped\nbefore.", p.ID, p.Due.UTC().Format(timeFormat))
		if p.NeedsProof() {
			b.WriteString(" It also needs the holder of the new key to answer the\nchallenge sent encrypted to it; unanswered, the change expires.")
		}
		tlds := "its ccTLD"
		if t := n.vetoTLDs[p.ID]; len(t) > 0 {
			tlds = strings.Join(displayAll(t), ", ")
		}
		if strings.EqualFold(n.Key.Fingerprint, p.Fingerprint) {
			// The contact itself, at the key the change replaces or keeps.
			fmt.Fprintf(&b, "\nTo stop it, send %s a mail signed by your registered\nkey containing the line\n\n  VETO %s\n\nAny admin contact of %s may veto it too, and the operator can\ncancel it.\n", from, p.ID, tlds)
			continue
		}
		// Anyone else told: only an admin contact of its ccTLDs may veto
		// (mailcmd's authorize refuses the others).
		fmt.Fprintf(&b, "\nIf you are an admin contact of %s, you may stop it: send\n%s a mail signed by your registered key containing the line\n\n  VETO %s\n\nThe contact's registered key may veto it too, and the operator can\ncancel it.\n", tlds, from, p.ID)
	}
	fmt.Fprintf(&b, "\nYou get this notice because the change concerns you or a ccTLD you\nare a contact of. If it was not expected, tell the directory's\noperator at once.\n\nDirectory serial %d, head %s.\n", c.Head.Serial, c.Head.Hash)
	fmt.Fprintf(&b, "\n-- \n%s <%s>\nDirectory key %s\n", info.Name, from, info.KeyFingerprint)
	return b.String()
}

// Describe lists what differs between two states of a contact: each
// detail of directory.ContactFields, then the key and the roles. It is
// the one wording of a change, in notices and replies alike.
func Describe(a, b *directory.Contact) []string {
	var out []string
	for _, f := range directory.DetailFields() {
		ta, tb := f.Text(a), f.Text(b)
		if ta == tb {
			continue
		}
		if f.Quoted {
			out = append(out, fmt.Sprintf("%s changed from %q to %q", f.Label, ta, tb))
		} else {
			out = append(out, fmt.Sprintf("%s changed from %s to %s", f.Label, ta, tb))
		}
	}
	if ka, kb := KeyText(a.Key), KeyText(b.Key); ka != kb {
		out = append(out, fmt.Sprintf("key changed from %s to %s", ka, kb))
	}
	if ra, rb := RoleText(a), RoleText(b); ra != rb {
		out = append(out, fmt.Sprintf("roles changed from %s to %s", ra, rb))
	}
	if len(out) == 0 {
		out = append(out, "no visible change")
	}
	return out
}

// KeyText is a key as a change names it: its fingerprint and expiry.
func KeyText(k *directory.Key) string {
	if k == nil {
		return "none"
	}
	exp := "never expires"
	if t, ok := k.ExpiresAt(); ok {
		exp = "expires " + t.UTC().Format(time.DateOnly)
	}
	return fmt.Sprintf("%s (%s)", k.Fingerprint, exp)
}

// RoleText is a contact's roles as a change names them.
func RoleText(c *directory.Contact) string {
	if c == nil || len(c.Roles) == 0 {
		return "none"
	}
	s := make([]string, len(c.Roles))
	for i, r := range c.Roles {
		s[i] = display(r.TLD) + " " + r.Role
	}
	return strings.Join(s, ", ")
}

// RoleTLDs returns the ccTLDs of a and b (either may be nil), sorted,
// without duplicates: the ccTLDs a change of a contact concerns.
func RoleTLDs(a, b *directory.Contact) []string {
	var out []string
	for _, c := range []*directory.Contact{a, b} {
		if c == nil {
			continue
		}
		for _, r := range c.Roles {
			if !slices.Contains(out, r.TLD) {
				out = append(out, r.TLD)
			}
		}
	}
	slices.Sort(out)
	return out
}
