package digest

import (
	"context"
	"database/sql"
)

// jobSchema is the digest job's two tables: the digests made, and the
// recipients of each, fixed when it is recorded.
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

// InitSchema creates the digest tables if they are missing.
func InitSchema(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, jobSchema)
	return err
}
