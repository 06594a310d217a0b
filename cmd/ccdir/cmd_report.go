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
	"github.com/ccdir/ccdir/pkg/report"
)

type reportOptions struct {
	since  time.Duration
	dryRun bool
}

func newReportCmd(g *globals) *cobra.Command {
	var o reportOptions
	cmd := &cobra.Command{
		Use:   "report [--since DURATION] [--dry-run] [--json]",
		Short: "Mail the operator one encrypted, signed summary of what needs attention (run it daily or weekly from cron)",
		Long: `Meant for cron, daily or weekly. Collects, since the last report mailed (the
first time: the last 7 days; --since DURATION, e.g. 48h or 14d, instead):
failed and bounced deliveries, stale and unreachable contacts (as ping
status says), contacts' keys that expire within the largest of
keys.remind_days (the first reminder their owners get; default 60 days),
the guarded key and email changes that wait (id, contact, kind, old and
new value, who asked, when, when due, whether the new key's possession
is proven; as ccdir pending list) and those decided since (applied,
vetoed, cancelled, expired, superseded), and refused mail by reason (the
kind of refusal, from the inbound log of serve and process). A change
that waits is always something to say. When there is something to say, it is mailed to the operator (operator.address),
encrypted to the operator's key (operator.key) and signed by the
directory's key, and delivered through delivery.url; when there is
nothing, nothing is mailed. One report a day at most: a rerun the same
(UTC) day mails nothing. --dry-run prints the summary here instead and
records nothing.

EXIT STATUS
  0 mailed, or nothing to say, or mailed already today; 1 error (among
  them: the operator has no address and key of their own); 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(cmd.Context(), o, g)
		},
	}
	cmd.Flags().Var(daysValue{&o.since}, "since", "report what happened in this last DURATION (e.g. 48h, 7d) instead of since the last report")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "print the summary instead of mailing it; record nothing")
	return cmd
}

func runReport(ctx context.Context, o reportOptions, g *globals) error {
	if err := g.checkHome(); err != nil {
		return err
	}
	if !o.dryRun {
		// The lock of every command that delivers the outbox.
		unlock, err := lockFile(g.path("digest.lock"))
		if err != nil {
			return err
		}
		defer unlock()
	}
	s, err := g.openOps(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	var op *operatorIdentity
	if !o.dryRun {
		if op, err = g.operator(info); err != nil {
			return err
		}
	}
	now := g.now()
	if !o.dryRun {
		sent, err := report.Sent(ctx, s.DB(), report.Period(now))
		if err != nil {
			return err
		}
		if sent {
			return g.reportDone(fmt.Sprintf("report: the report of %s was mailed already; nothing sent", report.Period(now)), nil)
		}
	}
	g.warnTampered(ctx, s)
	snap, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	statuses, err := liveness.Statuses(ctx, s.DB(), snap, g.pingConfig(), now, func(c *directory.Contact) error { return usableKey(c, now) })
	if err != nil {
		return err
	}
	ob, err := g.openOutboxIn(ctx, s)
	if err != nil {
		return err
	}
	ob.Now = g.now
	src := report.Sources{DB: s.DB(), Outbox: ob, Snapshot: snap, Statuses: statuses, RemindDays: g.numbers("keys.remind_days"), Now: now,
		Auth: liveness.Auth{Secret: ob.Key, Decisions: g.decisions(ob.Key)}}
	if o.since > 0 {
		src.Since = now.Add(-o.since)
	}
	sum, err := report.Collect(ctx, src)
	if err != nil {
		return err
	}
	if o.dryRun {
		if g.json {
			return g.printJSON(sum)
		}
		for _, line := range strings.Split(strings.TrimSuffix(sum.Text(), "\n"), "\n") {
			g.printf("%s\n", line)
		}
		return nil
	}
	if sum.Empty() {
		return g.reportDone(fmt.Sprintf("report: nothing to report since %s; nothing sent", sum.Since.Format(time.RFC3339)), sum)
	}
	sec, err := g.secretKey()
	if err != nil {
		return err
	}
	m, err := op.message(sec, info, g.text("digest.subject"), operatorMail{Kind: report.Kind, Ref: sum.Period,
		Subject: "ccdir report " + sum.Period, Body: sum.Text(), MessageID: "report-" + sum.Period}, now)
	if err != nil {
		return withHint(err, "the operator's key must be usable: ccdir key import --operator FILE")
	}
	if err := report.Queue(ctx, s.DB(), ob, sum, m); errors.Is(err, report.ErrSent) {
		return g.reportDone(fmt.Sprintf("report: the report of %s was mailed already; nothing sent", sum.Period), nil)
	} else if err != nil {
		return err
	}
	t, err := g.transport()
	if err != nil {
		return withHint(err, "the report is queued; ccdir outbox flush delivers it")
	}
	n, err := ob.Deliver(ctx, t, outbox.Filter{Kind: report.Kind}, g.deliveryOptions())
	if err != nil {
		return withHint(err, "the report is queued; ccdir outbox flush delivers it")
	}
	if g.json {
		return g.printJSON(map[string]any{"result": "mailed", "to": op.Address, "report": sum, "sent": n.Sent, "deferred": n.Deferred, "failed": n.Failed})
	}
	g.printf("report: mailed to %s (%s since %s): %d sent, %d deferred, %d failed\n", op.Address, report.Period(now),
		sum.Since.Format(time.RFC3339), n.Sent, n.Deferred, n.Failed)
	return g.refusedError()
}

// reportDone ends a report run that mailed nothing, saying why.
func (g *globals) reportDone(line string, sum *report.Summary) error {
	if g.json {
		return g.printJSON(map[string]any{"result": line, "report": sum})
	}
	g.printf("%s\n", line)
	return nil
}

// daysValue is a flag holding a duration written as daysType reads it
// (7d, 48h).
type daysValue struct{ d *time.Duration }

func (v daysValue) String() string {
	if v.d == nil || *v.d == 0 {
		return ""
	}
	return daysText(*v.d)
}

func (v daysValue) Set(s string) error {
	d, err := daysType.parse(s)
	if err != nil {
		return err
	}
	*v.d = d.(time.Duration)
	return nil
}

func (v daysValue) Type() string { return "duration" }
