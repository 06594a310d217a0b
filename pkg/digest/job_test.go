package digest_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"
	"github.com/emersion/go-smtp"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
)

// jobNow is the fixed clock of the job tests, well before the wall clock
// so that anything dated by the wall clock by mistake shows.
var jobNow = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// newJobStore makes a directory with n admin contacts of pt, each with
// its own Ed25519 key, and a job delivering to t with the fixed clock.
func newJobStore(t *testing.T, n int, tr outbox.Transport) *digest.Job {
	t.Helper()
	ctx := context.Background()
	clock := func() time.Time { return jobNow }
	dirKey := keystest.NewSecret(t, "Job Test Directory", "dir@ccdir.example")
	pub, err := dirKey.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	store, err := directory.Create(ctx, filepath.Join(t.TempDir(), "directory.db"), directory.Info{
		Name: "Job Test Directory", Address: "dir@ccdir.example",
		KeyFingerprint: dirKey.Fingerprint(), PublicKey: string(pub),
	}, directory.Options{Signer: dirKey, Now: clock, Migrations: slices.Concat(outbox.Migrations, digest.Migrations, liveness.Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	_, err = store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		if _, err := tx.AddMember(directory.Member{TLD: "pt", Org: "DNS.PT", Country: "PT"}); err != nil {
			return err
		}
		for i := range n {
			name, email := fmt.Sprintf("Contact %03d", i), fmt.Sprintf("c%03d@dns.pt", i)
			sec, err := keys.Generate(name, email, keys.AlgoEd25519, jobNow.Add(-24*time.Hour), nil)
			if err != nil {
				return err
			}
			p := sec.Public()
			armored, err := p.Armored()
			if err != nil {
				return err
			}
			_, err = tx.AddContact(directory.Contact{
				Email: email, Name: name,
				Phones: []directory.Phone{{Number: "+351212345678"}},
				Roles:  []directory.Role{{TLD: "pt", Role: directory.RoleAdmin}},
				Key: &directory.Key{Fingerprint: p.Fingerprint, Algorithm: p.Algorithm,
					Created: p.Created.UTC().Format(time.RFC3339), Armored: string(armored)},
			})
			if err != nil {
				return fmt.Errorf("contact %s: %w", email, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.Open(ctx, store.DB())
	if err != nil {
		t.Fatal(err)
	}
	ob.Key = outbox.NewKey()
	ob.Now = clock
	dirKey.SetClock(clock)
	return &digest.Job{Store: store, Secret: dirKey, Outbox: ob, Transport: tr, Now: clock,
		Config: digest.Config{Attach: []string{}}, Delivery: outbox.DeliverOptions{Connections: 2}}
}

func smtpTransport(t *testing.T, srv *smtptest.Server) outbox.Transport {
	t.Helper()
	tr, err := outbox.NewTransport(srv.URL, outbox.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func countRows(t *testing.T, j *digest.Job, query string, args ...any) int {
	t.Helper()
	var n int
	if err := j.Store.DB().QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// A run interrupted after the first batch of messages is queued (its
// context cancelled from the progress callback, as a crash would stop it)
// is finished by the next run: the rest is queued, everyone gets exactly
// one copy, and a further run sends nothing.
func TestSendResumesInterruptedQueue(t *testing.T) {
	const n = 200 // two batches of 128
	digest.SetQueueBatch(t, 128)
	srv := smtptest.NewServer(t, smtptest.Options{})
	j := newJobStore(t, n, smtpTransport(t, srv))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j.Progress = func(p digest.Progress) {
		if p.Phase == "queue" && p.Done > 0 {
			cancel()
		}
	}
	if _, err := j.Send(ctx, digest.SendOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Send: err = %v, want context.Canceled", err)
	}
	queued := countRows(t, j, `SELECT count(*) FROM outbox`)
	if queued == 0 || queued >= n || queued%128 != 0 {
		t.Fatalf("after the interruption the outbox has %d messages, want a whole number of batches below %d", queued, n)
	}
	if got := countRows(t, j, `SELECT count(*) FROM digest_recipients WHERE state = 'pending'`); got != n-queued {
		t.Fatalf("%d recipients pending, want %d", got, n-queued)
	}
	if srv.Received() != 0 {
		t.Fatalf("the sink got %d messages before delivery began", srv.Received())
	}

	j.Progress = nil
	res, err := j.Send(context.Background(), digest.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Digest != 1 || res.Recipients != n || res.Queued != n-queued || res.Sent != n || res.Deferred != 0 || res.Failed != 0 {
		t.Fatalf("resumed run: %+v", res)
	}
	counts := srv.Counts()
	if len(counts) != n {
		t.Fatalf("%d recipients got mail, want %d", len(counts), n)
	}
	for rcpt, c := range counts {
		if c != 1 {
			t.Errorf("%s got %d copies", rcpt, c)
		}
	}

	res, err = j.Send(context.Background(), digest.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Due || res.Digest != 0 || res.Sent != 0 || !res.NextDue.Equal(jobNow.AddDate(0, 1, 0)) {
		t.Fatalf("third run: %+v", res)
	}
	if got := countRows(t, j, `SELECT count(*) FROM digests`); got != 1 {
		t.Fatalf("%d digests recorded, want 1", got)
	}
	if srv.Received() != n {
		t.Fatalf("the sink got %d messages in all, want %d", srv.Received(), n)
	}
}

// A dry run records no digest, queues nothing, sends nothing and leaves
// the ledger head as it was, but counts the recipients.
func TestSendDryRunWritesNothing(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{})
	j := newJobStore(t, 3, smtpTransport(t, srv))
	ctx := context.Background()
	head, err := j.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Send(ctx, digest.SendOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.DryRun || !res.Due || res.Recipients != 3 || res.Serial != head.Serial || res.Digest != 0 || res.Queued != 0 || res.Sent != 0 {
		t.Fatalf("dry run: %+v", res)
	}
	for _, table := range []string{"digests", "digest_recipients", "outbox"} {
		if got := countRows(t, j, `SELECT count(*) FROM `+table); got != 0 {
			t.Errorf("%s has %d rows after a dry run", table, got)
		}
	}
	after, err := j.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after != head {
		t.Errorf("head moved from %v to %v", head, after)
	}
	if srv.Received() != 0 || srv.Connections() != 0 {
		t.Errorf("a dry run talked to the server: %d messages, %d connections", srv.Received(), srv.Connections())
	}
}

// Temporary refusals are retried after their backoff, a permanent one is
// failed with the server's text at once, a connection dropped in DATA is
// retried; when the clock has moved past every backoff, each deliverable
// recipient has exactly one copy.
func TestSendDeliveryFaults(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{
		Fail: func(rcpt string, attempt int) *smtp.SMTPError {
			switch {
			case rcpt == "c000@dns.pt" && attempt <= 2:
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"}
			case rcpt == "c001@dns.pt":
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "mailbox unknown"}
			}
			return nil
		},
		Drop:           func(rcpt string, attempt int) bool { return rcpt == "c002@dns.pt" && attempt == 1 },
		DropAfterBytes: 100,
	})
	j := newJobStore(t, 5, smtpTransport(t, srv))
	now := jobNow
	j.Now = func() time.Time { return now }
	ctx := context.Background()

	res, err := j.Send(ctx, digest.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != 2 || res.Deferred != 2 || res.Failed != 1 {
		t.Fatalf("first run: %d sent, %d deferred, %d failed; want 2, 2, 1", res.Sent, res.Deferred, res.Failed)
	}
	for i, want := range []struct{ sent, deferred int }{{1, 1}, {1, 0}, {0, 0}} {
		now = now.Add(outbox.Backoff(i + 1))
		res, err = j.Send(ctx, digest.SendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Due || res.Sent != want.sent || res.Deferred != want.deferred || res.Failed != 0 {
			t.Fatalf("rerun %d: %+v, want %d sent, %d deferred", i+1, res, want.sent, want.deferred)
		}
	}
	for i := range 5 {
		rcpt := fmt.Sprintf("c%03d@dns.pt", i)
		want := 1
		if rcpt == "c001@dns.pt" {
			want = 0
		}
		if got := srv.Count(rcpt); got != want {
			t.Errorf("%s got %d copies, want %d", rcpt, got, want)
		}
	}
	if srv.Attempts("c001@dns.pt") != 1 {
		t.Errorf("the permanently refused recipient was tried %d times", srv.Attempts("c001@dns.pt"))
	}
	rs, err := digest.Recipients(ctx, j.Store.DB(), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		want := "sent"
		if r.Email == "c001@dns.pt" {
			want = "failed"
			if !strings.Contains(r.Detail, "550") || !strings.Contains(r.Detail, "mailbox unknown") {
				t.Errorf("failed detail %q does not carry the server's answer", r.Detail)
			}
		}
		if r.State != want {
			t.Errorf("%s is %s, want %s", r.Email, r.State, want)
		}
	}
	ds, err := digest.Digests(ctx, j.Store.DB())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].Sent != 4 || ds[0].Failed != 1 || ds[0].Waiting != 0 {
		t.Fatalf("digests: %+v", ds)
	}
}

// A digest resumed long after it was recorded encrypts to keys as they
// are then: a recipient whose key expired meanwhile is skipped with the
// reason (never sent to an expired key, never blocking the others).
func TestResumeSkipsKeyExpiredSince(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.NewServer(t, smtptest.Options{})
	j := newJobStore(t, 3, smtpTransport(t, srv))
	cfg := &packet.Config{Time: func() time.Time { return jobNow.Add(-24 * time.Hour) }, Algorithm: packet.PubKeyAlgoEdDSA,
		Curve: packet.Curve25519, KeyLifetimeSecs: uint32((10 * 24 * time.Hour).Seconds())}
	e, err := openpgp.NewEntity("Short Lived", "", "short@dns.pt", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var raw strings.Builder
	if err := e.Serialize(&raw); err != nil {
		t.Fatal(err)
	}
	pub, err := keys.ParsePublicOne([]byte(raw.String()))
	if err != nil {
		t.Fatal(err)
	}
	armored, err := pub.Armored()
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.AddContact(directory.Contact{Email: "short@dns.pt", Name: "Short Lived",
			Phones: []directory.Phone{{Number: "+351212345679"}}, Roles: []directory.Role{{TLD: "pt", Role: directory.RoleAdmin}},
			Key: &directory.Key{Fingerprint: pub.Fingerprint, Algorithm: pub.Algorithm, Created: pub.Created.UTC().Format(time.RFC3339),
				Expires: pub.Expires.UTC().Format(time.RFC3339), Armored: string(armored)}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Interrupted after the first message is queued (batches of one):
	// the short-lived key's contact, last by email, is still pending.
	digest.SetQueueBatch(t, 1)
	ictx, cancel := context.WithCancel(ctx)
	j.Progress = func(p digest.Progress) { cancel() }
	if _, err := j.Send(ictx, digest.SendOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Send: %v", err)
	}
	j.Progress = nil
	if got := countRows(t, j, `SELECT count(*) FROM digest_recipients WHERE state = 'pending' AND email = 'short@dns.pt'`); got != 1 {
		t.Fatal("the short-lived key's contact is not pending after the interruption")
	}
	// Resumed a month later: the short-lived key has expired.
	later := jobNow.AddDate(0, 1, 0)
	j.Now = func() time.Time { return later }
	j.Outbox.Now = j.Now
	res, err := j.Send(ctx, digest.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.Sent != 3 || res.Recipients != 3 || len(res.Skipped) != 1 ||
		res.Skipped[0].Email != "short@dns.pt" || !strings.Contains(res.Skipped[0].Reason, "expired") {
		t.Fatalf("resumed run: %+v", res)
	}
	if c := srv.Counts(); len(c) != 3 || c["short@dns.pt"] != 0 {
		t.Fatalf("the sink got %v", c)
	}
}

// Send delivers with the caller's Delivery options: one connection when
// asked for one, the caller's OnResult and the job's Progress told of
// every message.
func TestSendUsesDeliveryOptions(t *testing.T) {
	const n = 12
	srv := smtptest.NewServer(t, smtptest.Options{})
	j := newJobStore(t, n, smtpTransport(t, srv))
	var results, delivered int
	j.Delivery = outbox.DeliverOptions{Connections: 1, OnResult: func(outbox.Row, error) { results++ }}
	j.Progress = func(p digest.Progress) {
		if p.Phase == "deliver" {
			delivered++
		}
	}
	res, err := j.Send(context.Background(), digest.SendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Sent != n || results != n || delivered != n {
		t.Errorf("sent %d, OnResult called %d times, progress told of %d deliveries; want %d each", res.Sent, results, delivered, n)
	}
	if got := srv.Connections(); got != 1 {
		t.Errorf("%d connections to the server, want 1 (Delivery.Connections)", got)
	}
}

// The recipient rows of an interrupted digest are no authority on who
// gets it or with which key: a row changed behind ccdir's back (another
// contact's key, an address that was no contact, a contact's row gone)
// is tampering when the digest is resumed: the run fails with a
// *directory.TamperError naming the row, and nothing more is queued or
// sent, not even what was queued before.
func TestResumeRefusesTamperedRecipientRows(t *testing.T) {
	for _, tc := range []struct{ name, sql, want string }{
		{"another key", `UPDATE digest_recipients SET fingerprint = (SELECT fingerprint FROM digest_recipients WHERE email = 'c000@dns.pt') WHERE email = 'c002@dns.pt'`,
			`table digest_recipients, row digest_id=1 ("c002@dns.pt"): names key`},
		{"no contact", `INSERT INTO digest_recipients (digest_id, email, fingerprint, state) SELECT 1, 'eve@evil.example', fingerprint, 'pending' FROM digest_recipients WHERE email = 'c002@dns.pt'`,
			`row digest_id=1 ("eve@evil.example"): eve@evil.example was no contact (digest 1 was made at serial 6)`},
		{"row gone", `DELETE FROM digest_recipients WHERE email = 'c002@dns.pt'`,
			`row digest_id=1 ("c002@dns.pt"): is missing, but c002@dns.pt was a contact`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			srv := smtptest.NewServer(t, smtptest.Options{})
			j := newJobStore(t, 4, smtpTransport(t, srv))
			digest.SetQueueBatch(t, 1)
			ictx, cancel := context.WithCancel(ctx)
			j.Progress = func(p digest.Progress) { cancel() }
			if _, err := j.Send(ictx, digest.SendOptions{}); !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted Send: %v", err)
			}
			j.Progress = nil
			queued := countRows(t, j, `SELECT count(*) FROM outbox`)
			if got := countRows(t, j, `SELECT count(*) FROM digest_recipients WHERE state = 'pending' AND email = 'c002@dns.pt'`); got != 1 {
				t.Fatal("c002 is not pending after the interruption")
			}
			if _, err := j.Store.DB().Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			_, err := j.Send(ctx, digest.SendOptions{})
			var te *directory.TamperError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("resumed Send: %v, want a TamperError naming %q", err, tc.want)
			}
			if got := countRows(t, j, `SELECT count(*) FROM outbox`); got != queued {
				t.Fatalf("the outbox went from %d to %d messages", queued, got)
			}
			if srv.Received() != 0 {
				t.Fatalf("the sink got %d messages", srv.Received())
			}
		})
	}
}
