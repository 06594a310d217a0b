package directory

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// VerifyError names the first place where the directory does not match its
// ledger: an entry (Seq > 0) or a state row (Table and Row set).
type VerifyError struct {
	Seq    int64
	Table  string
	Row    string
	Reason string
}

func (e *VerifyError) Error() string {
	switch {
	case e.Seq > 0:
		return fmt.Sprintf("ledger entry %d: %s", e.Seq, e.Reason)
	case e.Table != "":
		return fmt.Sprintf("table %s, row %s: %s", e.Table, e.Row, e.Reason)
	default:
		return e.Reason
	}
}

var verifyDBs atomic.Int64

// Verify checks the whole directory: the database's own integrity, the
// hash chain and the signature of every ledger entry (by the key whose
// fingerprint is fpr, checked with verify, which must be safe for
// concurrent use), and that replaying the ledger
// into a fresh database gives exactly the state tables on disk. It returns
// the head, or a *VerifyError naming the first problem.
func (s *Store) Verify(ctx context.Context, fpr string, verify VerifyFunc) (Head, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return Head{}, err
	}
	defer tx.Rollback()

	var ic string
	if err := tx.QueryRowContext(ctx, `PRAGMA quick_check(1)`).Scan(&ic); err != nil {
		return Head{}, &VerifyError{Reason: fmt.Sprintf("database integrity check failed: %v", err)}
	}
	if ic != "ok" {
		return Head{}, &VerifyError{Reason: "database integrity check failed: " + ic}
	}

	name := fmt.Sprintf("file:ccdir-verify-%d?mode=memory&cache=private&_foreign_keys=on", verifyDBs.Add(1))
	fresh, err := sql.Open("sqlite3", name)
	if err != nil {
		return Head{}, err
	}
	defer fresh.Close()
	fresh.SetMaxOpenConns(1)
	fresh.SetConnMaxLifetime(0)
	fresh.SetConnMaxIdleTime(0)
	if _, err := fresh.ExecContext(ctx, stateSchema+ledgerSchema); err != nil {
		return Head{}, err
	}
	ftx, err := fresh.BeginTx(ctx, nil)
	if err != nil {
		return Head{}, err
	}
	defer ftx.Rollback()

	if err := compareSchema(ctx, tx, ftx); err != nil {
		return Head{}, err
	}
	head, err := replay(ctx, tx, ftx, fpr, verify)
	if err != nil {
		return Head{}, err
	}
	// Entries cut from the end of the ledger leave state rows that name
	// them; say so rather than only that a row differs.
	var last int64
	if err := tx.QueryRowContext(ctx, `SELECT max(s) FROM (SELECT max(updated_seq) AS s FROM members UNION ALL SELECT max(updated_seq) FROM contacts)`).Scan(&sqlNullInt{&last}); err != nil {
		return Head{}, err
	}
	if last > head.Serial {
		return Head{}, &VerifyError{Seq: head.Serial + 1, Reason: fmt.Sprintf("missing: the state was changed by entry %d, but the ledger ends at entry %d", last, head.Serial)}
	}
	for _, t := range stateTables {
		if err := compareTable(ctx, tx, ftx, t.name, t.order); err != nil {
			return Head{}, err
		}
	}
	return head, nil
}

