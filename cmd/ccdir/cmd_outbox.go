package main

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/pkg/outbox"
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
		Use:   "list [--status queued|deferred|sent|failed] [--kind digest|reply|alert]",
		Short: "List queued, deferred, sent and failed messages (never their content)",
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
		case string(outbox.Queued), string(outbox.Deferred), string(outbox.Sent), string(outbox.Failed):
			f.Status = append(f.Status, outbox.Status(st))
		default:
			return usagef("unknown status %q: want queued, deferred, sent or failed", st)
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
		Args:  cobra.NoArgs,
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
	ob, done, err := g.openOutbox(ctx)
	if err != nil {
		return err
	}
	defer done()
	sum, err := ob.Deliver(ctx, t, outbox.Filter{}, dopts)
	if err != nil {
		return err
	}
	if g.json {
		return g.printJSON(map[string]any{"delivered_to": t.String(), "sent": sum.Sent, "deferred": sum.Deferred, "failed": sum.Failed})
	}
	g.printf("delivered to %s: %d sent, %d deferred, %d failed\n", t, sum.Sent, sum.Deferred, sum.Failed)
	return nil
}

// openOutbox opens the directory's outbox without the directory key, on
// the clock that digest send and outbox flush deliver with.
func (g *globals) openOutbox(ctx context.Context) (*outbox.Outbox, func(), error) {
	s, err := g.openOps(ctx)
	if err != nil {
		return nil, nil, err
	}
	ob, err := outbox.Open(ctx, s.DB())
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	ob.Now = g.now
	return ob, func() { s.Close() }, nil
}
