package directory

import (
	"strings"
	"testing"
)

// Litestream's own tables in a replicated database do not fail the
// schema check; any other table does, and so does a trigger on theirs.
func TestExternalTables(t *testing.T) {
	f := newFixture(t)
	f.populate()
	tamper(t, f.path, `CREATE TABLE IF NOT EXISTS _litestream_seq (id INTEGER PRIMARY KEY, seq INTEGER)`)
	tamper(t, f.path, `CREATE TABLE IF NOT EXISTS _litestream_lock (id INTEGER)`)
	tamper(t, f.path, `INSERT INTO _litestream_seq VALUES (1, 7)`)
	if _, err := f.verify(); err != nil {
		t.Fatalf("verify with Litestream's tables: %v", err)
	}
	tamper(t, f.path, `CREATE TRIGGER sneaky AFTER INSERT ON _litestream_seq BEGIN DELETE FROM contacts; END`)
	if _, err := f.verify(); err == nil || !strings.Contains(err.Error(), `trigger "sneaky"`) {
		t.Fatalf("a trigger on _litestream_seq: %v", err)
	}
	tamper(t, f.path, `DROP TRIGGER sneaky`)
	tamper(t, f.path, `CREATE TABLE _litestream_other (x)`)
	if _, err := f.verify(); err == nil || !strings.Contains(err.Error(), "unexpected table _litestream_other") {
		t.Fatalf("another table: %v", err)
	}
}
