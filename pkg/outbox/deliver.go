package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Defaults for DeliverOptions.
const (
	DefaultConnections = 4
	DefaultRetryFor    = 72 * time.Hour
	firstBackoff       = time.Minute
	maxBackoff         = time.Hour
)

// batchSize is how many due rows Deliver lists at a time. Rows are listed
// without their bodies; each body is read just before it is sent, so
// memory holds at most one body per connection.
var batchSize = 256

// testOnlyBatch, if set, sees the size of each batch of due rows.
var testOnlyBatch func(rows int)

// DeliverOptions tune Deliver. The zero value means the defaults.
type DeliverOptions struct {
	Connections int              // sessions in parallel; default 4
	RetryFor    time.Duration    // give up on temporary failures after this; default 72h
	Now         func() time.Time // clock; default time.Now
	OnResult    func(Row, error) // called after each result is recorded, one call at a time
}

// Summary counts the results of one Deliver.
type Summary struct {
	Sent, Deferred, Failed int
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
}

// ErrNoSession is wrapped by Deliver's error when it stopped because no
// session to the transport could be opened.
var ErrNoSession = errors.New("cannot open a delivery session")

// Deliver sends every due message matching f (queued, or deferred with
// NextAttempt not after now; f.Status narrows that further and f.Limit
// caps the number sent) through t, with opts.Connections sessions in
// parallel. Each result is recorded in its own transaction as soon as it
// is known; a sent message loses its body.
//
// Deliver stops early when ctx is cancelled (messages already handed to
// the transport finish, bounded by its timeout, and are recorded), when
// the database fails, or when no session can be opened; it then returns
// an error with the summary so far. A message whose session could not be
// opened is left as it was, not counted as an attempt.
func (o *Outbox) Deliver(ctx context.Context, t Transport, f Filter, opts DeliverOptions) (Summary, error) {
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

	d := &delivery{o: o, t: t, opts: opts, orphans: make(chan job, opts.Connections)}
	dctx, cancel := context.WithCancelCause(ctx)
	d.cancel = cancel
	defer cancel(nil)
	// Sends and records outlive a cancelled ctx so that what is in flight
	// is finished and written down.
	d.sendCtx = context.WithoutCancel(ctx)

	jobs := make(chan job)
	var wg sync.WaitGroup
	d.alive = opts.Connections
	for range opts.Connections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.worker(dctx, jobs)
		}()
	}

	var lastID int64
	remaining := f.Limit
produce:
	for {
		n := batchSize
		if f.Limit > 0 {
			if remaining <= 0 {
				break
			}
			n = min(n, remaining)
		}
		batch, err := o.dueBatch(dctx, f, opts.Now(), lastID, n)
		if err != nil {
			if dctx.Err() == nil {
				d.fail(fmt.Errorf("outbox: deliver: %w", err))
			}
			break
		}
		if len(batch) == 0 {
			break
		}
		if testOnlyBatch != nil {
			testOnlyBatch(len(batch))
		}
		for _, j := range batch {
			select {
			case jobs <- j:
			case <-dctx.Done():
				break produce
			}
		}
		lastID = batch[len(batch)-1].ID
		remaining -= len(batch)
	}
	close(jobs)
	wg.Wait()

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

