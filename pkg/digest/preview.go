package digest

import (
	"context"
	"fmt"
	"io"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// MessageFor builds the digest mail that the contact with this email
// would get now, for a member who asked for it by mail (or for
// PreviewMessage): the message carries messageID (if not empty) and is
// returned for the caller to queue with its own Kind and Ref. The digest's own records are
// not touched. It reads the store through its pools: inside a
// directory.Store.Update it sees what was committed before it.
func (j *Job) MessageFor(ctx context.Context, email, messageID string) (outbox.Message, error) {
	cfg := j.defaults()
	_, last, err := j.lastDigest(ctx)
	if err != nil {
		return outbox.Message{}, err
	}
	snap, prev, err := j.checked(ctx, last)
	if err != nil {
		return outbox.Message{}, err
	}
	now := j.now()
	kr := newKeyring(now)
	rcpts, skipped := recipients(snap, kr)
	var rc *recipient
	for i := range rcpts {
		if rcpts[i].contact.Email == email {
			rc = &rcpts[i]
		}
	}
	if rc == nil {
		for _, s := range skipped {
			if s.Email == email {
				return outbox.Message{}, fmt.Errorf("%s gets no digest: %s", email, s.Reason)
			}
		}
		return outbox.Message{}, &directory.Error{Err: directory.ErrNotFound, Msg: "no contact with email " + email}
	}
	c, err := j.content(ctx, cfg, snap, prev[0], now, kr)
	if err != nil {
		return outbox.Message{}, err
	}
	q := &queuer{j: j, cfg: cfg, c: c, now: now, signed: map[string]*signedEntity{},
		messageID: messageID, autoSubmitted: "auto-replied"}
	cp, e, err := q.copy(rc)
	if err != nil {
		return outbox.Message{}, err
	}
	return outbox.Message{Kind: Kind, From: snap.Info.Address, To: rc.contact.Email, Data: e.sealed.Bytes(cp)}, nil
}

// dryRun renders the digest at the current head and counts recipients,
// writing nothing.
func (j *Job) dryRun(ctx context.Context, cfg Config, res *Result, last directory.At, kr *keyring) (*Result, error) {
	snap, prev, err := j.checked(ctx, last)
	if err != nil {
		return nil, err
	}
	c, err := j.content(ctx, cfg, snap, prev[0], kr.t, kr)
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
	_, last, err := j.lastDigest(ctx)
	if err != nil {
		return err
	}
	snap, prev, err := j.checked(ctx, last)
	if err != nil {
		return err
	}
	c, err := j.content(ctx, cfg, snap, prev[0], j.now(), nil)
	if err != nil {
		return err
	}
	return export.WriteBody(w, c.snap, export.BodyOptions{Now: c.created, PrevSerial: c.prevSerial, PrevHead: c.prevHead, Changes: c.changes, KeyNoteDays: cfg.KeyNoteDays, Keys: c.check, Reachability: c.reach})
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
