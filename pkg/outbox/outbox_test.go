package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestEnqueueSkipsDuplicates(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	o := newOutbox(t, c)
	a, b := mail(KindDigest, "d1", rcpt("a", 1), 500), mail(KindDigest, "d1", rcpt("b", 1), 500)
	n, err := o.Enqueue(ctx, a, b)
	if err != nil || n != 2 {
		t.Fatalf("Enqueue = %d, %v; want 2, nil", n, err)
	}
	// Resuming after a crash enqueues the same messages again.
	c.Add(time.Minute)
	n, err = o.Enqueue(ctx, b, a, mail(KindDigest, "d1", rcpt("c", 1), 500))
	if err != nil || n != 1 {
		t.Fatalf("second Enqueue = %d, %v; want 1, nil", n, err)
	}
	// Same recipient, other digest or other kind: new rows.
	n, err = o.Enqueue(ctx, mail(KindDigest, "d2", rcpt("a", 1), 500), mail(KindReply, "d1", rcpt("a", 1), 500))
	if err != nil || n != 2 {
		t.Fatalf("third Enqueue = %d, %v; want 2, nil", n, err)
	}
	rows, err := o.List(ctx, Filter{Kind: KindDigest, Ref: "d1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("List = %d rows, want 3", len(rows))
	}
	r := rows[0]
	if r.To != rcpt("a", 1) || r.From != dir || r.Status != Queued || r.Attempts != 0 || r.Size != len(a.Data) ||
		!r.Created.Equal(newClock().Now()) || !r.NextAttempt.Equal(r.Created) || !r.SentAt.IsZero() {
		t.Errorf("first row = %+v", r)
	}
	if got := counts(t, o); got[Queued] != 5 || got[Sent] != 0 {
		t.Errorf("Counts = %v", got)
	}
}

func TestEnqueueTxRollsBackWithCaller(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := o.EnqueueTx(ctx, tx, mail(KindDigest, "d1", rcpt("a", 1), 100)); err != nil || n != 1 {
		t.Fatalf("EnqueueTx = %d, %v", n, err)
	}
	tx.Rollback()
	if got := counts(t, o); got[Queued] != 0 {
		t.Fatalf("after rollback: %v", got)
	}
}

func TestEnqueueRefusesBadMessages(t *testing.T) {
	good := mail(KindDigest, "d1", rcpt("a", 1), 100)
	for name, mod := range map[string]func(*Message){
		"no kind":        func(m *Message) { m.Kind = "" },
		"odd kind":       func(m *Message) { m.Kind = "Digest 1" },
		"no ref":         func(m *Message) { m.Ref = "" },
		"ref with LF":    func(m *Message) { m.Ref = "a\nb" },
		"dash recipient": func(m *Message) { m.To = "-oQ/tmp@x.example" },
		"space":          func(m *Message) { m.To = "a b@x.example" },
		"CR":             func(m *Message) { m.To = "a@x.example\r\nRCPT TO:<b@y.example>" },
		"brackets":       func(m *Message) { m.To = "<a@x.example>" },
		"no at":          func(m *Message) { m.To = "postmaster" },
		"bad sender":     func(m *Message) { m.From = "-f" },
		"empty body":     func(m *Message) { m.Data = nil },
		"too big":        func(m *Message) { m.Data = make([]byte, MaxMessageBytes+1) },
		"tail, no blob":  func(m *Message) { m.Tail = []byte("tail\r\n") },
		"unknown blob":   func(m *Message) { m.Blob = 42 },
		"negative blob":  func(m *Message) { m.Blob = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			o := newOutbox(t, nil)
			m := good
			mod(&m)
			n, err := o.Enqueue(context.Background(), good, m)
			if !errors.Is(err, ErrInvalid) || n != 0 {
				t.Fatalf("Enqueue = %d, %v; want ErrInvalid", n, err)
			}
			if got := counts(t, o); got[Queued] != 0 {
				t.Fatalf("a refused batch left rows: %v", got)
			}
		})
	}
	if err := CheckAddress("josé@exemplo.br"); err != nil {
		t.Errorf("internationalised address refused: %v", err)
	}
}

