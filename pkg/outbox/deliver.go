package outbox

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Defaults for DeliverOptions. A session sends its next message only once
// the result of its last one is written (and fsynced), so throughput is
// about Connections per fsync: eight connections, well under the 20 that
// Postfix itself opens to one destination by default, keep a digest to
// 10,000 recipients within seconds.
const (
	DefaultConnections = 8
	DefaultRetryFor    = 72 * time.Hour
	firstBackoff       = time.Minute
	maxBackoff         = time.Hour
)

// Memory bounds of Deliver: due rows are listed batchSize at a time
// without their bodies; bodies are read a chunk at a time (at most
// chunkMessages messages or chunkBytes bytes, counting a shared part
// once, but at least one message) just before they are handed to the
// sessions. Shared parts are kept for the next chunks while they take
// less than chunkBytes in all. So at most about two chunks plus one
// message per connection are in memory, however long the queue.
var (
	batchSize     = 256
	chunkMessages = 16
	chunkBytes    = 4 << 20
)

// maxGroup caps the results written in one transaction.
const maxGroup = 64

// testOnlyBatch, if set, sees the size of each batch of due rows.
var testOnlyBatch func(rows int)

// testOnlyBlobRead, if set, sees the id of each shared part read.
var testOnlyBlobRead func(id int64)

// DeliverOptions tune Deliver. The zero value means the defaults.
type DeliverOptions struct {
	Connections int              // sessions in parallel; default DefaultConnections
	RetryFor    time.Duration    // give up on temporary failures after this; default DefaultRetryFor
	Now         func() time.Time // clock; default time.Now
	OnResult    func(Row, error) // called after each result is recorded, one call at a time
}

// Summary counts the results of one Deliver. Refused counts the messages
// that failed authentication (ErrUnauthentic): never sent, marked failed,
// and counted in Failed too.
type Summary struct {
	Sent, Deferred, Failed int
	Refused                int
}

// Backoff is the wait after the n-th consecutive temporary failure:
// 1 min, 2, 4, … capped at 1 h.
func Backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 7 {
		return maxBackoff
	}
	return min(firstBackoff<<(n-1), maxBackoff)
}

type job struct {
	Row
	windowStart time.Time
	blob        int64  // id of the shared part, 0 if none
	blobSize    int    // its length
	blobSum     string // its SHA-256, read with the head

	// Read by loadBodies just before the job is handed to a worker.
	data, shared, tail []byte
	mac                []byte
	refused            error // the row fails authentication: recorded, never sent
}

type result struct {
	job
	err  error
	done chan error // gets the outcome of the write, then is closed
}

// ErrNoSession is wrapped by Deliver's error when it stopped because no
// session to the transport could be opened.
var ErrNoSession = errors.New("cannot open a delivery session")

