package outbox

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
)

// Messages sharing one part arrive through each transport byte for byte
// as Data + Shared + Tail (LF line endings for maildir and sendmail); the
// part is stored once and deleted when all are sent.
func TestSharedTransports(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		conn int
		// setup returns the transport and a function that returns what
		// the recipients of msgs received.
		setup func(t *testing.T) (Transport, func(msgs []Message) map[string][]byte)
		lf    bool
	}{
		{"maildir", 100, 4, func(t *testing.T) (Transport, func([]Message) map[string][]byte) {
			root := t.TempDir()
			tr, err := NewTransport("maildir:"+root, TransportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return tr, func(msgs []Message) map[string][]byte {
				got := map[string][]byte{}
				for _, m := range msgs {
					got[m.To] = readMaildir(t, root, m)
				}
				return got
			}
		}, true},
		// The fake sendmail numbers its runs without locking: one
		// connection.
		{"sendmail", 20, 1, func(t *testing.T) (Transport, func([]Message) map[string][]byte) {
			tr, out := fakeSendmail(t, 10*time.Second)
			return tr, func(msgs []Message) map[string][]byte {
				got := map[string][]byte{}
				for i := 1; i <= len(msgs); i++ {
					args, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)+".args"))
					if err != nil {
						t.Fatal(err)
					}
					lines := strings.Split(strings.TrimSpace(string(args)), "\n")
					got[lines[len(lines)-1]], err = os.ReadFile(filepath.Join(out, strconv.Itoa(i)+".stdin"))
					if err != nil {
						t.Fatal(err)
					}
				}
				return got
			}
		}, true},
		// go-smtp's server offers CHUNKING: BDAT, over STARTTLS with AUTH.
		{"smtp-bdat", 100, 3, func(t *testing.T) (Transport, func([]Message) map[string][]byte) {
			srv := smtptest.NewServer(t, smtptest.Options{TLS: true, User: sinkUser, Password: sinkPass, KeepData: true})
			return sinkTransport(t, srv, sinkPass), sinkReceived(t, srv)
		}, false},
		// Without CHUNKING: DATA, dot-stuffed (the shared part starts
		// with a dot line).
		{"smtp-data", 50, 2, func(t *testing.T) (Transport, func([]Message) map[string][]byte) {
			srv := smtptest.NewServer(t, smtptest.Options{NoChunking: true, KeepData: true})
			return sinkTransport(t, srv, ""), sinkReceived(t, srv)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			tr, received := tc.setup(t)
			o := newOutbox(t, nil)
			shared, msgs := sharedMail(KindDigest, "p1", "s", tc.n, 150<<10)
			putShared(t, o, shared, msgs)
			mustEnqueue(t, o, msgs...)
			if n := blobRows(t, o); n != 1 {
				t.Fatalf("%d shared parts stored for %d messages, want 1", n, tc.n)
			}
			if total := dbInt(t, o, `SELECT sum(length(body)) + sum(length(tail)) FROM outbox`); total > tc.n*300 {
				t.Fatalf("heads and tails take %d bytes for %d messages", total, tc.n)
			}
			sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{Connections: tc.conn})
			if err != nil || sum != (Summary{Sent: tc.n}) {
				t.Fatalf("Deliver = %+v, %v", sum, err)
			}
			got := received(msgs)
			if len(got) != tc.n {
				t.Fatalf("%d recipients received mail, want %d", len(got), tc.n)
			}
			for _, m := range msgs {
				want := wire(m, shared)
				if tc.lf {
					want = toLF(want)
				}
				if !bytes.Equal(got[m.To], want) {
					t.Fatalf("%s received %d bytes, not the %d of Data+Shared+Tail:\n%.300q", m.To, len(got[m.To]), len(want), got[m.To])
				}
			}
			if n := blobRows(t, o); n != 0 {
				t.Errorf("%d shared parts left after every message was sent", n)
			}
			if n := dbInt(t, o, `SELECT count(*) FROM outbox WHERE body IS NOT NULL OR blob IS NOT NULL OR tail IS NOT NULL`); n != 0 {
				t.Errorf("%d sent rows keep a body, shared part or tail", n)
			}
		})
	}
}

