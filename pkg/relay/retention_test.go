package relay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/relay"
)

// TestPrune: alerts recorded before the cut-off go with their recipients
// once their copies are delivered; one whose copies still wait in the
// outbox stays until they are; a younger one stays; a late ACK of a
// pruned alert is answered as for an unknown one.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	tr, err := outbox.NewTransport("maildir:"+t.TempDir(), outbox.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deliver := func() {
		t.Helper()
		if _, err := w.ob.Deliver(ctx, tr, outbox.Filter{}, outbox.DeliverOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	db := w.store.DB()
	rowsOf := func(id string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(`SELECT count(*) FROM alert_recipients WHERE alert_id = ?`, id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := w.post(w.clearPost(w.ana, w.ana.email, "First", "DIRECTORY "+listAddr+"\nTLP:AMBER\n\nThe first.\n")).Alert
	if n, err := relay.Prune(ctx, db, time.Now().Add(time.Minute)); err != nil || n != 0 {
		t.Fatalf("Prune with copies waiting = %d, %v; want 0", n, err)
	}
	deliver()
	b := w.post(w.clearPost(w.eva, w.eva.email, "Second", "DIRECTORY "+listAddr+"\nTLP:GREEN\n\nThe second.\n")).Alert
	if n, err := relay.Prune(ctx, db, time.Now().Add(-time.Hour)); err != nil || n != 0 {
		t.Fatalf("Prune of alerts older than an hour = %d, %v; want 0", n, err)
	}
	if rowsOf(a) == 0 {
		t.Fatal("no recipients recorded")
	}
	cut := time.Now().Add(time.Minute)
	if n, err := relay.Prune(ctx, db, cut); err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1 (the delivered alert)", n, err)
	}
	list, err := relay.Alerts(ctx, db, relay.Filter{})
	if err != nil || len(list) != 1 || list[0].ID != b {
		t.Fatalf("alerts after pruning: %+v, %v; want only %s", list, err, b)
	}
	if rowsOf(a) != 0 || rowsOf(b) == 0 {
		t.Errorf("recipients: %s has %d, %s has %d", a, rowsOf(a), b, rowsOf(b))
	}
	if _, err := relay.Alerts(ctx, db, relay.Filter{ID: a}); err != relay.ErrUnknownAlert {
		t.Errorf("alert %s: %v, want ErrUnknownAlert", a, err)
	}
	if r := w.command(w.joost, "ACK "+a); r.Results[0].Err == nil || strings.Contains(r.Results[0].Text, "acknowledged") {
		t.Errorf("ACK of a pruned alert: %+v", r.Results)
	}
	deliver()
	if n, err := relay.Prune(ctx, db, cut); err != nil || n != 1 {
		t.Fatalf("Prune once delivered = %d, %v; want 1", n, err)
	}
	if list, err := relay.Alerts(ctx, db, relay.Filter{}); err != nil || len(list) != 0 {
		t.Errorf("alerts: %+v, %v", list, err)
	}
}
