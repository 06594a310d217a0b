package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// oldOutbox turns the released fixture's outbox into the one a ccdir
// made before shared parts (no blob and tail columns), with its rows.
const oldOutbox = `
DROP INDEX outbox_blob_ref;
DROP INDEX outbox_due;
ALTER TABLE outbox RENAME TO outbox_released;
CREATE TABLE outbox (
	id           INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL,
	ref          TEXT NOT NULL,
	sender       TEXT NOT NULL,
	rcpt         TEXT NOT NULL,
	body         BLOB,
	size         INTEGER NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('queued', 'deferred', 'sent', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	created      INTEGER NOT NULL,
	window_start INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	sent_at      INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	UNIQUE (kind, ref, rcpt)
);
INSERT INTO outbox SELECT id, kind, ref, sender, rcpt, body, size, status, attempts, created,
	window_start, next_attempt, sent_at, last_error FROM outbox_released;
DROP TABLE outbox_released;
CREATE INDEX outbox_due ON outbox (status, next_attempt);
`

// inPlace is what the released outbox.Open did to such an outbox.
const inPlace = `
ALTER TABLE outbox ADD COLUMN blob INTEGER REFERENCES outbox_blob (id);
ALTER TABLE outbox ADD COLUMN tail BLOB;
CREATE INDEX outbox_blob_ref ON outbox (blob);
`

// TestReleasedHome opens homes made by the released ccdir, before
// schema_migrations (testdata/released, loaded from its SQL dump): verify
// and reading commands leave them alone, the first command that writes
// migrates them, verify then accepts them, and a second open changes
// nothing. The outbox comes as released, as made before shared parts
// and migrated in place by the released ccdir, and as made before shared
// parts and never opened since.
func TestReleasedHome(t *testing.T) {
	dump, err := os.ReadFile(filepath.Join("testdata", "released", "directory.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, prepare string }{
		{"as released", ""},
		{"outbox migrated in place", oldOutbox + inPlace},
		{"outbox before shared parts", oldOutbox},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := releasedHome(t, string(dump)+tc.prepare)
			db := filepath.Join(home, dbName)
			ccdir := func(args ...string) (int, string, string) {
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), append([]string{"--home", home}, args...), strings.NewReader(""), &stdout, &stderr)
				return code, stdout.String(), stderr.String()
			}
			head := queryString(t, db, `SELECT hash FROM ledger WHERE seq = 5`)

			// verify reads only, and refuses until the home is migrated.
			before := readFile(t, db)
			code, _, stderr := ccdir("verify")
			if code != exitError || !strings.Contains(stderr, "records no schema versions") || !strings.Contains(stderr, "hint: run a ccdir command that writes") {
				t.Fatalf("verify of an unmigrated home: exit %d, %s", code, stderr)
			}
			if code, out, stderr := ccdir("member", "list"); code != 0 || !strings.Contains(out, "NIC.br") {
				t.Fatalf("member list: exit %d, %s%s", code, out, stderr)
			}
			if !bytes.Equal(before, readFile(t, db)) {
				t.Fatal("verify or member list changed an unmigrated home")
			}

			// The first command that writes migrates.
			if code, out, stderr := ccdir("outbox", "list"); code != 0 || !strings.Contains(out, "2 messages") {
				t.Fatalf("outbox list: exit %d, %s%s", code, out, stderr)
			}
			first := schemaState(t, db)
			for _, owner := range []string{"directory", "outbox", "inbound", "digest", "relay"} {
				if !strings.Contains(first, "\n"+owner+" 1 ") {
					t.Fatalf("schema_migrations after the migration lacks %s 1:\n%s", owner, first)
				}
			}
			if code, out, stderr := ccdir("verify"); code != 0 || !strings.Contains(out, "ok serial 5 head "+head) {
				t.Fatalf("verify after the migration: exit %d, %s%s", code, out, stderr)
			}
			if code, out, stderr := ccdir("digest", "status", "1"); code != 0 || !strings.Contains(out, "ana@dns.pt") {
				t.Fatalf("digest status 1: exit %d, %s%s", code, out, stderr)
			}
			if code, out, stderr := ccdir("alerts"); code != 0 {
				t.Fatalf("alerts: exit %d, %s%s", code, out, stderr)
			}

			// A second open changes nothing.
			if code, _, stderr := ccdir("outbox", "list"); code != 0 {
				t.Fatalf("second outbox list: exit %d, %s", code, stderr)
			}
			if again := schemaState(t, db); again != first {
				t.Fatalf("a second open changed the schema:\n%s\nthen:\n%s", first, again)
			}

			// And the home works on: a change, made by a named operator
			// after the released entries' plain "operator", verified.
			t.Setenv("CCDIR_OPERATOR", "Rita Released")
			if code, _, stderr := ccdir("member", "add", "nl", "--org", "SIDN"); code != 0 {
				t.Fatalf("member add: exit %d, %s", code, stderr)
			}
			if code, out, stderr := ccdir("verify"); code != 0 || !strings.Contains(out, "ok serial 6 ") {
				t.Fatalf("verify after a change: exit %d, %s%s", code, out, stderr)
			}
			if actors := queryString(t, db, `SELECT group_concat(actor, ',') FROM (SELECT actor FROM ledger ORDER BY seq)`); actors != "operator,operator,operator,operator,operator,operator:Rita Released" {
				t.Fatalf("actors %s", actors)
			}
		})
	}
}

// releasedHome makes a home from the released fixture with its database
// loaded from sqlText.
func releasedHome(t *testing.T, sqlText string) string {
	t.Helper()
	home := t.TempDir()
	if err := os.Mkdir(filepath.Join(home, keysDir), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.yaml", filepath.Join(keysDir, publicName), filepath.Join(keysDir, secretName)} {
		b, err := os.ReadFile(filepath.Join("testdata", "released", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(home, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(home, dbName)+"?_foreign_keys=off")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(sqlText); err != nil {
		t.Fatal(err)
	}
	return home
}

// schemaState is the schema of a database as text: the rows of
// schema_migrations, then every object of sqlite_schema with its SQL.
func schemaState(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var b strings.Builder
	for _, q := range []string{
		`SELECT owner || ' ' || version || ' ' || applied FROM schema_migrations ORDER BY owner, version`,
		`SELECT type || ' ' || name || ' ' || tbl_name || ' ' || coalesce(sql, '') FROM sqlite_schema ORDER BY type, name`,
		`SELECT 'user_version ' || user_version FROM pragma_user_version`,
	} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "\n%s", s)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

func queryString(t *testing.T, path, q string) string {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow(q).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
