package receive

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys/keystest"
)

// PruneInboundLog deletes the rows older than its time, in batches, and
// keeps the others; a second call deletes nothing.
func TestPruneInboundLog(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	sec := keystest.NewSecret(t, "Test Directory", "ccdir@directory.example")
	armored, err := sec.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	s, err := directory.Create(ctx, filepath.Join(t.TempDir(), "directory.db"),
		directory.Info{Name: "T", Address: "ccdir@directory.example", KeyFingerprint: sec.Fingerprint(), PublicKey: string(armored)},
		directory.Options{Signer: sec, Now: func() time.Time { return now }, Migrations: Migrations})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db := s.DB()
	cut := now.Add(-DefaultInboundRetention)
	old := pruneBatch + 7 // more than one batch
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range old {
		if _, err := tx.ExecContext(ctx, `INSERT INTO inbound_log (at, sender, recipient, route, verdict) VALUES (?, 'x@example.org', 'ccdir@directory.example', 'commands', 'refused')`,
			cut.Add(-time.Duration(i+1)*time.Minute).UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{cut, cut.Add(time.Hour), now} {
		if err := RecordInbound(ctx, db, Entry{At: at, Sender: "kept@example.org", Recipient: "ccdir@directory.example", Route: "commands", Verdict: VerdictAccepted, Reason: "commands", Text: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := PruneInboundLog(ctx, db, cut)
	if err != nil || n != int64(old) {
		t.Fatalf("PruneInboundLog = %d, %v; want %d", n, err, old)
	}
	log, err := InboundLog(ctx, db, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, e := range log {
		texts = append(texts, e.Text)
	}
	if !slices.Equal(texts, []string{"a", "b", "c"}) {
		t.Fatalf("left %v, want the rows from the cut on (a, b, c)", texts)
	}
	if n, err := PruneInboundLog(ctx, db, cut); err != nil || n != 0 {
		t.Fatalf("second PruneInboundLog = %d, %v; want 0", n, err)
	}
}
