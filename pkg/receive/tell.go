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
	if id := answered(s.References, info.Address, info.ListAddress, s.To); id != "" {
		return "not told: it answers the directory's answer <" + id + "> (an auto-responder)", nil
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

// answered returns the first of refs that is the Message-ID of one of
// the directory's answers to refused mail (fanout.IsAnswerID) sent from
// one of addrs' domains, or "". A signed mail answering one is an
// auto-responder's (a ticket system signs everything, and may set
// neither Auto-Submitted nor Precedence, which the pipeline's loop check
// reads): told again, it would answer again, until the answers' rate
// limit. A member who answers a refusal answer by hand with a mail that
// is refused again is not told either; the log says why.
func answered(refs []string, addrs ...string) string {
	var domains []string
	for _, a := range addrs {
		if i := strings.LastIndexByte(a, '@'); i >= 0 {
			domains = append(domains, a[i+1:])
		}
	}
	for _, id := range refs {
		if fanout.IsAnswerID(id, domains...) {
			return id
		}
	}
	return ""
}
