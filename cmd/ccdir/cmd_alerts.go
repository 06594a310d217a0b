package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/relay"
)

type alertsOptions struct {
	id    string
	limit int
}

func newAlertsCmd(g *globals) *cobra.Command {
	var o alertsOptions
	cmd := &cobra.Command{
		Use:   "alerts [--id ID] [--limit N]",
		Short: "Show recent list alerts: author, TLP, time, delivered/failed/acknowledged counts",
		Long: `Show the alerts relayed by the encrypted list, newest first: id, author,
TLP label, time, and how many copies were delivered, failed or wait, and
how many ccTLDs acknowledged. With --id, one alert and the state of each
ccTLD it was sent to. ccdir never shows, nor by default keeps, the content
of an alert.

EXIT STATUS
  0 ok, 1 error (an unknown --id), 2 usage`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAlerts(cmd.Context(), o, g)
		},
	}
	cmd.Flags().StringVar(&o.id, "id", "", "show one alert and its ccTLDs")
	cmd.Flags().IntVar(&o.limit, "limit", 50, "how many recent alerts to show")
	return cmd
}

func runAlerts(ctx context.Context, o alertsOptions, g *globals) error {
	if o.limit < 1 {
		return usagef("--limit must be at least 1")
	}
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := relay.Alerts(ctx, s.DB(), relay.Filter{ID: o.id, Limit: o.limit})
	if errors.Is(err, relay.ErrUnknownAlert) {
		return &directory.Error{Err: directory.ErrNotFound, Msg: "no alert " + o.id, Hint: "list them with: ccdir alerts"}
	}
	if err != nil {
		return err
	}
	if g.json {
		if o.id != "" {
			return g.printJSON(list[0])
		}
		return g.printJSON(list)
	}
	if len(list) == 0 {
		g.printf("no alerts\n")
		return nil
	}
	if o.id == "" {
		g.printf("%-8s  %-20s  %-12s  %-32s  %9s  %6s  %7s  %s\n", "ID", "TIME", "TLP", "AUTHOR", "DELIVERED", "FAILED", "WAITING", "ACKNOWLEDGED")
		for _, a := range list {
			g.printf("%-8s  %-20s  %-12s  %-32s  %9d  %6d  %7d  %d/%d ccTLDs\n", a.ID, a.Created.Format("2006-01-02 15:04 UTC"),
				"TLP:"+a.TLP, a.Author, a.Delivered, a.Failed, a.Waiting, a.AckedTLDs, len(a.TLDs))
		}
		return nil
	}
	a := list[0]
	g.printf("alert %s\n  author:    %s (key %s)\n  TLP:       %s\n  time:      %s\n", a.ID, a.Author, a.AuthorKey, a.TLP, a.Created.Format("2006-01-02 15:04:05 UTC"))
	g.printf("  copies:    %d delivered, %d waiting, %d failed, %d without a usable key\n", a.Delivered, a.Waiting, a.Failed, a.Skipped)
	g.printf("  acknowledged by %d of %d ccTLDs\n", a.AckedTLDs, len(a.TLDs))
	for _, t := range a.TLDs {
		state := "not yet"
		switch {
		case t.Acked:
			state = fmt.Sprintf("acknowledged by %s at %s", t.By, t.At.Format("2006-01-02 15:04 UTC"))
		case !t.Reached:
			state = "not reached (no usable key)"
		}
		g.printf("    %-12s %s\n", "."+t.TLD, state)
	}
	for _, sk := range a.SkippedList {
		g.printf("  no copy: %s (%s): %s\n", sk.Email, strings.Join(sk.TLDs, ", "), sk.Reason)
	}
	return nil
}
