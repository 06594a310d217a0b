package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var opsV1 = Migration{Owner: "test", Version: 1, Name: "ops", Up: `CREATE TABLE ops (x TEXT)`}

// schemaRows is schema_migrations and sqlite_schema as text.
func schemaRows(t *testing.T, s *Store) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT owner || ' ' || version || ' ' || applied FROM schema_migrations ORDER BY owner, version`,
		`SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`,
	} {
		rows, err := s.r.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			b.WriteString(line + "\n")
		}
		rows.Close()
	}
	return b.String()
}

func (f *fixture) reopen(opts Options) (*Store, error) {
	f.t.Helper()
	f.s.Close()
	s, err := Open(f.ctx, f.path, opts)
	if err == nil {
		f.s = s
	}
	return s, err
}

func TestMigrationsApplyInOrderOnce(t *testing.T) {
	f := newFixtureWith(t, []Migration{opsV1})
	f.populate()
	v2 := Migration{Owner: "test", Version: 2, Name: "ops.y", Up: `ALTER TABLE ops ADD COLUMN y TEXT NOT NULL DEFAULT ''; CREATE INDEX ops_y ON ops (y)`}
	opts := f.opts()
	opts.Migrations = []Migration{opsV1, v2}
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	got := schemaRows(t, f.s)
	for _, want := range []string{"directory 1 ", "test 1 ", "test 2 ", "index ops_y "} {
		if !strings.Contains(got, want) {
			t.Fatalf("after the migration, no %q in\n%s", want, got)
		}
	}
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify after a migration: %v", err)
	}
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	if again := schemaRows(t, f.s); again != got {
		t.Fatalf("a second open changed the schema:\n%s\nthen:\n%s", got, again)
	}
	// The database now knows test 2: without it, this package is older.
	opts.Migrations = []Migration{opsV1}
	_, err := f.reopen(opts)
	if !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "has schema migration test 2; this ccdir knows test up to 1") {
		t.Fatalf("open with test 1 only: %v", err)
	}
	var de *Error
	if !errors.As(err, &de) || !strings.Contains(de.Hint, "a newer ccdir made this home") {
		t.Fatalf("no hint: %#v", err)
	}
	opts.Migrations = nil
	opts.ReadOnly = true
	if _, err = f.reopen(opts); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "of tables this ccdir does not know") {
		t.Fatalf("read-only open without the test owner: %v", err)
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	f := newFixtureWith(t, []Migration{opsV1})
	before := schemaRows(t, f.s)
	opts := f.opts()
	opts.Migrations = []Migration{opsV1, {Owner: "test", Version: 2, Name: "broken", Up: `CREATE TABLE half (x); INSERT INTO nowhere VALUES (1)`}}
	if _, err := f.reopen(opts); err == nil || !strings.Contains(err.Error(), "schema migration test 2 (broken)") {
		t.Fatalf("open with a broken step: %v", err)
	}
	opts.Migrations = []Migration{opsV1}
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	if after := schemaRows(t, f.s); after != before {
		t.Fatalf("a failed step left changes:\n%s\nthen:\n%s", before, after)
	}
}

func TestReadOnlyNeverMigrates(t *testing.T) {
	f := newFixtureWith(t, []Migration{opsV1})
	f.populate()
	before := schemaRows(t, f.s)
	opts := f.opts()
	opts.ReadOnly = true
	opts.Migrations = []Migration{opsV1, {Owner: "test", Version: 2, Name: "more", Up: `CREATE TABLE more (x)`}}
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	if after := schemaRows(t, f.s); after != before {
		t.Fatalf("a read-only open migrated:\n%s", after)
	}
	// Verify checks the schema of the version recorded, not the newest.
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify of a database one step behind: %v", err)
	}
}

func TestMigrationSetChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		ms   []Migration
		want string
	}{
		{"gap", []Migration{opsV1, {Owner: "test", Version: 3, Name: "x", Up: "SELECT 1"}}, "want version 2"},
		{"starts at 2", []Migration{{Owner: "test", Version: 2, Name: "x", Up: "SELECT 1"}}, "want version 1"},
		{"signed owner", []Migration{{Owner: Owner, Version: 2, Name: "x", Up: "SELECT 1"}}, "reserved for the signed tables"},
		{"no owner", []Migration{{Version: 1, Name: "x", Up: "SELECT 1"}}, "bad owner"},
		{"nothing to do", []Migration{{Owner: "test", Version: 1, Name: "x"}}, "nothing to do"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := newMigrationSet(tc.ms); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newMigrationSet: %v, want %q", err, tc.want)
			}
		})
	}
}

// TestMigrateBareDatabase: a package's own tests get its tables with
// Migrate; the signed tables are not Migrate's.
func TestMigrateBareDatabase(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite3", "file:"+t.TempDir()+"/bare.db")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for range 2 {
		if err := Migrate(ctx, db, []Migration{opsV1}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("schema_migrations: %d rows, %v", n, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name IN ('ledger', 'contacts')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("Migrate made %d signed tables, %v", n, err)
	}
	if err := Migrate(ctx, db, signedMigrations); err == nil {
		t.Fatal("Migrate ran the signed steps")
	}
}

// TestDBInsideUpdate: the operational pool is not the one Update holds,
// so using it inside an Update returns instead of waiting forever.
func TestDBInsideUpdate(t *testing.T) {
	f := newFixtureWith(t, []Migration{opsV1})
	done := make(chan error, 1)
	go func() {
		_, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
			if _, err := tx.SQL().Exec(`INSERT INTO ops VALUES ('in the update')`); err != nil {
				return err
			}
			var n int
			if err := f.s.DB().QueryRow(`SELECT count(*) FROM ops`).Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return errors.New("the operational pool saw the update's uncommitted row")
			}
			ctx, cancel := context.WithTimeout(f.ctx, 100*time.Millisecond)
			defer cancel()
			if _, err := f.s.DB().ExecContext(ctx, `INSERT INTO ops VALUES ('beside the update')`); err == nil {
				return errors.New("a write beside the update's lock succeeded")
			}
			return nil
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Store.DB inside Store.Update deadlocked")
	}
	var n int
	if err := f.s.DB().QueryRow(`SELECT count(*) FROM ops`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("ops rows after the update: %d, %v", n, err)
	}
}

// TestSignedMigration: a step of the signed tables (a column added to
// contacts, as a new contact field would need). A database still at
// version 1 verifies against version 1, read-only; opened for writing it
// is migrated, and verifies against version 2, its rows compared with
// the replay; a ccdir that knows only version 1 refuses it.
func TestSignedMigration(t *testing.T) {
	f := newFixture(t)
	f.populate()
	head, err := f.verify()
	if err != nil {
		t.Fatal(err)
	}
	released := signedMigrations
	t.Cleanup(func() { signedMigrations = released })
	next := len(released) + 1
	signedMigrations = append(released[:len(released):len(released)], Migration{Owner: Owner, Version: next, Name: "contacts.pager",
		Up: `ALTER TABLE contacts ADD COLUMN pager TEXT NOT NULL DEFAULT ''`})

	opts := f.opts()
	opts.ReadOnly = true
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	if h, err := f.verify(); err != nil || h != head {
		t.Fatalf("verify of version 1 by a ccdir that knows 2: %v, %v", h, err)
	}
	opts.ReadOnly = false
	if _, err := f.reopen(opts); err != nil {
		t.Fatal(err)
	}
	var ver int
	if err := f.s.r.QueryRow(`PRAGMA user_version`).Scan(&ver); err != nil || ver != next {
		t.Fatalf("user_version %d, %v", ver, err)
	}
	if h, err := f.verify(); err != nil || h != head {
		t.Fatalf("verify after the signed migration: %v, %v", h, err)
	}
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Name = "Ana M. Sousa"; return nil })
		return err
	})
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify after a change at version 2: %v", err)
	}
	tamper(t, f.path, `UPDATE contacts SET pager = '+351 99' WHERE email = 'ana@dns.pt'`)
	if _, err := f.verify(); !IsVerifyError(err) || !strings.Contains(err.Error(), "column pager") {
		t.Fatalf("verify of a changed pager: %v", err)
	}

	signedMigrations = released
	f.s.Close()
	if _, err := Open(f.ctx, f.path, Options{ReadOnly: true}); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), fmt.Sprintf("schema migration directory %d; this ccdir knows directory up to %d", next, next-1)) {
		t.Fatalf("open of version 2 by a ccdir that knows 1: %v", err)
	}
}

func TestEmptyWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	if !emptyWAL(path) {
		t.Fatal("no WAL file: want empty")
	}
	if err := os.WriteFile(path+"-wal", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if !emptyWAL(path) {
		t.Fatal("an empty WAL file: want empty")
	}
	if err := os.WriteFile(path+"-wal", []byte("commits"), 0o600); err != nil {
		t.Fatal(err)
	}
	if emptyWAL(path) {
		t.Fatal("a WAL file with content: want not empty")
	}
}