// compareSchema makes sure the state tables and the ledger are exactly as
// ccdir creates them, and that no trigger or view can change what is
// written or read. Other tables (the outbox, digests) may exist.
func compareSchema(ctx context.Context, disk, fresh queryer) error {
	var n int
	var name, kind string
	err := disk.QueryRowContext(ctx, `SELECT type, name FROM sqlite_schema WHERE type IN ('trigger', 'view') LIMIT 1`).Scan(&kind, &name)
	if err == nil {
		return &VerifyError{Reason: fmt.Sprintf("the database has a %s %q, which ccdir never creates", kind, name)}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	q := `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema WHERE tbl_name IN (` +
		strings.TrimSuffix(strings.Repeat("?,", len(stateTables)+1), ",") + `) ORDER BY type, name`
	args := []any{"ledger"}
	for _, t := range stateTables {
		args = append(args, t.name)
	}
	read := func(db queryer) (map[string]string, error) {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		m := map[string]string{}
		for rows.Next() {
			var typ, name, tbl, sqlText string
			if err := rows.Scan(&typ, &name, &tbl, &sqlText); err != nil {
				return nil, err
			}
			m[typ+" "+name] = tbl + "\x00" + sqlText
			n++
		}
		return m, rows.Err()
	}
	want, err := read(fresh)
	if err != nil {
		return err
	}
	got, err := read(disk)
	if err != nil {
		return err
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			return &VerifyError{Reason: fmt.Sprintf("the database lacks %s", k)}
		case g != w:
			return &VerifyError{Reason: fmt.Sprintf("%s is not defined as ccdir defines it", k)}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			return &VerifyError{Reason: fmt.Sprintf("the database has an unexpected %s", k)}
		}
	}
	return nil
}

// replayBatch is how many entries replay reads before it checks their
// signatures in parallel; it bounds the memory replay holds.
const replayBatch = 256

