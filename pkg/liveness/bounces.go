package liveness

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// Bounces is a contact's run of bounces: the messages to its current
// address that bounced in a row.
//
// In a row means: by queue order, every message to the address that was
// sent and then reported bounced (a delivery status notification whose
// tag the outbox verified, outbox.BounceRuns), with no message between
// that was sent and did not bounce, and counting only bounces that
// arrived after the contact's last PONG at its current address and key
// (an answer proves the mailbox receives). Messages still waiting, or
// that failed at the transport, neither count nor end a run. The run
// belongs to the address: a contact whose address changes starts again
// at nought. Nothing here reads or changes signed state; a DSN is
// trusted only for the message its tag names.
type Bounces struct {
	Count      int       `json:"count"`
	Last       time.Time `json:"last"`       // when the last bounce came
	Diagnostic string    `json:"diagnostic"` // the last bounce's remote diagnostic
}

// DefaultBounceLimit is how many bounces in a row make a contact
// unreachable (bounces.limit).
const DefaultBounceLimit = outbox.DefaultBounceLimit

// Unreachable reports whether the run reaches limit (DefaultBounceLimit
// when limit < 1).
func (b Bounces) Unreachable(limit int) bool {
	if limit < 1 {
		limit = DefaultBounceLimit
	}
	return b.Count >= limit
}

// String says it in a few words, for ping status, coverage and digest
// status.
func (b Bounces) String() string {
	return fmt.Sprintf("%d bounces in a row, the last %s: %s", b.Count, b.Last.UTC().Format("2006-01-02 15:04"), b.Diagnostic)
}

// BounceRuns returns the run of bounces of every contact of snap that
// has one (Count > 0), keyed by the contact's email. It is the one
// reading of "bounces in a row": ping status, coverage and digest status
// all take it from here.
func BounceRuns(ctx context.Context, q Queryer, snap *directory.Snapshot) (map[string]Bounces, error) {
	runs, err := outbox.BounceRuns(ctx, q)
	if err != nil {
		return nil, err
	}
	states, err := loadStates(ctx, q)
	if err != nil {
		return nil, err
	}
	out := map[string]Bounces{}
	for i := range snap.Contacts {
		c := &snap.Contacts[i]
		r, ok := runs[strings.ToLower(c.Email)]
		if !ok {
			continue
		}
		var confirmed time.Time
		if id, ok := identOf(c); ok {
			if st := states[id]; st != nil {
				confirmed = st.confirmed
			}
		}
		b := Bounces{Last: r.Last, Diagnostic: r.Diagnostic}
		for _, t := range r.Times {
			if t.After(confirmed) {
				b.Count++
			}
		}
		if b.Count > 0 {
			out[c.Email] = b
		}
	}
	return out, nil
}
