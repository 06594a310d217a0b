package main

import (
	"context"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/liveness"
)

// unreachable returns the contacts of snap whose mail bounced
// bounces.limit times in a row or more (liveness.BounceRuns, the one
// reading of it), by email. A home whose outbox or pings cannot say (not
// migrated yet: a read-only command does not migrate) has none, with a
// warning.
func (g *globals) unreachable(ctx context.Context, s *directory.Store, snap *directory.Snapshot) map[string]liveness.Bounces {
	runs, err := liveness.BounceRuns(ctx, s.DB(), snap)
	if err != nil {
		g.warnf("bounces not read: %v", err)
		return nil
	}
	limit := g.number("bounces.limit")
	for e, r := range runs {
		if !r.Unreachable(limit) {
			delete(runs, e)
		}
	}
	return runs
}
