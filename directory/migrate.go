package directory

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Migration is one numbered step of the schema of the tables a package
// owns. Each package that keeps tables in the directory database exports
// its steps; Open applies those not applied yet, in order, each in its own
// transaction, and records them in the table schema_migrations. A step
// never changes once released: a change of schema is a new step.
//
// The first step of an owner must be idempotent against the tables the
// ccdir releases before schema_migrations made (CREATE TABLE IF NOT
// EXISTS with their definitions), so that those homes are adopted.
type Migration struct {
	Owner   string // the package that owns the tables, e.g. "outbox"
	Version int    // 1, 2, … without gaps, per owner
	Name    string // what the step does, for people
	// Up is the SQL of the step; ignored when UpFunc is set.
	Up string
	// UpFunc runs the step in tx, for steps SQL alone cannot say.
	UpFunc func(ctx context.Context, tx *sql.Tx) error
}

// Owner is the owner name of the signed tables (this package).
const Owner = "directory"

// schemaMigrationsTable records the steps applied: one row per owner and
// version, with the time it was applied (RFC 3339, UTC).
const schemaMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
	owner   TEXT NOT NULL,
	version INTEGER NOT NULL,
	applied TEXT NOT NULL,
	PRIMARY KEY (owner, version)
)`

// signedMigrations are the steps of the signed tables. Version n of the
// signed schema is what these steps make up to step n; user_version
// follows it, so that a ccdir made before schema_migrations refuses a
// newer layout.
var signedMigrations = []Migration{
	{Owner: Owner, Version: 1, Name: "state tables and ledger", Up: ifNotExists(stateSchema + ledgerSchema)},
	{Owner: Owner, Version: 2, Name: "ledger entries of version 2 (salted payload digests) and erasure", UpFunc: addLedgerV2},
	{Owner: Owner, Version: 3, Name: "ledger entries of version 3 (the subject, in clear, in the hash)", UpFunc: addLedgerV3},
}

// ledgerV2Columns are the ledger's columns of step 2: every entry's
// version (the entries made before are version 1), a version 2 entry's
// salt (hex), and the digests of a payload and of evidence that were
// erased (hex, NULL until then).
var ledgerV2Columns = []struct{ name, def string }{
	{"version", "INTEGER NOT NULL DEFAULT 1"},
	{"salt", "TEXT"},
	{"payload_digest", "TEXT"},
	{"evidence_digest", "TEXT"},
}

// ledgerV3Columns are the ledger's columns of step 3: a version 3
// entry's subject (EntrySubject; NULL for none, and for the entries made
// before).
var ledgerV3Columns = []struct{ name, def string }{
	{"subject", "TEXT"},
}

// addLedgerV2 is step 2. Like every step it may run again on a database
// whose record of steps was lost, so it adds only the columns missing.
func addLedgerV2(ctx context.Context, tx *sql.Tx) error {
	return addLedgerColumns(ctx, tx, ledgerV2Columns)
}

// addLedgerV3 is step 3, as step 2.
func addLedgerV3(ctx context.Context, tx *sql.Tx) error {
	return addLedgerColumns(ctx, tx, ledgerV3Columns)
}

// addLedgerColumns adds to the ledger those of cols it does not have.
func addLedgerColumns(ctx context.Context, tx *sql.Tx, cols []struct{ name, def string }) error {
	for _, c := range cols {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('ledger') WHERE name = ?`, c.name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE ledger ADD COLUMN `+c.name+` `+c.def); err != nil {
			return fmt.Errorf("add column ledger.%s: %w", c.name, err)
		}
	}
	return nil
}

// ifNotExists turns the CREATE statements of a released schema into ones
// that leave existing objects alone. SQLite stores the statement without
// IF NOT EXISTS, so the stored text stays the released one.
func ifNotExists(schema string) string {
	r := strings.NewReplacer("CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", "CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ")
	return r.Replace(schema)
}

// SchemaVersion is the version of the signed schema this package writes.
func SchemaVersion() int { return len(signedMigrations) }

// newerSchema is the refusal of a database with a step this ccdir does
// not know.
func newerSchema(path, owner string, version, known int) error {
	msg := fmt.Sprintf("%s has schema migration %s %d; this ccdir knows %s up to %d", path, owner, version, owner, known)
	if known == 0 {
		msg = fmt.Sprintf("%s has schema migration %s %d, of tables this ccdir does not know", path, owner, version)
	}
	return &Error{Err: ErrNewerSchema, Msg: msg, Hint: "a newer ccdir made this home: use that release, or a newer one"}
}

// migrationSet holds every known step by owner, in version order.
type migrationSet struct {
	owners []string // in the order their steps are applied
	steps  map[string][]Migration
}

// newMigrationSet checks the steps of other owners and puts the signed
// steps first.
func newMigrationSet(others []Migration) (*migrationSet, error) {
	m := &migrationSet{steps: map[string][]Migration{}}
	for i, list := range [][]Migration{signedMigrations, others} {
		for _, s := range list {
			if s.Owner == "" || strings.ContainsAny(s.Owner, " \t\n") {
				return nil, fmt.Errorf("migration %q: bad owner %q", s.Name, s.Owner)
			}
			if i > 0 && s.Owner == Owner {
				return nil, fmt.Errorf("migration %d (%s): the owner %q is reserved for the signed tables", s.Version, s.Name, Owner)
			}
			if _, ok := m.steps[s.Owner]; !ok {
				m.owners = append(m.owners, s.Owner)
			}
			if want := len(m.steps[s.Owner]) + 1; s.Version != want {
				return nil, fmt.Errorf("migration %s %d (%s): want version %d", s.Owner, s.Version, s.Name, want)
			}
			if s.Up == "" && s.UpFunc == nil {
				return nil, fmt.Errorf("migration %s %d (%s): nothing to do", s.Owner, s.Version, s.Name)
			}
			m.steps[s.Owner] = append(m.steps[s.Owner], s)
		}
	}
	return m, nil
}

// readApplied reads schema_migrations: the newest version per owner. A
// database without the table has none (ok false).
func readApplied(ctx context.Context, q queryer) (map[string]int, bool, error) {
	var n int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&n); err != nil {
		return nil, false, err
	}
	if n == 0 {
		return map[string]int{}, false, nil
	}
	rows, err := q.QueryContext(ctx, `SELECT owner, max(version) FROM schema_migrations GROUP BY owner`)
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var owner string
		var v int
		if err := rows.Scan(&owner, &v); err != nil {
			return nil, false, err
		}
		out[owner] = v
	}
	return out, true, rows.Err()
}

// checkNewer refuses a database with a step this set does not know.
func (m *migrationSet) checkNewer(path string, applied map[string]int) error {
	owners := make([]string, 0, len(applied))
	for o := range applied {
		owners = append(owners, o)
	}
	sort.Strings(owners)
	for _, o := range owners {
		if v, known := applied[o], len(m.steps[o]); v > known {
			return newerSchema(path, o, v, known)
		}
	}
	return nil
}

// pending lists the steps not applied yet, signed ones first.
func (m *migrationSet) pending(applied map[string]int) []Migration {
	var out []Migration
	for _, o := range m.owners {
		out = append(out, m.steps[o][applied[o]:]...)
	}
	return out
}

// upTo lists the steps of every owner up to the version applied, in the
// order Open applied them.
func (m *migrationSet) upTo(applied map[string]int) []Migration {
	var out []Migration
	for _, o := range m.owners {
		out = append(out, m.steps[o][:min(applied[o], len(m.steps[o]))]...)
	}
	return out
}

// applySteps runs steps on db, each in its own transaction with its record in
// schema_migrations; the signed steps also set user_version.
func applySteps(ctx context.Context, db *sql.DB, steps []Migration, now time.Time) error {
	if _, err := db.ExecContext(ctx, schemaMigrationsTable); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, s := range steps {
		if err := applyStep(ctx, db, s, now); err != nil {
			return fmt.Errorf("schema migration %s %d (%s): %w", s.Owner, s.Version, s.Name, err)
		}
	}
	return nil
}

func applyStep(ctx context.Context, db *sql.DB, s Migration, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Another process may have applied it while this one waited for the
	// write lock.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE owner = ? AND version >= ?`, s.Owner, s.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if s.UpFunc != nil {
		err = s.UpFunc(ctx, tx)
	} else {
		_, err = tx.ExecContext(ctx, s.Up)
	}
	if err != nil {
		return err
	}
	if s.Owner == Owner {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", s.Version)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (owner, version, applied) VALUES (?, ?, ?)`,
		s.Owner, s.Version, now.UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	return tx.Commit()
}

// Migrate applies to db, a database that is not a directory (a package's
// own tests), the steps not applied yet. Directory databases are
// migrated by Open.
func Migrate(ctx context.Context, db *sql.DB, steps []Migration) error {
	for _, s := range steps {
		if s.Owner == Owner {
			return fmt.Errorf("migration %s %d: the signed tables are migrated by Open", s.Owner, s.Version)
		}
	}
	m, err := newMigrationSet(steps)
	if err != nil {
		return err
	}
	applied, _, err := readApplied(ctx, db)
	if err != nil {
		return err
	}
	if err := m.checkNewer("the database", applied); err != nil {
		return err
	}
	var pending []Migration
	for _, s := range m.pending(applied) {
		if s.Owner != Owner {
			pending = append(pending, s)
		}
	}
	return applySteps(ctx, db, pending, time.Now())
}
