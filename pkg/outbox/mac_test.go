package outbox

import (
	"context"
	"strings"
	"testing"
)

// TestDeliverRefusesRowsItDidNotMake: someone who can write the database
// but not the outbox key (the directory's keys/ folder) must not make
// ccdir send their mail. A row inserted by SQL, or a queued row whose
// recipient, sender, body, tail or shared part was changed, or one that
// carries another row's MAC, never reaches the transport: it is marked
// failed, saying why, and counted as Refused. The rows the outbox made
// itself are still sent.
func TestDeliverRefusesRowsItDidNotMake(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	good := mail(KindDigest, "1", rcpt("good", 0), 500)
	mustEnqueue(t, o, good)
	shared, msgs := sharedMail(KindDigest, "2", "s", 3, 4<<10)
	putShared(t, o, shared, msgs)
	mustEnqueue(t, o, msgs...)
	victims := []Message{
		mail(KindReply, "r1", "rcpt@victim.example", 300),
		mail(KindReply, "r2", "body@victim.example", 300),
		mail(KindReply, "r3", "sender@victim.example", 300),
		mail(KindReply, "r4", "copied@victim.example", 300),
	}
	mustEnqueue(t, o, victims...)

	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := o.db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The reviewer's row: inserted by SQL, as an older ccdir's would be.
	exec(`INSERT INTO outbox (kind, ref, sender, rcpt, body, size, status, created, window_start, next_attempt)
		VALUES ('digest', 'x', 'ccdir@tldops.example', 'victim@dns.pt', ?, 120, 'queued', 1, 1, 1)`,
		[]byte("From: ccdir@tldops.example\r\nTo: victim@dns.pt\r\n\r\nsend your keys to eve@evil.example\r\n"))
	exec(`UPDATE outbox SET rcpt = 'eve@evil.example' WHERE rcpt = 'rcpt@victim.example'`)
	exec(`UPDATE outbox SET body = CAST('From: x\r\n\r\nevil\r\n' AS BLOB) WHERE rcpt = 'body@victim.example'`)
	exec(`UPDATE outbox SET sender = 'eve@evil.example' WHERE rcpt = 'sender@victim.example'`)
	exec(`UPDATE outbox SET body = (SELECT body FROM outbox WHERE rcpt = ?), mac = (SELECT mac FROM outbox WHERE rcpt = ?)
		WHERE rcpt = 'copied@victim.example'`, good.To, good.To)
	// The shared part of the s-messages, with its recorded SHA-256 kept.
	exec(`UPDATE outbox_blob SET data = CAST(replace(CAST(data AS TEXT), 'abcdefghij', 'send keys!') AS BLOB)`)
	exec(`UPDATE outbox SET tail = CAST('evil tail' AS BLOB) WHERE rcpt = ?`, msgs[0].To)

	// What Deliver would refuse is what Unauthentic finds, before.
	found, err := o.Unauthentic(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 8 {
		t.Errorf("Unauthentic found %d rows, want 8: %+v", len(found), found)
	}
	for _, r := range found {
		if r.To == good.To {
			t.Errorf("Unauthentic found the good row %+v", r)
		}
	}

	f := newFake()
	var refused []string
	sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{OnResult: func(r Row, err error) {
		if err != nil {
			refused = append(refused, r.To)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Summary{Sent: 1, Failed: 8, Refused: 8}); sum != want {
		t.Errorf("Deliver = %+v, want %+v", sum, want)
	}
	if len(f.got) != 1 || f.got[good.To] != 1 {
		t.Errorf("the transport got %v; want only %s", f.got, good.To)
	}
	rows, err := o.List(ctx, Filter{Status: []Status{Failed}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 8 || len(refused) != 8 {
		t.Fatalf("%d failed rows, %d refused results; want 8", len(rows), len(refused))
	}
	for _, r := range rows {
		if !strings.Contains(r.LastError, "not made by this ccdir (outbox row fails authentication): possible database tampering") {
			t.Errorf("%s: last error %q", r.To, r.LastError)
		}
	}
	if found, err := o.Unauthentic(ctx); err != nil || len(found) != 0 {
		t.Errorf("Unauthentic after Deliver = %+v, %v; the refused rows are failed, not due", found, err)
	}
	// Retried by hand, they are refused again.
	if _, err := o.Retry(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{}); err != nil || sum != (Summary{Failed: 8, Refused: 8}) {
		t.Errorf("Deliver after Retry = %+v, %v", sum, err)
	}
	if len(f.got) != 1 {
		t.Errorf("the transport got %v after Retry", f.got)
	}
}

// TestOutboxNeedsKey: without its key the outbox queues and delivers
// nothing (it could not vouch for what it sends), but it still lists.
func TestOutboxNeedsKey(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	o.Key = nil
	if _, err := o.Enqueue(ctx, mail(KindReply, "1", rcpt("a", 1), 100)); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("Enqueue without a key: %v", err)
	}
	if _, err := o.Deliver(ctx, newFake(), Filter{}, DeliverOptions{}); err == nil {
		t.Error("Deliver without a key: no error")
	}
	if _, err := o.List(ctx, Filter{}); err != nil {
		t.Error(err)
	}
}
