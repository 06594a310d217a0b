package directory

// applicationID marks a SQLite file as a ccdir directory ("ccdi").
const applicationID = 0x63636469

// stateSchema and ledgerSchema are version 1 of the signed tables, as
// released before schema_migrations (see signedMigrations); they never
// change: a change is a new step.
//
// stateSchema holds the tables that are a view of the ledger. Verify
// rebuilds exactly these from the ledger and compares them row by row.
const stateSchema = `
CREATE TABLE directory (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	name            TEXT NOT NULL,
	address         TEXT NOT NULL,
	list_address    TEXT NOT NULL,
	key_fingerprint TEXT NOT NULL,
	public_key      TEXT NOT NULL
);
CREATE TABLE members (
	tld         TEXT PRIMARY KEY,
	org         TEXT NOT NULL,
	country     TEXT NOT NULL,
	status      TEXT NOT NULL,
	added_seq   INTEGER NOT NULL,
	updated_seq INTEGER NOT NULL
);
CREATE TABLE contacts (
	id              INTEGER PRIMARY KEY,
	email           TEXT NOT NULL UNIQUE,
	name            TEXT NOT NULL,
	phones          TEXT NOT NULL,
	languages       TEXT NOT NULL,
	timezone        TEXT NOT NULL,
	always          INTEGER NOT NULL,
	key_fingerprint TEXT UNIQUE,
	key_algorithm   TEXT NOT NULL,
	key_created     TEXT NOT NULL,
	key_expires     TEXT NOT NULL,
	key_armored     TEXT NOT NULL,
	confirmed       TEXT NOT NULL,
	added_seq       INTEGER NOT NULL,
	updated_seq     INTEGER NOT NULL
);
CREATE TABLE roles (
	contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
	tld        TEXT NOT NULL REFERENCES members(tld),
	role       TEXT NOT NULL CHECK (role IN ('security', 'admin')),
	PRIMARY KEY (contact_id, tld)
);
CREATE INDEX roles_tld ON roles (tld);
`

// stateTables lists the state tables with the columns that order their rows.
var stateTables = []struct{ name, order string }{
	{"directory", "id"},
	{"members", "tld"},
	{"contacts", "id"},
	{"roles", "contact_id, tld"},
}

// ledgerSchema holds the ledger itself.
const ledgerSchema = `
CREATE TABLE ledger (
	seq       INTEGER PRIMARY KEY,
	time      TEXT NOT NULL,
	actor     TEXT NOT NULL,
	op        TEXT NOT NULL,
	payload   TEXT NOT NULL,
	evidence  BLOB,
	prev_hash TEXT NOT NULL,
	hash      TEXT NOT NULL,
	sig       BLOB NOT NULL
);
`
