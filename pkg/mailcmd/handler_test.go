package mailcmd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

func TestQueries(t *testing.T) {
	f := newFixture(t)
	bob := f.members["bob@dns.pt"]
	tests := []struct {
		text string
		want []string
	}{
		{"HELP", []string{"DIRECTORY " + dirAddress, "SET EMERGENCY-PHONE", "ADD-CONTACT <tld> <email> <phone> <name...>"}},
		{"LIST", []string{"3 ccTLDs", "pt           3 contacts   Associação DNS.PT", "br           1 contact    NIC.br"}},
		{"SHOW pt", []string{"pt  Associação DNS.PT", "Alice Silva <alice@dns.pt>", "+351912345678 (emergency)", "Time zone:   America/New_York", "\nReachability (operational, not part of the signed directory):\n", "  Alice Silva <alice@dns.pt>: last confirmed: never (has not answered a reachability check)"}},
		{"SEARCH DENIC", []string{"ccTLD de: DENIC eG", "contact Erin Weber <erin@denic.de>: de security"}},
		{"SEARCH silva", []string{"1 match", "alice@dns.pt"}},
		{"WHOAMI", []string{"Name:        Bob Costa", "Roles:       pt admin", "+351912345678 (emergency)", "Key:         " + bob.secret.Fingerprint(), "Key expires: never"}},
		{"CALL pt", []string{"Who to call at pt now", "1. Dave Noc <noc@dns.pt>, security", "24x7"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			res := f.handle(f.accepted("bob@dns.pt", "DIRECTORY "+dirAddress+"\n"+tt.text+"\n"))
			if !res.Replied || res.Failed || len(res.Entries) != 0 {
				t.Fatalf("result %+v", res)
			}
			r := f.reply("bob@dns.pt")
			mustContain(t, r.text, append([]string{"> " + tt.text}, tt.want...)...)
			if r.inner.Protected.Subject != "Re: your commands" { // the outer Subject is not signed
				t.Errorf("protected subject %q", r.inner.Protected.Subject)
			}
			mustContain(t, r.outer, "Subject: Encrypted message", "Auto-Submitted: auto-replied", "In-Reply-To: <cmd", "References: <cmd", "To: \"Bob Costa\" <bob@dns.pt>")
		})
	}
}

func TestKeyAttachment(t *testing.T) {
	f := newFixture(t)
	erin := f.members["erin@denic.de"]
	res := f.handle(f.accepted("alice@dns.pt", "KEY erin@denic.de\nKEY "+f.members["carol@registro.br"].secret.Fingerprint()+"\n"))
	if !res.Replied {
		t.Fatalf("%+v", res)
	}
	r := f.reply("alice@dns.pt")
	if len(r.inner.Parts) != 3 {
		t.Fatalf("%d parts", len(r.inner.Parts))
	}
	p := r.inner.Parts[1]
	if p.ContentType != "application/pgp-keys" || p.Filename != "erin@denic.de.asc" {
		t.Fatalf("part %s %s", p.ContentType, p.Filename)
	}
	k, err := keys.ParsePublicOne(p.Body)
	if err != nil || k.Fingerprint != erin.secret.Fingerprint() {
		t.Fatalf("attached key %v %v", k, err)
	}
	if r.inner.Parts[2].Filename != "carol@registro.br.asc" {
		t.Errorf("second key %s", r.inner.Parts[2].Filename)
	}
}

