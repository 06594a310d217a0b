package relay_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/relay"
)

// TestTamperedKeyGetsNoCopy: a key swapped into the contacts table
// without the directory key (here after inbound checked the directory,
// as in a long-running serve) never receives a list copy: the relay reads
// the recipients as the signed ledger says them. A fresh store (as
// process opens one per message) refuses the post as tampering.
func TestTamperedKeyGetsNoCopy(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	a, err := w.process(listAddr, w.clearPost(w.ana, w.ana.email, "alert", "DIRECTORY "+listAddr+"\nTLP:GREEN\n\nResolver outage in .pt.\n"))
	if err != nil {
		t.Fatalf("inbound: %v", err)
	}
	evil := keystest.NewSecret(t, "Eve", "eve@evil.example")
	armored, err := evil.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.DB().ExecContext(ctx, `UPDATE contacts SET key_fingerprint = ?, key_armored = ? WHERE email = ?`,
		evil.Fingerprint(), string(armored), w.eva.email); err != nil {
		t.Fatal(err)
	}
	res, err := w.r.Handle(ctx, a)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	msg := w.copies(relay.Kind, res.Alert)[w.eva.email]
	if msg == nil {
		t.Fatal("no copy to eva")
	}
	w.open(w.eva, msg, false) // encrypted to eva's registered key, not the swapped one

	fresh, err := directory.Open(ctx, w.store.Path(), directory.Options{Signer: w.dir, MaxSecurityContacts: 10, Migrations: slices.Concat(outbox.Migrations, inbound.Migrations, relay.Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	r := &relay.Relay{Store: fresh, Secret: w.dir, Outbox: w.ob, Config: relay.Config{Tag: "[TLD-OPS]"}}
	a2, err := w.process(listAddr, w.clearPost(w.ana, w.ana.email, "alert", "DIRECTORY "+listAddr+"\nTLP:GREEN\n\nAnd again.\n"))
	if err != nil {
		t.Fatalf("inbound: %v", err)
	}
	if _, err := r.Handle(ctx, a2); !errors.Is(err, directory.ErrTampered) {
		t.Fatalf("relay through a fresh store: %v, want ErrTampered", err)
	}
}
