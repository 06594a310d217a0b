package digest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Interval is how often a digest is due.
type Interval struct {
	Months, Days int
}

// ParseInterval reads "monthly", "weekly", "daily" or a number of days
// ("14" or "14d").
func ParseInterval(s string) (Interval, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "monthly":
		return Interval{Months: 1}, nil
	case "weekly":
		return Interval{Days: 7}, nil
	case "daily":
		return Interval{Days: 1}, nil
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(s), "d"))
	if err != nil || n < 1 || n > 366 {
		return Interval{}, fmt.Errorf("digest interval %q: want monthly, weekly, daily or a number of days from 1 to 366", s)
	}
	return Interval{Days: n}, nil
}

// Next returns when the digest after one made at t is due.
func (i Interval) Next(t time.Time) time.Time { return t.AddDate(0, i.Months, i.Days) }

func (i Interval) String() string {
	switch {
	case i.Months == 1 && i.Days == 0:
		return "monthly"
	case i.Months == 0 && i.Days == 7:
		return "weekly"
	case i.Months == 0 && i.Days == 1:
		return "daily"
	}
	return fmt.Sprintf("%d days", i.Days+30*i.Months)
}

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

const jobSchema = `
CREATE TABLE IF NOT EXISTS digests (
	id          INTEGER PRIMARY KEY,
	serial      INTEGER NOT NULL,
	head        TEXT NOT NULL,
	prev_serial INTEGER NOT NULL,
	created     TEXT NOT NULL,
	queued      TEXT
);
CREATE TABLE IF NOT EXISTS digest_recipients (
	digest_id   INTEGER NOT NULL REFERENCES digests(id),
	email       TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'skipped')),
	reason      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (digest_id, email)
);
`

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
	return c
}