// dueBatch lists up to n due rows with id > after, without bodies. The
// rows are read completely before returning, so no cursor stays open
// while workers write.
func (o *Outbox) dueBatch(ctx context.Context, f Filter, now time.Time, after int64, n int) ([]job, error) {
	w, args := f.where()
	args = append(args, now.UnixMilli(), after, n)
	rows, err := o.db.QueryContext(ctx, `SELECT `+rowColumns+`, window_start FROM outbox
		WHERE `+w+` AND next_attempt <= ? AND id > ? ORDER BY id LIMIT ?`, args...)
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
		err := rows.Scan(&j.ID, &j.Kind, &j.Ref, &j.From, &j.To, &status, &j.Attempts, &created, &next, &sent, &j.LastError, &j.Size, &ws)
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

type delivery struct {
	o       *Outbox
	t       Transport
	opts    DeliverOptions
	sendCtx context.Context
	cancel  context.CancelCauseFunc
	orphans chan job // jobs of workers that could not open a session

	mu         sync.Mutex
	sum        Summary
	err        error // first fatal error
	sessionErr error // last NewSession error
	alive      int   // workers still able to send
}

func (d *delivery) fail(err error) {
	d.mu.Lock()
	if d.err == nil {
		d.err = err
	}
	d.mu.Unlock()
	d.cancel(err)
}

func (d *delivery) worker(ctx context.Context, jobs <-chan job) {
	var sess Session
	defer func() {
		if sess != nil {
			sess.Close()
		}
	}()
	for {
		var j job
		select {
		case j = <-d.orphans:
		default:
			var ok bool
			select {
			case j = <-d.orphans:
			case j, ok = <-jobs:
				if !ok {
					return // orphans left now stay queued for the next run
				}
			}
		}
		if ctx.Err() != nil {
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
		m, err := d.o.load(d.sendCtx, j.ID)
		if errors.Is(err, sql.ErrNoRows) {
			continue // delivered or changed meanwhile
		}
		if err != nil {
			d.fail(fmt.Errorf("outbox: deliver: load message %d: %w", j.ID, err))
			return
		}
		sendErr := sess.Send(d.sendCtx, m)
		if errors.Is(sendErr, ErrConnectionLost) {
			sess.Close()
			sess = nil
		}
		if err := d.record(j, sendErr); err != nil {
			d.fail(fmt.Errorf("outbox: deliver: record result of message %d: %w", j.ID, err))
			return
		}
	}
}

// load reads one due message with its body.
func (o *Outbox) load(ctx context.Context, id int64) (*Message, error) {
	m := &Message{ID: id}
	err := o.db.QueryRowContext(ctx, `SELECT kind, ref, sender, rcpt, body FROM outbox
		WHERE id = ? AND status IN ('queued', 'deferred')`, id).Scan(&m.Kind, &m.Ref, &m.From, &m.To, &m.Data)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// record writes the outcome of one attempt in its own transaction.
func (d *delivery) record(j job, sendErr error) error {
	now := d.opts.Now()
	r := j.Row
	r.Attempts++
	var res sql.Result
	var err error
	switch {
	case sendErr == nil:
		r.Status, r.SentAt, r.LastError = Sent, now, ""
		res, err = d.o.db.ExecContext(d.sendCtx, `UPDATE outbox SET status = 'sent', attempts = attempts + 1,
			sent_at = ?, last_error = '', body = NULL WHERE id = ?`, now.UnixMilli(), j.ID)
	case IsTemporary(sendErr) && now.Sub(j.windowStart) < d.opts.RetryFor:
		r.Status, r.NextAttempt, r.LastError = Deferred, now.Add(Backoff(r.Attempts)), errorText(sendErr)
		res, err = d.o.db.ExecContext(d.sendCtx, `UPDATE outbox SET status = 'deferred', attempts = attempts + 1,
			next_attempt = ?, last_error = ? WHERE id = ?`, r.NextAttempt.UnixMilli(), r.LastError, j.ID)
	default:
		r.Status, r.LastError = Failed, errorText(sendErr)
		if IsTemporary(sendErr) {
			r.LastError = fmt.Sprintf("gave up after %d attempts over %v: %s", r.Attempts, now.Sub(j.windowStart).Round(time.Minute), r.LastError)
		}
		res, err = d.o.db.ExecContext(d.sendCtx, `UPDATE outbox SET status = 'failed', attempts = attempts + 1,
			last_error = ? WHERE id = ?`, r.LastError, j.ID)
	}
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("row %d vanished (%d rows, %v)", j.ID, n, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch r.Status {
	case Sent:
		d.sum.Sent++
	case Deferred:
		d.sum.Deferred++
	case Failed:
		d.sum.Failed++
	}
	if d.opts.OnResult != nil {
		d.opts.OnResult(r, sendErr)
	}
	return nil
}

// errorText is what is stored as LastError: one line, bounded.
func errorText(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 1000 {
		s = strings.ToValidUTF8(s[:1000], "") + "…"
	}
	return s
}
