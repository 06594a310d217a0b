package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
)

func newPingCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ping",
		Short: "Check that every contact still answers: reachability challenges and their status",
	}
	cmd.AddCommand(newPingSendCmd(g), newPingStatusCmd(g))
	return cmd
}

func newPingSendCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "send",
		Short: "Send the reachability checks, reminders and notices that are due (run it daily from cron), and deliver them",
		Long: `Meant for cron, daily. Every contact that receives directory data and has
not answered a check at its current address and key within ping.interval
(a contact added today included) gets an encrypted, signed challenge with a
single-use token, valid for ping.valid: its line "PONG <token>", copied into
a mail signed with the contact's key to the directory's address, proves that
the mailbox receives and the key decrypts and signs. A challenge unanswered
after ping.remind gets one reminder with the same token; one that expires
unanswered is told to the admin contacts of the contact's ccTLDs and to the
operator (operator.address, operator.key; ping.escalate), and the contact is
stale until it answers a new one. A contact whose key expires within one of
keys.remind_days gets one encrypted, signed reminder per threshold naming the
key, its expiry and how to refresh it (KEY-REFRESH); an expired key gets
none and is listed. Each message is queued
with what records it: a rerun the same day sends nothing twice, and a run
that stopped is finished by the next. Then what it queued is delivered
through delivery.url. Before all that, the pending key and email changes
that are due (changes.delay; see ccdir pending) are applied, each in its own
transaction with its notices, as ledger entries of the operator who runs it.

` + configHelp("ping.", "keys.remind_days", "changes.") + `

EXIT STATUS
  0 ran (failed deliveries are listed), 1 error (also after a run that
  skipped a due pending change whose row fails authentication, named on
  stderr), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPingSend(cmd.Context(), g)
		},
	}
}

type pingStatusOptions struct {
	stale bool
}

func newPingStatusCmd(g *globals) *cobra.Command {
	var o pingStatusOptions
	cmd := &cobra.Command{
		Use:   "status [--stale] [--json]",
		Short: "Per contact: last confirmed, pending check, verdict (ok, pending, stale, unreachable)",
		Long: `Lists every contact that receives directory data with when it last answered
a reachability check at its current address and key, how old the check
waiting for its answer is, how many of its messages bounced in a row
(see bounces.limit), and a verdict: ok (answered within
ping.interval), pending (a check waits, or one is due), stale (a check
expired unanswered since its last answer) or unreachable (nothing can be
sent to it: no usable key, or bounces.limit bounces in a row since its
last answer). --stale lists only the stale and unreachable.

EXIT STATUS
  0 every contact is ok or pending, 4 a contact is stale or unreachable
  (for monitoring), 1 error, 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPingStatus(cmd.Context(), o, g)
		},
	}
	cmd.Flags().BoolVar(&o.stale, "stale", false, "only the stale and unreachable contacts")
	return cmd
}

// pingConfig reads the ping settings.
func (g *globals) pingConfig() liveness.Config {
	return liveness.Config{
		Interval:    g.duration("ping.interval"),
		Valid:       g.duration("ping.valid"),
		Remind:      g.duration("ping.remind"),
		NoEscalate:  !g.boolean("ping.escalate"),
		BounceLimit: g.number("bounces.limit"),
		RemindDays:  g.numbers("keys.remind_days"),
		Subject:     g.text("digest.subject"),
	}
}