func TestSetChanges(t *testing.T) {
	f := newFixture(t)
	before := f.serial()
	a := f.accepted("alice@dns.pt", "SET NAME Alice M. Silva\nSET PHONE +351 21 314 1599\nSET EMERGENCY-PHONE +351 91 234 5679\nSET 24X7 yes\nSET LANGUAGES pt, en, fr\nWHOAMI\n")
	res := f.handle(a)
	if res.Failed || !res.Replied || len(res.Entries) != 5 {
		t.Fatalf("result %+v", res)
	}
	for _, r := range res.Results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Command.Text, r.Err)
		}
	}
	if f.serial() != before+5 {
		t.Fatalf("serial %d, want %d", f.serial(), before+5)
	}
	var n int
	err := f.store.Log(f.ctx, before+1, func(e *directory.Entry) error {
		n++
		if e.Actor != "member:"+f.members["alice@dns.pt"].secret.Fingerprint() || string(e.Evidence) != string(a.Raw) {
			t.Errorf("entry %d: actor %s, evidence %q", e.Seq, e.Actor, e.Evidence)
		}
		return nil
	})
	if err != nil || n != 5 {
		t.Fatalf("log: %d entries, %v", n, err)
	}
	c, _ := f.store.Contact(f.ctx, "alice@dns.pt")
	if c.Name != "Alice M. Silva" || !c.Always || len(c.Phones) != 2 || !c.Phones[0].Emergency || c.Phones[1].Number != "+351213141599" {
		t.Fatalf("contact %+v", c)
	}
	// The reply, with the WHOAMI after the changes.
	r := f.reply("alice@dns.pt")
	mustContain(t, r.text, "done: name changed from \"Alice Silva\" to \"Alice M. Silva\"", "Name:        Alice M. Silva",
		"A notice of the changes goes to: noc@dns.pt, bob@dns.pt.")
	// Notices to the other contacts of pt, not to the sender (its reply
	// says it all), nor to other ccTLDs.
	if len(res.Notified) != 2 || f.count(KindNotify) != 2 {
		t.Fatalf("notified %v", res.Notified)
	}
	for _, who := range []string{"bob@dns.pt", "noc@dns.pt"} {
		bs := f.bodies(KindNotify, who)
		if len(bs) != 1 {
			t.Fatalf("%d notices to %s", len(bs), who)
		}
		o := f.open(bs[0], f.members[who].secret)
		mustContain(t, o.text, "signed by Alice Silva <alice@dns.pt>", "alice@dns.pt (pt): phones changed from +351213141599 to +351912345679 (emergency), +351213141599",
			"alice@dns.pt (pt): 24x7 changed from no to yes")
		mustContain(t, o.outer, "Auto-Submitted: auto-generated")
	}
	// Unchanged values write nothing.
	res = f.handle(f.accepted("alice@dns.pt", "SET 24X7 yes\n"))
	if len(res.Entries) != 0 || !strings.Contains(res.Results[0].Text, "unchanged") {
		t.Fatalf("%+v", res)
	}
}

func TestPhoneKeepsOne(t *testing.T) {
	f := newFixture(t)
	before := f.serial()
	res := f.handle(f.accepted("alice@dns.pt", "WHOAMI\nSET PHONE none\nHELP\n"))
	if !res.Failed || f.serial() != before || !res.Results[2].Skipped {
		t.Fatalf("%+v", res)
	}
	r := f.reply("alice@dns.pt")
	mustContain(t, r.text, "A command failed, so no change", "FAILED: a contact needs at least one phone number", "not run: an earlier command failed")
	if f.count(KindNotify) != 0 {
		t.Fatal("notice sent for a failed mail")
	}
}

func TestUnknownCommandRunsNothing(t *testing.T) {
	f := newFixture(t)
	before := f.serial()
	res := f.handle(f.accepted("alice@dns.pt", "SET NAME Mallory\nFROBNICATE now\nSET 24X7 maybe\n"))
	if len(res.ParseErrors) != 2 || len(res.Results) != 0 || f.serial() != before {
		t.Fatalf("%+v", res)
	}
	r := f.reply("alice@dns.pt")
	mustContain(t, r.text, "No command of your mail was run", `line 2: "FROBNICATE now": unknown command FROBNICATE`, `line 3: "SET 24X7 maybe": SET 24X7 takes yes or no`)
	if strings.Contains(r.text, "Mallory") && !strings.Contains(r.text, "line 1") {
		t.Log(r.text)
	}
	if c, _ := f.store.Contact(f.ctx, "alice@dns.pt"); c.Name != "Alice Silva" {
		t.Fatalf("name changed to %q", c.Name)
	}
}

func TestNoCommands(t *testing.T) {
	f := newFixture(t)
	res := f.handle(f.accepted("alice@dns.pt", "\n\n-- \nAlice\n"))
	if !res.Replied {
		t.Fatal(res)
	}
	mustContain(t, f.reply("alice@dns.pt").text, "Your mail holds no command", "DIRECTORY "+dirAddress)
}

