package fanout

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

var queueNow = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

type queueWorld struct {
	store   *directory.Store
	ob      *outbox.Outbox
	dir     *keys.Secret
	secrets []*keys.Secret
	rcpts   []*pgpmime.Recipient
}

// newQueueWorld makes a directory database with the outbox's tables and
// n recipients, each with an Ed25519 key of its own.
func newQueueWorld(t *testing.T, n int) *queueWorld {
	t.Helper()
	ctx := context.Background()
	clock := func() time.Time { return queueNow }
	dirKey := keystest.NewSecret(t, "Fanout Test Directory", "dir@ccdir.example")
	dirKey.SetClock(clock)
	pub, err := dirKey.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	store, err := directory.Create(ctx, filepath.Join(t.TempDir(), "directory.db"), directory.Info{
		Name: "Fanout Test Directory", Address: "dir@ccdir.example",
		KeyFingerprint: dirKey.Fingerprint(), PublicKey: string(pub),
	}, directory.Options{Signer: dirKey, Now: clock, Migrations: outbox.Migrations})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ob, err := outbox.Open(ctx, store.DB())
	if err != nil {
		t.Fatal(err)
	}
	ob.Key = outbox.NewKey()
	ob.Now = clock
	w := &queueWorld{store: store, ob: ob, dir: dirKey}
	for i := range n {
		sec, err := keys.Generate(fmt.Sprintf("R %d", i), rcptAddr(i), keys.AlgoEd25519, queueNow.Add(-24*time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pgpmime.NewRecipient(sec.Public(), queueNow)
		if err != nil {
			t.Fatal(err)
		}
		w.secrets = append(w.secrets, sec)
		w.rcpts = append(w.rcpts, r)
	}
	return w
}

func rcptAddr(i int) string { return fmt.Sprintf("r%02d@example.org", i) }

// sealed signs text once and seals it for many recipients.
func (w *queueWorld) sealed(t *testing.T, text string) *pgpmime.Sealed {
	t.Helper()
	inner, err := pgpmime.BuildInner(pgpmime.Protected{From: mail.Address{Address: "dir@ccdir.example"}, ToGroup: "Everyone",
		Subject: "Fan-out test", Date: queueNow}, []pgpmime.Part{{ContentType: "text/plain", Body: []byte(text)}})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := pgpmime.Sign(inner, w.dir)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := pgpmime.NewEncrypter(signed, queueNow)
	if err != nil {
		t.Fatal(err)
	}
	return enc.Seal(nil)
}

func (w *queueWorld) copyOf(s *pgpmime.Sealed) func(i int) (Copy, error) {
	return func(i int) (Copy, error) {
		return Copy{To: rcptAddr(i), Key: w.rcpts[i], Sealed: s, Outer: pgpmime.Outer{
			From: mail.Address{Address: "dir@ccdir.example"}, To: mail.Address{Address: rcptAddr(i)},
			Subject: "Encrypted message", Date: queueNow, MessageID: fmt.Sprintf("m%d@ccdir.example", i)}}, nil
	}
}

// delivered delivers the outbox into a maildir and returns each message
// by its recipient.
func (w *queueWorld) delivered(t *testing.T) map[string][]byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "maildir")
	tr, err := outbox.NewTransport("maildir:"+dir, outbox.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ob.Deliver(context.Background(), tr, outbox.Filter{}, outbox.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "new", "*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		to, err := mail.ParseAddress(m.Header.Get("To"))
		if err != nil {
			t.Fatal(err)
		}
		if _, dup := out[to.Address]; dup {
			t.Errorf("two messages to %s", to.Address)
		}
		out[to.Address] = b
	}
	return out
}

func (w *queueWorld) blobs(t *testing.T) int {
	t.Helper()
	var n int
	if err := w.store.DB().QueryRow(`SELECT count(*) FROM outbox_blob`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQueueRoundTrip: seven copies in batches of three, each batch in a
// transaction of its own; every copy opens with its own key only, the
// shared part is stored once, and each batch is recorded and committed.
func TestQueueRoundTrip(t *testing.T) {
	const n = 7
	w := newQueueWorld(t, n)
	s := w.sealed(t, "the one text for everyone\r\n")
	var done, committed [][]int
	q := &Queue{Outbox: w.ob, Kind: "test", Ref: "1", From: "dir@ccdir.example", DB: w.store.DB(), Batch: 3,
		Done: func(ctx context.Context, tx *sql.Tx, batch []Outcome) error {
			var ix []int
			for _, o := range batch {
				ix = append(ix, o.Index)
				if o.Err != nil || o.To != rcptAddr(o.Index) {
					t.Errorf("outcome %+v", o)
				}
			}
			done = append(done, ix)
			return nil
		},
		Committed: func(batch []Outcome) { committed = append(committed, []int{batch[0].Index, len(batch)}) },
	}
	out, err := q.Run(context.Background(), n, w.copyOf(s))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != n {
		t.Fatalf("%d outcomes, want %d", len(out), n)
	}
	if got := fmt.Sprint(done); got != "[[0 1 2] [3 4 5] [6]]" {
		t.Errorf("batches %s", got)
	}
	if got := fmt.Sprint(committed); got != "[[0 3] [3 3] [6 1]]" {
		t.Errorf("committed %s", got)
	}
	if got := w.blobs(t); got != 1 {
		t.Errorf("%d shared parts stored, want 1", got)
	}
	msgs := w.delivered(t)
	if len(msgs) != n {
		t.Fatalf("%d messages delivered, want %d", len(msgs), n)
	}
	for i := range n {
		m := msgs[rcptAddr(i)]
		o, err := pgpmime.Open(bytes.NewReader(m), w.secrets[i], pgpmime.OpenOptions{Now: queueNow})
		if err != nil {
			t.Fatalf("copy %d does not open with its key: %v", i, err)
		}
		if !o.Encrypted || !strings.Contains(string(o.Entity), "the one text for everyone") {
			t.Errorf("copy %d: encrypted %v, entity %q", i, o.Encrypted, o.Entity)
		}
		other := w.secrets[(i+1)%n]
		if _, err := pgpmime.Open(bytes.NewReader(m), other, pgpmime.OpenOptions{Now: queueNow}); !errors.Is(err, pgpmime.ErrDecrypt) {
			t.Errorf("copy %d opens with another's key (err %v)", i, err)
		}
	}
}

// TestQueueInTx: with Tx, every batch is queued in the caller's
// transaction; two sealed entities make two shared parts, each stored
// once; a rollback leaves nothing.
func TestQueueInTx(t *testing.T) {
	const n = 5
	w := newQueueWorld(t, n)
	a, b := w.sealed(t, "text A\r\n"), w.sealed(t, "text B\r\n")
	ctx := context.Background()
	for _, commit := range []bool{false, true} {
		tx, err := w.store.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		copyA, copyB := w.copyOf(a), w.copyOf(b)
		q := &Queue{Outbox: w.ob, Kind: "test", Ref: "2", From: "dir@ccdir.example", Tx: tx, Batch: 2}
		if _, err := q.Run(ctx, n, func(i int) (Copy, error) {
			if i == 0 {
				return copyB(i)
			}
			return copyA(i)
		}); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(); err != nil {
				t.Fatal(err)
			}
		} else if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		want := 0
		if commit {
			want = 2
		}
		if got := w.blobs(t); got != want {
			t.Errorf("commit %v: %d shared parts, want %d", commit, got, want)
		}
	}
	msgs := w.delivered(t)
	if len(msgs) != n {
		t.Fatalf("%d messages, want %d", len(msgs), n)
	}
	for i := range n {
		o, err := pgpmime.Open(bytes.NewReader(msgs[rcptAddr(i)]), w.secrets[i], pgpmime.OpenOptions{Now: queueNow})
		if err != nil {
			t.Fatal(err)
		}
		want := "text A"
		if i == 0 {
			want = "text B"
		}
		if !strings.Contains(string(o.Entity), want) {
			t.Errorf("copy %d does not hold %q", i, want)
		}
	}
}

// TestQueueStops: an error that is not about a key stops the run; the
// batches before it stay queued, the one that failed queues nothing.
func TestQueueStops(t *testing.T) {
	const n = 5
	w := newQueueWorld(t, n)
	s := w.sealed(t, "text\r\n")
	boom := errors.New("signing failed")
	ok := w.copyOf(s)
	q := &Queue{Outbox: w.ob, Kind: "test", Ref: "3", From: "dir@ccdir.example", DB: w.store.DB(), Batch: 2}
	out, err := q.Run(context.Background(), n, func(i int) (Copy, error) {
		if i == 3 {
			return Copy{}, boom
		}
		return ok(i)
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
	if len(out) != 2 {
		t.Errorf("%d outcomes, want the first batch's 2", len(out))
	}
	if got := len(w.delivered(t)); got != 2 {
		t.Errorf("%d messages queued, want 2", got)
	}
}

// TestQueueDeliveryBetweenBatches: a delivery by another process (a mail
// answered by ccdir process while a digest is being queued) may send a
// committed batch and delete its shared part; the next batch stores the
// part again instead of naming one that is gone, and every copy arrives.
func TestQueueDeliveryBetweenBatches(t *testing.T) {
	const n = 5
	w := newQueueWorld(t, n)
	s := w.sealed(t, "one text, queued while deliveries run\r\n")
	got := map[string][]byte{}
	q := &Queue{Outbox: w.ob, Kind: "test", Ref: "1", From: "dir@ccdir.example", DB: w.store.DB(), Batch: 2,
		Committed: func(batch []Outcome) {
			for k, v := range w.delivered(t) {
				got[k] = v
			}
			if b := w.blobs(t); b != 0 {
				t.Errorf("after delivering batch %d: %d shared parts left", batch[0].Index, b)
			}
		},
	}
	if _, err := q.Run(context.Background(), n, w.copyOf(s)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		o, err := pgpmime.Open(bytes.NewReader(got[rcptAddr(i)]), w.secrets[i], pgpmime.OpenOptions{Now: queueNow})
		if err != nil || !strings.Contains(string(o.Entity), "queued while deliveries run") {
			t.Errorf("copy %d: %v", i, err)
		}
	}
}

// A copy without a sealed entity or key is an error of the caller, not a
// panic in a worker.
func TestQueueIncompleteCopy(t *testing.T) {
	w := newQueueWorld(t, 1)
	q := &Queue{Outbox: w.ob, Kind: "test", Ref: "1", From: "dir@ccdir.example", DB: w.store.DB()}
	_, err := q.Run(context.Background(), 1, func(int) (Copy, error) { return Copy{To: rcptAddr(0)}, nil })
	if err == nil || !strings.Contains(err.Error(), "no sealed entity") {
		t.Fatalf("err %v", err)
	}
}
