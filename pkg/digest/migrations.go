package digest

import (
	"context"
	"database/sql"

	"github.com/ccdir/ccdir/directory"
)

// Owner is the owner of the digest job's tables in schema_migrations.
const Owner = "digest"

// Migrations are the steps of the digest job's tables, for directory.Open
// (see directory.Migration).
var Migrations = []directory.Migration{
	{Owner: Owner, Version: 1, Name: "digests and their recipients", Up: jobSchema},
	{Owner: Owner, Version: 2, Name: "digests record the previous digest's head", UpFunc: addPrevHead},
}

// addPrevHead records, with each digest, the head of the digest before
// it (prev_serial's), which its text and directory.json state; digests
// made before are given the head of the last earlier digest at that
// serial ("" for none). Like every step it may run again on a database
// whose record of steps was lost, so it adds the column only when it is
// missing.
func addPrevHead(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('digests') WHERE name = 'prev_head'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := tx.ExecContext(ctx, `ALTER TABLE digests ADD COLUMN prev_head TEXT NOT NULL DEFAULT '';
UPDATE digests SET prev_head = coalesce((SELECT p.head FROM digests p
	WHERE p.id < digests.id AND p.serial = digests.prev_serial ORDER BY p.id DESC LIMIT 1), '')
	WHERE prev_serial > 0`)
	return err
}

// jobSchema is the digest job's two tables: the digests made, and the
// recipients of each, fixed when it is recorded; version 1 as released
// before schema_migrations.
const jobSchema = `
CREATE TABLE IF NOT EXISTS digests (
	id          INTEGER PRIMARY KEY,
	serial      INTEGER NOT NULL,
	head        TEXT NOT NULL,
	prev_serial INTEGER NOT NULL,
	created     TEXT NOT NULL,
	queued      TEXT
);
CREATE TABLE IF NOT EXISTS digest_recipients (
	digest_id   INTEGER NOT NULL REFERENCES digests(id),
	email       TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('pending', 'queued', 'skipped')),
	reason      TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (digest_id, email)
);
`