func TestDryRun(t *testing.T) {
	f := newFixture(t)
	before := f.serial()
	res := f.handle(f.accepted("alice@dns.pt", "DRY-RUN\nSET NAME Alice Two\nWHOAMI\nDIGEST\n"))
	if !res.DryRun || !res.Replied || len(res.Entries) != 0 || f.serial() != before {
		t.Fatalf("%+v", res)
	}
	if f.count(KindNotify) != 0 || f.count(KindDigestRequest) != 0 {
		t.Fatal("a dry run sent notices or a digest")
	}
	r := f.reply("alice@dns.pt")
	mustContain(t, r.text, "DRY-RUN: nothing was changed", `would do: name changed from "Alice Silva" to "Alice Two"`,
		"Name:        Alice Two", "the current digest would be sent", "A notice of the changes would go to: noc@dns.pt, bob@dns.pt.")
	// The mail is still seen.
	_, err := f.h.Handle(f.ctx, f.accepted("alice@dns.pt", "DRY-RUN\nSET NAME Alice Two\n"))
	if err != nil {
		t.Fatal(err)
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t)
	a := f.accepted("alice@dns.pt", "SET NAME Alice Once\n")
	f.handle(a)
	serial, replies := f.serial(), f.count(KindReply)
	b := *a
	b.Text = "SET NAME Alice Twice\n"
	res, err := f.h.Handle(f.ctx, &b)
	if !errors.Is(err, inbound.ErrReplay) || res != nil {
		t.Fatalf("replay: %v, %+v", err, res)
	}
	if f.serial() != serial || f.count(KindReply) != replies {
		t.Fatal("a replay changed something")
	}
	// A replayed mail with a bad command is refused too.
	b.Text = "FROB\n"
	if _, err := f.h.Handle(f.ctx, &b); !errors.Is(err, inbound.ErrReplay) {
		t.Fatalf("replay of a bad mail: %v", err)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t)
	f.h.Config.RepliesPerHour = 3
	for i := range 3 {
		if res := f.handle(f.accepted("alice@dns.pt", "HELP\n")); !res.Replied {
			t.Fatalf("reply %d not sent", i)
		}
		f.advance(time.Minute)
	}
	res := f.handle(f.accepted("alice@dns.pt", "SET 24X7 yes\n"))
	if res.Replied || !res.RateLimited || len(res.Entries) != 1 {
		t.Fatalf("%+v", res)
	}
	// The change still ran and was announced; the sender's previous
	// address and key get the notice, since no reply tells it.
	if !strings.Contains(strings.Join(res.Notified, ","), "alice@dns.pt") {
		t.Errorf("notified %v", res.Notified)
	}
	if f.count(KindReply) != 3 {
		t.Fatalf("%d replies", f.count(KindReply))
	}
	f.advance(time.Hour)
	if res := f.handle(f.accepted("alice@dns.pt", "HELP\n")); !res.Replied {
		t.Fatal("no reply after the window")
	}
}

