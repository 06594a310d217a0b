package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
)

type coverageOptions struct {
	all bool
}

func newCoverageCmd(g *globals) *cobra.Command {
	var o coverageOptions
	cmd := &cobra.Command{
		Use:   "coverage [--all]",
		Short: "Which delegated ccTLDs have no member, no security contact, or no reachable contact with a usable key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCoverage(cmd.Context(), o, g)
		},
	}
	cmd.Flags().BoolVar(&o.all, "all", false, "list every delegated ccTLD, not only those with a problem")
	return cmd
}

func runCoverage(ctx context.Context, o coverageOptions, g *globals) error {
	s, err := g.openRead(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	g.warnTampered(ctx, s)
	snap, err := s.Snapshot(ctx)
	if err != nil {
		return err
	}
	runs := g.unreachable(ctx, s, snap)
	now := g.now()
	cov := export.ComputeCoverage(snap, directory.CCTLDs(), func(c *directory.Contact) error {
		if err := usableKey(c, now); err != nil {
			return err
		}
		if r, ok := runs[c.Email]; ok {
			return fmt.Errorf("%w: %s", export.ErrUnreachable, r)
		}
		return nil
	})
	if g.json {
		return g.printJSON(cov)
	}
	if err := export.WriteCoverageText(g.stdout, cov, o.all); err != nil {
		return err
	}
	for _, e := range slices.Sorted(maps.Keys(runs)) {
		g.printf("unreachable: %s: %s\n", e, runs[e])
	}
	return nil
}

// usableKey reports why a contact's key cannot be used now.
func usableKey(c *directory.Contact, now time.Time) error {
	if c.Key == nil {
		return keys.ErrNoKey
	}
	pub, err := keys.ParsePublicOne([]byte(c.Key.Armored))
	if err != nil {
		return err
	}
	return pub.Check(now)
}