// replay streams the ledger, checks every entry and applies it to fresh.
// Signatures are checked in parallel (verify must be safe for concurrent
// use); everything else runs in ledger order, so the first problem found
// is the first in the ledger.
func replay(ctx context.Context, ledger queryer, fresh execer, fpr string, verify VerifyFunc) (Head, error) {
	rows, err := ledger.QueryContext(ctx, `SELECT `+entryColumns+` FROM ledger ORDER BY seq`)
	if err != nil {
		return Head{}, err
	}
	defer rows.Close()
	var head Head
	prev := zeroHash
	batch := make([]Entry, 0, replayBatch)
	sigErrs := make([]error, replayBatch)
	workers := max(1, runtime.GOMAXPROCS(0))
	flush := func() error {
		// Check the batch's signatures in parallel.
		var wg sync.WaitGroup
		next := make(chan int)
		for range min(workers, len(batch)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					sigErrs[i] = verify(signedText(batch[i].Seq, batch[i].Hash), batch[i].Sig)
				}
			}()
		}
		for i := range batch {
			next <- i
		}
		close(next)
		wg.Wait()
		for i := range batch {
			e := &batch[i]
			bad := func(format string, args ...any) error {
				return &VerifyError{Seq: e.Seq, Reason: fmt.Sprintf(format, args...)}
			}
			want := head.Serial + 1
			if e.Seq != want {
				return &VerifyError{Seq: want, Reason: fmt.Sprintf("missing (the ledger jumps from entry %d to %d)", head.Serial, e.Seq)}
			}
			if e.PrevHash != prev {
				return bad("previous hash %.16s… does not match the hash of entry %d (%.16s…)", e.PrevHash, e.Seq-1, prev)
			}
			if got := computeHash(e); got != e.Hash {
				return bad("content does not match its hash (stored %.16s…, computed %.16s…): time, actor, operation, payload or evidence was changed", e.Hash, got)
			}
			if e.Seq == 1 {
				if e.Op != opGenesis {
					return bad("the first entry is %q, not genesis", e.Op)
				}
				var g genesisPayload
				if err := decodeStrict(e.Payload, &g); err != nil {
					return bad("genesis: %v", err)
				}
				if !strings.EqualFold(g.KeyFingerprint, fpr) {
					return bad("genesis names directory key %s, but this home's key is %s", g.KeyFingerprint, fpr)
				}
			}
			if err := sigErrs[i]; err != nil {
				return bad("bad signature: %s", strings.TrimPrefix(err.Error(), "bad signature: "))
			}
			if _, err := time.Parse(time.RFC3339, e.Time); err != nil {
				return bad("bad time %q", e.Time)
			}
			if err := apply(ctx, fresh, e); err != nil {
				return bad("cannot be replayed (%s): %v", e.Op, err)
			}
			prev = e.Hash
			head = Head{Serial: e.Seq, Hash: e.Hash}
		}
		batch = batch[:0]
		return nil
	}
	for rows.Next() {
		batch = append(batch, Entry{})
		if err := scanEntry(rows, &batch[len(batch)-1]); err != nil {
			return head, err
		}
		if len(batch) == replayBatch {
			if err := flush(); err != nil {
				return head, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return head, err
	}
	if err := flush(); err != nil {
		return head, err
	}
	if head.Serial == 0 {
		return head, &VerifyError{Reason: "the ledger is empty"}
	}
	return head, nil
}

// compareTable streams one state table from the database and from the
// replay in key order and names the first row that differs.
func compareTable(ctx context.Context, disk, fresh queryer, table, order string) error {
	q := `SELECT * FROM ` + table + ` ORDER BY ` + order
	dr, err := disk.QueryContext(ctx, q)
	if err != nil {
		return &VerifyError{Table: table, Row: "-", Reason: err.Error()}
	}
	defer dr.Close()
	fr, err := fresh.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer fr.Close()
	cols, err := dr.Columns()
	if err != nil {
		return err
	}
	fcols, err := fr.Columns()
	if err != nil {
		return err
	}
	if strings.Join(cols, ",") != strings.Join(fcols, ",") {
		return &VerifyError{Table: table, Row: "-", Reason: fmt.Sprintf("columns %v, want %v", cols, fcols)}
	}
	keys := strings.Split(strings.ReplaceAll(order, " ", ""), ",")
	for {
		dok, fok := dr.Next(), fr.Next()
		if !dok && !fok {
			break
		}
		var dv, fv []any
		if dok {
			if dv, err = scanRow(dr, len(cols)); err != nil {
				return err
			}
		}
		if fok {
			if fv, err = scanRow(fr, len(cols)); err != nil {
				return err
			}
		}
		switch {
		case !fok:
			return &VerifyError{Table: table, Row: rowName(cols, dv, keys), Reason: "is in the database but not in the ledger"}
		case !dok:
			return &VerifyError{Table: table, Row: rowName(cols, fv, keys), Reason: "is in the ledger but missing from the database"}
		}
		switch c := compareKeys(cols, dv, fv, keys); {
		case c < 0: // the database's row sorts first: the ledger lacks it
			return &VerifyError{Table: table, Row: rowName(cols, dv, keys), Reason: "is in the database but not in the ledger"}
		case c > 0:
			return &VerifyError{Table: table, Row: rowName(cols, fv, keys), Reason: "is in the ledger but missing from the database"}
		}
		for i, c := range cols {
			if !sameValue(dv[i], fv[i]) {
				return &VerifyError{Table: table, Row: rowName(cols, dv, keys),
					Reason: fmt.Sprintf("column %s is %s in the database but %s in the ledger", c, show(dv[i]), show(fv[i]))}
			}
		}
	}
	if err := dr.Err(); err != nil {
		return err
	}
	return fr.Err()
}

// compareKeys compares two rows by their key columns as SQLite orders
// them (integers numerically, text bytewise).
func compareKeys(cols []string, a, b []any, keys []string) int {
	for _, k := range keys {
		for i, c := range cols {
			if c != k {
				continue
			}
			if x, ok := a[i].(int64); ok {
				if y, ok := b[i].(int64); ok {
					if r := cmp.Compare(x, y); r != 0 {
						return r
					}
					continue
				}
			}
			if r := bytes.Compare(asBytes(a[i]), asBytes(b[i])); r != 0 {
				return r
			}
		}
	}
	return 0
}

func asBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case string:
		return []byte(x)
	default:
		return fmt.Append(nil, x)
	}
}

func scanRow(rows *sql.Rows, n int) ([]any, error) {
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	return vals, rows.Scan(ptrs...)
}

