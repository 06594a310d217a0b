package main

import (
	"context"
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
		Short: "Which delegated ccTLDs have no member, no security contact, or no contact with a usable key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCoverage(cmd.Context(), o, g)
		},
	}
	cmd.Flags().BoolVar(&o.all, "all", false, "list every delegated ccTLD, not only those with a problem")
	return cmd
}

func runCoverage(ctx context.Context, o coverageOptions, g *globals) error {
	snap, err := g.snapshot(ctx)
	if err != nil {
		return err
	}
	now := g.now()
	cov := export.ComputeCoverage(snap, directory.CCTLDs(), func(c *directory.Contact) error {
		return usableKey(c, now)
	})
	if g.json {
		return g.printJSON(cov)
	}
	return export.WriteCoverageText(g.stdout, cov, o.all)
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