func TestAdminCommands(t *testing.T) {
	f := newFixture(t)
	newKey := keystest.NewSecret(t, "New Person", "new@dns.pt")
	newKey.SetClock(f.now)
	armored, err := newKey.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	att := pgpmime.Part{ContentType: "application/pgp-keys", Filename: "new.asc", Body: armored}

	// Not an admin of pt.
	before := f.serial()
	res := f.handle(f.accepted("alice@dns.pt", "ADD-CONTACT pt new@dns.pt +351213141599 New Person\n", att))
	if !res.Failed || f.serial() != before {
		t.Fatalf("%+v", res)
	}
	mustContain(t, f.reply("alice@dns.pt").text, "FAILED: only an admin contact of pt may add its contacts")
	// Carol is admin of br, not pt.
	res = f.handle(f.accepted("carol@registro.br", "REMOVE-CONTACT pt noc@dns.pt\n"))
	if !res.Failed || f.serial() != before {
		t.Fatalf("%+v", res)
	}

	// Bob is admin of pt.
	res = f.handle(f.accepted("bob@dns.pt", "ADD-CONTACT pt new@dns.pt +351213141599 New Person\nSHOW pt\n", att))
	if res.Failed || len(res.Entries) != 1 {
		t.Fatalf("%+v %v", res, res.Results[0].Err)
	}
	c, err := f.store.Contact(f.ctx, "new@dns.pt")
	if err != nil || c.Key.Fingerprint != newKey.Fingerprint() || c.RoleFor("pt") != "security" {
		t.Fatalf("%+v %v", c, err)
	}
	mustContain(t, f.reply("bob@dns.pt").text, "done: bob@dns.pt added New Person <new@dns.pt>", "New Person <new@dns.pt>")
	// The new contact and the others of pt are told.
	for _, who := range []string{"alice@dns.pt", "noc@dns.pt"} {
		if len(f.bodies(KindNotify, who)) != 1 {
			t.Errorf("no notice to %s", who)
		}
	}
	o := f.open(f.bodies(KindNotify, "new@dns.pt")[0], newKey)
	mustContain(t, o.text, "new@dns.pt (pt): bob@dns.pt added New Person")

	// Remove it again: it had no other role, so it is gone; it is told at
	// its address and key.
	res = f.handle(f.accepted("bob@dns.pt", "REMOVE-CONTACT pt new@dns.pt\n"))
	if res.Failed || len(res.Entries) != 1 {
		t.Fatalf("%+v", res)
	}
	if _, err := f.store.Contact(f.ctx, "new@dns.pt"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("contact still there: %v", err)
	}
	bs := f.bodies(KindNotify, "new@dns.pt")
	if len(bs) != 2 {
		t.Fatalf("%d notices to the removed contact", len(bs))
	}
	mustContain(t, f.open(bs[1], newKey).text, "removed New Person <new@dns.pt> from pt and from the directory")

	// Nobody removes himself by mail.
	res = f.handle(f.accepted("bob@dns.pt", "REMOVE-CONTACT pt bob@dns.pt\n"))
	if !res.Failed {
		t.Fatal("self-removal ran")
	}
}

func TestKeyRotateGPG(t *testing.T) {
	f := newFixture(t)
	g := keystest.GPG(t)
	fpr := g.GenKeyAt(fixedNow.Add(-24*time.Hour), "Alice Silva <alice@dns.pt>", "future-default", "default", "2y")
	newPub := g.ExportPublic(fpr)
	sec, err := keys.ReadSecretFile(g.WriteFile("alice-new.sec", g.ExportSecret(fpr)), nil)
	if err != nil {
		t.Fatal(err)
	}
	sec.SetClock(f.now)
	oldKey := f.members["alice@dns.pt"].secret

	// No key attached: refused.
	if res := f.handle(f.accepted("alice@dns.pt", "KEY-ROTATE\n")); !res.Failed {
		t.Fatal("rotation without a key ran")
	}
	// The current key again: refused.
	cur, _ := oldKey.Public().Armored()
	if res := f.handle(f.accepted("alice@dns.pt", "KEY-ROTATE\n", pgpmime.Part{ContentType: "application/pgp-keys", Body: cur})); !res.Failed {
		t.Fatal("rotation to the same key ran")
	}

	// Signed by the old key alone: the new key is not proven, nothing
	// changes; the change is pending (TestKeyRotatePending). Vetoed here.
	att := pgpmime.Part{ContentType: "application/octet-stream", Filename: "alice-2026.asc", Body: newPub}
	veto := func(res *Result) {
		t.Helper()
		if len(res.Pending) != 1 {
			t.Fatalf("not pending: %+v", res)
		}
		if res := f.handle(f.accepted("alice@dns.pt", "VETO "+res.Pending[0]+"\n")); res.Failed {
			t.Fatal(res.Results[0].Err)
		}
	}
	res := f.handle(f.accepted("alice@dns.pt", "KEY-ROTATE\n", att))
	if len(res.Entries) != 0 {
		t.Fatal("rotation signed by the old key alone took effect")
	}
	veto(res)
	// A signature by the new key that does not verify proves nothing.
	bad := f.accepted("alice@dns.pt", "KEY-ROTATE\n", att)
	bad.Signatures = append(bad.Signatures, inbound.Signature{Issuer: fpr, Fingerprint: fpr, Attached: true, Err: errors.New("bad signature")})
	res = f.handle(bad)
	if len(res.Entries) != 0 {
		t.Fatal("rotation with a bad signature by the new key took effect")
	}
	veto(res)
	serial := f.serial()
	notices := len(f.bodies(KindNotify, "alice@dns.pt"))

	// Signed by both: at once.
	a := f.signedToo(f.accepted("alice@dns.pt", "KEY-ROTATE\nWHOAMI\n", att), fpr)
	res = f.handle(a)
	if res.Failed || len(res.Entries) != 1 || len(res.Pending) != 0 || f.serial() != serial+1 {
		t.Fatalf("%+v %v", res, res.Results[0].Err)
	}
	c, _ := f.store.Contact(f.ctx, "alice@dns.pt")
	if c.Key.Fingerprint != fpr {
		t.Fatalf("key %s, want %s", c.Key.Fingerprint, fpr)
	}
	// The reply goes to the new key.
	bs := f.bodies(KindReply, "alice@dns.pt")
	r := f.open(bs[len(bs)-1], sec)
	mustContain(t, r.text, "done: key changed from "+oldKey.Fingerprint()+" (never expires) to "+fpr, "Key:         "+fpr)
	// The old key gets the notice.
	ns := f.bodies(KindNotify, "alice@dns.pt")
	if len(ns) != notices+1 {
		t.Fatalf("%d notices to alice", len(ns)-notices)
	}
	mustContain(t, f.open(ns[notices], oldKey).text, "alice@dns.pt (pt): key changed from "+oldKey.Fingerprint())
	if n := f.bodies(KindNotify, "bob@dns.pt"); len(n) != 5 {
		t.Errorf("bob got %d notices, want 2 requests, 2 vetoes and the change", len(n))
	}
	// The reply to a mail signed by the new key decrypts with it: the
	// directory now knows Alice by it.
	a2 := f.accepted("alice@dns.pt", "WHOAMI\n")
	if a2.Key.Fingerprint != fpr {
		t.Fatal("fixture read an old key")
	}
	f.handle(a2)
	bs = f.bodies(KindReply, "alice@dns.pt")
	f.open(bs[len(bs)-1], sec)
}

