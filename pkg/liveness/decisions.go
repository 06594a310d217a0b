package liveness

import (
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Auth is what the rows of pending_changes are checked against before
// anything is decided on them. Secret is the home's outbox key, with
// which each row carries its MAC (Pending.Authentic). Decisions is the
// home's record of decided changes, which the database cannot roll
// back: a MAC covers a row only, so an earlier copy of a row (saved
// while it waited: any backup of the database) put back after the
// change was decided would pass it. A nil Decisions checks the MAC only
// (tests; a caller without a home).
type Auth struct {
	Secret    []byte
	Decisions *Decisions
}

// Decisions is the home's append-only record of decided changes (the
// CLI keeps it in keys/pending-decided, next to keys/outbox.key, mode
// 0600): one line per decision, "ID STATE TIME MAC", the MAC the
// HMAC-SHA256 under Secret of the other three. Every decision (Veto,
// Cancel, Discard, Apply, SupersedeWaiting) taken in a transaction tx
// is held until the caller calls Commit(tx), last in tx, just before tx
// commits: Commit appends the lines and syncs the file. A transaction
// rolled back (a dry run, a failed command) calls Forget(tx) instead,
// so that it records nothing. A change found in the record is never
// applied, proven or decided again, whatever its row says
// (ErrTampered). A transaction that fails to commit after Commit leaves
// a line for a change whose row still waits: it stays blocked
// (fail-safe) and reads as tampered until discarded (Discard). A line
// whose MAC fails is ignored and told to Warn: the file is the home's,
// and whoever can write it can read the key anyway. A nil *Decisions
// records nothing. It is safe for concurrent use.
type Decisions struct {
	Path   string
	Secret []byte
	// Warn, when set, is told of the lines ignored (the first by its
	// number, never its content, and how many more), once for each count.
	Warn func(format string, args ...any)

	mu     sync.Mutex
	staged map[*sql.Tx][]Decision
	warned map[int]bool // the counts of ignored lines told to Warn already
}

// Decision is one line of the record of decisions.
type Decision struct {
	ID, State string
	At        time.Time
}

// maxDecisionLine is the longest line of the record that is read.
const maxDecisionLine = 256

func (d *Decisions) mac(id, state, at string) string {
	h := hmac.New(sha256.New, d.Secret)
	h.Write([]byte("ccdir pending decision v1\x00"))
	h.Write([]byte(id + "\x00" + state + "\x00" + at))
	return hex.EncodeToString(h.Sum(nil))
}

// Load reads the record: the last decision of each change id in it. A
// missing file is an empty record.
func (d *Decisions) Load() (map[string]Decision, error) {
	if len(d.Secret) < minSecret {
		return nil, ErrNoSecret
	}
	out := map[string]Decision{}
	f, err := os.Open(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("liveness: record of decisions: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("liveness: record of decisions %s: %w", d.Path, err)
	}
	// Lines are read whole, blank ones skipped; a line that is not a
	// decision (torn by a crash before its transaction committed, too
	// long, its MAC failing) is told and skipped, never the end of the
	// record: Append starts a line of its own after a torn one.
	var bad []int
	for n, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(line) > maxDecisionLine || len(fields) != 4 || !ValidChangeID(fields[0]) ||
			!hmac.Equal([]byte(fields[3]), []byte(d.mac(fields[0], fields[1], fields[2]))) {
			bad = append(bad, n+1)
			continue
		}
		out[fields[0]] = Decision{ID: fields[0], State: fields[1], At: parseTime(fields[2])}
	}
	if len(bad) > 0 && d.Warn != nil {
		d.mu.Lock()
		tell := d.warned == nil || !d.warned[len(bad)]
		if d.warned == nil {
			d.warned = map[int]bool{}
		}
		d.warned[len(bad)] = true
		d.mu.Unlock()
		if tell {
			more := ""
			if len(bad) > 1 {
				more = fmt.Sprintf(", and %d more", len(bad)-1)
			}
			d.Warn("%s: line %d ignored%s: torn by a crash, malformed, or its MAC fails under the outbox key", d.Path, bad[0], more)
		}
	}
	return out, nil
}

// Commit appends the decisions taken in tx to the record, synced to
// disk before it returns: to call last in tx, before it commits.
func (d *Decisions) Commit(tx *sql.Tx) error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	ds := d.staged[tx]
	delete(d.staged, tx)
	d.mu.Unlock()
	if len(ds) == 0 {
		return nil
	}
	return d.Append(ds...)
}

// Forget drops the decisions taken in tx, which is rolled back.
func (d *Decisions) Forget(tx *sql.Tx) {
	if d == nil {
		return
	}
	d.mu.Lock()
	delete(d.staged, tx)
	d.mu.Unlock()
}

func (d *Decisions) stage(tx *sql.Tx, id, state string, at time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.staged == nil {
		d.staged = map[*sql.Tx][]Decision{}
	}
	d.staged[tx] = append(d.staged[tx], Decision{ID: id, State: state, At: at})
}

// Append records the decisions ds, and syncs the record to disk before
// it returns.
func (d *Decisions) Append(ds ...Decision) error {
	if len(d.Secret) < minSecret {
		return ErrNoSecret
	}
	_, statErr := os.Lstat(d.Path)
	f, err := os.OpenFile(d.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("liveness: record of decisions: %w", err)
	}
	var b strings.Builder
	// After a line torn by a crash, a line of its own: else the torn
	// one would swallow this decision.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil || last[0] != '\n' {
			b.WriteByte('\n')
		}
	}
	for _, x := range ds {
		ts := formatTime(x.At.UTC().Truncate(time.Second))
		fmt.Fprintf(&b, "%s %s %s %s\n", x.ID, x.State, ts, d.mac(x.ID, x.State, ts))
	}
	_, err = f.WriteString(b.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && errors.Is(statErr, fs.ErrNotExist) {
		// A new file: its directory entry must reach the disk too.
		if dir, derr := os.Open(filepath.Dir(d.Path)); derr == nil {
			err = dir.Sync()
			dir.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("liveness: record of decisions %s: %w", d.Path, err)
	}
	return nil
}

// check refuses (ErrTampered) the change p whose row says it waits
// though the record has it decided: the database was rolled back (a
// row restored from an earlier copy) or edited, or the transaction of
// the decision failed after the record was written.
func (a Auth) check(p Pending) error {
	if a.Decisions == nil || p.State != StateWaiting {
		return nil
	}
	rec, err := a.Decisions.Load()
	if err != nil {
		return err
	}
	return revived(p, rec)
}

func revived(p Pending, rec map[string]Decision) error {
	d, ok := rec[p.ID]
	if !ok || p.State != StateWaiting {
		return nil
	}
	return &PendingError{Err: ErrTampered, ID: p.ID, State: d.State, At: d.At,
		Detail: fmt.Sprintf("decided %s at %s per the home's record of decisions, but its row says waiting: the database was rolled back or edited (or the decision's transaction failed)",
			d.State, d.At.UTC().Format(timeFormat))}
}

// record holds the decision of the change id, taken in tx, for
// a.Decisions.Commit(tx), if there is a record.
func (a Auth) record(tx *sql.Tx, id, state string, at time.Time) error {
	if a.Decisions == nil {
		return nil
	}
	a.Decisions.stage(tx, id, state, at)
	return nil
}