func TestPutBlob(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	a1, err := o.PutBlob(ctx, []byte("shared part A\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	a2, err := o.PutBlob(ctx, []byte("shared part A\r\n"))
	if err != nil || a2 != a1 {
		t.Fatalf("same data again: %d, %v; want %d", a2, err, a1)
	}
	b, err := o.PutBlob(ctx, []byte("shared part B\r\n"))
	if err != nil || b == a1 || b == 0 || a1 == 0 {
		t.Fatalf("ids %d, %d, %v", a1, b, err)
	}
	if n := blobRows(t, o); n != 2 {
		t.Fatalf("%d shared parts stored, want 2", n)
	}
	for name, data := range map[string][]byte{"empty": nil, "too big": make([]byte, MaxMessageBytes+1)} {
		if id, err := o.PutBlob(ctx, data); !errors.Is(err, ErrInvalid) || id != 0 {
			t.Errorf("PutBlob(%s) = %d, %v; want ErrInvalid", name, id, err)
		}
	}
	if n := blobRows(t, o); n != 2 {
		t.Fatalf("%d shared parts stored after refusals, want 2", n)
	}
}

// TestEnqueueShared: one stored part for 100 messages, sizes that count
// it, an unknown part or a total over MaxMessageBytes refusing the whole
// batch, even when the caller commits.
func TestEnqueueShared(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	shared, msgs := sharedMail(KindDigest, "p1", "s", 100, 30<<10)
	id := putShared(t, o, shared, msgs)
	mustEnqueue(t, o, msgs...)
	if n := blobRows(t, o); n != 1 {
		t.Fatalf("%d shared parts for 100 messages", n)
	}
	rows, err := o.List(ctx, Filter{Ref: "p1"})
	if err != nil || len(rows) != 100 {
		t.Fatalf("List = %d rows, %v", len(rows), err)
	}
	for i, r := range rows {
		if want := len(msgs[i].Data) + len(shared) + len(msgs[i].Tail); r.Size != want || r.To != msgs[i].To {
			t.Fatalf("row %d: %s size %d, want %s size %d", i, r.To, r.Size, msgs[i].To, want)
		}
	}
	// Enqueue again (a resumed run): nothing new, still one part.
	if n, err := o.Enqueue(ctx, msgs...); err != nil || n != 0 {
		t.Fatalf("Enqueue again = %d, %v", n, err)
	}

	before := counts(t, o)[Queued]
	good := mail(KindDigest, "p2", rcpt("g", 1), 100)
	_, unknown := sharedMail(KindDigest, "p2", "b", 1, 100)
	unknown[0].Blob = id + 1000
	if n, err := o.Enqueue(ctx, good, unknown[0]); !errors.Is(err, ErrInvalid) || n != 0 || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Enqueue with an unknown shared part = %d, %v", n, err)
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.EnqueueTx(ctx, tx, good, unknown[0]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("EnqueueTx = %v", err)
	}
	if err := tx.Commit(); err != nil { // a careless caller
		t.Fatal(err)
	}
	if after := counts(t, o)[Queued]; after != before {
		t.Fatalf("a refused batch left %d rows", after-before)
	}

	// The cap counts head, shared part and tail.
	big := bytes.Repeat([]byte("x"), MaxMessageBytes-100)
	bigID, err := o.PutBlob(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	fits := Message{Kind: KindDigest, Ref: "big", From: dir, To: rcpt("big", 1), Data: make([]byte, 60), Blob: bigID, Tail: make([]byte, 40)}
	over := fits
	over.To, over.Data = rcpt("big", 2), make([]byte, 61)
	if n, err := o.Enqueue(ctx, over); !errors.Is(err, ErrInvalid) || n != 0 {
		t.Fatalf("Enqueue of MaxMessageBytes+1 = %d, %v", n, err)
	}
	mustEnqueue(t, o, fits)
	if rows, _ := o.List(ctx, Filter{Ref: "big"}); len(rows) != 1 || rows[0].Size != MaxMessageBytes {
		t.Fatalf("big rows = %+v", rows)
	}
}

// TestSharedKeptForRetry: a part stays while a deferred or failed message
// needs it, and goes once they are sent after Retry; a part whose
// messages were all sent goes at once.
func TestSharedKeptForRetry(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	o := newOutbox(t, c)
	sharedA, a := sharedMail(KindDigest, "pa", "a", 10, 20<<10)
	sharedB, b := sharedMail(KindDigest, "pb", "b", 10, 20<<10)
	putShared(t, o, sharedA, a)
	idB := putShared(t, o, sharedB, b)
	mustEnqueue(t, o, append(a, b...)...)
	f := newFake()
	f.keep = true
	f.fail = func(to string, n int) error {
		switch to {
		case b[3].To:
			return &DeliveryError{Temporary: true, Code: 451, Msg: "later"}
		case b[7].To:
			return &DeliveryError{Code: 550, Msg: "no such user"}
		}
		return nil
	}
	opts := DeliverOptions{Now: c.Now}
	sum, err := o.Deliver(ctx, f, Filter{}, opts)
	if err != nil || sum != (Summary{Sent: 18, Deferred: 1, Failed: 1}) {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	if n := blobRows(t, o); n != 1 || dbInt(t, o, `SELECT id FROM outbox_blob`) != int(idB) {
		t.Fatalf("%d shared parts left; want only B's", n)
	}
	if n := dbInt(t, o, `SELECT count(*) FROM outbox WHERE blob = ? AND body IS NOT NULL AND tail IS NOT NULL`, idB); n != 2 {
		t.Fatalf("%d unsent messages keep their parts, want 2", n)
	}
	if n, err := o.Retry(ctx, nil); err != nil || n != 2 {
		t.Fatalf("Retry = %d, %v", n, err)
	}
	f.fail = nil
	sum, err = o.Deliver(ctx, f, Filter{}, opts)
	if err != nil || sum != (Summary{Sent: 2}) {
		t.Fatalf("Deliver after Retry = %+v, %v", sum, err)
	}
	for _, m := range append(a, b...) {
		shared := sharedA
		if m.Ref == "pb" {
			shared = sharedB
		}
		if !bytes.Equal(f.bodies[m.To], wire(m, shared)) || f.got[m.To] != 1 {
			t.Fatalf("%s got %d copies, the last not Data+Shared+Tail", m.To, f.got[m.To])
		}
	}
	if n := blobRows(t, o); n != 0 {
		t.Fatalf("%d shared parts left", n)
	}
}

// TestSharedReopen: a Deliver stopped half way, and the rest delivered
// through a new Open of the same file.
func TestSharedReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ccdir.db")
	root := t.TempDir()
	tr, err := NewTransport("maildir:"+root, TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	db := openDBAt(t, path)
	o, err := openOutbox(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	shared, msgs := sharedMail(KindDigest, "p1", "s", 100, 40<<10)
	putShared(t, o, shared, msgs)
	mustEnqueue(t, o, msgs...)
	sum, err := o.Deliver(ctx, tr, Filter{Limit: 40}, DeliverOptions{})
	if err != nil || sum.Sent != 40 {
		t.Fatalf("first Deliver = %+v, %v", sum, err)
	}
	if n := blobRows(t, o); n != 1 {
		t.Fatalf("%d shared parts while 60 messages wait, want 1", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	o, err = openOutbox(ctx, openDBAt(t, path))
	if err != nil {
		t.Fatal(err)
	}
	sum, err = o.Deliver(ctx, tr, Filter{}, DeliverOptions{})
	if err != nil || sum.Sent != 60 {
		t.Fatalf("Deliver after reopening = %+v, %v", sum, err)
	}
	for _, m := range msgs {
		if b := readMaildir(t, root, m); !bytes.Equal(b, toLF(wire(m, shared))) {
			t.Fatalf("%s differs from Data+Shared+Tail with LF line endings", m.To)
		}
	}
	if got := counts(t, o); got[Sent] != 100 || blobRows(t, o) != 0 {
		t.Fatalf("counts %v, %d shared parts", got, blobRows(t, o))
	}
}

// TestSharedReadOnce: a part is read once per Deliver however many
// chunks use it, unless other parts pushed it out of a full cache.
func TestSharedReadOnce(t *testing.T) {
	ctx := context.Background()
	reads := map[int64]int{}
	testOnlyBlobRead = func(id int64) { reads[id]++ }
	t.Cleanup(func() { testOnlyBlobRead = nil })

	o := newOutbox(t, nil)
	sharedA, a := sharedMail(KindDigest, "pa", "a", 60, 40<<10)
	sharedB, b := sharedMail(KindDigest, "pb", "b", 60, 40<<10)
	idA := putShared(t, o, sharedA, a)
	idB := putShared(t, o, sharedB, b)
	// A, then A and B interleaved, then B: 10 chunks of 16.
	var queue []Message
	queue = append(queue, a[:20]...)
	for i := 20; i < 40; i++ {
		queue = append(queue, a[i], b[i-20])
	}
	queue = append(queue, a[40:]...)
	queue = append(queue, b[20:]...)
	mustEnqueue(t, o, queue...)
	f := newFake()
	f.keep = true
	if sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{}); err != nil || sum.Sent != 120 {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	if reads[idA] != 1 || reads[idB] != 1 {
		t.Fatalf("reads = %v; want each part read once", reads)
	}
	for _, m := range a {
		if !bytes.Equal(f.bodies[m.To], wire(m, sharedA)) {
			t.Fatalf("%s got the wrong message", m.To)
		}
	}
	for _, m := range b {
		if !bytes.Equal(f.bodies[m.To], wire(m, sharedB)) {
			t.Fatalf("%s got the wrong message", m.To)
		}
	}

	// With room for one part only, A, B, A reads A twice.
	old := chunkBytes
	chunkBytes = 64 << 10
	t.Cleanup(func() { chunkBytes = old })
	clear(reads)
	_, a2 := sharedMail(KindDigest, "pa2", "a", 40, 40<<10)
	_, b2 := sharedMail(KindDigest, "pb2", "b", 40, 40<<10)
	putShared(t, o, sharedA, a2) // A again: a new id, A's rows are gone
	putShared(t, o, sharedB, b2)
	mustEnqueue(t, o, append(append(a2[:20:20], b2...), a2[20:]...)...)
	if sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{}); err != nil || sum.Sent != 80 {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	idA2, idB2 := a2[0].Blob, b2[0].Blob
	if reads[idA2] != 2 || reads[idB2] != 1 {
		t.Fatalf("reads = %v; want A twice and B once", reads)
	}
	for _, m := range a2 {
		if !bytes.Equal(f.bodies[m.To], wire(m, sharedA)) {
			t.Fatalf("%s got the wrong message", m.To)
		}
	}
}

// oldSchema is the outbox table as ccdir created it before shared parts.
const oldSchema = `
CREATE TABLE IF NOT EXISTS outbox (
	id           INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL,
	ref          TEXT NOT NULL,
	sender       TEXT NOT NULL,
	rcpt         TEXT NOT NULL,
	body         BLOB,
	size         INTEGER NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('queued', 'deferred', 'sent', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	created      INTEGER NOT NULL,
	window_start INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	sent_at      INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	UNIQUE (kind, ref, rcpt)
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt);
`

func TestOpenMigratesOldSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ccdir.db")
	db := openDBAt(t, path)
	if _, err := db.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	old := mail(KindDigest, "d0", rcpt("old", 1), 2000)
	if _, err := db.Exec(`INSERT INTO outbox (kind, ref, sender, rcpt, body, size, status, created, window_start, next_attempt)
		VALUES (?, ?, ?, ?, ?, ?, 'queued', 1, 1, 1)`, old.Kind, old.Ref, old.From, old.To, old.Data, len(old.Data)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	db = openDBAt(t, path)
	o, err := openOutbox(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openOutbox(ctx, db); err != nil { // a second Open changes nothing
		t.Fatal(err)
	}
	if n := dbInt(t, o, `SELECT count(*) FROM pragma_table_info('outbox') WHERE name IN ('blob', 'tail', 'mac')`); n != 3 {
		t.Fatalf("%d of the new columns", n)
	}
	if n := dbInt(t, o, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name = 'outbox_blob_ref'`); n != 1 {
		t.Fatal("no index on outbox (blob)")
	}
	shared, msgs := sharedMail(KindDigest, "p1", "s", 3, 10<<10)
	putShared(t, o, shared, msgs)
	mustEnqueue(t, o, msgs...)
	f := newFake()
	f.keep = true
	// The message queued before the migration has no MAC: it is refused
	// (fail closed, the one-time cost of the upgrade), the others go.
	if sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{}); err != nil || sum != (Summary{Sent: 3, Failed: 1, Refused: 1}) {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	if _, ok := f.bodies[old.To]; ok {
		t.Fatal("the message queued before the migration, without a MAC, was sent")
	}
	if rows, err := o.List(ctx, Filter{Status: []Status{Failed}}); err != nil || len(rows) != 1 || !strings.Contains(rows[0].LastError, "re-run the job") {
		t.Fatalf("failed rows %+v, %v", rows, err)
	}
	for _, m := range msgs {
		if !bytes.Equal(f.bodies[m.To], wire(m, shared)) {
			t.Fatalf("%s got the wrong message", m.To)
		}
	}
	if n := blobRows(t, o); n != 0 {
		t.Fatalf("%d shared parts left", n)
	}
}

func TestLFReader(t *testing.T) {
	for _, tc := range []struct {
		data, shared, tail string
		want               string
	}{
		{"a\r\nb\r\n", "", "", "a\nb\n"},
		{"a\r", "\nb\r", "\nc", "a\nb\nc"},
		{"a\r", "b", "", "a\rb"},
		{"a\r", "", "", "a\r"},
		{"\r\r\n\r", "\r", "\n\n", "\r\n\r\n\n"},
		{"a", "\r", "\n", "a\n"},
		{"x", "", "y", "xy"},
	} {
		m := &Message{Data: []byte(tc.data), Shared: []byte(tc.shared), Tail: []byte(tc.tail)}
		if err := iotest.TestReader(lfReader(m), []byte(tc.want)); err != nil {
			t.Errorf("%q + %q + %q: %v", tc.data, tc.shared, tc.tail, err)
		}
	}
	// Random text of CR, LF and letters, cut at random places, matches
	// converting the whole.
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = "\r\na"[r.IntN(3)]
		}
		i := r.IntN(len(b) + 1)
		j := i + r.IntN(len(b)-i+1)
		m := &Message{Data: b[:i], Shared: b[i:j], Tail: b[j:]}
		if err := iotest.TestReader(lfReader(m), toLF(b)); err != nil {
			t.Fatalf("%q cut at %d, %d: %v", b, i, j, err)
		}
	}
	// Long enough to cross the transformer's buffers.
	shared, msgs := sharedMail(KindDigest, "p", "s", 1, 100<<10)
	m := msgs[0]
	m.Shared = shared
	if err := iotest.TestReader(lfReader(&m), toLF(bytes.Join(m.Parts(), nil))); err != nil {
		t.Fatal(err)
	}
}

func TestMessageParts(t *testing.T) {
	m := Message{Data: []byte("head"), Tail: []byte("tail")}
	if p := m.Parts(); len(p) != 2 || string(p[0]) != "head" || string(p[1]) != "tail" || m.Len() != 8 {
		t.Fatalf("Parts = %q, Len = %d", p, m.Len())
	}
	m.Shared = []byte("shared")
	if got := string(bytes.Join(m.Parts(), nil)); got != "headsharedtail" || m.Len() != 14 {
		t.Fatalf("Parts = %q, Len = %d", got, m.Len())
	}
}

// sinkReceived returns what srv accepted, by recipient.
func sinkReceived(t *testing.T, srv *smtptest.Server) func([]Message) map[string][]byte {
	return func([]Message) map[string][]byte {
		got := map[string][]byte{}
		for _, m := range srv.Messages() {
			if len(m.To) != 1 || m.From != dir || got[m.To[0]] != nil {
				t.Fatalf("sink got %s → %v", m.From, m.To)
			}
			got[m.To[0]] = m.Data
		}
		return got
	}
}

// A shared part cached by one Deliver is never used for a message whose
// part has the same id but other content (an id freed by another run's
// cleanup and reused in a database made before AUTOINCREMENT): the part
// is read again, by content.
func TestSharedCacheChecksContent(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	shared, msgs := sharedMail(KindAlert, "a2", "s", 1, 2<<10)
	id := putShared(t, o, shared, msgs)
	mustEnqueue(t, o, msgs...)
	d := &delivery{o: o, blobs: map[int64]sharedPart{id: {sum: "another part", data: []byte("OLD SHARED PART")}}}
	jobs, err := o.dueBatch(ctx, Filter{}, time.Now().Add(time.Hour), 0, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("dueBatch: %d jobs, %v", len(jobs), err)
	}
	if err := d.loadBodies(ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(jobs[0].shared, shared) {
		t.Fatalf("the message got the cached part of another message: %.40q", jobs[0].shared)
	}
}