func TestCallRanking(t *testing.T) {
	cs := []directory.Contact{
		{Name: "Lisbon", Email: "l@x.pt", TimeZone: "Europe/Lisbon", Languages: []string{"pt"}, Roles: []directory.Role{{TLD: "pt", Role: "security"}}},
		{Name: "Tokyo", Email: "t@x.pt", TimeZone: "Asia/Tokyo", Languages: []string{"en"}, Roles: []directory.Role{{TLD: "pt", Role: "security"}}},
		{Name: "NOC", Email: "n@x.pt", TimeZone: "America/New_York", Always: true, Roles: []directory.Role{{TLD: "pt", Role: "admin"}}},
		{Name: "Berlin", Email: "b@x.pt", TimeZone: "Europe/Berlin", Languages: []string{"en", "de"}, Roles: []directory.Role{{TLD: "pt", Role: "admin"}}},
		{Name: "Nowhere", Email: "z@x.pt", Roles: []directory.Role{{TLD: "pt", Role: "security"}}},
	}
	names := func(cl []Callee) string {
		s := make([]string, len(cl))
		for i, c := range cl {
			s[i] = c.Contact.Name
		}
		return strings.Join(s, ",")
	}
	tests := []struct {
		now   time.Time
		langs []string
		want  string
	}{
		// Monday 10:00 UTC: Lisbon 10:00 and Berlin 11:00 work, Tokyo 19:00 does not.
		{fixedNow, []string{"en"}, "NOC,Berlin,Lisbon,Tokyo,Nowhere"},
		{fixedNow, []string{"pt-BR"}, "NOC,Lisbon,Berlin,Nowhere,Tokyo"},
		// Monday 01:00 UTC: only Tokyo (10:00) works.
		{fixedNow.Add(-9 * time.Hour), []string{"pt"}, "NOC,Tokyo,Lisbon,Nowhere,Berlin"},
		// Saturday: nobody works; languages decide, then security
		// before admin, then names.
		{fixedNow.Add(-48 * time.Hour), []string{"de"}, "NOC,Berlin,Lisbon,Nowhere,Tokyo"},
	}
	for _, tt := range tests {
		if got := names(Rank(cs, "pt", tt.langs, nil, liveness.DefaultInterval, tt.now)); got != tt.want {
			t.Errorf("%s %v: %s, want %s", tt.now, tt.langs, got, tt.want)
		}
	}

	// Among contacts the other keys rank the same (Saturday, nobody
	// works, no language shared: security before admin), those confirmed
	// within the interval come first, then stale ones, then never; names
	// decide only then.
	sat := fixedNow.Add(-48 * time.Hour)
	conf := map[string]time.Time{
		"t@x.pt": sat.Add(-24 * time.Hour),                       // fresh
		"l@x.pt": sat.Add(-liveness.DefaultInterval - time.Hour), // stale
		"b@x.pt": sat.Add(-time.Hour),                            // fresh
	}
	if got, want := names(Rank(cs, "pt", []string{"fr"}, conf, liveness.DefaultInterval, sat)), "NOC,Tokyo,Lisbon,Nowhere,Berlin"; got != want {
		t.Errorf("confirmed first: %s, want %s", got, want)
	}
	if got, want := names(Rank(cs, "pt", []string{"fr"}, nil, liveness.DefaultInterval, sat)), "NOC,Lisbon,Nowhere,Tokyo,Berlin"; got != want {
		t.Errorf("none confirmed: %s, want %s", got, want)
	}

	// Through the mail: Erin (de, en) asks about pt at 10:00 UTC.
	f := newFixture(t)
	f.handle(f.accepted("erin@denic.de", "CALL pt\n"))
	text := f.reply("erin@denic.de").text
	mustContain(t, text, "1. Dave Noc <noc@dns.pt>, security\n   24x7; local time Mon 05:00 America/New_York, outside working hours; speaks en like you\n   last confirmed: never (has not answered a reachability check)\n   phone:     +351213141518",
		"2. Alice Silva <alice@dns.pt>, security\n   local time Mon 10:00 Europe/Lisbon, working hours; speaks en like you",
		"3. Bob Costa <bob@dns.pt>, admin\n   local time Mon 10:00 Europe/Lisbon, working hours; languages pt\n   last confirmed: never (has not answered a reachability check)\n   emergency: +351912345678\n   phone:     +351213141517")
}

