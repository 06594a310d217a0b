package outbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
)

const bounceBase = "directory-bounces@ccdir.example"

var taggedRE = regexp.MustCompile(`^directory-bounces\+([0-9]+)-[0-9a-f]{20}@ccdir\.example$`)

// bounceOutbox is an outbox with the bounce address set.
func bounceOutbox(t *testing.T, c *clock) *Outbox {
	o := newOutbox(t, c)
	o.Bounce = bounceBase
	return o
}

// sendAll delivers everything to a fake transport.
func sendAll(t *testing.T, o *Outbox) {
	t.Helper()
	f := newFake()
	if _, err := o.Deliver(context.Background(), f, Filter{}, DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
}

func rowOf(t *testing.T, o *Outbox, to string) Row {
	t.Helper()
	rows, err := o.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.To == to {
			return r
		}
	}
	t.Fatalf("no row to %s", to)
	return Row{}
}

// TestBounceSenderEveryTransport: with Outbox.Bounce, every message goes
// out from LOCAL-bounces+ID-MAC@DOMAIN naming its own id, over SMTP (MAIL
// FROM), sendmail (-f) and maildir (Return-Path); the row's MAC covers
// that sender (Deliver sends it: Unauthentic finds nothing), and a
// message queued again is not queued twice.
func TestBounceSenderEveryTransport(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, from string, id int64) {
		t.Helper()
		m := taggedRE.FindStringSubmatch(from)
		if m == nil || m[1] != fmt.Sprint(id) {
			t.Fatalf("envelope sender %q, want the tagged bounce address of message %d", from, id)
		}
	}
	t.Run("smtp", func(t *testing.T) {
		srv := smtptest.NewServer(t, smtptest.Options{KeepData: true})
		o := bounceOutbox(t, nil)
		mustEnqueue(t, o, mail(KindDigest, "1", rcpt("a", 1), 300), mail(KindReply, "r", rcpt("a", 2), 300))
		if n, err := o.Enqueue(ctx, mail(KindDigest, "1", rcpt("a", 1), 300)); err != nil || n != 0 {
			t.Fatalf("re-Enqueue = %d, %v; want 0 (queued before)", n, err)
		}
		if bad, err := o.Unauthentic(ctx); err != nil || len(bad) != 0 {
			t.Fatalf("Unauthentic = %v, %v", bad, err)
		}
		tr, err := NewTransport(srv.URL, TransportOptions{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{})
		if err != nil || sum != (Summary{Sent: 2}) {
			t.Fatalf("Deliver = %+v, %v", sum, err)
		}
		for _, m := range srv.Messages() {
			check(t, m.From, rowOf(t, o, m.To[0]).ID)
			if rowOf(t, o, m.To[0]).From != m.From {
				t.Errorf("outbox list shows sender %q, sent %q", rowOf(t, o, m.To[0]).From, m.From)
			}
		}
	})
	t.Run("sendmail", func(t *testing.T) {
		tr, out := fakeSendmail(t, 10*time.Second)
		o := bounceOutbox(t, nil)
		mustEnqueue(t, o, mail(KindDigest, "1", "sec@nic.example", 300))
		if sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{}); err != nil || sum != (Summary{Sent: 1}) {
			t.Fatalf("Deliver = %+v, %v", sum, err)
		}
		args, _ := os.ReadFile(filepath.Join(out, "1.args"))
		a := strings.Split(string(args), "\n")
		if len(a) < 3 || a[1] != "-f" {
			t.Fatalf("sendmail args %q", args)
		}
		check(t, a[2], rowOf(t, o, "sec@nic.example").ID)
	})
	t.Run("maildir", func(t *testing.T) {
		d := t.TempDir()
		tr, err := NewTransport("maildir:"+d, TransportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		o := bounceOutbox(t, nil)
		m := mail(KindDigest, "1", "sec@nic.example", 300)
		mustEnqueue(t, o, m)
		if sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{}); err != nil || sum != (Summary{Sent: 1}) {
			t.Fatalf("Deliver = %+v, %v", sum, err)
		}
		b, err := os.ReadFile(filepath.Join(d, "new", MaildirName(m.Kind, m.Ref, m.To)))
		if err != nil {
			t.Fatal(err)
		}
		first, rest, _ := strings.Cut(string(b), "\n")
		rp, ok := strings.CutPrefix(first, "Return-Path: <")
		if !ok || !strings.HasSuffix(rp, ">") {
			t.Fatalf("first line %q, want Return-Path", first)
		}
		check(t, strings.TrimSuffix(rp, ">"), rowOf(t, o, m.To).ID)
		if rest != string(toLF(m.Data)) {
			t.Error("the message after Return-Path is not the one queued")
		}
	})
}

// TestBounceSenderTooLong: a bounce address that cannot carry a tag
// within 254 bytes refuses the batch, nothing written.
func TestBounceSenderTooLong(t *testing.T) {
	o := newOutbox(t, nil)
	o.Bounce = strings.Repeat("a", 200) + "@" + strings.Repeat("b", 20) + ".example"
	if _, err := o.Enqueue(context.Background(), mail(KindDigest, "1", rcpt("a", 1), 300)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Enqueue = %v, want ErrInvalid", err)
	}
	if n := dbInt(t, o, `SELECT count(*) FROM outbox`); n != 0 {
		t.Fatalf("%d rows written", n)
	}
}

