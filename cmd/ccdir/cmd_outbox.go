package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
	"github.com/ccdir/ccdir/pkg/relay"
)

func newOutboxCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "outbox",
		Short: "Inspect and deliver the queue of outgoing mail",
	}
	cmd.AddCommand(newOutboxListCmd(g), newOutboxRetryCmd(g), newOutboxFlushCmd(g))
	return cmd
}

type outboxListOptions struct {
	status string
	kind   string
	limit  int
}

func newOutboxListCmd(g *globals) *cobra.Command {
	var o outboxListOptions
	cmd := &cobra.Command{
		Use:   "list [--status queued|deferred|sent|failed|bounced] [--kind digest|reply|alert]",
		Short: "List queued, deferred, sent, failed and bounced messages (never their content)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOutboxList(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.status, "status", "", "only messages in these states (comma-separated)")
	cmd.Flags().StringVar(&o.kind, "kind", "", "only messages of this kind")
	cmd.Flags().IntVar(&o.limit, "limit", 0, "at most this many (0: all)")
	return cmd
}

func runOutboxList(ctx context.Context, o outboxListOptions, g *globals) error {
	f := outbox.Filter{Kind: o.kind, Limit: o.limit}
	for _, st := range strings.Split(o.status, ",") {
		switch st = strings.TrimSpace(st); st {
		case "":
		case string(outbox.Queued), string(outbox.Deferred), string(outbox.Sent), string(outbox.Failed), string(outbox.Bounced):
			f.Status = append(f.Status, outbox.Status(st))
		default:
			return usagef("unknown status %q: want queued, deferred, sent, failed or bounced", st)
		}
	}
	ob, done, err := g.openOutbox(ctx)
	if err != nil {
		return err
	}
	defer done()
	rows, err := ob.List(ctx, f)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(nonNil(rows))
	}
	t := &table{}
	t.add("ID", "KIND", "REF", "TO", "STATUS", "ATTEMPTS", "NEXT", "LAST ERROR")
	for _, r := range rows {
		next := "-"
		if r.Status == outbox.Deferred {
			next = r.NextAttempt.UTC().Format("2006-01-02 15:04")
		}
		t.add(strconv.FormatInt(r.ID, 10), r.Kind, r.Ref, r.To, string(r.Status), itoa(r.Attempts), next, r.LastError)
	}
	if err := t.write(g.stdout); err != nil {
		return err
	}
	g.printf("%s\n", plural(len(rows), "message"))
	return nil
}

func newOutboxRetryCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "retry [ID]...",
		Short: "Queue failed or deferred messages again, due now (all of them without IDs)",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOutboxRetry(cmd.Context(), g, args...)
		},
	}
}

func runOutboxRetry(ctx context.Context, g *globals, ids ...string) error {
	var nums []int64
	for _, a := range ids {
		id, err := strconv.ParseInt(a, 10, 64)
		if err != nil || id < 1 {
			return usagef("outbox retry takes message IDs (numbers), not %q", a)
		}
		nums = append(nums, id)
	}
	ob, done, err := g.openOutbox(ctx)
	if err != nil {
		return err
	}
	defer done()
	n, err := ob.Retry(ctx, nums)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(map[string]int{"requeued": n})
	}
	g.printf("%s queued again; deliver with: ccdir outbox flush\n", plural(n, "message"))
	return nil
}

func newOutboxFlushCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "flush",
		Short: "Deliver every message that is due now, of every kind",
		Long: `Deliver every message that is due now, of every kind. Run daily from cron:
it also keeps the operational logs to their retention, each of which holds
addresses of people: the inbound log's rows older than inbound.retention
(default 90 days), reachability checks and key reminders older than
ping.retention (365 days), bounces older than bounces.retention (180 days)
and alerts older than list.retention (365 days). What is still needed stays
however old: a check still open, a contact's last answer and the silence it
is in, a bounce of a run that still counts, an alert whose copies still
wait; pending changes are never deleted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOutboxFlush(cmd.Context(), g)
		},
	}
}

func runOutboxFlush(ctx context.Context, g *globals) error {
	if err := g.checkHome(); err != nil {
		return err
	}
	dopts := g.deliveryOptions()
	t, err := g.transport()
	if err != nil {
		return err
	}
	unlock, err := lockFile(g.path("digest.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	s, err := g.openOps(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	ob, err := g.openOutboxIn(ctx, s)
	if err != nil {
		return err
	}
	ob.Now = g.now
	sum, err := ob.Deliver(ctx, t, outbox.Filter{}, dopts)
	if err != nil {
		return err
	}
	// The daily cron job keeps the operational logs to their retention.
	pruned := g.pruneLogs(ctx, s, ob)
	if g.json {
		res := map[string]any{"delivered_to": t.String(), "sent": sum.Sent, "deferred": sum.Deferred, "failed": sum.Failed, "refused": sum.Refused}
		for _, p := range pruned {
			res[p.json] = p.n
		}
		if err := g.printJSON(res); err != nil {
			return err
		}
		return g.refusedError()
	}
	g.printf("delivered to %s: %d sent, %d deferred, %d failed\n", t, sum.Sent, sum.Deferred, sum.Failed)
	for _, p := range pruned {
		if p.n > 0 {
			g.printf("%s: %s older than %s deleted\n", p.log, plural(int(p.n), p.unit), retentionText(p.retention))
		}
	}
	return g.refusedError()
}

// prunedLog is what pruneLogs deleted of one operational log.
type prunedLog struct {
	log, unit string // "inbound log", "row"
	json      string // its key in outbox flush --json
	retention time.Duration
	n         int64
}

// pruneLogs deletes what the operational logs hold past their retention,
// each through the package that owns its tables: the inbound log
// (inbound.retention), reachability checks and key reminders
// (ping.retention), bounces (bounces.retention), alerts
// (list.retention). A log that cannot be pruned is warned of; the
// others still are.
func (g *globals) pruneLogs(ctx context.Context, s *directory.Store, ob *outbox.Outbox) []prunedLog {
	now := g.now()
	var out []prunedLog
	add := func(log, unit, json, key string, prune func(before time.Time) (int64, error)) {
		r := g.duration(key)
		n, err := prune(now.Add(-r))
		if err != nil {
			g.warnf("%v", err)
		}
		out = append(out, prunedLog{log: log, unit: unit, json: json, retention: r, n: n})
	}
	add("inbound log", "row", "inbound_log_pruned", "inbound.retention", func(before time.Time) (int64, error) {
		return receive.PruneInboundLog(ctx, s.DB(), before)
	})
	// The contacts whose state the pings keep: those of the tables (an
	// unchecked read: at worst a contact is asked again).
	var contacts []directory.Contact
	if snap, err := s.Snapshot(ctx); err == nil {
		contacts = snap.Contacts
	}
	var reminders int64
	add("reachability checks", "check", "pings_pruned", "ping.retention", func(before time.Time) (int64, error) {
		p, err := liveness.Prune(ctx, s.DB(), before, contacts)
		reminders = p.KeyReminders
		return p.Pings, err
	})
	out = append(out, prunedLog{log: "key reminders", unit: "reminder", json: "key_reminders_pruned", retention: g.duration("ping.retention"), n: reminders})
	add("bounces", "bounce", "bounces_pruned", "bounces.retention", func(before time.Time) (int64, error) {
		return ob.PruneBounces(ctx, before)
	})
	add("alerts", "alert", "alerts_pruned", "list.retention", func(before time.Time) (int64, error) {
		return relay.Prune(ctx, s.DB(), before)
	})
	return out
}

// retentionText is a retention in whole days ("90 days"), else as a
// duration ("36h").
func retentionText(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return plural(int(d/(24*time.Hour)), "day")
	}
	return durationText(d)
}

// openOutbox opens the directory's outbox without the directory key, on
// the clock that digest send and outbox flush deliver with.
func (g *globals) openOutbox(ctx context.Context) (*outbox.Outbox, func(), error) {
	s, err := g.openOps(ctx)
	if err != nil {
		return nil, nil, err
	}
	ob, err := g.openOutboxIn(ctx, s)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	ob.Now = g.now
	return ob, func() { s.Close() }, nil
}

// openOutboxIn opens the outbox of the open directory s with the home's
// outbox key (made if the home has none yet: outboxKey), which every row
// it queues is authenticated with and every row it delivers is checked
// against, and the bounce address, which every row it queues is sent
// from with its tag.
func (g *globals) openOutboxIn(ctx context.Context, s *directory.Store) (*outbox.Outbox, error) {
	k, err := g.outboxKey()
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	ob, err := outbox.Open(ctx, s.DB())
	if err != nil {
		return nil, err
	}
	ob.Key = k
	ob.Bounce = g.bounceAddress(info)
	return ob, nil
}

// bounceAddress is bounces.address, else the directory's
// LOCAL-bounces@DOMAIN.
func (g *globals) bounceAddress(info directory.Info) string {
	if a := g.text("bounces.address"); a != "" {
		return a
	}
	return info.BounceAddress()
}

// onDelivered is the DeliverOptions.OnResult of every command that
// delivers: a message refused because it fails authentication (someone
// wrote it into the database) gets a loud line in the log, on stderr,
// and is counted for refusedError.
func (g *globals) onDelivered(r outbox.Row, err error) {
	if !errors.Is(err, outbox.ErrUnauthentic) {
		return
	}
	g.refused.Add(1)
	g.logger().Printf("OUTBOX TAMPERING: message %d (%s %s from %s to %s) not sent: %v", r.ID, r.Kind, r.Ref, r.From, r.To, err)
}

// refusedError is the error of a command that refused to deliver
// messages that fail authentication (exit 1), after its report.
func (g *globals) refusedError() error {
	n := int(g.refused.Load())
	if n == 0 {
		return g.skippedChangesError()
	}
	verb, it := "was", "it was"
	if n > 1 {
		verb, it = "were", "they were"
	}
	g.warnf("%s in the outbox %s not made by this ccdir (outbox row fails authentication): possible database tampering; %s not sent", plural(n, "message"), verb, it)
	return withHint(fmt.Errorf("%s refused", plural(n, "message")),
		"see them with: ccdir outbox list --status failed; check who can write %s, and run ccdir verify; mail queued by a ccdir older than outbox keys is refused too: re-run the job that queued it (ccdir digest send --force)", g.path(dbName))
}