// InitSchema creates the digest tables if they are missing.
func InitSchema(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, jobSchema)
	return err
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
	db := j.Store.DB()
	if err := InitSchema(ctx, db); err != nil {
		return nil, err
	}
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
	last, lastSerial, err := j.lastDigest(ctx)
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
			return j.dryRun(ctx, cfg, res, lastSerial, kr)
		}
		if id, err = j.record(ctx, lastSerial, kr); err != nil {
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

// incomplete returns the digest whose recipients are not all queued yet.
func (j *Job) incomplete(ctx context.Context) (int64, error) {
	var id int64
	err := j.Store.DB().QueryRowContext(ctx, `SELECT id FROM digests WHERE queued IS NULL ORDER BY id LIMIT 1`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// lastDigest returns the time and serial of the newest digest.
func (j *Job) lastDigest(ctx context.Context) (time.Time, int64, error) {
	var created string
	var serial int64
	err := j.Store.DB().QueryRowContext(ctx, `SELECT created, serial FROM digests ORDER BY id DESC LIMIT 1`).Scan(&created, &serial)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, err
	}
	t, err := time.Parse(time.RFC3339, created)
	return t, serial, err
}

// recipient is a contact who gets the digest, with the key to encrypt to.
type recipient struct {
	contact directory.Contact
	key     *pgpmime.Recipient
}

// recipients splits the snapshot's contacts into those with a usable key
// (checked through kr) and those skipped, with the reason.
func recipients(s *directory.Snapshot, kr *keyring) ([]recipient, []Skipped) {
	kr.add(s.Contacts)
	var out []recipient
	var skipped []Skipped
	for i := range s.Contacts {
		c := &s.Contacts[i]
		if c.Key == nil {
			skipped = append(skipped, Skipped{c.Email, "no key"})
			continue
		}
		st := kr.state(c)
		if st.err != nil {
			skipped = append(skipped, Skipped{c.Email, "unusable key: " + st.err.Error()})
			continue
		}
		out = append(out, recipient{contact: *c, key: st.rcpt})
	}
	return out, skipped
}

// record writes a new digest at the current head and its recipient list,
// in one transaction.
func (j *Job) record(ctx context.Context, prevSerial int64, kr *keyring) (int64, error) {
	snap, err := j.Store.Snapshot(ctx)
	if err != nil {
		return 0, err
	}
	now := kr.t
	rcpts, skipped := recipients(snap, kr)
	tx, err := j.Store.DB().BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, `INSERT INTO digests (serial, head, prev_serial, created) VALUES (?, ?, ?, ?)`,
		snap.Head.Serial, snap.Head.Hash, prevSerial, now.Format(time.RFC3339))
	if err != nil {
		return 0, err
	}
	id, err := r.LastInsertId()
	if err != nil {
		return 0, err
	}
	for _, rc := range rcpts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO digest_recipients (digest_id, email, fingerprint, state) VALUES (?, ?, ?, 'pending')`,
			id, rc.contact.Email, rc.contact.Key.Fingerprint); err != nil {
			return 0, err
		}
	}
	for _, s := range skipped {
		if _, err := tx.ExecContext(ctx, `INSERT INTO digest_recipients (digest_id, email, fingerprint, state, reason) VALUES (?, ?, '', 'skipped', ?)`,
			id, s.Email, s.Reason); err != nil {
			return 0, err
		}
	}
	return id, tx.Commit()
}

// content is what a digest says, rebuilt identically on resume from the
// ledger serials recorded with it.
type content struct {
	snap        *directory.Snapshot
	changes     []export.Change
	prevSerial  int64
	created     time.Time
	attachments []export.Attachment
	keys        *keyring // at created
	usable      func(*directory.Contact) error
}

// content rebuilds what the digest made at created says; kr is used if it
// checks keys at created (nil: a new keyring).
func (j *Job) content(ctx context.Context, cfg Config, serial, prevSerial int64, created time.Time, kr *keyring) (*content, error) {
	snap, err := j.Store.SnapshotAt(ctx, serial)
	if err != nil {
		return nil, err
	}
	var prev *directory.Snapshot
	if prevSerial > 0 {
		if prev, err = j.Store.SnapshotAt(ctx, prevSerial); err != nil {
			return nil, err
		}
	}
	atts, err := export.Attachments(snap, cfg.Attach)
	if err != nil {
		return nil, err
	}
	if kr == nil || !kr.t.Equal(created) {
		kr = newKeyring(created)
	}
	kr.add(snap.Contacts)
	usable := kr.usable
	return &content{
		snap:        snap,
		changes:     export.Diff(prev, snap, created, usable),
		prevSerial:  prevSerial,
		created:     created,
		attachments: atts,
		keys:        kr,
		usable:      usable,
	}, nil
}

// protected are the real headers of a digest, the same for everyone.
func (c *content) protected() pgpmime.Protected {
	info := c.snap.Info
	from := mail.Address{Name: info.Name, Address: info.Address}
	return pgpmime.Protected{
		From:    from,
		ToGroup: info.Name + " contacts",
		Subject: fmt.Sprintf("%s: digest, serial %d, %s", info.Name, c.snap.Head.Serial, c.created.Format("2006-01-02")),
		Date:    c.created,
	}
}

// signedFor builds and signs the inner entity for one recipient note;
// recipients with the same note share it.
func (j *Job) signedFor(c *content, cfg Config, rc *directory.Contact) (*pgpmime.Signed, error) {
	var body bytes.Buffer
	if err := export.WriteBody(&body, c.snap, export.BodyOptions{
		Now: c.created, PrevSerial: c.prevSerial, Changes: c.changes, Recipient: rc, KeyNoteDays: cfg.KeyNoteDays, Usable: c.usable,
	}); err != nil {
		return nil, err
	}
	parts := []pgpmime.Part{{ContentType: "text/plain", Params: map[string]string{"charset": "utf-8"}, Body: body.Bytes()}}
	for _, a := range c.attachments {
		mt, params, err := mime.ParseMediaType(a.ContentType)
		if err != nil {
			return nil, fmt.Errorf("attachment %s: %w", a.Filename, err)
		}
		parts = append(parts, pgpmime.Part{ContentType: mt, Params: params, Filename: a.Filename, Body: a.Body})
	}
	inner, err := pgpmime.BuildInner(c.protected(), parts)
	if err != nil {
		return nil, err
	}
	return pgpmime.Sign(inner, j.Secret)
}

// queueBatch is how many messages are encrypted and queued per
// transaction, at most. A queued message holds only its recipient's
// headers, PKESK and framing (a few KB); the encrypted directory is
// stored once per digest (see pgpmime.Sealed), so a batch takes well
// under a megabyte whatever the size of the directory.
var queueBatch = 256 // a variable for tests

// queue encrypts the digest to every pending recipient and queues the
// messages, batch by batch; then marks the digest queued.
func (j *Job) queue(ctx context.Context, cfg Config, id int64, res *Result, kr *keyring) error {
	db := j.Store.DB()
	var serial, prevSerial int64
	var created string
	if err := db.QueryRowContext(ctx, `SELECT serial, prev_serial, created FROM digests WHERE id = ?`, id).Scan(&serial, &prevSerial, &created); err != nil {
		return err
	}
	res.Serial = serial
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return err
	}
	c, err := j.content(ctx, cfg, serial, prevSerial, t, kr)
	if err != nil {
		return err
	}
	// The recipient list fixed when the digest was recorded.
	pending := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT email, fingerprint, state, reason FROM digest_recipients WHERE digest_id = ? ORDER BY email`, id)
	if err != nil {
		return err
	}
	for rows.Next() {
		var email, fpr, state, reason string
		if err := rows.Scan(&email, &fpr, &state, &reason); err != nil {
			rows.Close()
			return err
		}
		switch state {
		case "skipped":
			res.Skipped = append(res.Skipped, Skipped{email, reason})
		case "pending":
			pending[email] = fpr
			res.Recipients++
		default:
			res.Recipients++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// Keys are chosen as they are valid now: for a digest resumed later
	// than it was recorded, a key may have expired or been revoked since.
	now := j.now()
	enc := c.keys
	if now.Sub(c.created) > time.Hour {
		enc = newKeyring(now)
	}
	var todo []recipient
	found := 0
	for _, ct := range c.snap.Contacts {
		fpr, ok := pending[ct.Email]
		if !ok {
			continue
		}
		found++
		if ct.Key == nil || ct.Key.Fingerprint != fpr {
			return fmt.Errorf("digest %d: the key of %s at serial %d is not the one recorded", id, ct.Email, serial)
		}
		st := enc.state(&ct)
		if st.err != nil {
			reason := "unusable key: " + st.err.Error()
			if _, err := db.ExecContext(ctx, `UPDATE digest_recipients SET state = 'skipped', reason = ? WHERE digest_id = ? AND email = ?`,
				reason, id, ct.Email); err != nil {
				return err
			}
			res.Skipped = append(res.Skipped, Skipped{ct.Email, reason})
			res.Recipients--
			continue
		}
		todo = append(todo, recipient{contact: ct, key: st.rcpt})
	}
	if found != len(pending) {
		return fmt.Errorf("digest %d: %d recipients are not in the directory at serial %d", id, len(pending)-found, serial)
	}
	q := &queuer{j: j, cfg: cfg, c: c, id: id, now: now, signed: map[string]*signedEntity{}, total: len(todo)}
	for start := 0; start < len(todo); start += queueBatch {
		batch := todo[start:min(start+queueBatch, len(todo))]
		if err := q.queueBatch(ctx, batch); err != nil {
			return err
		}
		res.Queued += len(batch)
	}
	_, err = db.ExecContext(ctx, `UPDATE digests SET queued = ? WHERE id = ?`, j.now().Format(time.RFC3339), id)
	return err
}

// signedEntity is one signed inner entity, encrypted once for all the
// recipients that get it.
type signedEntity struct {
	sealed *pgpmime.Sealed
}

type queuer struct {
	j      *Job
	cfg    Config
	c      *content
	id     int64
	now    time.Time
	mu     sync.Mutex
	signed map[string]*signedEntity // by key note
	done   int
	total  int
	// For a single digest sent on request (MessageFor): the Message-ID
	// and Auto-Submitted value to use instead of the digest's own.
	messageID     string
	autoSubmitted string
}

// entity returns the signed entity for a recipient, signing once per
// distinct key note.
func (q *queuer) entity(rc *directory.Contact) (*signedEntity, error) {
	note := export.KeyNote(rc, q.c.created, q.cfg.KeyNoteDays, q.c.usable)
	q.mu.Lock()
	defer q.mu.Unlock()
	if e, ok := q.signed[note]; ok {
		return e, nil
	}
	var who *directory.Contact
	if note != "" {
		who = rc
	}
	s, err := q.j.signedFor(q.c, q.cfg, who)
	if err != nil {
		return nil, err
	}
	enc, err := pgpmime.NewEncrypter(s, q.now)
	if err != nil {
		return nil, err
	}
	e := &signedEntity{sealed: enc.Seal(q.j.rand())}
	q.signed[note] = e
	return e, nil
}

// queueBatch encrypts a batch in parallel, then queues it and marks its
// recipients queued in one transaction.
func (q *queuer) queueBatch(ctx context.Context, batch []recipient) error {
	copies := make([]pgpmime.Copy, len(batch))
	entities := make([]*signedEntity, len(batch))
	errs := make([]error, len(batch))
	pgpmime.Parallel(len(batch), 0, func(i int) { copies[i], entities[i], errs[i] = q.copy(&batch[i]) })
	if err := errors.Join(errs...); err != nil {
		return err
	}
	tx, err := q.j.Store.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// The shared parts are stored once (content-addressed, so a batch
	// finds those of the batches before).
	type part struct {
		e *signedEntity
		n int
	}
	blobs := map[part]int64{}
	msgs := make([]outbox.Message, len(batch))
	info := q.c.snap.Info
	for i, c := range copies {
		p := part{entities[i], c.Shared}
		id, ok := blobs[p]
		if !ok {
			if id, err = q.j.Outbox.PutBlobTx(ctx, tx, p.e.sealed.Shared(p.n)); err != nil {
				return err
			}
			blobs[p] = id
		}
		msgs[i] = outbox.Message{Kind: Kind, Ref: strconv.FormatInt(q.id, 10), From: info.Address, To: batch[i].contact.Email,
			Data: c.Head, Blob: id, Tail: c.Tail}
	}
	if _, err := q.j.Outbox.EnqueueTx(ctx, tx, msgs...); err != nil {
		return err
	}
	for _, rc := range batch {
		if _, err := tx.ExecContext(ctx, `UPDATE digest_recipients SET state = 'queued' WHERE digest_id = ? AND email = ?`, q.id, rc.contact.Email); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if q.j.Progress != nil {
		for _, rc := range batch {
			q.done++
			q.j.Progress(Progress{Phase: "queue", Done: q.done, Total: q.total, Email: rc.contact.Email})
		}
	}
	return nil
}

// copy makes one recipient's mail from the entity it gets.
func (q *queuer) copy(rc *recipient) (pgpmime.Copy, *signedEntity, error) {
	e, err := q.entity(&rc.contact)
	if err != nil {
		return pgpmime.Copy{}, nil, err
	}
	info := q.c.snap.Info
	id, auto := q.messageID, q.autoSubmitted
	if id == "" {
		id = messageID(q.id, rc.contact.Email, info.Address)
	}
	if auto == "" {
		auto = "auto-generated"
	}
	c, err := e.sealed.Copy(rc.key, pgpmime.Outer{
		From:      mail.Address{Name: info.Name, Address: info.Address},
		To:        mail.Address{Name: rc.contact.Name, Address: rc.contact.Email},
		Subject:   q.cfg.Subject,
		Date:      q.c.created,
		MessageID: id,
		Extra:     []pgpmime.Field{{Key: "Auto-Submitted", Value: auto}},
	}, q.j.rand())
	if err != nil {
		return pgpmime.Copy{}, nil, fmt.Errorf("message for %s: %w", rc.contact.Email, err)
	}
	return c, e, nil
}

// messageID is stable per digest and recipient, so a message queued
// again after a crash is the same message.
func messageID(id int64, email, from string) string {
	sum := sha256.Sum256([]byte(email))
	domain := from[strings.LastIndexByte(from, '@')+1:]
	return fmt.Sprintf("digest-%d-%s@%s", id, hex.EncodeToString(sum[:8]), domain)
}

// dryRun renders the digest at the current head and counts recipients,
// writing nothing.
func (j *Job) dryRun(ctx context.Context, cfg Config, res *Result, prevSerial int64, kr *keyring) (*Result, error) {
	snap, err := j.Store.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	c, err := j.content(ctx, cfg, snap.Head.Serial, prevSerial, kr.t, kr)
	if err != nil {
		return nil, err
	}
	rcpts, skipped := recipients(snap, kr)
	res.Serial, res.Recipients = snap.Head.Serial, len(rcpts)
	res.Skipped = append(res.Skipped, skipped...)
	if _, err := j.signedFor(c, cfg, nil); err != nil {
		return nil, err
	}
	return res, nil
}

// PreviewText writes the text of the digest that would be sent now, as
// the operator sees it (no recipient's key note).
func (j *Job) PreviewText(ctx context.Context, w io.Writer) error {
	cfg := j.defaults()
	if err := InitSchema(ctx, j.Store.DB()); err != nil {
		return err
	}
	_, prevSerial, err := j.lastDigest(ctx)
	if err != nil {
		return err
	}
	snap, err := j.Store.Snapshot(ctx)
	if err != nil {
		return err
	}
	c, err := j.content(ctx, cfg, snap.Head.Serial, prevSerial, j.now(), nil)
	if err != nil {
		return err
	}
	return export.WriteBody(w, c.snap, export.BodyOptions{Now: c.created, PrevSerial: prevSerial, Changes: c.changes, KeyNoteDays: cfg.KeyNoteDays, Usable: c.usable})
}

// PreviewMessage writes the whole encrypted mail that the contact with
// this email would get now. Nothing is queued.
func (j *Job) PreviewMessage(ctx context.Context, w io.Writer, email string) error {
	m, err := j.MessageFor(ctx, email, "")
	if err != nil {
		return err
	}
	_, err = w.Write(m.Data)
	return err
}

// DigestInfo is one past digest, for `ccdir digest status`.
type DigestInfo struct {
	ID         int64  `json:"id"`
	Serial     int64  `json:"serial"`
	Head       string `json:"head"`
	Created    string `json:"created"`
	Queued     bool   `json:"queued"`
	Recipients int    `json:"recipients"`
	Sent       int    `json:"sent"`
	Waiting    int    `json:"waiting"` // queued or deferred in the outbox, or not queued yet
	Failed     int    `json:"failed"`
	Skipped    int    `json:"skipped"`
}

// Digests lists the digests, newest first, with their delivery counts.
func Digests(ctx context.Context, db *sql.DB) ([]DigestInfo, error) {
	if err := InitSchema(ctx, db); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT d.id, d.serial, d.head, d.created, d.queued IS NOT NULL,
		(SELECT count(*) FROM digest_recipients r WHERE r.digest_id = d.id AND r.state != 'skipped'),
		(SELECT count(*) FROM digest_recipients r WHERE r.digest_id = d.id AND r.state = 'skipped')
		FROM digests d ORDER BY d.id DESC`)
	if err != nil {
		return nil, err
	}
	var out []DigestInfo
	for rows.Next() {
		var d DigestInfo
		if err := rows.Scan(&d.ID, &d.Serial, &d.Head, &d.Created, &d.Queued, &d.Recipients, &d.Skipped); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ob, err := outbox.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	for i := range out {
		counts, err := ob.Counts(ctx, Kind, strconv.FormatInt(out[i].ID, 10))
		if err != nil {
			return nil, err
		}
		out[i].Sent, out[i].Failed = counts[outbox.Sent], counts[outbox.Failed]
		out[i].Waiting = out[i].Recipients - out[i].Sent - out[i].Failed
	}
	return out, nil
}

// RecipientState is one recipient of a digest.
type RecipientState struct {
	Email    string `json:"email"`
	State    string `json:"state"` // skipped, pending (not queued yet), or the outbox status
	Attempts int    `json:"attempts"`
	Detail   string `json:"detail"` // why skipped, or the last delivery error
}

// Recipients lists the recipients of one digest with their state.
func Recipients(ctx context.Context, db *sql.DB, id int64) ([]RecipientState, error) {
	if err := InitSchema(ctx, db); err != nil {
		return nil, err
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM digests WHERE id = ?`, id).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, &directory.Error{Err: directory.ErrNotFound, Msg: fmt.Sprintf("no digest %d", id), Hint: "list them with: ccdir digest status"}
	}
	ob, err := outbox.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	msgs, err := ob.List(ctx, outbox.Filter{Kind: Kind, Ref: strconv.FormatInt(id, 10)})
	if err != nil {
		return nil, err
	}
	byEmail := map[string]outbox.Row{}
	for _, m := range msgs {
		byEmail[m.To] = m
	}
	rows, err := db.QueryContext(ctx, `SELECT email, state, reason FROM digest_recipients WHERE digest_id = ? ORDER BY email`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RecipientState
	for rows.Next() {
		var r RecipientState
		if err := rows.Scan(&r.Email, &r.State, &r.Detail); err != nil {
			return nil, err
		}
		if m, ok := byEmail[r.Email]; ok && r.State == "queued" {
			r.State, r.Attempts, r.Detail = string(m.Status), m.Attempts, m.LastError
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
