package receive

import (
	"errors"
	"fmt"
	"testing"

	"github.com/ccdir/ccdir/directory"
)

// limitPages caps the growth of the database on the store's writer and
// on its operational pool (PRAGMA max_page_count holds per connection;
// both pools have one): n at or below the current size makes every write
// that needs a new page fail with SQLITE_FULL, as a full disk does.
func (w *world) limitPages(n int64) {
	w.t.Helper()
	q := fmt.Sprintf("PRAGMA max_page_count = %d", n)
	_, err := w.store.Update(w.ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.SQL().ExecContext(w.ctx, q)
		return err
	})
	if err != nil && !errors.Is(err, directory.ErrUnchanged) {
		w.t.Fatal(err)
	}
	if _, err := w.store.DB().ExecContext(w.ctx, q); err != nil {
		w.t.Fatal(err)
	}
}

// TestReceiveFullDisk: a command mail that cannot be stored because the
// database may not grow (SQLITE_FULL) is deferred (exit 75, 451): it is
// not marked seen and nothing is queued, so the MTA's retry is answered
// once there is room again.
func TestReceiveFullDisk(t *testing.T) {
	w := newWorld(t)
	// A digest is bigger than the free room of the pages there are.
	msg := w.signed(dirAddr, "full@dns.pt", "DIRECTORY "+dirAddr+"\nDIGEST\n")
	w.limitPages(1)
	err := w.receive(anaAddr, []string{dirAddr}, msg)
	if !directory.Temporary(err) || ExitCode(err) != 75 {
		t.Fatalf("Receive on a full database = %v (Temporary %v), exit %d; want a temporary failure, exit 75", err, directory.Temporary(err), ExitCode(err))
	}
	expectLines(t, w.lines(), `^ccdir: deferred mail from "ana@dns.pt" signed by [0-9A-F]+: .*full`)
	if rows := w.queued(""); len(rows) != 0 {
		t.Fatalf("%d messages queued on a full database", len(rows))
	}
	w.limitPages(1 << 30)
	if err := w.receive(anaAddr, []string{dirAddr}, msg); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if rows := w.queued(""); len(rows) != 2 {
		t.Fatalf("the retry queued %d messages, want the reply and the digest", len(rows))
	}
}
