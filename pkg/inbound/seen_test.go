package inbound

import (
	"context"
	"errors"
	"testing"
	"time"
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
	s1, _, err := readSignature([]byte(sig))
	if err != nil {
		t.Fatal(err)
	}
	s2, _, _ := readSignature([]byte(sig))
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
	r := refuse(550, enhPolicy, "no")
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