func TestDigestRequest(t *testing.T) {
	f := newFixture(t)
	res := f.handle(f.accepted("carol@registro.br", "DIGEST\n"))
	if !res.DigestQueued || !res.Replied {
		t.Fatalf("%+v", res)
	}
	bs := f.bodies(KindDigestRequest, "carol@registro.br")
	if len(bs) != 1 {
		t.Fatalf("%d digests", len(bs))
	}
	o, err := pgpmime.Open(strings.NewReader(string(bs[0])), f.members["carol@registro.br"].secret, pgpmime.OpenOptions{Now: f.now()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgpmime.Verify(o.Entity, []*keys.Public{f.dir.Public()}, f.now())
	if err != nil {
		t.Fatal(err)
	}
	in, err := pgpmime.ParseInner(v.Signed)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, string(in.Parts[0].Body), "Associação DNS.PT", "carol@registro.br")
}

func TestUnknownSender(t *testing.T) {
	f := newFixture(t)
	a := f.accepted("alice@dns.pt", "HELP\n")
	a.Key = keystest.NewSecret(t, "Mallory", "alice@dns.pt").Public() // not registered (any more)
	_, err := f.h.Handle(context.Background(), a)
	if !errors.Is(err, ErrUnknownSender) {
		t.Fatalf("err %v", err)
	}
}

// A DRY-RUN, or a mail whose command failed, quotes the head the
// directory really has, not the one its rolled-back changes reached,
// and says how many entries it would have made.
func TestDryRunHead(t *testing.T) {
	f := newFixture(t)
	head, err := f.h.Store.Head(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.handle(f.accepted("alice@dns.pt", "DRY-RUN\nSET NAME Alice Two\nSET 24X7 yes\n"))
	r := f.reply("alice@dns.pt")
	mustContain(t, r.text, fmt.Sprintf("Directory serial %d, head %s (unchanged: this mail would add 2 ledger entries).", head.Serial, head.Hash))
	if strings.Contains(r.text, fmt.Sprintf("serial %d,", head.Serial+1)) {
		t.Fatalf("the reply quotes a serial that does not exist:\n%s", r.text)
	}
	f.handle(f.accepted("alice@dns.pt", "SET NAME Alice Three\nSET PHONE none\n"))
	r = f.reply("alice@dns.pt")
	mustContain(t, r.text, fmt.Sprintf("Directory serial %d, head %s (unchanged: nothing of this mail was kept).", head.Serial, head.Hash))
}
