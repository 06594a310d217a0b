package report

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
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
		directory.Options{Signer: sec, Now: func() time.Time { return start }, Migrations: slices.Concat(outbox.Migrations, receive.Migrations, liveness.Migrations, Migrations)})
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
		{At: start.Add(-2 * time.Hour), Verdict: receive.VerdictRefused, Reason: "unsigned", Text: "not signed (a)"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictRefused, Reason: "unsigned", Text: "not signed (b)"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictRefused, Reason: "other", Text: "odd thing"},
		{At: start.Add(-time.Hour), Verdict: receive.VerdictRefused, Reason: "other", Text: "odd thing"},
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
	// Counted by reason code (a refusal's inbound.Kind), with the last
	// text of each; refusals of no kind ("other") by their text.
	want := []Refusals{{"other", "odd thing", 2}, {"unsigned", "not signed (b)", 2}, {"replay", "used", 1}}
	if !slices.Equal(sum.Refusals, want) || sum.Deferred != 1 || len(sum.Contacts) != 1 || sum.Contacts[0].Email != "ana@dns.pt" {
		t.Fatalf("report = %+v, want refusals %v, 1 deferred, ana stale", sum, want)
	}
	text := sum.Text()
	for _, line := range []string{"Refused mail by reason (5):", "      2  other: odd thing", "      2  unsigned: not signed (b)", "Stale and unreachable contacts (1):"} {
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

// refuser is a transport that refuses every message for good.
type refuser struct{}

func (refuser) String() string                                     { return "refuser" }
func (refuser) NewSession(context.Context) (outbox.Session, error) { return refuser{}, nil }
func (refuser) Send(context.Context, *outbox.Message) error {
	return &outbox.DeliveryError{Code: 550, Enhanced: "5.1.1", Msg: "no such user"}
}
func (refuser) Close() error { return nil }

// A message that failed since the last report is in it with the
// server's answer; one that failed before is not.
func TestCollectDeliveries(t *testing.T) {
	ctx := context.Background()
	s, ob := open(t)
	m := outbox.Message{Kind: "reply", Ref: "1", From: "ccdir@directory.example", To: "ana@dns.pt", Data: []byte("Subject: x\r\n\r\nx\r\n")}
	if _, err := ob.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Deliver(ctx, refuser{}, outbox.Filter{}, outbox.DeliverOptions{Now: func() time.Time { return start }}); err != nil {
		t.Fatal(err)
	}
	sum, err := Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Now: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Deliveries) != 1 || sum.Deliveries[0].Status != "failed" || sum.Deliveries[0].To != "ana@dns.pt" || !strings.Contains(sum.Deliveries[0].Error, "no such user") {
		t.Fatalf("deliveries = %+v, want ana's failed reply", sum.Deliveries)
	}
	if !strings.Contains(sum.Text(), "Failed and bounced deliveries (1):\n") {
		t.Errorf("text:\n%s", sum.Text())
	}
	sum, err = Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Now: start.Add(48 * time.Hour), Since: start.Add(24 * time.Hour)})
	if err != nil || len(sum.Deliveries) != 0 {
		t.Fatalf("deliveries since after the failure = %+v, %v; want none", sum.Deliveries, err)
	}
}

// transport answers every message with err (nil: accepted).
type transport struct{ err error }

func (transport) String() string                                        { return "transport" }
func (tr transport) NewSession(context.Context) (outbox.Session, error) { return tr, nil }
func (tr transport) Send(context.Context, *outbox.Message) error        { return tr.err }
func (transport) Close() error                                          { return nil }

// A bounce or a failure is reported by when it happened, not when the
// message was queued or last tried: sent on day 0 and bounced on day 2,
// or deferred on day 0 and failed on day 2, it is in a report covering
// days 1 to 3, and not in one covering days 3 to 4.
func TestCollectLateEvents(t *testing.T) {
	ctx := context.Background()
	s, ob := open(t)
	const base = "ccdir-bounces@directory.example"
	ob.Bounce = base
	day := 24 * time.Hour
	msg := func(to string) outbox.Message {
		return outbox.Message{Kind: "reply", Ref: "1", From: "ccdir@directory.example", To: to, Data: []byte("Subject: x\r\n\r\nx\r\n")}
	}
	if _, err := ob.Enqueue(ctx, msg("ana@dns.pt")); err != nil {
		t.Fatal(err)
	}
	at := func(t0 time.Time) outbox.DeliverOptions {
		return outbox.DeliverOptions{Now: func() time.Time { return t0 }, RetryFor: day}
	}
	if _, err := ob.Deliver(ctx, transport{}, outbox.Filter{}, at(start)); err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Enqueue(ctx, msg("bob@dns.pt")); err != nil {
		t.Fatal(err)
	}
	busy := transport{&outbox.DeliveryError{Code: 451, Enhanced: "4.3.0", Msg: "try later", Temporary: true}}
	if _, err := ob.Deliver(ctx, busy, outbox.Filter{}, at(start)); err != nil {
		t.Fatal(err)
	}
	// Day 2: ana's message bounces, bob's fails for good.
	ob.Now = func() time.Time { return start.Add(2 * day) }
	rows, err := ob.List(ctx, outbox.Filter{})
	if err != nil || len(rows) != 2 || rows[0].Status != outbox.Sent || rows[1].Status != outbox.Deferred {
		t.Fatalf("rows = %+v, %v; want ana's sent, bob's deferred", rows, err)
	}
	if _, err := ob.Bounced(ctx, base, rows[0].From, "smtp; 550 5.1.1 no such user"); err != nil {
		t.Fatal(err)
	}
	if _, err := ob.Deliver(ctx, busy, outbox.Filter{}, at(start.Add(2*day))); err != nil {
		t.Fatal(err)
	}
	rows, err = ob.List(ctx, outbox.Filter{})
	if err != nil || rows[0].Status != outbox.Bounced || !rows[0].BouncedAt.Equal(start.Add(2*day)) ||
		rows[1].Status != outbox.Failed || !rows[1].FailedAt.Equal(start.Add(2*day)) {
		t.Fatalf("rows = %+v, %v; want ana's bounced and bob's failed on day 2", rows, err)
	}
	sum, err := Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Now: start.Add(3 * day), Since: start.Add(day)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range sum.Deliveries {
		got = append(got, d.To+" "+d.Status)
	}
	if !slices.Equal(got, []string{"ana@dns.pt bounced", "bob@dns.pt failed"}) {
		t.Fatalf("report of days 1-3: deliveries %v, want ana's bounced and bob's failed", got)
	}
	sum, err = Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Now: start.Add(4 * day), Since: start.Add(3 * day)})
	if err != nil || len(sum.Deliveries) != 0 {
		t.Fatalf("report of days 3-4: deliveries %+v, %v; want none", sum.Deliveries, err)
	}
}

