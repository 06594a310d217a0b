package digest_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// Migration 2 gives the digests made before it the head of the digest
// before each (the last earlier one at its prev_serial), and runs again
// harmlessly where the column is there already.
func TestMigrationPrevHead(t *testing.T) {
	ctx := context.Background()
	clock := func() time.Time { return jobNow }
	dirKey := keystest.NewSecret(t, "Migration Test", "dir@ccdir.example")
	pub, err := dirKey.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "directory.db")
	v1 := slices.Concat(outbox.Migrations, digest.Migrations[:1], liveness.Migrations)
	all := slices.Concat(outbox.Migrations, digest.Migrations, liveness.Migrations)
	store, err := directory.Create(ctx, path, directory.Info{Name: "Migration Test", Address: "dir@ccdir.example",
		KeyFingerprint: dirKey.Fingerprint(), PublicKey: string(pub)}, directory.Options{Signer: dirKey, Now: clock, Migrations: v1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range [][]any{{3, "h3", 0}, {5, "h5", 3}, {5, "h5", 5}, {7, "h7", 4}} {
		if _, err := store.DB().Exec(`INSERT INTO digests (serial, head, prev_serial, created) VALUES (?, ?, ?, '2025-01-01T00:00:00Z')`, r...); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	for range 2 {
		if store, err = directory.Open(ctx, path, directory.Options{Signer: dirKey, Now: clock, Migrations: all}); err != nil {
			t.Fatal(err)
		}
		var got []string
		rows, err := store.DB().Query(`SELECT prev_head FROM digests ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				t.Fatal(err)
			}
			got = append(got, h)
		}
		rows.Close()
		if want := []string{"", "h3", "h5", ""}; !slices.Equal(got, want) {
			t.Errorf("prev_head %q, want %q", got, want)
		}
		// The record of steps lost: the step runs again.
		if _, err := store.DB().Exec(`DELETE FROM schema_migrations WHERE owner = 'digest' AND version = 2`); err != nil {
			t.Fatal(err)
		}
		store.Close()
	}
}
