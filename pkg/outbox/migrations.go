package outbox

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/ccdir/ccdir/directory"
)

// Owner is the owner of the outbox's tables in schema_migrations.
const Owner = "outbox"

// Migrations are the steps of the outbox's tables, for directory.Open
// (see directory.Migration).
var Migrations = []directory.Migration{
	{Owner: Owner, Version: 1, Name: "outbox and shared parts", UpFunc: createV1},
	{Owner: Owner, Version: 2, Name: "outbox row authentication", UpFunc: addMAC},
	{Owner: Owner, Version: 3, Name: "bounced messages", UpFunc: addBounced},
	{Owner: Owner, Version: 4, Name: "time of failure", UpFunc: addFailedAt},
}

// addFailedAt is step 4, the column failed_at: when the message became
// failed (Unix milliseconds; 0 otherwise, and for messages that failed
// before this step, whose time was not kept), as bounced_at is for
// bounced. Like step 2 it adopts a table that has the column already.
func addFailedAt(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('outbox') WHERE name = 'failed_at'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := tx.ExecContext(ctx, `ALTER TABLE outbox ADD COLUMN failed_at INTEGER NOT NULL DEFAULT 0`)
	return err
}

// addBounced is step 3: the status bounced (a delivery status
// notification said the message failed, see Outbox.Bounced), the column
// bounced_at (when it came, Unix milliseconds; 0 otherwise) and an index
// on the recipient for BounceRuns. SQLite cannot change a CHECK
// constraint, so the table is made again under its own name with the
// same rows and ids (nothing refers to outbox; it refers to
// outbox_blob, whose rows stay).
func addBounced(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `
CREATE TABLE outbox_v3 (
	id           INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL,
	ref          TEXT NOT NULL,
	sender       TEXT NOT NULL,
	rcpt         TEXT NOT NULL,
	body         BLOB,
	blob         INTEGER REFERENCES outbox_blob (id),
	tail         BLOB,
	size         INTEGER NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('queued', 'deferred', 'sent', 'failed', 'bounced')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	created      INTEGER NOT NULL,
	window_start INTEGER NOT NULL,
	next_attempt INTEGER NOT NULL,
	sent_at      INTEGER NOT NULL DEFAULT 0,
	last_error   TEXT NOT NULL DEFAULT '',
	mac          BLOB,
	bounced_at   INTEGER NOT NULL DEFAULT 0,
	UNIQUE (kind, ref, rcpt)
);
INSERT INTO outbox_v3 (id, kind, ref, sender, rcpt, body, blob, tail, size, status, attempts, created,
	window_start, next_attempt, sent_at, last_error, mac)
	SELECT id, kind, ref, sender, rcpt, body, blob, tail, size, status, attempts, created,
	window_start, next_attempt, sent_at, last_error, mac FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v3 RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt);
CREATE INDEX outbox_blob_ref ON outbox (blob);
CREATE INDEX outbox_rcpt ON outbox (rcpt);
`)
	return err
}

// addMAC is step 2, the column mac: the HMAC-SHA256, with the outbox key
// kept outside the database (Outbox.Key), of what the row makes the
// transport do (see Outbox.mac); Deliver sends no row without a valid
// one. Rows queued before it have none (NULL): they are refused like any
// other row the outbox cannot vouch for, a one-time cost of the upgrade
// (see docs/ARCHITECTURE.md, Delivery). Like step 1 it adopts a table
// that has the column already (a home whose schema_migrations was lost).
func addMAC(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('outbox') WHERE name = 'mac'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := tx.ExecContext(ctx, `ALTER TABLE outbox ADD COLUMN mac BLOB`)
	return err
}

// Times are stored as Unix milliseconds. window_start is when the current
// retry window began (created, or the last Retry). body holds
// Message.Data; blob and tail, Message.Blob (NULL for 0) and Message.Tail
// (NULL if empty); size is the length of all three on the wire. body,
// blob and tail are NULL once the message is sent.
//
// outbox_blob holds the shared parts, one row per distinct content
// (sha256 is the SHA-256 of data). Deliver deletes those no message
// refers to any more; AUTOINCREMENT keeps their ids from being reused
// while another process may still hold one.
//
// This is version 1 as released before schema_migrations, when Open
// created the tables and added to an outbox made before shared parts
// the columns blob and tail (see addColumns); the index on blob is
// created after that. Step 1 does all of it, so that it adopts any of
// those databases.
const schema = `
CREATE TABLE IF NOT EXISTS outbox_blob (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	sha256 BLOB NOT NULL UNIQUE,
	data   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
	id           INTEGER PRIMARY KEY,
	kind         TEXT NOT NULL,
	ref          TEXT NOT NULL,
	sender       TEXT NOT NULL,
	rcpt         TEXT NOT NULL,
	body         BLOB,
	blob         INTEGER REFERENCES outbox_blob (id),
	tail         BLOB,
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
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (status, next_attempt);
`

// indexes are created once migrate has added the columns they cover.
const indexes = `
CREATE INDEX IF NOT EXISTS outbox_blob_ref ON outbox (blob);
`

// addedColumns are the columns of outbox that older databases lack, in
// the order they were added, with their definitions.
var addedColumns = []struct{ name, def string }{
	{"blob", "INTEGER REFERENCES outbox_blob (id)"},
	{"tail", "BLOB"},
}

// createV1 is step 1: the tables, the columns an outbox made before
// shared parts lacks, then the index on them.
func createV1(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	if err := addColumns(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, indexes); err != nil {
		return fmt.Errorf("create indexes: %w", err)
	}
	return nil
}

// addColumns adds to the table outbox the columns it lacks.
func addColumns(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info('outbox')`)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range addedColumns {
		if have[c.name] {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE outbox ADD COLUMN `+c.name+` `+c.def); err != nil {
			return fmt.Errorf("add column %s: %w", c.name, err)
		}
	}
	return nil
}