// Deliver sends every due message matching f (queued, or deferred with
// NextAttempt not after now; f.Status narrows that further and f.Limit
// caps the number attempted) through t, with opts.Connections sessions in
// parallel.
//
// Each result is written as soon as the database is free: results that
// arrive while a write is in progress share the next transaction (group
// commit; with synchronous=FULL every commit costs an fsync). A session
// sends its next message only once its previous result is written, so a
// crash re-sends at most the one message per connection whose acceptance
// was not yet recorded. A sent message loses its body; a shared part is
// deleted at the end of Deliver once no message refers to it (failed and
// deferred messages keep theirs, for Retry and the next run).
//
// Deliver stops early when ctx is cancelled (messages already handed to
// the transport finish, bounded by its timeout, and are recorded), when
// the database fails, or when no session can be opened; it then returns
// an error with the summary so far. A message whose session could not be
// opened is left as it was, without an attempt counted.
func (o *Outbox) Deliver(ctx context.Context, t Transport, f Filter, opts DeliverOptions) (Summary, error) {
	if err := o.checkKey(); err != nil {
		return Summary{}, err
	}
	if opts.Connections <= 0 {
		opts.Connections = DefaultConnections
	}
	if opts.RetryFor <= 0 {
		opts.RetryFor = DefaultRetryFor
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	statuses, err := dueStatuses(f.Status)
	if err != nil {
		return Summary{}, err
	}
	f.Status = statuses

	d := &delivery{
		o: o, t: t, opts: opts,
		orphans: make(chan job, opts.Connections),
		results: make(chan result, opts.Connections),
		alive:   opts.Connections,
		blobs:   map[int64]sharedPart{},
	}
	dctx, cancel := context.WithCancelCause(ctx)
	d.cancel = cancel
	defer cancel(nil)
	// Sends and writes outlive a cancelled ctx so that what is in flight
	// is finished and written down.
	d.sendCtx = context.WithoutCancel(ctx)

	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		d.recorder()
	}()
	jobs := make(chan job)
	var wg sync.WaitGroup
	for range opts.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.worker(dctx, jobs)
		}()
	}
	if err := d.produce(dctx, f, jobs); err != nil && dctx.Err() == nil {
		d.fail(fmt.Errorf("outbox: deliver: %w", err))
	}
	close(jobs)
	wg.Wait()
	close(d.results)
	<-recorded
	// Best effort: what is left is deleted by a later run.
	o.deleteUnusedBlobs(d.sendCtx)

	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.err != nil:
		return d.sum, d.err
	case ctx.Err() != nil:
		return d.sum, context.Cause(ctx)
	case dctx.Err() != nil:
		return d.sum, context.Cause(dctx) // no session could be opened
	case len(d.orphans) > 0:
		return d.sum, fmt.Errorf("outbox: %d messages not attempted: %w to %s: %v", len(d.orphans), ErrNoSession, t, d.sessionErr)
	}
	return d.sum, nil
}

// deleteUnusedBlobs deletes the shared parts no message refers to.
func (o *Outbox) deleteUnusedBlobs(ctx context.Context) error {
	_, err := o.db.ExecContext(ctx, `DELETE FROM outbox_blob
		WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE outbox.blob = outbox_blob.id)`)
	return err
}

func dueStatuses(want []Status) ([]Status, error) {
	if len(want) == 0 {
		return []Status{Queued, Deferred}, nil
	}
	var out []Status
	for _, s := range want {
		switch s {
		case Queued, Deferred:
			out = append(out, s)
		case Sent, Failed:
		default:
			return nil, fmt.Errorf("outbox: deliver: unknown status %q", s)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("outbox: deliver: the filter selects no queued or deferred messages")
	}
	return out, nil
}

type delivery struct {
	o       *Outbox
	t       Transport
	opts    DeliverOptions
	sendCtx context.Context
	cancel  context.CancelCauseFunc
	orphans chan job // jobs of workers that could not open a session
	results chan result

	mu         sync.Mutex
	sum        Summary
	err        error // first fatal error
	sessionErr error // last NewSession error
	alive      int   // workers still able to send

	// Shared parts read so far, by id; only the producer touches the
	// map. The workers get the slices, which nobody modifies. Each is
	// used only for a message whose row names the same SHA-256: an id
	// freed by the cleanup of another process may be reused.
	blobs     map[int64]sharedPart
	blobBytes int // their total length
}

func (d *delivery) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
	d.cancel(err)
}

// produce lists due rows in batches and hands them, with their bodies, to
// the workers. Keyset paging (id > last) never revisits a row, so rows
// deferred during this run wait for the next one.
func (d *delivery) produce(ctx context.Context, f Filter, jobs chan<- job) error {
	var lastID int64
	remaining := f.Limit
	for {
		n := batchSize
		if f.Limit > 0 {
			if remaining <= 0 {
				return nil
			}
			n = min(n, remaining)
		}
		batch, err := d.o.dueBatch(ctx, f, d.opts.Now(), lastID, n)
		if err != nil || len(batch) == 0 {
			return err
		}
		if testOnlyBatch != nil {
			testOnlyBatch(len(batch))
		}
		lastID = batch[len(batch)-1].ID
		remaining -= len(batch)
		for len(batch) > 0 {
			k := d.chunkLen(batch)
			chunk := batch[:k]
			batch = batch[k:]
			if err := d.loadBodies(ctx, chunk); err != nil {
				return err
			}
			for i := range chunk {
				if chunk[i].data == nil {
					continue // changed meanwhile
				}
				if chunk[i].refused != nil {
					if err := d.refuse(ctx, chunk[i]); err != nil {
						return err
					}
					chunk[i].data, chunk[i].shared, chunk[i].tail = nil, nil, nil
					continue
				}
				select {
				case jobs <- chunk[i]:
					chunk[i].data, chunk[i].shared, chunk[i].tail = nil, nil, nil
				case <-ctx.Done():
					return nil
				}
			}
		}
	}
}