func rowName(cols []string, vals []any, keys []string) string {
	var parts []string
	for _, k := range keys {
		for i, c := range cols {
			if c == k {
				parts = append(parts, fmt.Sprintf("%s=%s", k, show(vals[i])))
			}
		}
	}
	for i, c := range cols { // a readable hint for contacts
		if c == "email" {
			parts = append(parts, fmt.Sprintf("(%s)", show(vals[i])))
		}
	}
	return strings.Join(parts, " ")
}

func sameValue(a, b any) bool {
	ab, aok := a.([]byte)
	bb, bok := b.([]byte)
	switch {
	case aok && bok:
		return bytes.Equal(ab, bb)
	case aok:
		if s, ok := b.(string); ok {
			return string(ab) == s
		}
		return false
	case bok:
		if s, ok := a.(string); ok {
			return string(bb) == s
		}
		return false
	}
	return a == b
}

func show(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		s = string(x)
	case string:
		s = x
	default:
		return fmt.Sprint(x)
	}
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// IsVerifyError reports whether err is a verification finding (as opposed
// to a failure to run the check).
func IsVerifyError(err error) bool {
	var ve *VerifyError
	return errors.As(err, &ve)
}

// sqlNullInt scans a possibly NULL integer, leaving 0 for NULL.
type sqlNullInt struct{ p *int64 }

func (n *sqlNullInt) Scan(v any) error {
	var x sql.NullInt64
	if err := x.Scan(v); err != nil {
		return err
	}
	*n.p = x.Int64
	return nil
}

// SnapshotAt rebuilds the directory as it was at serial by replaying the
// ledger up to that entry into a fresh in-memory database (hashes and
// signatures are not checked here: that is Verify's job). Digests use it
// to compare the directory with what the last digest showed.
func (s *Store) SnapshotAt(ctx context.Context, serial int64) (*Snapshot, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	name := fmt.Sprintf("file:ccdir-at-%d?mode=memory&cache=private&_foreign_keys=on", verifyDBs.Add(1))
	fresh, err := sql.Open("sqlite3", name)
	if err != nil {
		return nil, err
	}
	defer fresh.Close()
	fresh.SetMaxOpenConns(1)
	fresh.SetConnMaxLifetime(0)
	fresh.SetConnMaxIdleTime(0)
	if _, err := fresh.ExecContext(ctx, stateSchema+ledgerSchema); err != nil {
		return nil, err
	}
	ftx, err := fresh.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer ftx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT `+entryColumns+` FROM ledger WHERE seq <= ? ORDER BY seq`, serial)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var last Entry
	for rows.Next() {
		var e Entry
		if err := scanEntry(rows, &e); err != nil {
			return nil, err
		}
		if err := apply(ctx, ftx, &e); err != nil {
			return nil, &LedgerError{Seq: e.Seq, Err: err}
		}
		last = e
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if last.Seq != serial {
		return nil, refuse(ErrNotFound, "", "the ledger has no entry %d", serial)
	}
	// The head entry itself, so that readHead works on the replay.
	if err := insertEntry(ctx, ftx, &last); err != nil {
		return nil, err
	}
	snap := Snapshot{Head: Head{Serial: last.Seq, Hash: last.Hash}, Time: last.Time}
	if snap.Info, err = readInfo(ctx, ftx); err != nil {
		return nil, err
	}
	if snap.Members, err = readMembers(ctx, ftx, ""); err != nil {
		return nil, err
	}
	if snap.Contacts, err = readContacts(ctx, ftx, ""); err != nil {
		return nil, err
	}
	return &snap, nil
}

// DB returns the database's write pool (one connection, BEGIN IMMEDIATE)
// for the operational tables other packages keep in the same file, beside
// but outside the signed state: digests, the outbox, seen signatures.
// Verify neither replays nor compares them.
func (s *Store) DB() *sql.DB { return s.w }
