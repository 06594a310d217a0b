package report

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
)

var start = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func open(t *testing.T) (*directory.Store, *outbox.Outbox) {
	t.Helper()
	ctx := context.Background()
	sec := keystest.NewSecret(t, "Test Directory", "ccdir@directory.example")
	armored, err := sec.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	info := directory.Info{Name: "Test Directory", Address: "ccdir@directory.example", KeyFingerprint: sec.Fingerprint(), PublicKey: string(armored)}
	s, err := directory.Create(ctx, filepath.Join(t.TempDir(), "directory.db"), info,
		directory.Options{Signer: sec, Now: func() time.Time { return start }, Migrations: slices.Concat(outbox.Migrations, receive.Migrations, Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ob, err := outbox.Open(ctx, s.DB())
	if err != nil {
		t.Fatal(err)
	}
	ob.Key, ob.Now = outbox.NewKey(), func() time.Time { return start }
	return s, ob
}

// A report says what needs attention since the last report (7 days back
// the first time), refusals counted by reason; with nothing, it is
// empty. Queue records it with its message, once a period.
func TestCollectAndQueue(t *testing.T) {
	ctx := context.Background()
	s, ob := open(t)
	src := Sources{DB: s.DB(), Outbox: ob, Now: start}
	sum, err := Collect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Empty() || !sum.Since.Equal(start.Add(-DefaultSince)) || sum.Period != "2026-11-02" {
		t.Fatalf("first report of nothing = %+v", sum)
	}

	for i, e := range []receive.Entry{
		{At: start.Add(-8 * 24 * time.Hour), Verdict: receive.VerdictRefused, Reason: "other", Text: "too old"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictRefused, Reason: "other", Text: "not signed"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictRefused, Reason: "other", Text: "not signed"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictRefused, Reason: "replay", Text: "used"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictAccepted, Reason: "commands"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictIgnored, Reason: "loop"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictDeferred, Reason: "temporary"},
	} {
		if err := receive.RecordInbound(ctx, s.DB(), e); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	src.Statuses = []liveness.Status{{Email: "ana@dns.pt", Verdict: liveness.VerdictStale}, {Email: "bob@dns.pt", Verdict: liveness.VerdictOK}}
	sum, err = Collect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []Refusals{{"other", "not signed", 2}, {"replay", "used", 1}}
	if !slices.Equal(sum.Refusals, want) || sum.Deferred != 1 || len(sum.Contacts) != 1 || sum.Contacts[0].Email != "ana@dns.pt" {
		t.Fatalf("report = %+v, want refusals %v, 1 deferred, ana stale", sum, want)
	}
	text := sum.Text()
	for _, line := range []string{"Refused mail by reason (3):", "      2  other: not signed", "Stale and unreachable contacts (1):"} {
		if !strings.Contains(text, line+"\n") {
			t.Errorf("text lacks %q:\n%s", line, text)
		}
	}

	m := outbox.Message{Kind: Kind, Ref: sum.Period, From: "ccdir@directory.example", To: "ops@secretariat.example", Data: []byte("Subject: x\r\n\r\nx\r\n")}
	if err := Queue(ctx, s.DB(), ob, sum, m); err != nil {
		t.Fatal(err)
	}
	if err := Queue(ctx, s.DB(), ob, sum, m); !errors.Is(err, ErrSent) {
		t.Fatalf("second Queue = %v, want ErrSent", err)
	}
	if rows, err := ob.List(ctx, outbox.Filter{Kind: Kind}); err != nil || len(rows) != 1 {
		t.Fatalf("%d reports queued (%v), want 1", len(rows), err)
	}
	if sent, err := Sent(ctx, s.DB(), sum.Period); err != nil || !sent {
		t.Fatalf("Sent = %v, %v", sent, err)
	}
	// The next report starts where this one ended.
	src.Now, src.Statuses = start.Add(24*time.Hour), nil
	sum, err = Collect(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Since.Equal(start) || !sum.Empty() {
		t.Fatalf("next report = %+v, want empty since %v", sum, start)
	}
}
