package digest

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// DefaultSubject is the neutral outer Subject of a digest: the real one
// travels encrypted, as a protected header.
const DefaultSubject = "Encrypted message"

// Config is what the operator sets for digests. Zero values mean the
// documented defaults. How messages are delivered is not here: that is
// [Job.Delivery], the outbox's own options.
type Config struct {
	Interval    Interval // default monthly
	Attach      []string // default vcard, json, keys
	Subject     string   // outer Subject; default DefaultSubject
	KeyNoteDays int      // warn recipients whose key expires within; default 60
	// PingInterval is ping.interval: a last confirmed older than it is
	// shown stale in the body's reachability section; default
	// liveness.DefaultInterval.
	PingInterval time.Duration
	// KeyChange is the directory's last rekey: while it is told
	// (export.KeyChange.Told), every digest says so at the top of its
	// text and carries the new and the old key.
	KeyChange *export.KeyChange
}

// Job makes and sends digests. Its fields are set by the caller; the zero
// Now and Rand mean time.Now and crypto/rand.
type Job struct {
	Store     *directory.Store
	Secret    *keys.Secret
	Outbox    *outbox.Outbox
	Transport outbox.Transport
	Config    Config
	// Delivery tunes the Deliver at the end of Send; its zero value
	// means the outbox's defaults, a nil Now the Job's clock. Its
	// OnResult, if set, is called before the Job's Progress.
	Delivery outbox.DeliverOptions
	Now      func() time.Time
	Rand     io.Reader
	// Progress, if set, is told of every message queued or delivered.
	Progress func(Progress)
}

// Progress is the state of a run, for a progress bar or log lines.
type Progress struct {
	Phase       string // "queue" or "deliver"
	Done, Total int
	Email       string
	Err         error
}

// Skipped is a contact who gets no digest, and why.
type Skipped struct {
	Email  string `json:"email"`
	Reason string `json:"reason"`
}

// Result says what a run did.
type Result struct {
	Digest     int64     `json:"digest,omitempty"`  // the digest made or resumed, 0 if none was due
	Serial     int64     `json:"serial,omitempty"`  // its ledger serial
	Resumed    bool      `json:"resumed,omitempty"` // an interrupted run was finished
	Due        bool      `json:"due"`               // a digest was due (or forced)
	NextDue    time.Time `json:"next_due"`          // when the next one is due
	Recipients int       `json:"recipients"`
	Queued     int       `json:"queued"`
	Sent       int       `json:"sent"`
	Deferred   int       `json:"deferred"`
	Failed     int       `json:"failed"`
	Skipped    []Skipped `json:"skipped"`
	DryRun     bool      `json:"dry_run,omitempty"`
	Where      string    `json:"delivered_to"`
}

// SendOptions are the per-run switches of `ccdir digest send`.
type SendOptions struct {
	Force  bool // make a digest even if the interval has not elapsed
	DryRun bool // render and count, queue and send nothing
}

// Kind is the outbox kind of digest messages.
const Kind = "digest"

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (j *Job) rand() io.Reader {
	if j.Rand != nil {
		return j.Rand
	}
	return rand.Reader
}

func (j *Job) defaults() Config {
	c := j.Config
	if c.Interval == (Interval{}) {
		c.Interval = Interval{Months: 1}
	}
	if c.Attach == nil {
		c.Attach = append([]string(nil), export.AttachmentNames...)
	}
	if c.Subject == "" {
		c.Subject = DefaultSubject
	}
	if c.KeyNoteDays == 0 {
		c.KeyNoteDays = export.DefaultKeyNoteDays
	}
	if c.PingInterval <= 0 {
		c.PingInterval = liveness.DefaultInterval
	}
	return c
}

// Send is one run of `ccdir digest send`, meant for cron: it finishes an
// interrupted digest if there is one; otherwise, if a digest is due (or
// forced), it records one at the current head, lists its recipients and
// queues one encrypted, signed message per recipient; then it delivers
// everything due in the outbox. A crash at any point is resumed by the
// next run: recipients are fixed when the digest is recorded, each
// message is queued once (unique per digest and recipient), and a
// message is marked sent as soon as the transport accepts it.
func (j *Job) Send(ctx context.Context, opts SendOptions) (*Result, error) {
	cfg := j.defaults()
	if j.Outbox.Now == nil {
		j.Outbox.Now = j.Now // one clock for queueing and delivery
	}
	now := j.now()
	res := &Result{Skipped: []Skipped{}, DryRun: opts.DryRun}
	if j.Transport != nil {
		res.Where = j.Transport.String()
	}

	id, err := j.incomplete(ctx)
	if err != nil {
		return nil, err
	}
	last, lastAt, err := j.lastDigest(ctx)
	if err != nil {
		return nil, err
	}
	res.NextDue = now
	if !last.IsZero() {
		res.NextDue = cfg.Interval.Next(last)
	}
	kr := newKeyring(now) // each key is parsed once per run
	switch {
	case id != 0:
		res.Resumed, res.Due = true, true
	case opts.Force || !now.Before(res.NextDue):
		res.Due = true
		if opts.DryRun {
			return j.dryRun(ctx, cfg, res, lastAt, kr)
		}
		if id, err = j.record(ctx, lastAt, kr); err != nil {
			return nil, err
		}
		res.NextDue = cfg.Interval.Next(now)
	}
	if opts.DryRun {
		if res.Resumed {
			return nil, errors.New("an interrupted digest is waiting to be finished; run digest send without --dry-run")
		}
		return res, nil
	}
	if id != 0 {
		res.Digest = id
		if err := j.queue(ctx, cfg, id, res, kr); err != nil {
			return res, err
		}
	}
	// Deliver everything due: this digest, and retries of earlier ones.
	d := j.Delivery
	if d.Now == nil {
		d.Now = j.Now
	}
	onResult := d.OnResult
	d.OnResult = func(r outbox.Row, err error) {
		if onResult != nil {
			onResult(r, err)
		}
		if j.Progress != nil {
			j.Progress(Progress{Phase: "deliver", Email: r.To, Err: err})
		}
	}
	sum, err := j.Outbox.Deliver(ctx, j.Transport, outbox.Filter{Kind: Kind}, d)
	res.Sent, res.Deferred, res.Failed = sum.Sent, sum.Deferred, sum.Failed
	return res, err
}
