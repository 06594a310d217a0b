package liveness

import (
	"reflect"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// pingRows counts the pings rows of each address.
func (f *fixture) pingRows() map[string]int {
	f.t.Helper()
	rows, err := f.store.DB().QueryContext(f.ctx, `SELECT email, count(*) FROM pings GROUP BY email`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var e string
		var n int
		if err := rows.Scan(&e, &n); err != nil {
			f.t.Fatal(err)
		}
		out[e] = n
	}
	return out
}

// TestPrune: pruning every check expired before now deletes those
// nothing reads, and keeps what each contact's state is read from (the
// last answer; the first unanswered check of a silence going on, and the
// escalated one; open checks): the statuses are the same after it, and
// the next run escalates no silence a second time. A contact no longer
// in the directory keeps nothing old; key reminders of a passed expiry
// go.
func TestPrune(t *testing.T) {
	f := newFixture(t)
	// Check 1 of each; bob answers it, ana and carol do not.
	f.send(Config{})
	f.advance(time.Hour)
	if _, err := f.pong("bob@dns.pt", f.token("bob@dns.pt")); err != nil {
		t.Fatal(err)
	}
	// Check 1 of ana and carol expires: escalated, check 2 sent.
	f.advance(DefaultValid)
	if res := f.send(Config{}); len(res.Escalated) != 2 {
		t.Fatalf("escalated %+v", res.Escalated)
	}
	// Check 2 expires: check 3, no second escalation; carol answers 3.
	f.advance(DefaultValid)
	if res := f.send(Config{}); len(res.Escalated) != 0 {
		t.Fatalf("escalated again %+v", res.Escalated)
	}
	if _, err := f.pong("carol@registro.br", f.token("carol@registro.br")); err != nil {
		t.Fatal(err)
	}
	// Past bob's and carol's interval: bob's check 2, ana's 4, carol's 4;
	// bob answers.
	f.advance(DefaultInterval)
	f.send(Config{})
	f.advance(time.Hour)
	if _, err := f.pong("bob@dns.pt", f.token("bob@dns.pt")); err != nil {
		t.Fatal(err)
	}
	if got, want := f.pingRows(), map[string]int{"ana@dns.pt": 4, "bob@dns.pt": 2, "carol@registro.br": 4}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pings before pruning: %v, want %v", got, want)
	}
	for _, kr := range []struct{ fpr, expires string }{{"OLD", formatTime(f.now().Add(-time.Hour))}, {"NEW", formatTime(f.now().Add(time.Hour))}} {
		if _, err := f.store.DB().Exec(`INSERT INTO key_reminders (fingerprint, expires, days, email, sent) VALUES (?, ?, 7, 'ana@dns.pt', ?)`,
			kr.fpr, kr.expires, formatTime(f.now())); err != nil {
			t.Fatal(err)
		}
	}
	before := f.statuses()
	snap, err := f.store.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}

	got, err := Prune(f.ctx, f.store.DB(), f.now(), snap.Contacts)
	if err != nil {
		t.Fatal(err)
	}
	// ana: 1 (the first silent, escalated) and 4 (open) stay, 2 and 3 go;
	// bob: 1 goes, 2 (the last answer) stays; carol: 3 (the last answer)
	// and 4 (open) stay, 1 and 2 go (her silence ended).
	if want := (Pruned{Pings: 5, KeyReminders: 1}); got != want {
		t.Errorf("Prune = %+v, want %+v", got, want)
	}
	if got, want := f.pingRows(), map[string]int{"ana@dns.pt": 2, "bob@dns.pt": 1, "carol@registro.br": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("pings after pruning: %v, want %v", got, want)
	}
	if after := f.statuses(); !reflect.DeepEqual(before, after) {
		t.Errorf("statuses changed by pruning:\n%+v\n%+v", before, after)
	}
	var n int
	if err := f.store.DB().QueryRow(`SELECT count(*) FROM key_reminders WHERE fingerprint = 'NEW'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the reminder of a coming expiry: %d, %v", n, err)
	}
	// Again: nothing more.
	if got, err := Prune(f.ctx, f.store.DB(), f.now(), snap.Contacts); err != nil || got != (Pruned{}) {
		t.Errorf("Prune again = %+v, %v", got, err)
	}
	// Ana's check 4 expires: still her silence, told once (carol's
	// check 4 expiring is a new silence).
	f.advance(DefaultValid)
	if res := f.send(Config{}); len(res.Escalated) != 1 || res.Escalated[0].Email != "carol@registro.br" {
		t.Errorf("escalated after pruning: %+v, want carol's new silence only", res.Escalated)
	}
	if st := f.statuses()["ana@dns.pt"]; !st.StaleSince.Equal(before["ana@dns.pt"].StaleSince) || st.Verdict != VerdictStale {
		t.Errorf("ana after pruning: %+v, want stale since %s", st, before["ana@dns.pt"].StaleSince)
	}

	// Ana leaves the directory: her old checks go, the open one stays.
	var rest []directory.Contact
	for _, c := range snap.Contacts {
		if c.Email != "ana@dns.pt" {
			rest = append(rest, c)
		}
	}
	if got, err := Prune(f.ctx, f.store.DB(), f.now(), rest); err != nil || got.Pings != 2 {
		t.Errorf("Prune without ana = %+v, %v; want her 2 old checks", got, err)
	}
	if got := f.pingRows()["ana@dns.pt"]; got != 1 {
		t.Errorf("ana has %d checks, want the open one", got)
	}
}