func runPingSend(ctx context.Context, g *globals) error {
	if err := g.checkHome(); err != nil {
		return err
	}
	// The lock of every command that delivers the outbox.
	unlock, err := lockFile(g.path("digest.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	t, err := g.transport()
	if err != nil {
		return err
	}
	// The pending changes that are due first: what is sent then reaches
	// the contacts as they are now.
	applied, err := g.applyDue(ctx, false)
	if err != nil {
		return withHint(err, "the changes applied before it stay applied; the next ccdir ping send applies the rest")
	}
	s, sec, err := g.openWriteKey(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	ob, err := g.openOutboxIn(ctx, s)
	if err != nil {
		return err
	}
	ob.Now = g.now
	sender := &liveness.Sender{Store: s, Secret: sec, Outbox: ob, TokenSecret: ob.Key, Config: g.pingConfig(), Now: g.now}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	// The operator is told of every silence too, when they have an
	// address and a key of their own.
	switch op, err := g.operator(info); {
	case err == nil:
		c := op.Contact()
		sender.Operator = &c
	case !errors.Is(err, errNoOperator):
		g.warnf("the operator is not told of contacts that do not answer: %v", err)
	}
	res, err := sender.Send(ctx)
	if err != nil {
		if res != nil && len(res.Challenged)+len(res.Reminded)+len(res.Escalated)+len(res.KeyReminders) > 0 {
			return withHint(err, "what was queued stays in the outbox and is recorded; the next ccdir ping send finishes the run")
		}
		return err
	}
	var sum outbox.Summary
	for _, kind := range liveness.Kinds {
		n, err := ob.Deliver(ctx, t, outbox.Filter{Kind: kind}, g.deliveryOptions())
		sum.Sent, sum.Deferred, sum.Failed = sum.Sent+n.Sent, sum.Deferred+n.Deferred, sum.Failed+n.Failed
		if err != nil {
			return withHint(err, "what was queued stays in the outbox; ccdir outbox flush delivers it")
		}
	}
	if g.json {
		if err := g.printJSON(struct {
			*liveness.Result
			Where    string        `json:"delivered_to"`
			Sent     int           `json:"sent"`
			Deferred int           `json:"deferred"`
			Failed   int           `json:"failed"`
			Pending  []pendingJSON `json:"pending_changes,omitempty"`
		}{res, t.String(), sum.Sent, sum.Deferred, sum.Failed, pendingJSONs(applied)}); err != nil {
			return err
		}
		return g.refusedError()
	}
	g.reportDue(applied, false)
	g.printf("ping send: %s, %s, %s queued\n", plural(len(res.Challenged), "challenge"), plural(len(res.Reminded), "reminder"), plural(len(res.Escalated), "notice"))
	for _, e := range res.Challenged {
		g.printf("challenged %s\n", e)
	}
	for _, e := range res.Reminded {
		g.printf("reminded %s\n", e)
	}
	for _, e := range res.Escalated {
		told := "nobody"
		if len(e.Notified) > 0 {
			told = strings.Join(e.Notified, ", ")
		}
		g.printf("no answer from %s: told %s\n", e.Email, told)
		for _, n := range e.Notes {
			g.printf("  %s\n", n)
		}
	}
	for _, k := range res.KeyReminders {
		g.printf("key expiry reminder to %s: key %s expires on %s (%d days)\n", k.Email, k.Fingerprint, k.Expires[:10], k.Days)
	}
	for _, k := range res.Expired {
		g.printf("key of %s expired on %s: no reminder (nothing can be encrypted to it); key %s\n", k.Email, k.Expires[:10], k.Fingerprint)
	}
	for _, sk := range res.Skipped {
		g.printf("skipped %s: %s\n", sk.Email, sk.Reason)
	}
	g.printf("delivered to %s: %d sent, %d deferred, %d failed\n", t.String(), sum.Sent, sum.Deferred, sum.Failed)
	if sum.Failed > 0 {
		g.printf("see the failures with: ccdir outbox list --status failed\n")
	}
	return g.refusedError()
}

// pingStatusJSON is one contact in ping status --json: times in RFC 3339,
// left out when there is none.
type pingStatusJSON struct {
	Email         string   `json:"email"`
	Name          string   `json:"name"`
	TLDs          []string `json:"tlds"`
	LastConfirmed string   `json:"last_confirmed,omitempty"`
	PendingSince  string   `json:"pending_since,omitempty"`
	StaleSince    string   `json:"stale_since,omitempty"`
	Bounces       int      `json:"bounces"`
	Verdict       string   `json:"verdict"`
	Detail        string   `json:"detail"`
}

func runPingStatus(ctx context.Context, o pingStatusOptions, g *globals) error {
	s, err := g.openOps(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	g.warnTampered(ctx, s)
	snap, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	now := g.now()
	all, err := liveness.Statuses(ctx, s.DB(), snap, g.pingConfig(), now, func(c *directory.Contact) error { return usableKey(c, now) })
	if err != nil {
		return err
	}
	attention := 0
	var list []liveness.Status
	for _, st := range all {
		if st.Attention() {
			attention++
		}
		if !o.stale || st.Attention() {
			list = append(list, st)
		}
	}
	if g.json {
		out := []pingStatusJSON{}
		for _, st := range list {
			out = append(out, pingStatusJSON{Email: st.Email, Name: st.Name, TLDs: st.TLDs, LastConfirmed: rfc3339(st.LastConfirmed),
				PendingSince: rfc3339(st.PendingSince), StaleSince: rfc3339(st.StaleSince), Bounces: st.Bounces.Count, Verdict: st.Verdict, Detail: st.Detail})
		}
		if err := g.printJSON(out); err != nil {
			return err
		}
	} else {
		t := &table{}
		t.add("EMAIL", "TLDS", "VERDICT", "LAST CONFIRMED", "PENDING", "BOUNCES", "DETAIL")
		for _, st := range list {
			t.add(st.Email, strings.Join(st.TLDs, ","), st.Verdict, dateOr(st.LastConfirmed, "never"), age(st.PendingSince, now), itoa(st.Bounces.Count), st.Detail)
		}
		if len(list) > 0 {
			if err := t.write(g.stdout); err != nil {
				return err
			}
		}
		g.printf("%s of %s stale or unreachable\n", plural(attention, "contact"), plural(len(all), "contact"))
	}
	if attention > 0 {
		return &attentionError{fmt.Sprintf("%s stale or unreachable", plural(attention, "contact"))}
	}
	return nil
}

// rfc3339 writes t, or "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// dateOr writes t's date, or none for the zero time.
func dateOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.DateOnly)
}

// age writes how long ago t was, in whole days (or hours under a day);
// "-" for the zero time.
func age(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	if d < 24*time.Hour {
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}
