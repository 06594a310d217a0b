package liveness

import (
	"context"
	"database/sql"

	"github.com/ccdir/ccdir/directory"
)

// Owner is the owner of the living directory's tables in
// schema_migrations.
const Owner = "liveness"

// Migrations are the steps of the living directory's tables, for
// directory.Open (see directory.Migration). Each step is appended with
// the next version; a released step is never changed.
var Migrations = []directory.Migration{
	{Owner: Owner, Version: 1, Name: "reachability pings", Up: pingsSchema},
	{Owner: Owner, Version: 2, Name: "key-expiry reminders", Up: keyRemindersSchema},
	{Owner: Owner, Version: 3, Name: "pending key and email changes", Up: pendingSchema},
	{Owner: Owner, Version: 4, Name: "pending change authentication", UpFunc: addPendingMAC},
}

// pingsSchema is the table of reachability pings: one row per challenge
// sent, to a contact's address and key as they were (email,
// fingerprint). The token is not kept: token_hash is the SHA-256 of it
// (hex), nonce what it is derived from with a secret kept outside the
// database (see Token). Times are RFC 3339, UTC; reminded, escalated and
// answered are NULL until they happen.
const pingsSchema = `
CREATE TABLE IF NOT EXISTS pings (
	id          INTEGER PRIMARY KEY,
	email       TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	nonce       TEXT NOT NULL UNIQUE,
	token_hash  TEXT NOT NULL UNIQUE,
	sent        TEXT NOT NULL,
	expires     TEXT NOT NULL,
	reminded    TEXT,
	escalated   TEXT,
	answered    TEXT
);
CREATE INDEX IF NOT EXISTS pings_contact ON pings (email, fingerprint, sent);
`

// keyRemindersSchema records each key-expiry reminder sent: one row per
// key, expiry and threshold (days), so a rerun sends nothing twice and
// a key refreshed with a later expiry starts over.
const keyRemindersSchema = `
CREATE TABLE IF NOT EXISTS key_reminders (
	fingerprint TEXT NOT NULL,
	expires     TEXT NOT NULL,
	days        INTEGER NOT NULL,
	email       TEXT NOT NULL,
	sent        TEXT NOT NULL,
	PRIMARY KEY (fingerprint, expires, days)
);
`

// pendingSchema is the table of guarded key and email changes (see
// Pending): one row per change asked for, kept after it is decided so
// that an id is never reused and pending list --all shows the history.
// email and fingerprint are the contact as it was when asked (""
// fingerprint: no key); new_key is the JSON of the directory.Key;
// evidence the signed mail (NULL for the operator); proof_hash the
// SHA-256 (hex) of the possession token (NULL: no proof needed). Times
// are RFC 3339, UTC; proven and decided are NULL until they happen. At
// most one change of each kind waits per contact.
const pendingSchema = `
CREATE TABLE IF NOT EXISTS pending_changes (
	id              TEXT PRIMARY KEY,
	contact_id      INTEGER NOT NULL,
	email           TEXT NOT NULL,
	fingerprint     TEXT NOT NULL,
	kind            TEXT NOT NULL CHECK (kind IN ('key', 'email')),
	new_email       TEXT,
	new_key         TEXT,
	new_fingerprint TEXT,
	actor           TEXT NOT NULL,
	evidence        BLOB,
	requested       TEXT NOT NULL,
	due             TEXT NOT NULL,
	proof_hash      TEXT,
	proven          TEXT,
	state           TEXT NOT NULL CHECK (state IN ('waiting', 'applied', 'vetoed', 'cancelled', 'expired', 'superseded')),
	decided         TEXT,
	decided_by      TEXT,
	reason          TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS pending_changes_waiting ON pending_changes (contact_id, kind) WHERE state = 'waiting';
CREATE INDEX IF NOT EXISTS pending_changes_due ON pending_changes (state, due);
`

// addPendingMAC is step 4, the column mac of pending_changes: the
// HMAC-SHA256, under the home's outbox key (kept outside the database),
// of every other field of the row as stored (see Pending.Authentic),
// made by Propose and again by every decision. A row without it, or
// with a wrong one, is never applied, proven or decided: someone who
// can write the database but not read keys/outbox.key cannot make a
// change, nor edit one. The MAC covers the row alone: an earlier copy
// of a row, saved while it waited, put back after the change was
// decided, passes it; what stops that is the home's record of
// decisions (Decisions, keys/pending-decided), not this column. The key is not at hand when the database migrates,
// so rows made before this step (by unreleased builds) have none and
// count as tampered: cancel them with the build that made them first,
// or ask for the change again.
// Like every step it may run again on a database whose record of
// steps was lost, so it adds the column only when it is missing.
func addPendingMAC(ctx context.Context, tx *sql.Tx) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('pending_changes') WHERE name = 'mac'`).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := tx.ExecContext(ctx, `ALTER TABLE pending_changes ADD COLUMN mac BLOB`)
	return err
}
