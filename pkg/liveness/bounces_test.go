package liveness

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccdir/ccdir/pkg/outbox"
)

const bounceBase = "dir-bounces@ccdir.example"

// mailAna queues one message to ana and delivers it (to a maildir), and
// returns its row.
func (f *fixture) mailAna(ref string) outbox.Row {
	f.t.Helper()
	f.ob.Bounce = bounceBase
	data := fmt.Sprintf("From: <%s>\r\nTo: <ana@dns.pt>\r\nSubject: x\r\nMessage-ID: <%s@ccdir.example>\r\n\r\nhello\r\n", dirAddress, ref)
	if _, err := f.ob.Enqueue(f.ctx, outbox.Message{Kind: "digest", Ref: ref, From: dirAddress, To: "ana@dns.pt", Data: []byte(data)}); err != nil {
		f.t.Fatal(err)
	}
	tr, err := outbox.NewTransport("maildir:"+filepath.Join(f.t.TempDir(), "mail"), outbox.TransportOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.ob.Deliver(f.ctx, tr, outbox.Filter{}, outbox.DeliverOptions{Now: f.now}); err != nil {
		f.t.Fatal(err)
	}
	rows, err := f.ob.List(f.ctx, outbox.Filter{})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, r := range rows {
		if r.Ref == ref && r.To == "ana@dns.pt" {
			return r
		}
	}
	f.t.Fatalf("no row %s", ref)
	return outbox.Row{}
}

func (f *fixture) bounce(r outbox.Row, diag string) {
	f.t.Helper()
	if _, err := f.ob.Bounced(f.ctx, bounceBase, r.From, diag); err != nil {
		f.t.Fatal(err)
	}
}

// TestBouncesUnreachable: bounces.limit bounces in a row make a contact
// unreachable in Statuses; a message delivered without a bounce, or a
// PONG after the bounces, ends the run; a DSN with a forged tag counts
// for nothing.
func TestBouncesUnreachable(t *testing.T) {
	f := newFixture(t)
	verdict := func(cfg Config) Status {
		t.Helper()
		snap, err := f.store.Snapshot(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := Statuses(f.ctx, f.store.DB(), snap, cfg, f.now(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss {
			if s.Email == "ana@dns.pt" {
				return s
			}
		}
		t.Fatal("no ana")
		return Status{}
	}
	f.send(Config{})
	tok := f.token("ana@dns.pt")

	for i := 1; i <= 2; i++ {
		f.advance(time.Hour)
		f.bounce(f.mailAna(fmt.Sprint(i)), fmt.Sprintf("550 5.1.1 no such user (%d)", i))
	}
	// Forged tags: another message's id with a made-up MAC, and a tag
	// naming a message to somebody else. Neither counts.
	r3 := f.mailAna("3")
	if _, err := f.ob.Bounced(f.ctx, bounceBase, fmt.Sprintf("dir-bounces+%d-%s@ccdir.example", r3.ID, "0000000000000000"), "forged"); err == nil {
		t.Fatal("a forged tag was accepted")
	}
	if s := verdict(Config{}); s.Verdict == VerdictUnreachable || s.Bounces.Count != 0 {
		t.Fatalf("after 2 bounces and a delivered message: %+v", s)
	}
	// Message 3 was delivered and never bounced: the run starts after it.
	f.advance(time.Hour)
	f.bounce(f.mailAna("4"), "550 5.1.1 no such user (4)")
	f.advance(time.Hour)
	f.bounce(f.mailAna("7"), "550 5.1.1 no such user (7)")
	f.advance(time.Hour)
	f.bounce(f.mailAna("5"), "550 5.1.1 no such user (5)")

	s := verdict(Config{})
	if s.Verdict != VerdictUnreachable || s.Bounces.Count != 3 || s.Bounces.Diagnostic != "550 5.1.1 no such user (5)" || !s.Attention() {
		t.Fatalf("after 3 bounces in a row: %+v", s)
	}
	if s := verdict(Config{BounceLimit: 4}); s.Verdict == VerdictUnreachable || s.Bounces.Count != 3 {
		t.Fatalf("limit 4, 3 bounces: %+v", s)
	}

	// A PONG proves the mailbox receives: the run starts again.
	f.advance(time.Hour)
	if _, err := f.pong("ana@dns.pt", tok); err != nil {
		t.Fatal(err)
	}
	if s := verdict(Config{}); s.Verdict != VerdictOK || s.Bounces.Count != 0 {
		t.Fatalf("after a PONG: %+v", s)
	}
	f.advance(time.Hour)
	f.bounce(f.mailAna("6"), "550 again")
	if s := verdict(Config{}); s.Verdict != VerdictOK || s.Bounces.Count != 1 {
		t.Fatalf("one bounce after the PONG: %+v", s)
	}
}