// refuse records the failure of a job that fails authentication, without
// handing it to a worker: it never reaches the transport.
func (d *delivery) refuse(ctx context.Context, j job) error {
	done := make(chan error, 1)
	select {
	case d.results <- result{job: j, err: j.refused, done: done}:
	case <-ctx.Done():
		return nil
	}
	return <-done
}

// chunkLen is how many of the first jobs of batch make the next chunk: at
// most chunkMessages, and at most chunkBytes to read (a shared part that
// is already read, or that an earlier job of the chunk needs, costs
// nothing), but at least one.
func (d *delivery) chunkLen(batch []job) int {
	k, size := 0, 0
	counted := map[int64]bool{}
	for k < len(batch) && k < chunkMessages {
		j := batch[k]
		cost := j.Size
		if j.blob != 0 {
			if _, read := d.blobs[j.blob]; read || counted[j.blob] {
				cost -= j.blobSize
			}
		}
		if k > 0 && size+cost > chunkBytes {
			break
		}
		if j.blob != 0 {
			counted[j.blob] = true
		}
		size += cost
		k++
	}
	return k
}

// dueBatch lists up to n due rows with id > after, without bodies. The
// rows are read completely before returning, so no cursor stays open
// while others write.
func (o *Outbox) dueBatch(ctx context.Context, f Filter, now time.Time, after int64, n int) ([]job, error) {
	w, args := f.where()
	args = append(args, now.UnixMilli(), after, n)
	rows, err := o.db.QueryContext(ctx, `SELECT `+rowColumns+`, window_start, coalesce(blob, 0),
		coalesce((SELECT length(data) FROM outbox_blob WHERE outbox_blob.id = outbox.blob), 0)
		FROM outbox WHERE `+w+` AND next_attempt <= ? AND id > ? ORDER BY id LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]job, 0, n)
	for rows.Next() {
		var j job
		var ws int64
		var status string
		var created, next, sent int64
		err := rows.Scan(&j.ID, &j.Kind, &j.Ref, &j.From, &j.To, &status, &j.Attempts, &created, &next, &sent, &j.LastError, &j.Size,
			&ws, &j.blob, &j.blobSize)
		if err != nil {
			return nil, err
		}
		j.Status = Status(status)
		j.Created, j.NextAttempt, j.SentAt = fromMilli(created), fromMilli(next), fromMilli(sent)
		j.windowStart = fromMilli(ws)
		out = append(out, j)
	}
	return out, rows.Err()
}

// loadBodies fills in the heads, tails and shared parts of the jobs that
// are still due. Shared parts are read once and kept in d.blobs; those
// this chunk does not need are forgotten when they take more than
// chunkBytes.
func (d *delivery) loadBodies(ctx context.Context, jobs []job) error {
	if err := d.o.readBodies(ctx, jobs); err != nil {
		return err
	}
	need := map[int64]bool{}
	for _, j := range jobs {
		if j.data != nil && j.blob != 0 {
			need[j.blob] = true
		}
	}
	for _, j := range jobs {
		// A cached part under this id that is not this message's part
		// (the id was freed and reused meanwhile) is read again.
		if p, ok := d.blobs[j.blob]; ok && j.data != nil && j.blob != 0 && p.sum != j.blobSum {
			delete(d.blobs, j.blob)
			d.blobBytes -= len(p.data)
		}
	}
	if d.blobBytes > chunkBytes {
		for id, p := range d.blobs {
			if !need[id] {
				delete(d.blobs, id)
				d.blobBytes -= len(p.data)
			}
		}
	}
	if err := d.readBlobs(ctx, need); err != nil {
		return err
	}
	for i, j := range jobs {
		if j.data == nil || j.blob == 0 {
			continue
		}
		p, ok := d.blobs[j.blob]
		if !ok || p.sum != j.blobSum {
			// Gone or replaced since the head was read: another run
			// sent the message meanwhile. It is not sent again here.
			jobs[i].data = nil
			continue
		}
		jobs[i].shared = p.data
	}
	// Only what the outbox queued itself is sent: the MAC covers what the
	// row makes the transport do, checked against the bytes read (the
	// shared part by the SHA-256 of its data, not the one recorded).
	for i, j := range jobs {
		if j.data == nil {
			continue
		}
		var shared *[sha256.Size]byte
		if j.blob != 0 {
			sum := d.blobs[j.blob].actual
			shared = &sum
		}
		if !d.o.authentic(j.mac, j.Kind, j.Ref, j.From, j.To, j.data, shared, j.tail) {
			jobs[i].refused = unauthentic(len(j.mac) == 0)
		}
	}
	return nil
}

// sharedPart is a shared part read by Deliver.
type sharedPart struct {
	sum    string // SHA-256 as stored
	actual [sha256.Size]byte
	data   []byte
}

// readBodies fills in the heads and tails of the jobs that are still due.
func (o *Outbox) readBodies(ctx context.Context, jobs []job) error {
	args := make([]any, len(jobs))
	index := make(map[int64]int, len(jobs))
	for i, j := range jobs {
		args[i] = j.ID
		index[j.ID] = i
	}
	rows, err := o.db.QueryContext(ctx, `SELECT o.id, o.body, coalesce(o.blob, 0), o.tail, coalesce(b.sha256, x''), o.mac
		FROM outbox o LEFT JOIN outbox_blob b ON b.id = o.blob
		WHERE o.id IN (?`+strings.Repeat(", ?", len(jobs)-1)+`) AND o.status IN ('queued', 'deferred')`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, blob int64
		var body, tail, sum, mac []byte
		if err := rows.Scan(&id, &body, &blob, &tail, &sum, &mac); err != nil {
			return err
		}
		if i, ok := index[id]; ok && len(body) > 0 {
			jobs[i].data, jobs[i].blob, jobs[i].tail, jobs[i].blobSum, jobs[i].mac = body, blob, tail, string(sum), mac
		}
	}
	return rows.Err()
}

// readBlobs reads into d.blobs the shared parts of need it does not hold.
func (d *delivery) readBlobs(ctx context.Context, need map[int64]bool) error {
	var args []any
	for id := range need {
		if _, ok := d.blobs[id]; !ok {
			args = append(args, id)
		}
	}
	if len(args) == 0 {
		return nil
	}
	rows, err := d.o.db.QueryContext(ctx, `SELECT id, sha256, data FROM outbox_blob
		WHERE id IN (?`+strings.Repeat(", ?", len(args)-1)+`)`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var sum, data []byte
		if err := rows.Scan(&id, &sum, &data); err != nil {
			return err
		}
		if testOnlyBlobRead != nil {
			testOnlyBlobRead(id)
		}
		d.blobs[id] = sharedPart{sum: string(sum), actual: sha256.Sum256(data), data: data}
		d.blobBytes += len(data)
	}
	return rows.Err()
}

func (d *delivery) next(jobs <-chan job) (job, bool) {
	select {
	case j := <-d.orphans:
		return j, true
	default:
	}
	select {
	case j := <-d.orphans:
		return j, true
	case j, ok := <-jobs:
		return j, ok // orphans left when jobs ends stay queued for the next run
	}
}

func (d *delivery) worker(ctx context.Context, jobs <-chan job) {
	var sess Session
	defer func() {
		if sess != nil {
			sess.Close()
		}
	}()
	for {
		j, ok := d.next(jobs)
		if !ok || ctx.Err() != nil {
			return
		}
		if sess == nil {
			var err error
			sess, err = d.t.NewSession(d.sendCtx)
			if err != nil {
				d.orphans <- j // never blocks: one slot per worker
				d.mu.Lock()
				d.sessionErr = err
				d.alive--
				last := d.alive == 0
				d.mu.Unlock()
				if last {
					d.cancel(fmt.Errorf("outbox: %w to %s: %v", ErrNoSession, d.t, err))
				}
				return
			}
		}
		m := &Message{ID: j.ID, Kind: j.Kind, Ref: j.Ref, From: j.From, To: j.To,
			Data: j.data, Blob: j.blob, Shared: j.shared, Tail: j.tail}
		j.data, j.shared, j.tail = nil, nil, nil
		sendErr := sess.Send(d.sendCtx, m)
		m.Data, m.Shared, m.Tail = nil, nil, nil
		if errors.Is(sendErr, ErrConnectionLost) {
			sess.Close()
			sess = nil
		}
		// Wait until the result is written before the next message: a
		// crash then re-sends at most the messages in flight, one per
		// connection, never one whose acceptance was already known. The
		// results of several connections still share one commit.
		done := make(chan error, 1)
		d.results <- result{job: j, err: sendErr, done: done}
		if err := <-done; err != nil {
			return
		}
	}
}

// recorder writes results, grouping those that wait into one transaction.
func (d *delivery) recorder() {
	var failed error
	group := make([]result, 0, maxGroup)
	for r := range d.results {
		group = append(group[:0], r)
	gather:
		for len(group) < maxGroup {
			select {
			case r, ok := <-d.results:
				if !ok {
					break gather
				}
				group = append(group, r)
			default:
				break gather
			}
		}
		if failed == nil {
			rows, err := d.write(group)
			if err != nil {
				failed = err
				d.fail(fmt.Errorf("outbox: deliver: record results: %w", err))
			} else {
				d.mu.Lock()
				for i, row := range rows {
					switch row.Status {
					case Sent:
						d.sum.Sent++
					case Deferred:
						d.sum.Deferred++
					case Failed:
						d.sum.Failed++
						if errors.Is(group[i].err, ErrUnauthentic) {
							d.sum.Refused++
						}
					}
					if d.opts.OnResult != nil {
						d.opts.OnResult(row, group[i].err)
					}
				}
				d.mu.Unlock()
			}
		}
		for _, r := range group {
			r.done <- failed
			close(r.done)
		}
	}
}

// write records one attempt per result in one transaction.
func (d *delivery) write(group []result) ([]Row, error) {
	tx, err := d.o.db.BeginTx(d.sendCtx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	now := d.opts.Now()
	rows := make([]Row, len(group))
	var sent *sql.Stmt // prepared once per transaction: most results are sent
	for i, g := range group {
		r := g.Row
		r.Attempts++
		var res sql.Result
		switch {
		case g.err == nil:
			r.Status, r.SentAt, r.LastError = Sent, now, ""
			if sent == nil {
				if sent, err = tx.PrepareContext(d.sendCtx, `UPDATE outbox SET status = 'sent', attempts = attempts + 1,
					sent_at = ?, last_error = '', body = NULL, blob = NULL, tail = NULL WHERE id = ?`); err != nil {
					return nil, err
				}
				defer sent.Close()
			}
			res, err = sent.ExecContext(d.sendCtx, now.UnixMilli(), r.ID)
		case IsTemporary(g.err) && now.Sub(g.windowStart) < d.opts.RetryFor:
			r.Status, r.NextAttempt, r.LastError = Deferred, now.Add(Backoff(r.Attempts)), errorText(g.err)
			res, err = tx.ExecContext(d.sendCtx, `UPDATE outbox SET status = 'deferred', attempts = attempts + 1,
				next_attempt = ?, last_error = ? WHERE id = ?`, r.NextAttempt.UnixMilli(), r.LastError, r.ID)
		default:
			r.Status, r.FailedAt, r.LastError = Failed, now, errorText(g.err)
			if IsTemporary(g.err) {
				r.LastError = fmt.Sprintf("gave up after %d attempts over %v: %s", r.Attempts, now.Sub(g.windowStart).Round(time.Minute), r.LastError)
			}
			res, err = tx.ExecContext(d.sendCtx, `UPDATE outbox SET status = 'failed', attempts = attempts + 1,
				failed_at = ?, last_error = ? WHERE id = ?`, now.UnixMilli(), r.LastError, r.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", r.ID, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return nil, fmt.Errorf("message %d vanished (%d rows, %v)", r.ID, n, err)
		}
		rows[i] = r
	}
	return rows, tx.Commit()
}

// errorText is what is stored as LastError: one line, bounded.
func errorText(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 1000 {
		s = strings.ToValidUTF8(s[:1000], "") + "…"
	}
	return s
}
