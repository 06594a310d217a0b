package receive

import "github.com/ccdir/ccdir/directory"

// Owner is the owner of the inbound log in schema_migrations.
const Owner = "receive"

// Migrations are the steps of the inbound log, for directory.Open (see
// directory.Migration). Each step is appended with the next version; a
// released step is never changed.
var Migrations = []directory.Migration{
	{Owner: Owner, Version: 1, Name: "inbound log", Up: inboundLogSchema},
}

// inboundLogSchema is the inbound log: one row per message Receive was
// given, whatever became of it (see Entry). It holds the envelope, the
// signer's fingerprint and the verdict with its reason, never the
// message's content, a token or a secret. at is Unix milliseconds.
const inboundLogSchema = `
CREATE TABLE IF NOT EXISTS inbound_log (
	id        INTEGER PRIMARY KEY,
	at        INTEGER NOT NULL,
	sender    TEXT NOT NULL,
	recipient TEXT NOT NULL,
	route     TEXT NOT NULL,
	signer    TEXT NOT NULL DEFAULT '',
	verdict   TEXT NOT NULL CHECK (verdict IN ('accepted', 'refused', 'ignored', 'deferred')),
	reason    TEXT NOT NULL DEFAULT '',
	text      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS inbound_log_at ON inbound_log (at);
`
