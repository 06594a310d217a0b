package inbound

import "github.com/ccdir/ccdir/directory"

// Owner is the owner of inbound's tables in schema_migrations.
const Owner = "inbound"

// Migrations are the steps of inbound's tables, for directory.Open (see
// directory.Migration).
var Migrations = []directory.Migration{
	{Owner: Owner, Version: 1, Name: "seen signatures", Up: seenSchema},
	{Owner: Owner, Version: 2, Name: "seen signatures horizon", Up: horizonSchema},
}

// seenSchema is the operational table seen_signatures (digest, seen:
// Unix seconds), beside the directory's state but outside the signed
// ledger; version 1 as released before schema_migrations.
const seenSchema = `CREATE TABLE IF NOT EXISTS seen_signatures (
	digest TEXT PRIMARY KEY,
	seen   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_signatures_seen ON seen_signatures(seen);`

// horizonSchema is the operational table seen_horizon: one row holding
// forgotten_before (Unix seconds), the latest time before which Prune
// deleted seen signatures. A signature dated before it may have been
// seen and is refused whatever the window (see Prune).
const horizonSchema = `CREATE TABLE IF NOT EXISTS seen_horizon (
	id               INTEGER PRIMARY KEY CHECK (id = 1),
	forgotten_before INTEGER NOT NULL
);`