// expiringKey is a key for email whose primary key expires at primary
// and its subkey at sub (zero: never); what counts is the earlier.
func expiringKey(t *testing.T, email string, primary, sub time.Time) *directory.Key {
	t.Helper()
	sec := keystest.NewSecret(t, email, email)
	pub, err := keys.ParsePublicOne(keystest.Reexpire(t, sec, keystest.SecretTime, primary, sub))
	if err != nil {
		t.Fatal(err)
	}
	a, err := pub.Armored()
	if err != nil {
		t.Fatal(err)
	}
	k := &directory.Key{Fingerprint: pub.Fingerprint, Armored: string(a)}
	if !primary.IsZero() {
		k.Expires = primary.Format(time.RFC3339)
	}
	return k
}

// Keys that expire within the largest of the remind days (default
// liveness.DefaultRemindDays) or have expired are in the report, soonest
// first; others, and keys that never expire, are not.
func TestCollectKeys(t *testing.T) {
	ctx := context.Background()
	s, ob := open(t)
	key := func(email string, primary, sub time.Time) *directory.Key { return expiringKey(t, email, primary, sub) }
	day := 24 * time.Hour
	snap := &directory.Snapshot{Contacts: []directory.Contact{
		{Email: "ana@dns.pt", Key: key("ana@dns.pt", start.Add(20*day), start.Add(20*day))},
		{Email: "bob@dns.pt", Key: key("bob@dns.pt", start.Add(60*day), start.Add(60*day))},
		{Email: "carol@registro.br", Key: key("carol@registro.br", start.Add(-day), start.Add(-day))},
		{Email: "erin@denic.de", Key: key("erin@denic.de", time.Time{}, time.Time{})},
		{Email: "dan@nic.example"},
		// The primary key never expires or is extended, the encryption
		// subkey is not.
		{Email: "fay@dns.pt", Key: key("fay@dns.pt", time.Time{}, start.Add(25*day))},
		{Email: "gil@dns.pt", Key: key("gil@dns.pt", start.Add(400*day), start.Add(10*day))},
	}}
	sum, err := Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Snapshot: snap, Now: start})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range sum.Keys {
		got = append(got, k.Email)
	}
	if !slices.Equal(got, []string{"carol@registro.br", "gil@dns.pt", "ana@dns.pt", "fay@dns.pt"}) {
		t.Fatalf("keys = %v, want carol's (expired), gil's, ana's, fay's", got)
	}
}

// The window of keys expiring is the largest of keys.remind_days.
func TestCollectKeysRemindDays(t *testing.T) {
	ctx := context.Background()
	s, ob := open(t)
	key := func(days int) *directory.Key {
		exp := start.Add(time.Duration(days) * 24 * time.Hour)
		return expiringKey(t, fmt.Sprintf("d%d@dns.pt", days), exp, exp)
	}
	snap := &directory.Snapshot{Contacts: []directory.Contact{
		{Email: "d20@dns.pt", Key: key(20)},
		{Email: "d45@dns.pt", Key: key(45)},
		{Email: "d80@dns.pt", Key: key(80)},
		{Email: "d100@dns.pt", Key: key(100)},
	}}
	for _, tt := range []struct {
		days   []int
		within int
		want   []string
	}{
		{nil, 60, []string{"d20@dns.pt", "d45@dns.pt"}}, // liveness.DefaultRemindDays: 60, 30, 7
		{[]int{7, 90, 30}, 90, []string{"d20@dns.pt", "d45@dns.pt", "d80@dns.pt"}},
		{[]int{30}, 30, []string{"d20@dns.pt"}},
	} {
		sum, err := Collect(ctx, Sources{DB: s.DB(), Outbox: ob, Snapshot: snap, Now: start, RemindDays: tt.days})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, k := range sum.Keys {
			got = append(got, k.Email)
		}
		if !slices.Equal(got, tt.want) || sum.KeysWithin != tt.within {
			t.Errorf("remind days %v: keys %v within %d, want %v within %d", tt.days, got, sum.KeysWithin, tt.want, tt.within)
		}
		if want := fmt.Sprintf("Keys expiring within %d days (%d):", tt.within, len(tt.want)); !strings.Contains(sum.Text(), want) {
			t.Errorf("text lacks %q:\n%s", want, sum.Text())
		}
	}
}
