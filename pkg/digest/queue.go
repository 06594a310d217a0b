package digest

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// queueBatch is how many messages are encrypted and queued per
// transaction, at most: fanout's batch (fanout.BatchSize); a variable
// for tests.
var queueBatch = fanout.BatchSize

// queue encrypts the digest to every pending recipient and queues the
// messages, batch by batch; then marks the digest queued. What it sends,
// and to whom, is the directory as the signed ledger says it was at the
// digest's entry (checked, which also checks the tables now): of the
// recorded rows only the outcome so far is taken, and a row that does
// not agree with the ledger at that entry (an email that was no contact,
// a contact without its row, another key) is tampering: nothing is
// queued or sent.
func (j *Job) queue(ctx context.Context, cfg Config, id int64, res *Result, kr *keyring) error {
	db := j.Store.DB()
	var at, prev directory.At
	var created string
	if err := db.QueryRowContext(ctx, `SELECT serial, head, prev_serial, prev_head, created FROM digests WHERE id = ?`, id).Scan(&at.Serial, &at.Hash, &prev.Serial, &prev.Hash, &created); err != nil {
		return err
	}
	res.Serial = at.Serial
	t, err := time.Parse(time.RFC3339, created)
	if err != nil {
		return err
	}
	_, snaps, err := j.checked(ctx, at, prev)
	if err != nil {
		return err
	}
	c, err := j.content(ctx, cfg, snaps[0], snaps[1], t, kr)
	if err != nil {
		return err
	}
	// The outcome recorded so far for each recipient.
	type row struct{ fpr, state, reason string }
	recorded := map[string]row{}
	rows, err := db.QueryContext(ctx, `SELECT email, fingerprint, state, reason FROM digest_recipients WHERE digest_id = ? ORDER BY email`, id)
	if err != nil {
		return err
	}
	for rows.Next() {
		var email string
		var r row
		if err := rows.Scan(&email, &r.fpr, &r.state, &r.reason); err != nil {
			rows.Close()
			return err
		}
		recorded[email] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	tampered := func(email, format string, args ...any) error {
		return &directory.TamperError{Finding: &directory.VerifyError{Table: "digest_recipients",
			Row:    fmt.Sprintf("digest_id=%d (%q)", id, email),
			Reason: fmt.Sprintf(format, args...) + fmt.Sprintf(" (digest %d was made at serial %d)", id, at.Serial)}}
	}
	// Keys are chosen as they are valid now: for a digest resumed later
	// than it was recorded, a key may have expired or been revoked since.
	now := j.now()
	enc := c.keys
	if now.Sub(c.created) > time.Hour {
		enc = newKeyring(now)
	}
	var todo []recipient
	var unusable []Skipped
	for _, ct := range c.snap.Contacts {
		r, ok := recorded[ct.Email]
		if !ok {
			return tampered(ct.Email, "is missing, but %s was a contact", ct.Email)
		}
		delete(recorded, ct.Email)
		var fpr string
		if ct.Key != nil {
			fpr = ct.Key.Fingerprint
		}
		if r.fpr != "" && !strings.EqualFold(r.fpr, fpr) {
			return tampered(ct.Email, "names key %s, but %s's key was %q", r.fpr, ct.Email, fpr)
		}
		switch r.state {
		case "skipped":
			res.Skipped = append(res.Skipped, Skipped{ct.Email, r.reason})
			continue
		case "pending":
		default:
			res.Recipients++
			continue
		}
		if fpr == "" || r.fpr == "" {
			return tampered(ct.Email, "is pending, but %s had no key", ct.Email)
		}
		res.Recipients++
		key, err := enc.recipient(&ct)
		if err != nil {
			unusable = append(unusable, Skipped{ct.Email, "unusable key: " + err.Error()})
			continue
		}
		todo = append(todo, recipient{contact: ct, key: key})
	}
	for email := range recorded {
		return tampered(email, "%s was no contact", email)
	}
	// Only now that every row agrees with the ledger is anything written.
	for _, s := range unusable {
		if _, err := db.ExecContext(ctx, `UPDATE digest_recipients SET state = 'skipped', reason = ? WHERE digest_id = ? AND email = ?`,
			s.Reason, id, s.Email); err != nil {
			return err
		}
		res.Skipped = append(res.Skipped, s)
		res.Recipients--
	}
	q := &queuer{j: j, cfg: cfg, c: c, id: id, now: now, signed: map[string]*signedEntity{}, total: len(todo)}
	if err := q.run(ctx, todo, res); err != nil {
		return err
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
	note := export.KeyNote(rc, q.c.created, q.cfg.KeyNoteDays, q.c.check)
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

// run encrypts the copies to todo and queues them through fanout, batch
// by batch, each batch in a transaction of its own that also marks its
// recipients queued (or skipped, for a key found unusable only now).
func (q *queuer) run(ctx context.Context, todo []recipient, res *Result) error {
	fq := &fanout.Queue{Outbox: q.j.Outbox, Kind: Kind, Ref: strconv.FormatInt(q.id, 10), From: q.c.snap.Info.Address,
		DB: q.j.Store.DB(), Batch: queueBatch, Rand: q.j.rand(),
		Done: func(ctx context.Context, tx *sql.Tx, batch []fanout.Outcome) error {
			for _, o := range batch {
				state, reason := "queued", ""
				if o.Err != nil {
					state, reason = "skipped", "unusable key: "+o.Err.Error()
				}
				if _, err := tx.ExecContext(ctx, `UPDATE digest_recipients SET state = ?, reason = ? WHERE digest_id = ? AND email = ?`,
					state, reason, q.id, o.To); err != nil {
					return err
				}
			}
			return nil
		},
		Committed: func(batch []fanout.Outcome) {
			for _, o := range batch {
				if o.Err != nil {
					if res != nil {
						res.Skipped = append(res.Skipped, Skipped{o.To, "unusable key: " + o.Err.Error()})
						res.Recipients--
					}
					continue
				}
				if res != nil {
					res.Queued++
				}
				if q.j.Progress != nil {
					q.done++
					q.j.Progress(Progress{Phase: "queue", Done: q.done, Total: q.total, Email: o.To})
				}
			}
		},
	}
	_, err := fq.Run(ctx, len(todo), func(i int) (fanout.Copy, error) {
		e, err := q.entity(&todo[i].contact)
		if err != nil {
			return fanout.Copy{}, err
		}
		return fanout.Copy{To: todo[i].contact.Email, Key: todo[i].key, Sealed: e.sealed, Outer: q.outer(&todo[i].contact)}, nil
	})
	return err
}

// copy makes one recipient's mail from the entity it gets.
func (q *queuer) copy(rc *recipient) (pgpmime.Copy, *signedEntity, error) {
	e, err := q.entity(&rc.contact)
	if err != nil {
		return pgpmime.Copy{}, nil, err
	}
	c, err := e.sealed.Copy(rc.key, q.outer(&rc.contact), q.j.rand())
	if err != nil {
		return pgpmime.Copy{}, nil, fmt.Errorf("message for %s: %w", rc.contact.Email, err)
	}
	return c, e, nil
}

// outer is the visible header of rc's copy.
func (q *queuer) outer(rc *directory.Contact) pgpmime.Outer {
	info := q.c.snap.Info
	id, auto := q.messageID, q.autoSubmitted
	if id == "" {
		id = messageID(q.id, rc.Email, info.Address)
	}
	if auto == "" {
		auto = "auto-generated"
	}
	return pgpmime.Outer{
		From:      mail.Address{Name: info.Name, Address: info.Address},
		To:        mail.Address{Name: rc.Name, Address: rc.Email},
		Subject:   q.cfg.Subject,
		Date:      q.c.created,
		MessageID: id,
		Extra:     []pgpmime.Field{{Key: "Auto-Submitted", Value: auto}},
	}
}

// messageID is stable per digest and recipient, so a message queued
// again after a crash is the same message.
func messageID(id int64, email, from string) string {
	sum := sha256.Sum256([]byte(email))
	domain := from[strings.LastIndexByte(from, '@')+1:]
	return fmt.Sprintf("digest-%d-%s@%s", id, hex.EncodeToString(sum[:8]), domain)
}
