package fanout

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"io"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// BatchSize is how many copies are made in parallel and then queued
// together, at most. A queued copy holds only its recipient's headers,
// PKESK and framing (a few KB); the encrypted entity is stored once (see
// pgpmime.Sealed), so a batch takes well under a megabyte whatever the
// size of what is sent.
const BatchSize = 256

// Copy is one recipient's copy: the sealed entity it gets (signed once
// and encrypted once for all who get the same), the key its session key
// is encrypted to, and its outer header.
type Copy struct {
	To     string // the envelope recipient
	Key    *pgpmime.Recipient
	Sealed *pgpmime.Sealed
	Outer  pgpmime.Outer
}

// Outcome is what became of the i-th copy of a Queue: queued, or skipped
// because its key cannot be sent to (Err, for which keys.Unusable holds;
// keys.Reason says why).
type Outcome struct {
	Index int
	To    string
	Err   error
}

// Queue makes copies and queues them in the outbox, batch by batch. Set
// the fields, then call Run once.
type Queue struct {
	Outbox *outbox.Outbox
	// Kind, Ref and From are those of every message queued.
	Kind, Ref, From string
	// Tx, if set, is the transaction every batch is queued in (the
	// caller commits). Otherwise each batch is queued and committed in a
	// transaction of DB of its own.
	Tx *sql.Tx
	DB *sql.DB
	// Batch is the batch size; 0 means BatchSize.
	Batch int
	// Rand is the randomness of the PKESK packets; nil means crypto/rand.
	// It is read from several goroutines.
	Rand io.Reader
	// Done, if set, is called inside each batch's transaction with what
	// became of its copies, after they are queued (to record them).
	Done func(ctx context.Context, tx *sql.Tx, batch []Outcome) error
	// Committed, if set, is called with each batch once its
	// transaction is committed (with Tx: once it is queued).
	Committed func(batch []Outcome)

	// blobs are the shared parts stored in Tx so far. Without Tx a batch
	// keeps its own: once a batch is committed, a delivery by another
	// process may send its copies and delete their part, so the next
	// batch stores it again (PutBlobTx is content-addressed: a part still
	// there is found, not stored twice).
	blobs map[part]int64
}

type part struct {
	s *pgpmime.Sealed
	n int
}

// Run makes the copies of n recipients: copyOf(i) says what the i-th gets
// (it is called in parallel; an error stops the run). The copies of a
// batch are made in parallel, then their shared parts stored once each
// (outbox.PutBlobTx, content-addressed) and the copies queued in one
// transaction. A copy whose key turns out unusable (keys.Unusable) is
// skipped and reported; any other error stops the run, leaving the
// batches before it queued. Run returns the outcome of every copy, in
// order.
func (q *Queue) Run(ctx context.Context, n int, copyOf func(i int) (Copy, error)) ([]Outcome, error) {
	if q.Outbox == nil || (q.Tx == nil && q.DB == nil) {
		return nil, errors.New("fanout: Queue needs an Outbox and a Tx or DB")
	}
	size := q.Batch
	if size <= 0 {
		size = BatchSize
	}
	if q.blobs == nil && q.Tx != nil {
		q.blobs = map[part]int64{}
	}
	out := make([]Outcome, 0, n)
	for start := 0; start < n; start += size {
		batch, err := q.batch(ctx, start, min(start+size, n), copyOf)
		if err != nil {
			return out, err
		}
		out = append(out, batch...)
	}
	return out, nil
}

func (q *Queue) rand() io.Reader {
	if q.Rand != nil {
		return q.Rand
	}
	return rand.Reader
}

// batch makes, queues and records the copies start to end.
func (q *Queue) batch(ctx context.Context, start, end int, copyOf func(i int) (Copy, error)) ([]Outcome, error) {
	n := end - start
	specs := make([]Copy, n)
	copies := make([]pgpmime.Copy, n)
	errs := make([]error, n)
	pgpmime.Parallel(n, 0, func(i int) {
		c, err := copyOf(start + i)
		if err != nil {
			errs[i] = err
			return
		}
		specs[i] = c
		if c.Sealed == nil || c.Key == nil {
			errs[i] = fmt.Errorf("fanout: copy %d for %s has no sealed entity or no key", start+i, c.To)
			return
		}
		if copies[i], err = c.Sealed.Copy(c.Key, c.Outer, q.rand()); err != nil {
			errs[i] = fmt.Errorf("message for %s: %w", c.To, err)
		}
	})
	outcomes := make([]Outcome, n)
	var fatal []error
	for i, err := range errs {
		outcomes[i] = Outcome{Index: start + i, To: specs[i].To, Err: err}
		if err != nil && (specs[i].Sealed == nil || !keys.Unusable(err)) {
			fatal = append(fatal, err)
		}
	}
	if err := errors.Join(fatal...); err != nil {
		return nil, err
	}
	tx := q.Tx
	if tx == nil {
		var err error
		if tx, err = q.DB.BeginTx(ctx, nil); err != nil {
			return nil, err
		}
		defer tx.Rollback()
	}
	blobs := q.blobs
	if q.Tx == nil {
		blobs = map[part]int64{}
	}
	msgs := make([]outbox.Message, 0, n)
	for i, c := range copies {
		if errs[i] != nil {
			continue
		}
		p := part{specs[i].Sealed, c.Shared}
		id, ok := blobs[p]
		if !ok {
			var err error
			if id, err = q.Outbox.PutBlobTx(ctx, tx, p.s.Shared(p.n)); err != nil {
				return nil, err
			}
			blobs[p] = id
		}
		msgs = append(msgs, outbox.Message{Kind: q.Kind, Ref: q.Ref, From: q.From, To: specs[i].To,
			Data: c.Head, Blob: id, Tail: c.Tail})
	}
	if len(msgs) > 0 {
		if _, err := q.Outbox.EnqueueTx(ctx, tx, msgs...); err != nil {
			return nil, err
		}
	}
	if q.Done != nil {
		if err := q.Done(ctx, tx, outcomes); err != nil {
			return nil, err
		}
	}
	if q.Tx == nil {
		if err := tx.Commit(); err != nil {
			return nil, err
		}
	}
	if q.Committed != nil {
		q.Committed(outcomes)
	}
	return outcomes, nil
}
