package digest

import (
	"context"
	"fmt"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// MessageFor builds the digest mail that the contact with this email
// would get now, for a member who asked for it by mail (or for
// PreviewMessage): the message carries messageID (if not empty) and is
// returned for the caller to queue with its own Kind and Ref. The digest's own records are
// not touched. It reads the store through its pools, so it must not be
// called inside a directory.Store.Update.
func (j *Job) MessageFor(ctx context.Context, email, messageID string) (outbox.Message, error) {
	cfg := j.defaults()
	if err := InitSchema(ctx, j.Store.DB()); err != nil {
		return outbox.Message{}, err
	}
	_, prevSerial, err := j.lastDigest(ctx)
	if err != nil {
		return outbox.Message{}, err
	}
	snap, err := j.Store.Snapshot(ctx)
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
	c, err := j.content(ctx, cfg, snap.Head.Serial, prevSerial, now, kr)
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
