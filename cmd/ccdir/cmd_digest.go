package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/outbox"
)

func newDigestCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "digest",
		Short: "Mail every contact the whole directory, encrypted and signed",
	}
	cmd.AddCommand(newDigestSendCmd(g), newDigestPreviewCmd(g), newDigestStatusCmd(g))
	return cmd
}

type digestSendOptions struct {
	force  bool
	dryRun bool
}

func newDigestSendCmd(g *globals) *cobra.Command {
	var o digestSendOptions
	cmd := &cobra.Command{
		Use:   "send [--force] [--dry-run]",
		Short: "Send a digest if one is due (run it daily from cron), and deliver what waits in the outbox",
		Long: `Meant for cron, daily: if the interval (digest.interval: monthly, weekly,
daily or N days) has elapsed since the last digest, or with --force, record a
digest at the current ledger head and queue one OpenPGP-encrypted, signed
PGP/MIME message per contact with a usable key; then deliver everything due
in the outbox through delivery.url. A contact without a usable key is skipped,
never sent plaintext. An interrupted run is finished by the next one: nothing
is lost and nobody gets the same digest twice. --dry-run renders and counts.
Before all that, the pending key and email changes that are due
(changes.delay; see ccdir pending) are applied, each in its own transaction
with its notices, as ledger entries of the operator who runs it, so that the
digest carries them; --dry-run only lists them.

EXIT STATUS
  0 ran (whether or not a digest was due; failed deliveries are listed),
  1 error (also after a run that skipped a due pending change whose row
  fails authentication, named on stderr), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDigestSend(cmd.Context(), o, g)
		},
	}
	cmd.Flags().BoolVar(&o.force, "force", false, "send a digest even if the interval has not elapsed")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "render and count, send nothing")
	return cmd
}

type digestPreviewOptions struct {
	to string // the contact whose whole encrypted mail is printed
}

func newDigestPreviewCmd(g *globals) *cobra.Command {
	var o digestPreviewOptions
	cmd := &cobra.Command{
		Use:   "preview [--to EMAIL]",
		Short: "Print the digest as it would be sent now: its text, or with --to the whole encrypted mail for one contact",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDigestPreview(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.to, "to", "", "print the encrypted PGP/MIME mail for this contact")
	return cmd
}

func newDigestStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "status [ID]",
		Short: "List past digests, or the per-recipient state of one",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDigestStatus(cmd.Context(), g, args)
		},
	}
}

// digestConfig reads the digest settings.
func (g *globals) digestConfig() digest.Config {
	return digest.Config{
		Interval: configGet[digest.Interval](g, "digest.interval"),
		Attach:   g.list("digest.attach"),
		Subject:  g.text("digest.subject"),
		// The body's reachability section marks a confirmation older
		// than ping.interval as stale.
		PingInterval: g.duration("ping.interval"),
	}
}

// deliveryOptions reads the delivery settings, for every Deliver of the
// outbox (digest send, outbox flush, serve, process).
func (g *globals) deliveryOptions() outbox.DeliverOptions {
	return outbox.DeliverOptions{
		Connections: g.number("delivery.connections"),
		RetryFor:    g.duration("delivery.retry_for"),
		Now:         g.now,
		OnResult:    g.onDelivered,
	}
}

// transport builds the transport of delivery.url.
func (g *globals) transport() (outbox.Transport, error) {
	url := g.text("delivery.url")
	if url == "" {
		url = "maildir:" + g.path("mail")
	}
	o := outbox.TransportOptions{MessageTimeout: g.duration("delivery.message_timeout")}
	if f := g.text("delivery.password_file"); f != "" {
		b, err := readPassphrase(f)
		if err != nil {
			return nil, fmt.Errorf("delivery.password_file: %w", err)
		}
		o.Password = string(b)
	}
	t, err := outbox.NewTransport(url, o)
	if err != nil {
		return nil, withHint(err, "set delivery.url to one of %s", outbox.URLForms)
	}
	return t, nil
}

// lockFile takes an exclusive lock that the kernel drops when the process
// ends, however it ends.
func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, withHint(errors.New("another ccdir digest send, ping send or outbox flush is running"), "wait for it to finish; cron will run again")
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}

// job assembles a digest job for the home's directory.
func (g *globals) job(ctx context.Context) (*digest.Job, func(), error) {
	cfg := g.digestConfig()
	delivery := g.deliveryOptions()
	t, err := g.transport()
	if err != nil {
		return nil, nil, err
	}
	s, sec, err := g.openWriteKey(ctx)
	if err != nil {
		return nil, nil, err
	}
	ob, err := g.openOutboxIn(ctx, s)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	if cfg.KeyChange, err = g.keyChange(ctx, s); err != nil {
		s.Close()
		return nil, nil, err
	}
	// The outbox dates queued messages (due now) with the same clock that
	// delivery compares them with.
	ob.Now = g.now
	return &digest.Job{Store: s, Secret: sec, Outbox: ob, Transport: t, Config: cfg, Delivery: delivery, Now: g.now}, func() { s.Close() }, nil
}

func runDigestSend(ctx context.Context, o digestSendOptions, g *globals) error {
	if err := g.checkHome(); err != nil {
		return err
	}
	unlock, err := lockFile(g.path("digest.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	// The pending changes that are due first, so that the digest
	// carries the state they make (a dry run only lists them).
	applied, err := g.applyDue(ctx, o.dryRun)
	if err != nil {
		return withHint(err, "the changes applied before it stay applied; the next ccdir digest send applies the rest")
	}
	j, done, err := g.job(ctx)
	if err != nil {
		return err
	}
	defer done()
	p := newProgress(g.stderr, g.json)
	j.Progress = p.update
	res, err := j.Send(ctx, digest.SendOptions{Force: o.force, DryRun: o.dryRun})
	p.finish()
	if err != nil {
		if res != nil && res.Queued+res.Recipients > 0 {
			return withHint(err, "what was queued stays in the outbox; the next ccdir digest send (or ccdir outbox flush) delivers it")
		}
		return err
	}
	if g.json {
		if err := g.printJSON(struct {
			*digest.Result
			Pending []pendingJSON `json:"pending_changes,omitempty"`
		}{res, pendingJSONs(applied)}); err != nil {
			return err
		}
		return g.refusedError()
	}
	g.reportDue(applied, o.dryRun)
	switch {
	case !res.Due: // checked first: a dry run may find nothing due
		g.printf("no digest due: the next is due on %s (digest.interval); use --force to send one now\n", res.NextDue.Format("2006-01-02"))
	case res.DryRun:
		g.printf("dry run: a digest at serial %d would go to %s; %d skipped\n", res.Serial, plural(res.Recipients, "recipient"), len(res.Skipped))
	default:
		verb := "sent"
		if res.Resumed {
			verb = "resumed"
		}
		g.printf("digest %d at serial %d %s: %s, %d newly queued\n", res.Digest, res.Serial, verb, plural(res.Recipients, "recipient"), res.Queued)
	}
	for _, s := range res.Skipped {
		g.printf("skipped %s: %s\n", s.Email, s.Reason)
	}
	if !res.DryRun {
		g.printf("delivered to %s: %d sent, %d deferred, %d failed\n", res.Where, res.Sent, res.Deferred, res.Failed)
		if res.Failed > 0 {
			g.printf("see the failures with: ccdir outbox list --status failed\n")
		}
	}
	return g.refusedError()
}

func runDigestPreview(ctx context.Context, o digestPreviewOptions, g *globals) error {
	j, done, err := g.job(ctx)
	if err != nil {
		return err
	}
	defer done()
	if o.to == "" {
		return j.PreviewText(ctx, g.stdout)
	}
	email, err := directory.NormalizeEmail(o.to)
	if err != nil {
		return err
	}
	return j.PreviewMessage(ctx, g.stdout, email)
}

func runDigestStatus(ctx context.Context, g *globals, args []string) error {
	s, err := g.openOps(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if len(args) == 0 {
		ds, err := digest.Digests(ctx, s.DB())
		if err != nil {
			return err
		}
		if g.json {
			return g.printJSON(nonNil(ds))
		}
		t := &table{}
		t.add("ID", "SERIAL", "CREATED", "RECIPIENTS", "SENT", "WAITING", "FAILED", "SKIPPED")
		for _, d := range ds {
			t.add(itoa(int(d.ID)), fmt.Sprint(d.Serial), d.Created, itoa(d.Recipients), itoa(d.Sent), itoa(d.Waiting), itoa(d.Failed), itoa(d.Skipped))
		}
		if len(ds) == 0 {
			g.printf("no digest sent yet\n")
			return nil
		}
		return t.write(g.stdout)
	}
	var id int64
	if _, err := fmt.Sscan(args[0], &id); err != nil || id < 1 {
		return usagef("digest status takes a digest ID (a number), not %q", args[0])
	}
	rs, err := digest.Recipients(ctx, s.DB(), id)
	if err != nil {
		return err
	}
	snap, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	runs := g.unreachable(ctx, s, snap)
	for i := range rs {
		if b, ok := runs[rs[i].Email]; ok {
			rs[i].Unreachable = b.String()
		}
	}
	if g.json {
		return g.printJSON(nonNil(rs))
	}
	t := &table{}
	t.add("EMAIL", "STATE", "ATTEMPTS", "DETAIL")
	for _, r := range rs {
		detail := r.Detail
		if r.Unreachable != "" {
			detail = "UNREACHABLE (" + r.Unreachable + ")"
		}
		t.add(r.Email, r.State, itoa(r.Attempts), detail)
	}
	return t.write(g.stdout)
}

// progress shows a digest run: a bar on a terminal, a few log lines
// otherwise (cron mails those).
type progress struct {
	w        io.Writer
	tty      bool
	quiet    bool
	phase    string
	done     int
	total    int
	lastPct  int
	lastDraw time.Time
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, quiet: quiet, lastPct: -1}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(e digest.Progress) {
	if p.quiet {
		return
	}
	if e.Phase != p.phase {
		p.finish()
		p.phase, p.done, p.total, p.lastPct = e.Phase, 0, 0, -1
	}
	p.done++
	if e.Done > 0 {
		p.done = e.Done
	}
	if e.Total > 0 {
		p.total = e.Total
	}
	if p.tty {
		if time.Since(p.lastDraw) < 100*time.Millisecond && p.done != p.total {
			return
		}
		p.lastDraw = time.Now()
		if p.total > 0 {
			n := 30 * p.done / p.total
			fmt.Fprintf(p.w, "\r%-8s [%s%s] %d/%d", p.phase, strings.Repeat("#", n), strings.Repeat(".", 30-n), p.done, p.total)
		} else {
			fmt.Fprintf(p.w, "\r%-8s %d", p.phase, p.done)
		}
		return
	}
	if p.total > 0 {
		if pct := 100 * p.done / p.total; pct/25 != p.lastPct/25 || p.done == p.total {
			p.lastPct = pct
			fmt.Fprintf(p.w, "ccdir: %s %d/%d\n", p.phase, p.done, p.total)
		}
	}
}

func (p *progress) finish() {
	if p.tty && p.phase != "" {
		fmt.Fprintln(p.w)
	}
	p.phase = ""
}
