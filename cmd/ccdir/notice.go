package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// changeNotices are the notices of one transaction of the operator,
// queued in it (announce) and delivered after its commit (deliver).
type changeNotices struct {
	ref        string
	sent       []string
	skipped    []liveness.Skipped
	superseded []liveness.Pending // waiting changes the transaction made impossible
}

// txNotes is what a transaction of the operator did to pending changes
// (liveness.Pending): what its notices tell beside the ledger entries,
// and what the command reports.
type txNotes struct {
	pending []pendingEvent
	// actor is the transaction's actor ("operator:NAME"): who asks for
	// and decides pending changes.
	actor string
	// daily: the changes are the daily run's (ping send, digest send),
	// applying a pending change; the notices say so.
	daily bool
	// dryRun: the first run of a guarded mutation (mutateOptions.guarded),
	// rolled back: a change that would wait is made at once instead, and
	// warnings are left for the real run.
	dryRun bool
}

// pendingEvent is what happened to one pending change: p as the
// transaction leaves it, c the contact as the change found it (the
// address and key it replaces), line what the notices say.
type pendingEvent struct {
	p    liveness.Pending
	c    directory.Contact
	line string
}

// add records what happened to p (see pendingEvent).
func (n *txNotes) add(p liveness.Pending, c directory.Contact, line string) {
	n.pending = append(n.pending, pendingEvent{p: p, c: c, line: line})
}

// announce queues, inside tx, the notices of the contact changes tx has
// made (Tx.ContactChanges) and of what it did to pending changes
// (notes), through the one notice mechanism (liveness.Notices, as
// changes by mail are announced): to the contact's previous address and
// key, its new ones, and the other contacts of its ccTLDs who receive
// directory data. Nil when tx changed no contact and no pending change.
func (g *globals) announce(ctx context.Context, s *directory.Store, sec *keys.Secret, ob *outbox.Outbox, tx *directory.Tx, actor directory.Actor, notes *txNotes) (*changeNotices, error) {
	changes := tx.ContactChanges()
	if len(changes) == 0 && len(notes.pending) == 0 {
		return nil, nil
	}
	// The waiting changes tx made impossible (a contact removed, its
	// address or key changed at once: --confirmed, a change applied) are
	// superseded now, in tx, and told with it.
	ss, err := liveness.SupersedeWaiting(ctx, tx, liveness.Auth{Secret: ob.Key, Decisions: g.decisions(ob.Key)}, actor.Name, g.now())
	if err != nil {
		return nil, err
	}
	for _, s := range ss {
		notes.add(s.Pending, s.Contact, s.Pending.Line())
	}
	// The directory before tx (the committed state, which Tx.Check has
	// vouched for at tx's first entry), moved on by tx's changes.
	fpr, verify, err := g.ledgerKey()
	if err != nil {
		return nil, err
	}
	before, err := s.Checked(ctx, fpr, verify)
	if err != nil {
		return nil, err
	}
	view := *before
	view.Contacts = slices.Clone(before.Contacts)
	for _, ch := range changes {
		if ch.Before != nil {
			view.Contacts = slices.DeleteFunc(view.Contacts, func(c directory.Contact) bool { return c.Email == ch.Before.Email })
		}
		if ch.After != nil {
			view.Contacts = append(view.Contacts, *ch.After)
		}
	}
	slices.SortFunc(view.Contacts, func(a, b directory.Contact) int { return strings.Compare(a.Email, b.Email) })
	view.Head = tx.Head()

	by := "the operator"
	if name, ok := strings.CutPrefix(actor.Name, "operator:"); ok {
		by += " " + name
	}
	if notes.daily {
		by += "'s daily run, applying a change asked for earlier"
	}
	n := liveness.NewNotices(&view, "")
	for _, ch := range changes {
		var lines []string
		switch {
		case ch.Before == nil:
			lines = []string{fmt.Sprintf("added %s <%s> as %s, key %s", ch.After.Name, ch.After.Email, liveness.RoleText(ch.After), liveness.KeyText(ch.After.Key))}
		case ch.After == nil:
			lines = []string{fmt.Sprintf("removed %s <%s> (%s) from the directory", ch.Before.Name, ch.Before.Email, liveness.RoleText(ch.Before))}
		default:
			lines = liveness.Describe(ch.Before, ch.After)
		}
		n.Announce(ch.Before, ch.After, liveness.RoleTLDs(ch.Before, ch.After), lines)
	}
	asked := false
	for _, ev := range notes.pending {
		n.AnnouncePending(&ev.c, &ev.p, nil, []string{ev.line})
		asked = asked || ev.p.State == liveness.StateWaiting
	}
	// A transaction that wrote no ledger entry (it only asked for or
	// decided on pending changes) has no serial of its own: its notices
	// are filed under the change and what became of it, which happens
	// once.
	ref := fmt.Sprintf("cli-%d", tx.Head().Serial)
	subject := before.Info.Name + ": change by the operator"
	if tx.Head().Serial == before.Head.Serial {
		ev := notes.pending[0]
		ref = "cli-" + ev.p.ID + "-" + ev.p.State
		if asked {
			subject = before.Info.Name + ": change asked for by the operator"
		}
	}
	out := &changeNotices{ref: ref}
	for _, s := range ss {
		out.superseded = append(out.superseded, s.Pending)
	}
	for _, e := range n.NoKey {
		out.skipped = append(out.skipped, liveness.Skipped{Email: e, Reason: "no key"})
	}
	m := &liveness.Mailer{Info: before.Info, Secret: sec, OuterSubject: g.text("digest.subject")}
	msgs, sent, skipped, err := m.Messages(n.List(), liveness.Change{
		Via: "the operator", By: by, Subject: subject,
		Head: tx.Head(), Ref: out.ref,
		MessageID: func(rcpt string) string {
			sum := sha256.Sum256([]byte(rcpt))
			return "notify-" + out.ref + "-" + hex.EncodeToString(sum[:6])
		},
	}, g.now())
	if err != nil {
		return nil, err
	}
	out.sent, out.skipped = sent, append(out.skipped, skipped...)
	if len(msgs) > 0 {
		if _, err := ob.EnqueueTx(ctx, tx.SQL(), msgs...); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deliver tells the operator who gets no notice, and delivers the
// notices at once (every notice that is due: a second notice to one
// address has a ref of its own), as digest send delivers its digest:
// what cannot be delivered now stays queued for ccdir outbox flush.
func (g *globals) deliver(ctx context.Context, ob *outbox.Outbox, n *changeNotices) {
	if !g.json {
		for _, p := range n.superseded {
			g.printf("%s\n", pendingResult(p))
		}
	}
	for _, s := range n.skipped {
		g.warnf("no notice of the change to %s: %s (a notice is never sent unencrypted)", s.Email, s.Reason)
	}
	if len(n.sent) == 0 {
		return
	}
	t, err := g.transport()
	if err != nil {
		g.warnf("notices queued, not delivered: %v; ccdir outbox flush delivers them", err)
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	sum, err := ob.Deliver(dctx, t, outbox.Filter{Kind: liveness.KindNotice}, g.deliveryOptions())
	switch {
	case err != nil:
		g.warnf("notices queued, not all delivered (%v); ccdir outbox flush delivers them", err)
	case sum.Deferred+sum.Failed > 0:
		g.warnf("notices: %d sent, %d deferred, %d failed; see ccdir outbox list", sum.Sent, sum.Deferred, sum.Failed)
	}
}
