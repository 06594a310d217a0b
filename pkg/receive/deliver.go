package receive

import (
	"context"
	"time"

	"github.com/ccdir/ccdir/pkg/outbox"
)

// DeliverLoop delivers the outbox through t whenever Receive queued
// something, and every minute for retries, until ctx ends. It logs one
// line for each round that did something or failed.
func (r *Receiver) DeliverLoop(ctx context.Context, t outbox.Transport, opts outbox.DeliverOptions) {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		sum, err := r.Outbox.Deliver(ctx, t, outbox.Filter{}, opts)
		if err != nil && ctx.Err() == nil {
			r.logf("delivery to %s: %v", t, err)
		} else if sum.Sent+sum.Deferred+sum.Failed > 0 {
			r.logf("delivered to %s: %d sent, %d deferred, %d failed", t, sum.Sent, sum.Deferred, sum.Failed)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick():
		case <-tick.C:
		}
	}
}
