package liveness

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// DefaultRetention is how long the pings table keeps a reachability
// check that nothing needs any more (ping.retention), and key_reminders
// a reminder for a key expiry that has passed. Each row names a contact's
// address; a year covers the reports and questions of the checks of four
// ping.interval periods.
const DefaultRetention = 365 * 24 * time.Hour

// Pruned is what Prune deleted.
type Pruned struct {
	Pings        int64 `json:"pings"`
	KeyReminders int64 `json:"key_reminders"`
}

// pruneChunk is how many ids one DELETE names.
const pruneChunk = 500

// Prune deletes, in one transaction, the reachability checks whose token
// expired before before and that nothing reads any more, and the
// key-expiry reminders for an expiry before before (none can be due for
// it again). Of the address and key of each contact in contacts it keeps,
// however old, what the contact's state is read from: its last answer
// (its "last confirmed", which also decides which bounces count) and,
// while it has not answered since, the first check that went unanswered
// (it is stale since that one's expiry) and any that was escalated (the
// admins hear of a silence once); a check still open is never old
// enough. Of an address and key no contact has any more nothing is kept
// past before. A nil contacts keeps the state of every address and key
// in the table.
func Prune(ctx context.Context, db *sql.DB, before time.Time, contacts []directory.Contact) (Pruned, error) {
	var out Pruned
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return out, fmt.Errorf("liveness: prune: %w", err)
	}
	defer tx.Rollback()
	states, err := loadStates(ctx, tx)
	if err != nil {
		return out, err
	}
	var current map[ident]bool
	if contacts != nil {
		current = map[ident]bool{}
		for i := range contacts {
			if id, ok := identOf(&contacts[i]); ok {
				current[id] = true
			}
		}
	}
	var ids []int64
	for id, st := range states {
		keep := current == nil || current[id]
		firstSilent := true
		for _, p := range st.pings { // oldest first
			silent := p.answered.IsZero() && p.sent.After(st.confirmed)
			switch {
			case !p.expires.Before(before):
				// Recent, or still open.
			case keep && !p.answered.IsZero() && p.answered.Equal(st.confirmed):
				// The last answer.
			case keep && silent && (firstSilent || !p.escalated.IsZero()):
				// The silence going on: since when, and whether told.
			default:
				ids = append(ids, p.id)
			}
			if silent {
				firstSilent = false
			}
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), pruneChunk)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM pings WHERE id IN (?`+strings.Repeat(", ?", n-1)+`)`, args...)
		if err != nil {
			return Pruned{}, fmt.Errorf("liveness: prune pings: %w", err)
		}
		k, err := res.RowsAffected()
		if err != nil {
			return Pruned{}, fmt.Errorf("liveness: prune pings: %w", err)
		}
		out.Pings += k
		ids = ids[n:]
	}
	// Expiries are RFC 3339 in UTC (formatTime), which sort as text.
	res, err := tx.ExecContext(ctx, `DELETE FROM key_reminders WHERE expires < ?`, formatTime(before))
	if err != nil {
		return Pruned{}, fmt.Errorf("liveness: prune key reminders: %w", err)
	}
	if out.KeyReminders, err = res.RowsAffected(); err != nil {
		return Pruned{}, fmt.Errorf("liveness: prune key reminders: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return Pruned{}, fmt.Errorf("liveness: prune: %w", err)
	}
	return out, nil
}