// TestBounced: a report to a message's own tagged address marks it
// bounced with the diagnostic; forged, truncated, other-message and
// untagged addresses, unknown ids, and messages never sent change
// nothing; a second report for the same message changes nothing.
func TestBounced(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	o := bounceOutbox(t, c)
	mustEnqueue(t, o, mail(KindDigest, "1", "a@nic.example", 300), mail(KindDigest, "1", "b@nic.example", 300))
	a, b := rowOf(t, o, "a@nic.example"), rowOf(t, o, "b@nic.example")
	// Before it is sent, a report about it is not believed.
	if _, err := o.Bounced(ctx, bounceBase, a.From, "5.1.1 unknown"); !errors.Is(err, ErrNotSent) {
		t.Fatalf("Bounced before sending = %v, want ErrNotSent", err)
	}
	sendAll(t, o)

	otherID := strings.Replace(a.From, fmt.Sprintf("+%d-", a.ID), fmt.Sprintf("+%d-", b.ID), 1)
	local, domain, _ := strings.Cut(a.From, "@")
	for _, tc := range []struct {
		name, addr string
		want       error
	}{
		{"untagged", bounceBase, ErrNoTag},
		{"another address", "directory@ccdir.example", ErrNoTag},
		{"another domain", local + "@evil.example", ErrNoTag},
		{"forged mac", local[:len(local)-4] + "beef@" + domain, ErrBadTag},
		{"truncated", local[:len(local)-1] + "@" + domain, ErrBadTag},
		{"no mac", fmt.Sprintf("directory-bounces+%d@%s", a.ID, domain), ErrBadTag},
		{"other message's id", otherID, ErrBadTag},
		{"unknown id", strings.Replace(a.From, fmt.Sprintf("+%d-", a.ID), "+999-", 1), ErrNoMessage},
		{"garbage", "directory-bounces+x-y@" + domain, ErrBadTag},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := o.Bounced(ctx, bounceBase, tc.addr, "5.1.1 forged"); !errors.Is(err, tc.want) {
				t.Fatalf("Bounced(%q) = %v, want %v", tc.addr, err, tc.want)
			}
			if c := counts(t, o); c[Bounced] != 0 || c[Sent] != 2 {
				t.Fatalf("counts %v after a refused report", c)
			}
		})
	}

	c.Add(time.Hour)
	up := strings.ToUpper(local) + "@" + strings.ToUpper(domain) // an MTA may change the case
	r, err := o.Bounced(ctx, bounceBase, up, "smtp; 550 5.1.1 <a@nic.example>: Recipient address rejected")
	if err != nil || r.ID != a.ID || r.Status != Bounced {
		t.Fatalf("Bounced = %+v, %v", r, err)
	}
	got := rowOf(t, o, "a@nic.example")
	if got.Status != Bounced || !strings.Contains(got.LastError, "5.1.1") {
		t.Fatalf("row after the bounce: %+v", got)
	}
	if rowOf(t, o, "b@nic.example").Status != Sent {
		t.Fatal("the other message changed")
	}
	if _, err := o.Bounced(ctx, bounceBase, a.From, "again"); !errors.Is(err, ErrAlreadyBounced) {
		t.Fatalf("second report = %v, want ErrAlreadyBounced", err)
	}
	if got := rowOf(t, o, "a@nic.example"); got.LastError != r.LastError {
		t.Fatalf("second report changed the diagnostic to %q", got.LastError)
	}
}

