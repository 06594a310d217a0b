package main

import (
	"context"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/receive"
)

// processOptions: the envelope of the message; a flag not given is
// taken from the environment (the *Set fields say which were given).
type processOptions struct {
	from, to       string
	fromSet, toSet bool
}

func newProcessCmd(g *globals) *cobra.Command {
	var o processOptions
	cmd := &cobra.Command{
		Use:   "process [--from SENDER] [--to ADDR] < message.eml",
		Short: "Handle one message from an MTA pipe (Postfix pipe, procmail)",
		Long: `Read one message on standard input and handle it as serve would: check it,
run its commands, queue the reply and try to deliver it (what cannot go out
now waits for ccdir outbox flush, which the cron example runs).
--from is the envelope sender (default: $SENDER, as Postfix's pipe sets it),
--to the recipient (default: $RECIPIENT, else the directory's address).

A refused message is dropped with one log line and exit 0: an MTA would
otherwise bounce it to a possibly forged sender. When its signer is a
registered contact who can fix it (no DIRECTORY line, a stale signature),
the answer goes to the contact's registered address, encrypted.

EXIT STATUS
  0 handled or dropped (or --help on a terminal),
  75 temporary failure: the database locked or the disk full, a bad home
     or configuration, a bad command line, --help with a mail on standard
     input, a crash (the MTA keeps the mail and retries later)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			o.fromSet, o.toSet = fs.Changed("from"), fs.Changed("to")
			return runProcess(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.from, "from", "", "envelope sender (default $SENDER)")
	cmd.Flags().StringVar(&o.to, "to", "", "envelope recipient (default $RECIPIENT, else the directory's address)")
	return cmd
}

func runProcess(ctx context.Context, o processOptions, g *globals) error {
	from, to := o.from, o.to
	if !o.fromSet {
		from = os.Getenv("SENDER")
	}
	if !o.toSet {
		to = os.Getenv("RECIPIENT")
	}
	rc, done, err := g.receiver(ctx)
	if err != nil {
		// Not the message's fault: the storage failed for now (the
		// database locked past the busy timeout, a full disk:
		// directory.Temporary), or the home is the operator's to fix, as
		// in preRun. The MTA keeps the mail and retries.
		return &tempFailError{err}
	}
	defer done()
	if to == "" {
		to = rc.Config.Directory.Address
	}
	if testOnlyPanic != nil {
		testOnlyPanic()
	}
	err = rc.Receive(ctx, receive.Envelope{From: from, To: []string{to}}, g.stdin)
	switch {
	case receive.ExitCode(err) != 0:
		return &tempFailError{err}
	case err != nil && !receive.Answered(err):
		return nil // refused: logged by Receive; no bounce
	}
	// Deliver what was queued now; what fails waits for outbox flush.
	t, err := g.transport()
	if err != nil {
		rc.Log.Printf("reply queued, not delivered: %v", err)
		return nil
	}
	dopts := g.deliveryOptions()
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := rc.Outbox.Deliver(dctx, t, outbox.Filter{}, dopts); err != nil {
		rc.Log.Printf("reply queued, not delivered yet (%v); ccdir outbox flush will retry", err)
	}
	return nil
}
