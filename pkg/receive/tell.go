package receive

import (
	"context"
	"errors"
	"net/mail"
	"strings"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/inbound"
)

// tell answers the signer of a refused mail when the refusal is one to
// tell (inbound.Refusal.Tellable: a verified signature by a registered
// key, not a replay, a kind the member can fix), with the one answer to
// refused mail (fanout.Answer): encrypted to the registered key, at the
// registered address, at most Config.RepliesPerHour in an hour, once per
// mail. It returns the end of the refusal's log line: who was told, or
// why not. r.mu is held.
func (r *Receiver) tell(ctx context.Context, ref *inbound.Refusal) (string, error) {
	if !ref.Tellable() {
		return "not told: " + ref.NotTold(), nil
	}
	cfg := r.Config.withDefaults()
	info, s := cfg.Directory, ref.Signer
	if r.Store == nil || r.Secret == nil || r.Outbox == nil {
		return "not told: no outbox", nil
	}
	ans := &fanout.Answer{Kind: fanout.KindRefused, PerHour: cfg.RepliesPerHour, Seen: s.Seen, Envelope: info.Address,
		From: mail.Address{Name: info.Name, Address: s.To}, What: "mail", Outcome: "was refused, and none of its commands ran",
		Title: "Refused", Subject: s.Subject, SignedAt: s.SignedAt, Why: ref.TellText(), Now: r.now()}
	if cfg.Route(s.To) == List {
		ans.What, ans.Outcome, ans.Title = "post", "was not relayed to anyone", "Not relayed"
	}
	if r.keyCache == nil {
		r.keyCache = fanout.NewKeysKept()
	}
	notTold := ""
	actor := directory.Actor{Name: "member:" + s.Key.Fingerprint}
	_, err := r.Store.Update(ctx, actor, func(tx *directory.Tx) error {
		// The signer as registered now, still with the key that signed.
		me, err := tx.Contact(s.Contact.Email)
		switch {
		case errors.Is(err, directory.ErrNotFound), err == nil && (me.Key == nil || !strings.EqualFold(me.Key.Fingerprint, s.Key.Fingerprint)):
			notTold = "the signer is no longer registered with that key"
			return nil
		case err != nil:
			return err
		}
		ans.To, ans.Key = mail.Address{Name: me.Name, Address: me.Email}, me.Key
		notTold, err = ans.Queue(ctx, tx.SQL(), r.Outbox, r.Secret, r.keyCache)
		return err
	})
	if errors.Is(err, directory.ErrUnchanged) {
		err = nil
	}
	switch {
	case err != nil:
		return "", err
	case notTold != "":
		return "not told: " + notTold, nil
	}
	ref.Told = ans.To.Address
	r.queued()
	return "told " + ans.To.Address, nil
}