// fakeTransport delivers into memory; fail decides each attempt's outcome.
type fakeTransport struct {
	mu        sync.Mutex
	got       map[string]int // recipient → copies accepted
	tries     map[string]int
	fail      func(to string, attempt int) error
	openErr   func(n int) error // n-th NewSession, from 1
	sessions  int
	inflight  atomic.Int32
	maxFlight atomic.Int32
	delay     time.Duration
	keep      bool              // keep what each recipient was sent last
	bodies    map[string][]byte // with keep: recipient → message on the wire
}

func newFake() *fakeTransport {
	return &fakeTransport{got: map[string]int{}, tries: map[string]int{}, bodies: map[string][]byte{}}
}

func (f *fakeTransport) String() string { return "fake:" }

func (f *fakeTransport) NewSession(ctx context.Context) (Session, error) {
	f.mu.Lock()
	f.sessions++
	n := f.sessions
	f.mu.Unlock()
	if f.openErr != nil {
		if err := f.openErr(n); err != nil {
			return nil, err
		}
	}
	return fakeSession{f}, nil
}

type fakeSession struct{ f *fakeTransport }

func (fakeSession) Close() error { return nil }

func (s fakeSession) Send(ctx context.Context, m *Message) error {
	f := s.f
	n := f.inflight.Add(1)
	defer f.inflight.Add(-1)
	for {
		max := f.maxFlight.Load()
		if n <= max || f.maxFlight.CompareAndSwap(max, n) {
			break
		}
	}
	if len(m.Data) == 0 {
		return errors.New("no data")
	}
	if (m.Blob != 0) != (len(m.Shared) > 0) {
		return fmt.Errorf("shared part %d with %d bytes", m.Blob, len(m.Shared))
	}
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tries[m.To]++
	if f.fail != nil {
		if err := f.fail(m.To, f.tries[m.To]); err != nil {
			return err
		}
	}
	f.got[m.To]++
	if f.keep {
		f.bodies[m.To] = bytes.Join(m.Parts(), nil)
	}
	return nil
}

