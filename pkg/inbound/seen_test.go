package inbound

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
)

func TestSeenTable(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	db := w.store.DB()
	mark := func(d string, at time.Time) error {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if err := MarkSeen(ctx, tx, d, at); err != nil {
			return err
		}
		return tx.Commit()
	}
	if seen, err := IsSeen(ctx, db, "a"); err != nil || seen {
		t.Fatalf("IsSeen before: %v %v", seen, err)
	}
	if err := mark("a", corpusNow.Add(-100*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := mark("b", corpusNow); err != nil {
		t.Fatal(err)
	}
	if err := mark("a", corpusNow); !errors.Is(err, ErrReplay) {
		t.Fatalf("second MarkSeen: %v, want ErrReplay", err)
	}
	if seen, err := IsSeen(ctx, db, "a"); err != nil || !seen {
		t.Fatalf("IsSeen after: %v %v", seen, err)
	}
	n, err := Prune(ctx, db, corpusNow.Add(-DefaultWindow))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	if seen, _ := IsSeen(ctx, db, "b"); !seen {
		t.Fatal("Prune removed a fresh entry")
	}
}

// A replay whose unhashed subpackets were changed still has the same id.
func TestReplayIDIgnoresUnhashed(t *testing.T) {
	w := newWorld(t)
	inner := textEntity(cmds)
	sig := detached(t, w.ana, inner, corpusNow, "unhashed")
	r1, err := parseSigs([]byte(sig))
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := parseSigs([]byte(sig))
	s1, s2 := r1[0].sig, r2[0].sig
	s2.IssuerKeyId = nil // lives in the unhashed area
	if a, b := replayID("F", s1, inner), replayID("F", s2, crlfBytes(inner)); a != b {
		t.Errorf("ids differ: %s %s", a, b)
	}
	if replayID("F", s1, inner) == replayID("F", s1, append(inner, 'x')) {
		t.Error("content not in the id")
	}
}

func crlfBytes(b []byte) []byte { return []byte(crlf(string(b))) }

func TestRefusalError(t *testing.T) {
	r := refuse(RefusedOther, 550, enhPolicy, "no")
	if r.Error() != "550 5.7.1 no" {
		t.Errorf("%q", r.Error())
	}
	if got := fmtDuration(72 * time.Hour); got != "72h" {
		t.Errorf("fmtDuration = %q", got)
	}
	if got := fmtDuration(10 * time.Minute); got != "10m" {
		t.Errorf("fmtDuration = %q", got)
	}
}

// A run with a shorter window must not forget signatures that a run with
// a longer window accepts (issue 10, #9): accept with a 24h window, a run
// with a 1h window (which prunes), then the replay with the 24h window
// again is refused as a replay.
func TestShorterWindowKeepsSeen(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	run := func(window time.Duration, now time.Time, data []byte) (*Accepted, error) {
		p := &Pipeline{Store: w.store, Secret: w.dir,
			Config: Config{Addresses: []string{dirAddr}, Window: window},
			Now:    func() time.Time { return now }}
		return p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
	}
	signedAt := corpusNow.Add(-2 * time.Hour)
	msg := textMail(headers("ana@dns.pt", "window-1"), clearsigned(t, w.ana, cmds, signedAt, "window-1"))
	acc, err := run(24*time.Hour, corpusNow, msg)
	if err != nil {
		t.Fatalf("first delivery (24h window): %v", err)
	}
	markSeen(t, w, acc)

	// A later run with a 1h window, a day later than the first.
	later := corpusNow.Add(time.Minute)
	other := textMail(headers("ana@dns.pt", "window-2"), clearsigned(t, w.ana, cmds, later, "window-2"))
	if _, err := run(time.Hour, later, other); err != nil {
		t.Fatalf("other mail (1h window): %v", err)
	}
	if _, err := run(time.Hour, later, msg); err == nil || !strings.Contains(err.Error(), "older than 1h") {
		t.Fatalf("replay with the 1h window: %v, want refused as stale", err)
	}
	// Back to 24h: the replay must still be known.
	if _, err := run(24*time.Hour, later, msg); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replay with the 24h window again: %v, want refused as a replay", err)
	}
}

// Past the retention, seen ids are forgotten, and from then on no
// signature older than what was forgotten is taken, whatever the window
// says (issue 10, #9): a signature accepted under a 10-day window is
// replayed after a run with a 1h window pruned it.
func TestForgottenSignaturesRefused(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	run := func(window time.Duration, now time.Time, data []byte) (*Accepted, error) {
		p := &Pipeline{Store: w.store, Secret: w.dir,
			Config: Config{Addresses: []string{dirAddr}, Window: window},
			Now:    func() time.Time { return now }}
		return p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
	}
	signedAt := corpusNow.Add(-8 * 24 * time.Hour)
	msg := textMail(headers("ana@dns.pt", "forgot-1"), clearsigned(t, w.ana, cmds, signedAt, "forgot-1"))
	acc, err := run(10*24*time.Hour, corpusNow, msg)
	if err != nil {
		t.Fatalf("first delivery (10d window): %v", err)
	}
	markSeen(t, w, acc)
	other := textMail(headers("ana@dns.pt", "forgot-2"), clearsigned(t, w.ana, cmds, corpusNow, "forgot-2"))
	if _, err := run(time.Hour, corpusNow, other); err != nil {
		t.Fatalf("other mail (1h window): %v", err)
	}
	_, err = run(10*24*time.Hour, corpusNow, msg)
	if err == nil || !strings.Contains(err.Error(), "older than the directory remembers") {
		t.Fatalf("replay with the 10d window again: %v, want refused", err)
	}
	// MarkSeen itself refuses it too, in the transaction of the effect.
	tx, err := w.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if err := MarkSeen(ctx, tx, "fresh-id", signedAt); !errors.Is(err, ErrReplay) {
		t.Fatalf("MarkSeen of a forgotten time: %v, want ErrReplay", err)
	}
}

// TestSeenLedgerEvidence: a statement kept as a ledger entry's evidence
// is a replay for MarkSeen even with seen_signatures emptied (the ledger
// keeps the signed text, anyone who can write the file can feed it
// again), and verify names a mail kept by two separate groups of entries.
func TestSeenLedgerEvidence(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	mail := func(name, label string) *Accepted {
		t.Helper()
		body := clearsigned(t, w.ana, "DIRECTORY "+dirAddr+"\nSET NAME "+name+"\n", corpusNow.Add(-time.Hour), label)
		data := textMail(headers(w.ana.email, label), body)
		acc, err := w.p.Process(ctx, Envelope{From: w.ana.email, To: []string{dirAddr}}, bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Process: %v", err)
		}
		if id, err := EvidenceSeen(acc.Evidence, acc.Key.Fingerprint); err != nil || id != acc.Seen {
			t.Fatalf("EvidenceSeen = %q, %v; want the replay id %q", id, err, acc.Seen)
		}
		return acc
	}
	// What process did before the ledger was asked: the seen mark and
	// the change in one transaction, or (force) the change alone.
	use := func(acc *Accepted, name string, force bool) error {
		_, err := w.store.Update(ctx, directory.Actor{Name: "member:" + acc.Key.Fingerprint, Evidence: acc.Evidence}, func(tx *directory.Tx) error {
			if !force {
				if err := MarkSeen(ctx, tx.SQL(), acc.Seen, acc.SignedAt); err != nil {
					return err
				}
			}
			_, err := tx.UpdateContact(w.ana.email, func(c *directory.Contact) error { c.Name = name; return nil })
			return err
		})
		return err
	}
	a, b := mail("Ana Old", "ledger-a"), mail("Ana New", "ledger-b")
	if err := use(a, "Ana Old", false); err != nil {
		t.Fatal(err)
	}
	first, _ := w.store.Head(ctx)
	if err := use(b, "Ana New", false); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.DB().ExecContext(ctx, `DELETE FROM seen_signatures`); err != nil {
		t.Fatal(err)
	}
	before, _ := w.store.Head(ctx)
	if err := use(a, "Ana Old", false); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a mail kept in the ledger: %v, want ErrReplay", err)
	}
	if h, _ := w.store.Head(ctx); h != before {
		t.Fatal("the replay wrote an entry")
	}

	// A ledger holding such a replay (as an older ccdir made it): verify
	// names both entries.
	if err := use(a, "Ana Old", true); err != nil {
		t.Fatal(err)
	}
	// (Not Evidence: this world's store is dated a week before the
	// pipeline's clock, so its signatures are from the future.)
	s, err := directory.Open(ctx, w.store.Path(), directory.Options{ReadOnly: true, Migrations: Migrations, EvidenceID: EvidenceCheck{}.ID})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Verify(ctx, w.dir.Fingerprint(), w.dir.Verify)
	want := fmt.Sprintf("ledger entry %d: its evidence is the signed mail of entry %d again", before.Serial+1, first.Serial)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Verify: %v, want %q", err, want)
	}
}