// TestBounceRuns: consecutive bounces per recipient, ended by a message
// sent that did not bounce; failed and waiting messages neither count
// nor end a run.
func TestBounceRuns(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	o := bounceOutbox(t, c)
	bounce := func(to string, ref string, diag string) {
		t.Helper()
		if _, err := o.Bounced(ctx, bounceBase, rowOfRef(t, o, to, ref).From, diag); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 4; i++ {
		ref := fmt.Sprint(i)
		mustEnqueue(t, o, mail(KindDigest, ref, "a@nic.example", 200), mail(KindDigest, ref, "B@nic.example", 200))
		sendAll(t, o)
		c.Add(time.Hour)
	}
	bounce("a@nic.example", "1", "d1")
	bounce("a@nic.example", "3", "d3")
	bounce("a@nic.example", "4", "d4")
	bounce("B@nic.example", "4", "b4")
	// A message that failed at the transport does not end a's run.
	mustEnqueue(t, o, mail(KindReply, "f", "a@nic.example", 200))
	if _, err := o.Deliver(ctx, &fakeTransport{got: map[string]int{}, tries: map[string]int{}, fail: func(string, int) error {
		return &DeliveryError{Code: 550, Msg: "no"}
	}}, Filter{}, DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	runs, err := BounceRuns(ctx, o.db)
	if err != nil {
		t.Fatal(err)
	}
	if r := runs["a@nic.example"]; r.Bounces != 2 || r.Diagnostic != "d4" || r.Last.IsZero() {
		t.Errorf("a's run = %+v, want 2 ending with d4", r)
	}
	if r := runs["b@nic.example"]; r.Bounces != 1 || r.To != "B@nic.example" {
		t.Errorf("B's run = %+v, want 1", r)
	}
	// A fresh message sent, not bounced, ends the run.
	mustEnqueue(t, o, mail(KindDigest, "5", "a@nic.example", 200))
	sendAll(t, o)
	runs, _ = BounceRuns(ctx, o.db)
	if r, ok := runs["a@nic.example"]; ok {
		t.Errorf("a's run after a good delivery = %+v, want none", r)
	}
}

func rowOfRef(t *testing.T, o *Outbox, to, ref string) Row {
	t.Helper()
	rows, err := o.List(context.Background(), Filter{Ref: ref})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.To == to {
			return r
		}
	}
	t.Fatalf("no row %s to %s", ref, to)
	return Row{}
}

// TestMigrateBounced: step 3 keeps the rows of an outbox made by step 2
// (ids, MACs: they are still sent) and then takes the status bounced.
func TestMigrateBounced(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if err := directory.Migrate(ctx, db, Migrations[:2]); err != nil {
		t.Fatal(err)
	}
	old := &Outbox{db: db, Key: testKey}
	m := mail(KindDigest, "1", "a@nic.example", 300)
	if _, err := old.Enqueue(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE outbox SET status = 'bounced'`); err == nil {
		t.Fatal("step 2 took the status bounced")
	}
	o, err := openOutbox(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	o.Bounce = bounceBase
	if bad, err := o.Unauthentic(ctx); err != nil || len(bad) != 0 {
		t.Fatalf("Unauthentic after step 3 = %v, %v", bad, err)
	}
	mustEnqueue(t, o, mail(KindDigest, "2", "a@nic.example", 300))
	sendAll(t, o)
	if c := counts(t, o); c[Sent] != 2 {
		t.Fatalf("counts %v", c)
	}
	if _, err := o.Bounced(ctx, bounceBase, rowOfRef(t, o, "a@nic.example", "2").From, "5.1.1"); err != nil {
		t.Fatal(err)
	}
}

// TestFailedAt: a message that fails records when (Row.FailedAt), a
// bounce when it came (Row.BouncedAt), Retry forgets the failure; step
// 4 adds the column to an outbox made by step 3, whose failed messages
// keep no time.
func TestFailedAt(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	if err := directory.Migrate(ctx, db, Migrations[:3]); err != nil {
		t.Fatal(err)
	}
	old := &Outbox{db: db, Key: testKey}
	mustEnqueue(t, old, mail(KindDigest, "1", "old@nic.example", 300))
	if _, err := db.Exec(`UPDATE outbox SET status = 'failed'`); err != nil {
		t.Fatal(err)
	}
	o, err := openOutbox(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	o.Now, o.Bounce = c.Now, bounceBase
	if r := rowOf(t, o, "old@nic.example"); r.Status != Failed || !r.FailedAt.IsZero() {
		t.Fatalf("failed before step 4: %+v", r)
	}
	mustEnqueue(t, o, mail(KindDigest, "1", "a@nic.example", 300), mail(KindDigest, "1", "b@nic.example", 300))
	f := newFake()
	f.fail = func(to string, _ int) error {
		if to == "b@nic.example" {
			return &DeliveryError{Code: 550, Enhanced: "5.1.1", Msg: "no such user"}
		}
		return nil
	}
	c.Add(time.Hour)
	sent := c.Now()
	if _, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{Now: c.Now}); err != nil {
		t.Fatal(err)
	}
	if r := rowOf(t, o, "b@nic.example"); r.Status != Failed || !r.FailedAt.Equal(sent) || !r.BouncedAt.IsZero() {
		t.Fatalf("failed: %+v, want failed at %v", r, sent)
	}
	c.Add(48 * time.Hour)
	a := rowOf(t, o, "a@nic.example")
	if r, err := o.Bounced(ctx, bounceBase, a.From, "5.1.1 gone"); err != nil || !r.BouncedAt.Equal(c.Now()) {
		t.Fatalf("Bounced = %+v, %v; want bounced at %v", r, err, c.Now())
	}
	if r := rowOf(t, o, "a@nic.example"); r.Status != Bounced || !r.BouncedAt.Equal(c.Now()) || !r.SentAt.Equal(sent) || !r.FailedAt.IsZero() {
		t.Fatalf("bounced: %+v, want sent at %v, bounced at %v", r, sent, c.Now())
	}
	if n, err := o.Retry(ctx, nil); err != nil || n != 2 {
		t.Fatalf("Retry = %d, %v", n, err)
	}
	if r := rowOf(t, o, "b@nic.example"); r.Status != Queued || !r.FailedAt.IsZero() {
		t.Fatalf("retried: %+v", r)
	}
}
