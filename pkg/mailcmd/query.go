package mailcmd

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/relay"
)

func (r *run) list() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ccTLDs (serial %d):\n", len(r.view.Members), r.view.Head.Serial)
	for _, m := range r.view.Members {
		n := len(r.view.ContactsOf(m.TLD))
		status := ""
		if m.Status != directory.StatusActive {
			status = " [" + m.Status + "]"
		}
		fmt.Fprintf(&b, "  %-12s %-12s %s%s\n", display(m.TLD), plural(n, "contact", "contacts"), Echo(m.Org), status)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// show writes the member and its contacts as the digest text shows them.
func (r *run) show(tld string) (string, error) {
	m := r.member(tld)
	if m == nil {
		return "", refuse("%s is not a member of the directory; send LIST for the members", display(tld))
	}
	sub := &directory.Snapshot{Info: r.view.Info, Head: r.view.Head, Time: r.view.Time,
		Members: []directory.Member{*m}, Contacts: r.view.ContactsOf(tld)}
	var b bytes.Buffer
	if err := export.WriteText(&b, sub); err != nil {
		return "", err
	}
	// Last confirmed is operational (the pings table), not signed state:
	// a section of its own after the entries.
	conf, err := liveness.Confirmed(r.ctx, r.tx.SQL(), sub.Contacts)
	if err != nil {
		return "", err
	}
	if len(sub.Contacts) > 0 {
		b.WriteString("\nReachability (operational, not part of the signed directory):\n")
		for _, c := range sub.Contacts {
			t := conf[c.Email]
			fmt.Fprintf(&b, "  %s <%s>: %s\n", Echo(c.Name), c.Email, liveness.ConfirmedText(t, r.cfg.PingInterval, r.now))
		}
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// search finds members and contacts whose ccTLD, organisation, name or
// email contain q, case-insensitively.
func (r *run) search(q string) string {
	needle := strings.ToLower(q)
	match := func(ss ...string) bool {
		for _, s := range ss {
			if strings.Contains(strings.ToLower(s), needle) {
				return true
			}
		}
		return false
	}
	var hits []string
	for _, m := range r.view.Members {
		t, _ := directory.LookupCCTLD(m.TLD)
		if match(m.TLD, t.Unicode, m.Org, t.Name) {
			hits = append(hits, fmt.Sprintf("ccTLD %s: %s (%s)", display(m.TLD), Echo(m.Org), plural(len(r.view.ContactsOf(m.TLD)), "contact", "contacts")))
		}
	}
	for _, c := range r.view.Contacts {
		hay := []string{c.Name, c.Email}
		for _, role := range c.Roles {
			hay = append(hay, role.TLD)
			if m := r.member(role.TLD); m != nil {
				hay = append(hay, m.Org)
			}
		}
		if match(hay...) {
			hits = append(hits, fmt.Sprintf("contact %s <%s>: %s", Echo(c.Name), c.Email, liveness.RoleText(&c)))
		}
	}
	if len(hits) == 0 {
		return fmt.Sprintf("nothing matches %q", q)
	}
	more := ""
	if len(hits) > maxSearchHits {
		more = fmt.Sprintf("\n... and %d more; give a longer text", len(hits)-maxSearchHits)
		hits = hits[:maxSearchHits]
	}
	return fmt.Sprintf("%s for %q:\n  %s%s", plural(len(hits), "match", "matches"), q, strings.Join(hits, "\n  "), more)
}

// key attaches a contact's armored key.
func (r *run) key(c *Command) (string, error) {
	var ct *directory.Contact
	if c.Email != "" {
		ct = r.find(c.Email)
		if ct == nil {
			return "", refuse("no contact with email %s", c.Email)
		}
	} else {
		for i := range r.view.Contacts {
			if k := r.view.Contacts[i].Key; k != nil && k.Fingerprint == c.Fingerprint {
				ct = &r.view.Contacts[i]
			}
		}
		if ct == nil {
			return "", refuse("no contact has key %s", c.Fingerprint)
		}
	}
	if ct.Key == nil {
		return "", refuse("%s has no key in the directory", ct.Email)
	}
	if len(r.parts) >= maxKeysPerReply {
		return "", refuse("at most %d keys per reply; ask for the others in another mail", maxKeysPerReply)
	}
	name := ct.Email + ".asc"
	for _, p := range r.parts {
		if p.Filename == name {
			return fmt.Sprintf("%s <%s>: key %s, attached as %s (above)", Echo(ct.Name), ct.Email, ct.Key.Fingerprint, name), nil
		}
	}
	r.parts = append(r.parts, pgpmime.Part{ContentType: "application/pgp-keys", Filename: name, Body: []byte(ct.Key.Armored)})
	return fmt.Sprintf("%s <%s>: key %s, attached as %s", Echo(ct.Name), ct.Email, liveness.KeyText(ct.Key), name), nil
}

func (r *run) whoami() string {
	me := r.self()
	var b strings.Builder
	field := func(label, value string) { fmt.Fprintf(&b, "%-13s%s\n", label+":", value) }
	field("Name", Echo(me.Name))
	field("Email", me.Email)
	field("Roles", liveness.RoleText(me))
	for i, p := range me.Phones {
		label := ""
		if i == 0 {
			label = "Phones"
		}
		v := p.Number
		if p.Emergency {
			v += " (emergency)"
		}
		if label == "" {
			fmt.Fprintf(&b, "%13s%s\n", "", v)
		} else {
			field(label, v)
		}
	}
	field("24x7", yesNo(me.Always))
	field("Languages", orNone(strings.Join(me.Languages, ", ")))
	field("Time zone", orNone(me.TimeZone))
	if me.Key != nil {
		field("Key", me.Key.Fingerprint)
		exp := "never"
		if t, ok := keyEnd(me.Key, r.now); ok {
			exp = t.UTC().Format(time.DateOnly)
			if !t.After(r.now) {
				exp += " (expired)"
			}
		}
		field("Key expires", exp)
	} else {
		field("Key", "none")
	}
	// The signed entry's Confirmed field is the time of its last ledger
	// change; the last answer to a reachability check is SHOW's.
	field("Changed", orNone(me.Confirmed))
	return strings.TrimSuffix(b.String(), "\n")
}

// keyEnd is when k stops working, as read at now: the earliest of its
// primary key's expiry and the latest expiries of its encryption- and
// signing-capable keys (keys.Public.UsableUntil), not the primary key's
// alone that the directory records; false: never. A key that cannot be
// read gives its recorded expiry.
func keyEnd(k *directory.Key, now time.Time) (time.Time, bool) {
	pub, err := keys.ParsePublicOne([]byte(k.Armored))
	if err != nil {
		return k.ExpiresAt()
	}
	t := pub.UsableUntil(now)
	return t, !t.IsZero()
}

// Callee is a contact ranked by CALL.
type Callee struct {
	Contact directory.Contact
	Always  bool      // reachable 24x7
	Working bool      // working hours (08–18, Monday to Friday) in its time zone
	Local   time.Time // its local time; zero if it gave no time zone
	Shared  []string  // languages it shares with the asker (primary subtags)
	// Confirmed is its last accepted PONG (liveness.Confirmed); zero if
	// never. Fresh: within the ping interval.
	Confirmed time.Time
	Fresh     bool
}

// confirmation ranks a callee's last confirmation: fresh, stale, never.
func (c Callee) confirmation() int {
	switch {
	case c.Fresh:
		return 0
	case !c.Confirmed.IsZero():
		return 1
	}
	return 2
}

// Rank orders the contacts of a ccTLD for a call at now: 24x7 first, then
// those in their working hours, then by the number of languages shared
// with languages (the asker's), then security before admin, then those
// confirmed (confirmed: last PONG by email, liveness.Confirmed) within
// interval, then those confirmed longer ago, then those never confirmed,
// then by name.
func Rank(contacts []directory.Contact, tld string, languages []string, confirmed map[string]time.Time, interval time.Duration, now time.Time) []Callee {
	out := make([]Callee, len(contacts))
	for i, c := range contacts {
		cl := Callee{Contact: c, Always: c.Always, Confirmed: confirmed[c.Email]}
		cl.Fresh = liveness.Fresh(cl.Confirmed, interval, now)
		if c.TimeZone != "" {
			if loc, err := time.LoadLocation(c.TimeZone); err == nil {
				cl.Local = now.In(loc)
				wd, h := cl.Local.Weekday(), cl.Local.Hour()
				cl.Working = wd >= time.Monday && wd <= time.Friday && h >= 8 && h < 18
			}
		}
		for _, l := range c.Languages {
			p := primary(l)
			if slices.ContainsFunc(languages, func(x string) bool { return primary(x) == p }) && !slices.Contains(cl.Shared, p) {
				cl.Shared = append(cl.Shared, p)
			}
		}
		out[i] = cl
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	slices.SortStableFunc(out, func(a, b Callee) int {
		if d := b2i(b.Always) - b2i(a.Always); d != 0 {
			return d
		}
		if d := b2i(b.Working) - b2i(a.Working); d != 0 {
			return d
		}
		if d := len(b.Shared) - len(a.Shared); d != 0 {
			return d
		}
		ra, rb := a.Contact.RoleFor(tld) == directory.RoleSecurity, b.Contact.RoleFor(tld) == directory.RoleSecurity
		if d := b2i(rb) - b2i(ra); d != 0 {
			return d
		}
		if d := a.confirmation() - b.confirmation(); d != 0 {
			return d
		}
		return strings.Compare(a.Contact.Name, b.Contact.Name)
	})
	return out
}

func primary(tag string) string {
	p, _, _ := strings.Cut(strings.ToLower(tag), "-")
	return p
}

func (r *run) call(tld string) (string, error) {
	if r.member(tld) == nil {
		return "", refuse("%s is not a member of the directory; send LIST for the members", display(tld))
	}
	cs := r.view.ContactsOf(tld)
	if len(cs) == 0 {
		return fmt.Sprintf("%s has no contacts", display(tld)), nil
	}
	conf, err := liveness.Confirmed(r.ctx, r.tx.SQL(), cs)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Who to call at %s now (%s), best first:\n", display(tld), r.now.Format("Mon 2006-01-02 15:04 UTC"))
	for i, cl := range Rank(cs, tld, r.self().Languages, conf, r.cfg.PingInterval, r.now) {
		c := cl.Contact
		fmt.Fprintf(&b, "\n%d. %s <%s>, %s\n", i+1, Echo(c.Name), c.Email, c.RoleFor(tld))
		var why []string
		if cl.Always {
			why = append(why, "24x7")
		}
		switch {
		case cl.Local.IsZero():
			why = append(why, "local time unknown (no time zone given)")
		case cl.Working:
			why = append(why, fmt.Sprintf("local time %s %s, working hours", cl.Local.Format("Mon 15:04"), c.TimeZone))
		default:
			why = append(why, fmt.Sprintf("local time %s %s, outside working hours", cl.Local.Format("Mon 15:04"), c.TimeZone))
		}
		if len(cl.Shared) > 0 {
			why = append(why, "speaks "+strings.Join(cl.Shared, ", ")+" like you")
		} else if len(c.Languages) > 0 {
			why = append(why, "languages "+strings.Join(c.Languages, ", "))
		}
		fmt.Fprintf(&b, "   %s\n", strings.Join(why, "; "))
		fmt.Fprintf(&b, "   %s\n", liveness.ConfirmedText(cl.Confirmed, r.cfg.PingInterval, r.now))
		phones := slices.Clone(c.Phones)
		slices.SortStableFunc(phones, func(a, b directory.Phone) int { return b2int(b.Emergency) - b2int(a.Emergency) })
		for _, p := range phones {
			label := "phone"
			if p.Emergency {
				label = "emergency"
			}
			fmt.Fprintf(&b, "   %-10s %s\n", label+":", p.Number)
		}
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

func b2int(b bool) int {
	if b {
		return 1
	}
	return 0
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// ack records the sender's acknowledgement of a list alert.
func (r *run) ack(c *Command) (string, error) {
	res, err := relay.Ack(r.ctx, r.tx.SQL(), c.Alert, r.email, r.now)
	if errors.Is(err, relay.ErrUnknownAlert) {
		return "", refuse("no alert %s was sent to you", c.Alert)
	}
	if err != nil {
		return "", err
	}
	if res.Already {
		return fmt.Sprintf("alert %s: you acknowledged it already, at %s", res.Alert, res.At.Format("2006-01-02 15:04 UTC")), nil
	}
	return fmt.Sprintf("alert %s: acknowledged; its author can see that your ccTLD has", res.Alert), nil
}

// acks tells the author of an alert which ccTLDs acknowledged it.
func (r *run) acks(c *Command) (string, error) {
	a, err := relay.AckStatus(r.ctx, r.tx.SQL(), c.Alert, r.email)
	switch {
	case errors.Is(err, relay.ErrUnknownAlert):
		return "", refuse("there is no alert %s", c.Alert)
	case errors.Is(err, relay.ErrNotAuthor):
		return "", refuse("only the author of alert %s can ask who acknowledged it", c.Alert)
	case err != nil:
		return "", err
	}
	return a.Report(), nil
}

// pong answers a reachability check: the token must be of a challenge
// sent to the sender's address and key, unanswered and unexpired
// (liveness.Pong). It writes the pings table only, no ledger entry;
// refused, it changes nothing.
func (r *run) pong(c *Command) (string, error) {
	me := r.self()
	a, err := liveness.Pong(r.ctx, r.tx.SQL(), me.Email, r.a.Key.Fingerprint, c.Token, r.now)
	var pe *liveness.PongError
	if errors.As(err, &pe) {
		switch pe.Err {
		case liveness.ErrTokenNotYours:
			return "", refuse("not confirmed: this token was not sent to you (%s, key %s)", me.Email, r.a.Key.Fingerprint)
		case liveness.ErrTokenUsed:
			return "", refuse("not confirmed: this token was used already, at %s; each token works once", pe.At.Format("2006-01-02 15:04 UTC"))
		case liveness.ErrTokenExpired:
			return "", refuse("not confirmed: this token expired at %s; the next daily check sends you a new one", pe.At.Format("2006-01-02 15:04 UTC"))
		}
		return "", refuse("not confirmed: no check has this token; copy the PONG line exactly from the latest check you got")
	}
	if err != nil {
		return "", err
	}
	verb := "confirmed"
	if r.dry {
		verb = "would be confirmed"
	}
	return fmt.Sprintf("%s: your answer to the check of %s shows that your mailbox receives and your key decrypts and signs; last confirmed %s",
		verb, a.Sent.Format("2006-01-02"), a.Answered.Format("2006-01-02 15:04 UTC")), nil
}