func TestListCountsRetry(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	o := newOutbox(t, c)
	var msgs []Message
	for i := range 9 {
		msgs = append(msgs, mail(KindDigest, "d1", rcpt("r", i), 200))
	}
	mustEnqueue(t, o, msgs...)
	f := newFake()
	f.fail = func(to string, n int) error {
		switch to {
		case rcpt("r", 0), rcpt("r", 1):
			return &DeliveryError{Temporary: true, Code: 451, Enhanced: "4.3.0", Msg: "later"}
		case rcpt("r", 2):
			return &DeliveryError{Code: 550, Enhanced: "5.1.1", Msg: "no such user"}
		}
		return nil
	}
	var results []Row
	sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{Now: c.Now, OnResult: func(r Row, err error) { results = append(results, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum != (Summary{Sent: 6, Deferred: 2, Failed: 1}) || len(results) != 9 {
		t.Fatalf("Summary = %+v, %d results", sum, len(results))
	}
	got, err := o.Counts(ctx, KindDigest, "d1")
	if err != nil {
		t.Fatal(err)
	}
	if got[Sent] != 6 || got[Deferred] != 2 || got[Failed] != 1 || got[Queued] != 0 {
		t.Fatalf("Counts = %v", got)
	}
	if got, _ := o.Counts(ctx, KindDigest, "other"); got[Sent] != 0 {
		t.Fatalf("Counts of another digest = %v", got)
	}
	failed, err := o.List(ctx, Filter{Status: []Status{Failed}})
	if err != nil || len(failed) != 1 || failed[0].LastError != "550 5.1.1 no such user" || failed[0].Attempts != 1 {
		t.Fatalf("failed = %+v, %v", failed, err)
	}
	deferred, _ := o.List(ctx, Filter{Status: []Status{Deferred}, Limit: 1})
	if len(deferred) != 1 || !deferred[0].NextAttempt.Equal(c.Now().Add(time.Minute)) || deferred[0].LastError != "451 4.3.0 later" {
		t.Fatalf("deferred = %+v", deferred)
	}
	sent, _ := o.List(ctx, Filter{Status: []Status{Sent}})
	if len(sent) != 6 || !sent[0].SentAt.Equal(c.Now()) {
		t.Fatalf("sent = %+v", sent)
	}
	var bodies int
	o.db.QueryRow(`SELECT count(*) FROM outbox WHERE body IS NOT NULL`).Scan(&bodies)
	if bodies != 3 {
		t.Errorf("%d rows keep a body; want 3 (sent ones are cleared)", bodies)
	}

	// Retry by id touches only failed/deferred rows.
	n, err := o.Retry(ctx, []int64{failed[0].ID, sent[0].ID})
	if err != nil || n != 1 {
		t.Fatalf("Retry(ids) = %d, %v; want 1", n, err)
	}
	n, err = o.Retry(ctx, nil)
	if err != nil || n != 2 {
		t.Fatalf("Retry(nil) = %d, %v; want 2", n, err)
	}
	f.fail = nil
	sum, err = o.Deliver(ctx, f, Filter{}, DeliverOptions{Now: c.Now})
	if err != nil || sum != (Summary{Sent: 3}) {
		t.Fatalf("after retry: %+v, %v", sum, err)
	}
	for to, n := range f.got {
		if n != 1 {
			t.Errorf("%s got %d copies", to, n)
		}
	}
	if len(f.got) != 9 {
		t.Errorf("%d recipients got mail, want 9", len(f.got))
	}
}

func TestBackoff(t *testing.T) {
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute,
		32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if Backoff(1000) != time.Hour {
		t.Errorf("Backoff(1000) = %v", Backoff(1000))
	}
}

func TestDeliverFilterAndLimit(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	for i := range 5 {
		mustEnqueue(t, o, mail(KindDigest, "d1", rcpt("a", i), 100), mail(KindReply, "r1", rcpt("a", i), 100))
	}
	f := newFake()
	sum, err := o.Deliver(ctx, f, Filter{Kind: KindReply, Limit: 3}, DeliverOptions{})
	if err != nil || sum.Sent != 3 {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	if got, _ := o.Counts(ctx, KindDigest, ""); got[Queued] != 5 {
		t.Fatalf("digests touched: %v", got)
	}
	if _, err := o.Deliver(ctx, f, Filter{Status: []Status{Sent}}, DeliverOptions{}); err == nil {
		t.Fatal("Deliver of sent messages did not fail")
	}
}

// TestDeliverBoundedBatches checks that rows are listed in bounded batches,
// that bodies are read one at a time per connection, and that the heap
// does not grow with the queue.
func TestDeliverBoundedBatches(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	const total, size = 4000, 25 << 10
	for i := 0; i < total; i += 500 {
		var msgs []Message
		for j := i; j < i+500; j++ {
			msgs = append(msgs, mail(KindDigest, "big", rcpt("m", j), size))
		}
		mustEnqueue(t, o, msgs...)
	}
	old := batchSize
	batchSize = 100
	t.Cleanup(func() { batchSize = old })
	var batches []int
	testOnlyBatch = func(n int) { batches = append(batches, n) }
	t.Cleanup(func() { testOnlyBatch = nil })

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f := newFake()
	sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{Connections: 4})
	close(stop)
	<-done
	if err != nil || sum.Sent != total {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	if len(batches) != total/100 {
		t.Errorf("%d batches, want %d", len(batches), total/100)
	}
	for _, n := range batches {
		if n > 100 {
			t.Fatalf("batch of %d rows", n)
		}
	}
	if m := f.maxFlight.Load(); m > 4 {
		t.Errorf("%d messages in flight at once, want ≤ 4", m)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("queue %d MB; heap grew by at most %.1f MB", total*size>>20, float64(grew)/(1<<20))
	if grew > 32<<20 {
		t.Errorf("heap grew by %d MB while delivering a %d MB queue", grew>>20, total*size>>20)
	}
}

func TestDeliverSessionFailures(t *testing.T) {
	ctx := context.Background()
	o := newOutbox(t, nil)
	for i := range 20 {
		mustEnqueue(t, o, mail(KindDigest, "d1", rcpt("a", i), 100))
	}
	// No session at all: nothing is attempted, the error says why.
	f := newFake()
	f.openErr = func(int) error { return &DeliveryError{Temporary: true, Msg: "connection refused"} }
	sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{})
	if !errors.Is(err, ErrNoSession) || sum != (Summary{}) {
		t.Fatalf("Deliver = %+v, %v; want ErrNoSession", sum, err)
	}
	if got := counts(t, o); got[Queued] != 20 {
		t.Fatalf("messages touched: %v", got)
	}
	rows, _ := o.List(ctx, Filter{Limit: 1})
	if rows[0].Attempts != 0 {
		t.Fatalf("attempt counted without a session: %+v", rows[0])
	}
	// Two of four sessions fail: the other two deliver everything.
	f = newFake()
	f.openErr = func(n int) error {
		if n <= 2 {
			return errors.New("421 too many connections")
		}
		return nil
	}
	f.delay = time.Millisecond
	sum, err = o.Deliver(ctx, f, Filter{}, DeliverOptions{Connections: 4})
	if err != nil || sum.Sent != 20 {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
}

func TestDeliverCancel(t *testing.T) {
	o := newOutbox(t, nil)
	for i := range 50 {
		mustEnqueue(t, o, mail(KindDigest, "d1", rcpt("a", i), 100))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := newFake()
	f.delay = 2 * time.Millisecond
	var seen atomic.Int32
	sum, err := o.Deliver(ctx, f, Filter{}, DeliverOptions{Connections: 2, OnResult: func(Row, error) {
		if seen.Add(1) == 10 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	got := counts(t, o)
	if got[Sent] != sum.Sent || sum.Sent < 10 || sum.Sent > 10+2*2 || got[Queued] != 50-sum.Sent {
		t.Fatalf("Summary %+v, counts %v", sum, got)
	}
	// Every accepted message was recorded.
	f.mu.Lock()
	accepted := len(f.got)
	f.mu.Unlock()
	if accepted != sum.Sent {
		t.Fatalf("transport accepted %d, outbox recorded %d", accepted, sum.Sent)
	}
	sum, err = o.Deliver(context.Background(), f, Filter{}, DeliverOptions{})
	if err != nil || got[Sent]+sum.Sent != 50 {
		t.Fatalf("resume: %+v, %v", sum, err)
	}
	for to, n := range f.got {
		if n != 1 {
			t.Errorf("%s got %d copies", to, n)
		}
	}
}

// CountSince counts one recipient's messages of a kind, CountKindSince
// everyone's, both from a time on and whatever became of them.
func TestCountSince(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	o := newOutbox(t, c)
	start := c.Now()
	if _, err := o.Enqueue(ctx, mail(KindReply, "r1", rcpt("a", 1), 200), mail(KindReply, "r1", rcpt("b", 1), 200),
		mail(KindDigest, "d1", rcpt("a", 1), 200)); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	if _, err := o.Enqueue(ctx, mail(KindReply, "r2", rcpt("a", 1), 200)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		to    string
		since time.Time
		want  int
	}{
		{rcpt("a", 1), start, 2}, {rcpt("a", 1), start.Add(time.Minute), 1}, {rcpt("b", 1), start, 1},
		{rcpt("b", 1), start.Add(time.Minute), 0}, {rcpt("c", 1), start, 0},
	} {
		if n, err := CountSince(ctx, o.db, KindReply, tc.to, tc.since); err != nil || n != tc.want {
			t.Errorf("CountSince(%s, %v) = %d, %v; want %d", tc.to, tc.since, n, err, tc.want)
		}
	}
	for _, tc := range []struct {
		kind  string
		since time.Time
		want  int
	}{
		{KindReply, start, 3}, {KindReply, start.Add(time.Minute), 1}, {KindDigest, start, 1},
		{KindDigest, start.Add(time.Minute), 0}, {"sendkey", start, 0},
	} {
		if n, err := CountKindSince(ctx, o.db, tc.kind, tc.since); err != nil || n != tc.want {
			t.Errorf("CountKindSince(%s, %v) = %d, %v; want %d", tc.kind, tc.since, n, err, tc.want)
		}
	}
}
