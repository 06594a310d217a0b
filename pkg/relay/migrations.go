package relay

import "github.com/ccdir/ccdir/directory"

// Owner is the owner of the list's tables in schema_migrations.
const Owner = "relay"

// Migrations are the steps of the list's tables, for directory.Open
// (see directory.Migration).
var Migrations = []directory.Migration{
	{Owner: Owner, Version: 1, Name: "alerts and their recipients", Up: schema},
	{Owner: Owner, Version: 2, Name: "alerts by author, for the per-author limits", Up: `CREATE INDEX IF NOT EXISTS alerts_author ON alerts (author_email, created);`},
}

// The operational tables of the list. They hold who posted what label
// when, and who got and acknowledged it: never the content (unless
// Config.Archive, which keeps the post as received, still encrypted to
// the directory key, in alerts.archive). Times are Unix milliseconds.
const schema = `
CREATE TABLE IF NOT EXISTS alerts (
	id           TEXT PRIMARY KEY,
	author_email TEXT NOT NULL,
	author_fpr   TEXT NOT NULL,
	tlp          TEXT NOT NULL,
	created      INTEGER NOT NULL,
	recipients   INTEGER NOT NULL DEFAULT 0,
	archive      BLOB
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alerts_created ON alerts (created);
CREATE TABLE IF NOT EXISTS alert_recipients (
	alert_id TEXT NOT NULL REFERENCES alerts (id),
	email    TEXT NOT NULL,
	tlds     TEXT NOT NULL,
	author   INTEGER NOT NULL DEFAULT 0,
	state    TEXT NOT NULL CHECK (state IN ('queued', 'skipped')),
	reason   TEXT NOT NULL DEFAULT '',
	acked_at INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (alert_id, email)
) WITHOUT ROWID;
`
