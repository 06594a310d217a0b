package report

import (
	"context"
	"database/sql"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// regKey is a key of name for email, as the directory registers it
// (keystest makes the same key for the same name and email).
func regKey(t *testing.T, name, email string) *directory.Key {
	t.Helper()
	sec := keystest.NewSecret(t, name, email)
	a, err := sec.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	return &directory.Key{Fingerprint: sec.Fingerprint(), Armored: string(a)}
}

// The report lists the guarded changes that wait, whenever they were
// asked for, with who asked, when they are due and whether the new
// key's possession is proven; and the changes decided during its
// period. A waiting change alone is something to say.
func TestCollectPending(t *testing.T) {
	ctx := context.Background()
	s, ob := open(t)
	day := 24 * time.Hour
	anaKey, bobKey := regKey(t, "Ana Silva", "ana@dns.pt"), regKey(t, "Bob Costa", "bob@dns.pt")
	if _, err := s.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		if _, err := tx.AddMember(directory.Member{TLD: "pt", Org: "DNS.PT"}); err != nil {
			return err
		}
		for _, c := range []directory.Contact{
			{Email: "ana@dns.pt", Name: "Ana Silva", Roles: []directory.Role{{TLD: "pt", Role: "security"}}, Phones: []directory.Phone{{Number: "+351213141516"}}, Key: anaKey},
			{Email: "bob@dns.pt", Name: "Bob Costa", Roles: []directory.Role{{TLD: "pt", Role: "admin"}}, Phones: []directory.Phone{{Number: "+351213141517"}}, Key: bobKey},
		} {
			if _, err := tx.AddContact(c); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	contact := func(email string) directory.Contact {
		c, err := s.Contact(ctx, email)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sqlTx := func(fn func(tx *sql.Tx) error) {
		t.Helper()
		tx, err := s.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := fn(tx); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	const rita = "operator:Rita Lopes"
	secret := outbox.NewKey() // the home's outbox key, which authenticates the rows
	propose := func(p *liveness.Pending, at time.Time) string {
		t.Helper()
		c := contact(p.Email)
		p.ContactID, p.Fingerprint, p.Due = c.ID, c.Key.Fingerprint, at.Add(liveness.DefaultDelay)
		if p.Actor == "" {
			p.Actor = rita
		}
		sqlTx(func(tx *sql.Tx) error { return liveness.Propose(ctx, tx, liveness.Auth{Secret: secret}, p, at) })
		return p.ID
	}
	cancel := func(id string, at time.Time) {
		t.Helper()
		sqlTx(func(tx *sql.Tx) error {
			_, err := liveness.Cancel(ctx, tx, liveness.Auth{Secret: secret}, id, rita, at)
			return err
		})
	}

	// Decided before the period (7 days back): not in the report.
	old := propose(&liveness.Pending{Email: "ana@dns.pt", Kind: liveness.ChangeEmail, NewEmail: "ana.old@dns.pt"}, start.Add(-10*day))
	cancel(old, start.Add(-9*day))
	// Cancelled during the period.
	cancelled := propose(&liveness.Pending{Email: "ana@dns.pt", Kind: liveness.ChangeKey, NewKey: regKey(t, "Ana Silva 2", "ana@dns.pt")}, start.Add(-3*day))
	cancel(cancelled, start.Add(-2*day))
	// Applied during the period, as the daily run does.
	applied := propose(&liveness.Pending{Email: "bob@dns.pt", Kind: liveness.ChangeEmail, NewEmail: "bob.costa@dns.pt"}, start.Add(-5*day))
	actor, err := directory.OperatorActor("Rita Lopes")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, actor, func(tx *directory.Tx) error {
		p, err := liveness.Apply(ctx, tx, applied, liveness.ApplyOptions{Auth: liveness.Auth{Secret: secret}, By: rita}, start.Add(-day))
		if err == nil && p.State != liveness.StateApplied {
			t.Fatalf("change %s %s: %s", p.ID, p.State, p.Reason)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// Waiting: an email change of the operator's (no proof), and key
	// changes asked by mail, one proven and one not.
	waitEmail := propose(&liveness.Pending{Email: "ana@dns.pt", Kind: liveness.ChangeEmail, NewEmail: "ana.silva@dns.pt"}, start.Add(-day))
	anaNew := regKey(t, "Ana Silva 3", "ana@dns.pt")
	waitProven := propose(&liveness.Pending{Email: "ana@dns.pt", Kind: liveness.ChangeKey, NewKey: anaNew,
		Actor: "member:" + anaKey.Fingerprint, ProofHash: liveness.ProofHash("token-ana")}, start.Add(-2*time.Hour))
	sqlTx(func(tx *sql.Tx) error {
		_, err := liveness.Prove(ctx, tx, liveness.Auth{Secret: secret}, waitProven, liveness.ProofHash("token-ana"), start.Add(-time.Hour))
		return err
	})
	bobNew := regKey(t, "Bob Costa 2", "bob.costa@dns.pt")
	waitUnproven := propose(&liveness.Pending{Email: "bob.costa@dns.pt", Kind: liveness.ChangeKey, NewKey: bobNew,
		Actor: "member:" + bobKey.Fingerprint, ProofHash: liveness.ProofHash("token-bob")}, start.Add(-time.Hour))

	sum, err := Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Now: start})
	if err != nil {
		t.Fatal(err)
	}
	ids := func(cs []Change) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID+" "+c.State)
		}
		return out
	}
	if got, want := ids(sum.Pending), []string{waitEmail + " waiting", waitProven + " waiting", waitUnproven + " waiting"}; !slices.Equal(got, want) {
		t.Fatalf("pending = %v, want %v", got, want)
	}
	if got, want := ids(sum.Decided), []string{cancelled + " cancelled", applied + " applied"}; !slices.Equal(got, want) {
		t.Fatalf("decided = %v, want %v (by when decided; %s decided before the period)", got, want, old)
	}
	e, p, u := sum.Pending[0], sum.Pending[1], sum.Pending[2]
	if e.Contact != "ana@dns.pt" || e.Kind != "email" || e.Old != "ana@dns.pt" || e.New != "ana.silva@dns.pt" || e.AskedBy != rita ||
		!e.Due.Equal(start.Add(-day+liveness.DefaultDelay)) || e.ProofNeeded || e.Proven != nil || e.Decided != nil {
		t.Errorf("email change = %+v", e)
	}
	if p.Old != anaKey.Fingerprint || p.New != anaNew.Fingerprint || !p.ProofNeeded || p.Proven == nil || !p.Proven.Equal(start.Add(-time.Hour)) {
		t.Errorf("proven key change = %+v", p)
	}
	if u.Contact != "bob.costa@dns.pt" || u.New != bobNew.Fingerprint || !u.ProofNeeded || u.Proven != nil {
		t.Errorf("unproven key change = %+v", u)
	}
	if d := sum.Decided[1]; d.Old != "bob@dns.pt" || d.New != "bob.costa@dns.pt" || d.Decided == nil || !d.Decided.Equal(start.Add(-day)) || d.DecidedBy != rita {
		t.Errorf("applied change = %+v", d)
	}

	text := sum.Text()
	for _, line := range []string{
		"Pending key and email changes that wait (3):",
		"  " + waitEmail + "  ana@dns.pt email: ana@dns.pt → ana.silva@dns.pt, asked by operator:Rita Lopes at 2026-11-01 10:00 UTC, due 2026-11-04 10:00 UTC",
		"  " + waitProven + "  ana@dns.pt key: " + anaKey.Fingerprint + " → " + anaNew.Fingerprint + ", asked by member:" + anaKey.Fingerprint +
			" at 2026-11-02 08:00 UTC, due 2026-11-05 08:00 UTC; possession of the new key proven at 2026-11-02 09:00 UTC",
		"  " + waitUnproven + "  bob.costa@dns.pt key: " + bobKey.Fingerprint + " → " + bobNew.Fingerprint + ", asked by member:" + bobKey.Fingerprint +
			" at 2026-11-02 09:00 UTC, due 2026-11-05 09:00 UTC; possession of the new key not proven yet",
		"Changes decided (2):",
		"  " + cancelled + "  ana@dns.pt key: " + anaKey.Fingerprint + " → " + sum.Decided[0].New + ", asked by operator:Rita Lopes, cancelled at 2026-10-31 10:00 UTC by operator:Rita Lopes",
		"  " + applied + "  bob@dns.pt email: bob@dns.pt → bob.costa@dns.pt, asked by operator:Rita Lopes, applied at 2026-11-01 10:00 UTC by operator:Rita Lopes",
	} {
		if !strings.Contains(text, "\n"+line+"\n") {
			t.Errorf("text lacks %q:\n%s", line, text)
		}
	}
	j, err := json.Marshal(sum)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`"pending":[{"id":"` + waitEmail + `","contact":"ana@dns.pt","kind":"email","old":"ana@dns.pt","new":"ana.silva@dns.pt","asked_by":"operator:Rita Lopes","asked":"2026-11-01T10:00:00Z","due":"2026-11-04T10:00:00Z","proof_needed":false,"proven":null,"state":"waiting","decided":null}`,
		`"proven":"2026-11-02T09:00:00Z"`, `"state":"applied","decided":"2026-11-01T10:00:00Z","decided_by":"operator:Rita Lopes"`} {
		if !strings.Contains(string(j), part) {
			t.Errorf("JSON lacks %s:\n%s", part, j)
		}
	}

	// The next day: the decided ones are behind, the waiting ones are
	// still there, and enough to say something.
	sqlTx(func(tx *sql.Tx) error {
		_, err := liveness.Cancel(ctx, tx, liveness.Auth{Secret: secret}, waitProven, rita, start)
		return err
	})
	sqlTx(func(tx *sql.Tx) error {
		_, err := liveness.Cancel(ctx, tx, liveness.Auth{Secret: secret}, waitUnproven, rita, start)
		return err
	})
	sum, err = Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Now: start.Add(day), Since: start.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(sum.Pending); sum.Empty() || len(sum.Decided) != 0 || !slices.Equal(got, []string{waitEmail + " waiting"}) {
		t.Fatalf("next day: pending %v, decided %v, empty %v; want %s alone, not empty", got, ids(sum.Decided), sum.Empty(), waitEmail)
	}
	if text := sum.Text(); strings.Contains(text, "Nothing needs attention") || !strings.Contains(text, "Pending key and email changes that wait (1):\n") {
		t.Errorf("next day's text:\n%s", text)
	}

	// A waiting row edited in the database is marked TAMPERED, as
	// pending list marks it, when the report can authenticate the rows.
	if sum.Pending[0].Tampered {
		t.Fatal("tampered without Auth")
	}
	src := Sources{DB: s.DB(), Outbox: ob, Now: start.Add(day), Since: start.Add(time.Minute), Auth: liveness.Auth{Secret: secret}}
	if sum, err = Collect(ctx, src); err != nil || sum.Pending[0].Tampered {
		t.Fatalf("authentic row: %+v, %v", sum.Pending, err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE pending_changes SET new_email = 'evil@example.org' WHERE id = ?`, waitEmail); err != nil {
		t.Fatal(err)
	}
	if sum, err = Collect(ctx, src); err != nil || !sum.Pending[0].Tampered {
		t.Fatalf("edited row: %+v, %v", sum.Pending, err)
	}
	if text := sum.Text(); !strings.Contains(text, "    TAMPERED: its row fails authentication; never applied; check who can write the database, then: ccdir pending cancel "+waitEmail+" --tampered\n") {
		t.Errorf("text:\n%s", text)
	}
	if j, _ := json.Marshal(sum); !strings.Contains(string(j), `"tampered":true`) {
		t.Errorf("JSON: %s", j)
	}
}
