package directory

import (
	"bytes"
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sort"
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
// concurrent use), that the schema is exactly the one the steps recorded
// in schema_migrations make (the signed tables' version and every other
// owner's, as given in Options.Migrations), and that replaying the ledger
// into a fresh database gives exactly the state tables on disk. It
// returns the head, or a *VerifyError naming the first problem. It reads
// only: a database made before schema versions were recorded is refused
// (ErrNotMigrated), one newer than this package knows too
// (ErrNewerSchema).
func (s *Store) Verify(ctx context.Context, fpr string, verify VerifyFunc) (Head, error) {
	rep, err := s.VerifyReport(ctx, fpr, verify)
	return rep.Head, err
}

// VerifyReport is Verify, and names the entries whose evidence could
// not be checked (Report.Unchecked): a whole mail an older ccdir kept
// encrypted to the directory key, checked without its secret key.
func (s *Store) VerifyReport(ctx context.Context, fpr string, verify VerifyFunc) (Report, error) {
	var rep Report
	head, err := s.verifyHead(ctx, fpr, verify, replayChecks{allSigs: true, evidence: s.opts.Evidence, evidenceID: s.opts.EvidenceID, asked: s.opts.Asked,
		keyVerifier: s.opts.KeyVerifier, split: s.opts.SplitSignatures, fingerprints: s.opts.Fingerprints,
		unchecked: func(e *VerifyError) { rep.Unchecked = append(rep.Unchecked, e) }})
	rep.Head = head
	return rep, err
}

func (s *Store) verifyHead(ctx context.Context, fpr string, verify VerifyFunc, rc replayChecks) (Head, error) {
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

	applied, recorded, err := readApplied(ctx, tx)
	if err != nil {
		return Head{}, err
	}
	if !recorded {
		return Head{}, &Error{Err: ErrNotMigrated,
			Msg:  fmt.Sprintf("%s records no schema versions: an older ccdir made it and it has not been migrated yet", s.path),
			Hint: "run a ccdir command that writes (e.g. ccdir outbox list) once with this ccdir, then verify again; or verify with the release that made it"}
	}
	if err := s.steps.checkNewer(s.path, applied); err != nil {
		return Head{}, err
	}
	if applied[Owner] == 0 {
		return Head{}, &VerifyError{Reason: "schema_migrations does not record the signed tables"}
	}
	// expect is the schema the recorded steps make; fresh is the latest
	// signed schema, which the ledger is replayed into.
	expect, err := memoryDB("ccdir-expect")
	if err != nil {
		return Head{}, err
	}
	defer expect.Close()
	if err := applySteps(ctx, expect, s.steps.upTo(applied), s.opts.Now()); err != nil {
		return Head{}, err
	}
	fresh, err := memoryDB("ccdir-verify")
	if err != nil {
		return Head{}, err
	}
	defer fresh.Close()
	ftx, err := signedTx(ctx, fresh)
	if err != nil {
		return Head{}, err
	}
	defer ftx.Rollback()

	if err := compareSchema(ctx, tx, expect); err != nil {
		return Head{}, err
	}
	head, err := replay(ctx, tx, ftx, fpr, verify, rc)
	if err != nil {
		return Head{}, err
	}
	if err := compareState(ctx, tx, ftx, head); err != nil {
		return Head{}, err
	}
	return head, nil
}

// compareState compares the state tables on disk with those of a replay
// that reached head.
func compareState(ctx context.Context, disk, fresh queryer, head Head) error {
	// Entries cut from the end of the ledger leave state rows that name
	// them; say so rather than only that a row differs.
	var last int64
	if err := disk.QueryRowContext(ctx, `SELECT max(s) FROM (SELECT max(updated_seq) AS s FROM members UNION ALL SELECT max(updated_seq) FROM contacts)`).Scan(&sqlNullInt{&last}); err != nil {
		return err
	}
	if last > head.Serial {
		return &VerifyError{Seq: head.Serial + 1, Reason: fmt.Sprintf("missing: the state was changed by entry %d, but the ledger ends at entry %d", last, head.Serial)}
	}
	for _, t := range stateTables {
		if err := compareTable(ctx, disk, fresh, t.name, t.order); err != nil {
			return err
		}
	}
	return nil
}

// ErrTampered reports state tables that do not say what the signed
// ledger says: someone wrote to the database without the directory key.
var ErrTampered = errors.New("the directory's tables do not match its signed ledger")

// TamperError is ErrTampered with the first finding. It is no *Error:
// nobody who sent a command caused it, and nothing may act on the
// tables until the operator has looked (ccdir verify).
type TamperError struct{ Finding error }

func (e *TamperError) Error() string {
	return fmt.Sprintf("DIRECTORY TAMPERING: %v: %v; nothing was done (run ccdir verify)", ErrTampered, e.Finding)
}

func (e *TamperError) Unwrap() error { return ErrTampered }

// RekeyedError is a check made with an earlier key of the directory's
// chain (Old): the chain of keys holds, every rekey entry signed by the
// key before it and the key it names, but it ends at a later key (New,
// since entry Seq). That is no tampering: the caller loaded its key
// before a ccdir rekey (a running ccdir serve) and must load the new one,
// then check again with it (the entries after the rekey are checked with
// the key they are signed by, New, not here). It is
// not wrapped as a *TamperError; it unwraps to the *VerifyError a
// verify reports (IsVerifyError holds).
type RekeyedError struct {
	Old, New string
	Seq      int64
	Finding  *VerifyError
}

func (e *RekeyedError) Error() string {
	return e.Finding.Error()
}

func (e *RekeyedError) Unwrap() error { return e.Finding }

// replayed is a replay of the ledger up to head, checked against the
// directory key fpr, that the Store keeps (see vouch).
type replayed struct {
	fpr  string
	head Head
	db   *sql.DB
	tx   *sql.Tx
}

func (r *replayed) close() {
	r.tx.Rollback()
	r.db.Close()
}

// vouch replays the ledger read through q into a fresh database,
// checking the hash chain, that the genesis names the key fpr, that the
// head entry is signed by it (the chain makes that signature cover every
// entry), that every member-made entry was signed by a key registered at
// the time; and compares the state tables read through q with the
// replay. A disagreement is a *TamperError.
//
// The replay is kept: the head (serial, hash), its signature checked,
// fixes every entry before it, so a later check at the same head only
// compares the tables with it, and a commit of this Store moves it on
// (advance). The tables themselves are compared every time.
func (s *Store) vouch(ctx context.Context, q queryer, fpr string, verify VerifyFunc) error {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	// The schema first: a trigger, a view or another table that ccdir
	// never creates could change what the tables say while this Store
	// writes to them (a trigger on the ledger rewriting a contact after
	// each entry), and replay compares tables, not what acts on them.
	if err := s.checkSchema(ctx, q); err != nil {
		if IsVerifyError(err) {
			return &TamperError{Finding: err}
		}
		return err
	}
	head, _, herr := readHead(ctx, q)
	var err error
	if r := s.replay; herr == nil && r != nil && r.fpr == fpr && r.head == head {
		err = compareState(ctx, q, r.tx, head)
	} else {
		err = s.replayInto(ctx, q, fpr, verify, nil)
	}
	var rk *RekeyedError
	if errors.As(err, &rk) {
		return rk
	}
	if IsVerifyError(err) {
		return &TamperError{Finding: err}
	}
	return err
}

// replayInto is vouch without a replay kept at the head: it replays, keeps
// a replay that succeeds, and compares; after, if set, is called with
// each entry once it is applied to the replay. s.replayMu is held.
func (s *Store) replayInto(ctx context.Context, q queryer, fpr string, verify VerifyFunc, after func(fresh queryer, e *Entry) error) error {
	fresh, err := memoryDB("ccdir-check")
	if err != nil {
		return err
	}
	ftx, err := signedTx(ctx, fresh)
	if err != nil {
		fresh.Close()
		return err
	}
	r := &replayed{fpr: fpr, db: fresh, tx: ftx}
	if r.head, err = replay(ctx, q, ftx, fpr, verify, replayChecks{after: after, keyVerifier: s.opts.KeyVerifier, split: s.opts.SplitSignatures, fingerprints: s.opts.Fingerprints}); err != nil {
		r.close()
		return err
	}
	if s.replay != nil {
		s.replay.close()
	}
	s.replay = r
	return compareState(ctx, q, ftx, r.head)
}

// advance moves the kept replay from head from on by entries, which this
// Store has just committed on top of tables vouch found equal to it. Any
// failure drops the replay: the next check replays the whole ledger.
func (s *Store) advance(ctx context.Context, from Head, entries []Entry) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	r := s.replay
	if r == nil || r.head != from || len(entries) == 0 {
		return
	}
	actors := &actorCheck{}
	for i := range entries {
		e := &entries[i]
		err := actors.entry(ctx, r.tx, e)
		if err == nil {
			err = apply(ctx, r.tx, e)
		}
		if err != nil {
			r.close()
			s.replay = nil
			return
		}
		r.head = Head{Serial: e.Seq, Hash: e.Hash}
	}
}

// Checked returns the directory as its signed ledger says it is: the
// state tables, after checking in one read transaction that they are
// exactly what replaying the ledger gives (see check; fpr and verify are
// the directory key's, as for Verify). Tables that disagree give a
// *TamperError (ErrTampered). Whoever acts on the directory for someone
// who is not the operator (the incoming-mail pipeline, the mail commands)
// reads it through Checked or Tx.Check, so that rows written into the
// file without the directory key are never taken as registered, nor
// laundered into a signed entry. The result is kept while the head does
// not move.
func (s *Store) Checked(ctx context.Context, fpr string, verify VerifyFunc) (*Snapshot, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var snap Snapshot
	if snap.Head, snap.Time, err = readHead(ctx, tx); err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	checked := s.checked
	s.cacheMu.Unlock()
	if checked != nil && checked.Head == snap.Head {
		return checked.clone(), nil
	}
	// Inside an Update whose Tx.Check passed at this head, the write lock
	// is held: nobody has committed since the tables were compared.
	s.lockedMu.Lock()
	locked := s.locked != nil && *s.locked == snap.Head
	s.lockedMu.Unlock()
	if !locked {
		if err := s.vouch(ctx, tx, fpr, verify); err != nil {
			return nil, err
		}
	}
	if snap.Info, err = readInfo(ctx, tx); err != nil {
		return nil, err
	}
	if snap.Members, err = readMembers(ctx, tx, ""); err != nil {
		return nil, err
	}
	if snap.Contacts, err = readContacts(ctx, tx, ""); err != nil {
		return nil, err
	}
	s.cacheMu.Lock()
	s.checked = snap.clone()
	s.cacheMu.Unlock()
	return &snap, nil
}

// Check checks, inside the write transaction, that the state tables are
// what the signed ledger says (as Checked does, but never from its cache
// of snapshots: the tables themselves are compared, under the write
// lock, so nobody can change them before the entries of this
// transaction are signed). A disagreement is a *TamperError. It
// runs once per transaction, before its first change: the first entry
// appended runs it with the Signer's key if nobody did (the tables a
// transaction starts from are the ones it extends), a later call after a
// check that passed returns nil.
//
// Checking the schema once, here, is enough for every later entry of the
// transaction: the check finds no trigger, view or table ccdir does not
// make, and none can appear before the commit. Creating one is a write,
// and this transaction holds the database's write lock (BEGIN IMMEDIATE)
// from before the check until its commit; its own statements are the
// Tx methods', which never create a schema object. So each entry's
// payload, built from rows this transaction read after its own changes,
// holds only what the checked tables and those changes say (a trigger
// planted beforehand, rewriting a contact after each ledger insert, is
// refused here, before the first entry).
func (t *Tx) Check(fpr string, verify VerifyFunc) error {
	if t.checked {
		return nil
	}
	if len(t.entries) > 0 {
		// The tables now hold this transaction's changes: too late.
		return errors.New("directory: Tx.Check after a change")
	}
	if err := t.s.vouch(t.ctx, t.tx, fpr, verify); err != nil {
		return err
	}
	t.checked = true
	t.s.lockedMu.Lock()
	h := t.head
	t.s.locked = &h
	t.s.lockedMu.Unlock()
	return nil
}

// memoryDB opens a private in-memory database of one connection that
// lives until it is closed.
func memoryDB(prefix string) (*sql.DB, error) {
	name := fmt.Sprintf("file:%s-%d?mode=memory&cache=private&_foreign_keys=on", prefix, verifyDBs.Add(1))
	db, err := sql.Open("sqlite3", name)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// signedTx begins a transaction on db, an empty database, and creates
// the signed tables in it at the latest version.
func signedTx(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	for _, st := range signedMigrations {
		if st.UpFunc != nil {
			err = st.UpFunc(ctx, tx)
		} else {
			_, err = tx.ExecContext(ctx, st.Up)
		}
		if err != nil {
			tx.Rollback()
			return nil, fmt.Errorf("signed schema %d: %w", st.Version, err)
		}
	}
	return tx, nil
}

// signedTable reports whether a table is one of the signed tables, which
// must be exactly as ccdir creates them, to the byte.
func signedTable(name string) bool {
	if name == "ledger" {
		return true
	}
	for _, t := range stateTables {
		if t.name == name {
			return true
		}
	}
	return false
}

// compareSchema makes sure the database holds exactly the schema that
// want, built by the steps the database records, holds: the signed tables
// and the ledger defined to the byte as ccdir creates them, the other
// owners' tables with the same columns and indexes (an outbox migrated in
// place by a release before schema versions has the columns of a fresh
// one, in another order), no other table, index, trigger or view.
func compareSchema(ctx context.Context, disk, want queryer) error {
	wantObjs, err := readSchema(ctx, want)
	if err != nil {
		return err
	}
	return diffSchema(ctx, disk, wantObjs)
}

// readSchema describes every schema object of db (but SQLite's own
// tables and externalTables) by type and name.
func readSchema(ctx context.Context, db queryer) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema
		WHERE NOT (type = 'table' AND name LIKE 'sqlite\_%' ESCAPE '\') ORDER BY type, name`)
	if err != nil {
		return nil, err
	}
	type object struct{ typ, name, tbl, sql string }
	var objs []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.typ, &o.name, &o.tbl, &o.sql); err != nil {
			rows.Close()
			return nil, err
		}
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, o := range objs {
		if o.typ == "table" && externalTables[o.name] {
			continue
		}
		def := o.tbl + "\x00" + o.sql
		if o.typ == "table" && !signedTable(o.name) {
			if def, err = columns(ctx, db, o.name); err != nil {
				return nil, err
			}
		}
		m[o.typ+" "+o.name] = def
	}
	return m, nil
}

// diffSchema compares the schema of disk with wantObjs (see compareSchema).
func diffSchema(ctx context.Context, disk queryer, wantObjs map[string]string) error {
	got, err := readSchema(ctx, disk)
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(got) {
		if typ, name, _ := strings.Cut(k, " "); (typ == "trigger" || typ == "view") && wantObjs[k] != got[k] {
			return &VerifyError{Reason: fmt.Sprintf("the database has a %s %q, which ccdir never creates", typ, name)}
		}
	}
	for _, k := range sortedKeys(wantObjs) {
		g, ok := got[k]
		switch {
		case !ok:
			return &VerifyError{Reason: fmt.Sprintf("the database lacks %s", k)}
		case g != wantObjs[k]:
			return &VerifyError{Reason: fmt.Sprintf("%s is not defined as ccdir defines it", k)}
		}
	}
	for _, k := range sortedKeys(got) {
		if _, ok := wantObjs[k]; !ok {
			return &VerifyError{Reason: fmt.Sprintf("the database has an unexpected %s", k)}
		}
	}
	return nil
}

// checkSchema is compareSchema for vouch: the schema read through q must
// be exactly the one the steps it records in schema_migrations make. The
// schema those steps make is built once per set of versions and kept.
// s.replayMu is held.
func (s *Store) checkSchema(ctx context.Context, q queryer) error {
	applied, recorded, err := readApplied(ctx, q)
	if err != nil {
		return err
	}
	if !recorded || applied[Owner] == 0 {
		return &VerifyError{Reason: "schema_migrations does not record the signed tables"}
	}
	if err := s.steps.checkNewer(s.path, applied); err != nil {
		return err
	}
	owners := make([]string, 0, len(applied))
	for o, v := range applied {
		owners = append(owners, fmt.Sprintf("%s=%d", o, v))
	}
	sort.Strings(owners)
	key := strings.Join(owners, " ")
	want, ok := s.schemas[key]
	if !ok {
		db, err := memoryDB("ccdir-schema")
		if err != nil {
			return err
		}
		defer db.Close()
		if err := applySteps(ctx, db, s.steps.upTo(applied), s.opts.Now()); err != nil {
			return err
		}
		if want, err = readSchema(ctx, db); err != nil {
			return err
		}
		if s.schemas == nil {
			s.schemas = map[string]map[string]string{}
		}
		s.schemas[key] = want
	}
	return diffSchema(ctx, q, want)
}

// columns describes the columns of a table, in name order: name, type,
// NOT NULL, default and primary key position.
func columns(ctx context.Context, db queryer, table string) (string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, type, "notnull", coalesce(dflt_value, 'NULL'), pk, hidden FROM pragma_table_xinfo(?) ORDER BY name`, table)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var name, typ, dflt string
		var notNull, pk, hidden int
		if err := rows.Scan(&name, &typ, &notNull, &dflt, &pk, &hidden); err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s %s notnull=%d default=%s pk=%d hidden=%d\n", name, typ, notNull, dflt, pk, hidden)
	}
	return b.String(), rows.Err()
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// replayBatch is how many entries replay reads before it checks their
// signatures in parallel; it bounds the memory replay holds.
const replayBatch = 256

// EvidenceFunc checks that the evidence kept with a member-made ledger
// entry is a statement signed by armoredKey, the key registered for the
// member when the entry was made at time at.
type EvidenceFunc func(evidence []byte, armoredKey string, at time.Time) error

// EvidenceIDFunc gives the id of the signed statement kept as evidence
// by an entry of actor member:fpr (armoredKey, registered then; at, when
// it was taken), the same for every copy of one signature ("" if it
// cannot tell): two mails with one id are one mail used twice.
type EvidenceIDFunc func(evidence []byte, fpr, armoredKey string, at time.Time) (string, error)

// replayChecks says what replay checks beyond the hash chain, the
// genesis and the replay itself.
type replayChecks struct {
	// allSigs: every entry's signature (Verify); otherwise only the
	// head's, which covers every entry through the hash chain.
	allSigs bool
	// evidence, if set, re-verifies the evidence of member-made entries.
	evidence EvidenceFunc
	// after, if set, is called with each entry once it is applied to
	// fresh.
	after func(fresh queryer, e *Entry) error
	// evidenceID, if set, refuses a signed mail kept by two entry groups.
	evidenceID EvidenceIDFunc
	// keyVerifier and split follow the chain of directory keys
	// (Options.KeyVerifier, Options.SplitSignatures).
	keyVerifier KeyVerifierFunc
	split       SplitFunc
	// fingerprints (Options.Fingerprints), if set, also checks that a
	// directory.key copy keeps the subkeys (keyNames).
	fingerprints func(armored string) ([]string, error)
	// asked, if set, finds the member's mail behind entries that
	// applied a change which waited, checked as a member's entry is.
	asked AskedFunc
	// unchecked, if set, is told of evidence that could not be checked
	// (ErrUnchecked); statement of each member's statement checked.
	unchecked func(*VerifyError)
	statement func(*Statement)
}

// memberActor is the actor prefix of changes asked for by signed mail.
const memberActor = "member:"

// keyCheck is the check of one directory key's signatures in a replay:
// verify, or err when the key cannot be read.
type keyCheck struct {
	fpr    string
	verify VerifyFunc
	err    error
}

func (k *keyCheck) check(text, sig []byte) error {
	if k.err != nil {
		return k.err
	}
	return k.verify(text, sig)
}

// replayKeys gives the check of each key of the chain, made once per key:
// the caller's own (fpr, verify) for the key it trusts, the others parsed
// from the signed state by Options.KeyVerifier at the time of the entry
// that named them.
type replayKeys struct {
	fpr    string
	verify VerifyFunc
	parse  KeyVerifierFunc
	byFpr  map[string]*keyCheck
}

func (r *replayKeys) of(k *ChainKey) *keyCheck {
	if c, ok := r.byFpr[k.Fingerprint]; ok {
		return c
	}
	c := &keyCheck{fpr: k.Fingerprint}
	switch {
	case strings.EqualFold(k.Fingerprint, r.fpr):
		c.verify = r.verify
	case r.parse == nil:
		c.err = fmt.Errorf("made by the directory key %s (entry %d), which this check cannot read: it trusts only %s", k.Fingerprint, k.Since, r.fpr)
	default:
		at, err := time.Parse(time.RFC3339, k.SinceTime)
		if err != nil {
			c.err = fmt.Errorf("the directory key %s: bad time %q of entry %d", k.Fingerprint, k.SinceTime, k.Since)
			break
		}
		got, v, err := r.parse(k.PublicKey, at)
		switch {
		case err != nil:
			c.err = fmt.Errorf("the directory key %s named by entry %d cannot be read: %v", k.Fingerprint, k.Since, err)
		case !strings.EqualFold(got, k.Fingerprint):
			c.err = fmt.Errorf("entry %d names directory key %s, but the public key it gives is %s", k.Since, k.Fingerprint, got)
		default:
			c.verify = v
		}
	}
	if r.byFpr == nil {
		r.byFpr = map[string]*keyCheck{}
	}
	r.byFpr[k.Fingerprint] = c
	return c
}

// rekeySigs checks the two signatures of a rekey entry, each on its own:
// the first by the old key, the second by the new one.
func rekeySigs(text, sig []byte, old, next *keyCheck, split SplitFunc) error {
	if split == nil {
		return fmt.Errorf("the signatures of a rekey entry (keys %s and %s) cannot be split by this check", old.fpr, next.fpr)
	}
	parts, err := split(sig)
	if err != nil {
		return fmt.Errorf("its signatures cannot be read: %v", err)
	}
	if len(parts) != 2 {
		return fmt.Errorf("it has %d signatures, but a rekey entry is signed by the old key %s and by the new key %s, two signatures", len(parts), old.fpr, next.fpr)
	}
	if err := old.check(text, parts[0]); err != nil {
		return fmt.Errorf("no good signature by the old key %s: %s", old.fpr, strings.TrimPrefix(err.Error(), "bad signature: "))
	}
	if err := next.check(text, parts[1]); err != nil {
		return fmt.Errorf("no good signature by the new key %s: %s", next.fpr, strings.TrimPrefix(err.Error(), "bad signature: "))
	}
	return nil
}

// replay streams the ledger, checks every entry and applies it to fresh.
// Each entry is signed by the directory key the signed state names just
// before it (the chain of keys, see chainWalk: the genesis names the
// first, each rekey entry the next and is signed by both), and the chain
// must end at fpr, the key the caller trusts (checked with verify). Signatures are checked in parallel (verify, and
// the checks rc.keys makes, must be safe for concurrent use); everything
// else runs in ledger order, so the first problem found is the first in
// the ledger.
func replay(ctx context.Context, ledger queryer, fresh execer, fpr string, verify VerifyFunc, rc replayChecks) (Head, error) {
	cols, err := ledgerColumns(ctx, ledger)
	if err != nil {
		return Head{}, err
	}
	// What the erasures cover is needed at the entries they erased,
	// which come before them.
	covers, err := eraseCover(ctx, ledger)
	if err != nil {
		return Head{}, err
	}
	rows, err := ledger.QueryContext(ctx, `SELECT `+cols+` FROM ledger ORDER BY seq`)
	if err != nil {
		return Head{}, err
	}
	defer rows.Close()
	var head Head
	prev := zeroHash
	batch := make([]Entry, 0, replayBatch)
	sigErrs := make([]error, replayBatch)
	// signers[i] are the keys that sign batch[i] (two for a rekey);
	// chainErrs[i] why the chain cannot be followed through it.
	signers := make([][]*keyCheck, replayBatch)
	chainErrs := make([]error, replayBatch)
	workers := max(1, runtime.GOMAXPROCS(0))
	actors := newActorCheck(rc)
	rk := &replayKeys{fpr: strings.ToUpper(fpr), verify: verify, parse: rc.keyVerifier}
	chain := chainWalk{check: &keyNames{parse: rc.keyVerifier, fprs: rc.fingerprints}}
	chainBroken := false
	var lastRekey int64
	var headSig []byte
	var versions Versions
	flush := func() error {
		// Follow the chain of keys through the batch, in order, to know
		// who signs each entry; what is wrong with it is told in order
		// below.
		for i := range batch {
			e := &batch[i]
			signers[i], chainErrs[i] = nil, nil
			if chainBroken {
				continue
			}
			old := chain.current()
			if err := chain.step(e); err != nil {
				chainErrs[i], chainBroken = err, true
				continue
			}
			cur := chain.current()
			switch {
			case cur == nil:
				chainErrs[i], chainBroken = errors.New("no directory key signs it: the ledger does not start with a genesis"), true
			case e.Op == opRekey:
				signers[i] = []*keyCheck{rk.of(old), rk.of(cur)}
			default:
				signers[i] = []*keyCheck{rk.of(cur)}
			}
		}
		// Check the batch's signatures in parallel: every one, or only
		// the rekey entries' (the links of the chain; the head's, which
		// covers every entry through the hash chain, is checked last).
		var wg sync.WaitGroup
		next := make(chan int)
		var todo []int
		for i := range batch {
			sigErrs[i] = nil
			if rc.allSigs || batch[i].Op == opRekey {
				todo = append(todo, i)
			}
		}
		for range min(workers, len(todo)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					e := &batch[i]
					text := signedText(e.Seq, e.Hash)
					switch s := signers[i]; len(s) {
					case 0:
						// chainErrs[i] says why.
					case 1:
						sigErrs[i] = s[0].check(text, e.Sig)
					default:
						sigErrs[i] = rekeySigs(text, e.Sig, s[0], s[1], rc.split)
					}
				}
			}()
		}
		for _, i := range todo {
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
			if err := versions.Step(e.Seq, e.Version); err != nil {
				return bad("%v", err)
			}
			// An entry a contact.erase covers is as the erasure left it, and
			// its effect is not replayed; a version 1 tombstone keeps a
			// hash that cannot be recomputed (the next entry and the
			// signatures vouch for it).
			dropped, err := checkCover(e, covers[e.Seq])
			if err != nil {
				return bad("%v", err)
			}
			if got := computeHash(e); !e.Tombstone() && got != e.Hash {
				return bad("content does not match its hash (stored %.16s…, computed %.16s…): time, actor, operation, payload or evidence was changed", e.Hash, got)
			}
			if h := Hashed(e); h.CheckSubject() != nil {
				return bad("%v", h.CheckSubject())
			}
			if e.Seq == 1 {
				if e.Op != opGenesis {
					return bad("the first entry is %q, not genesis", e.Op)
				}
				var g genesisPayload
				if err := decodeStrict(e.Payload, &g); err != nil {
					return bad("genesis: %v", err)
				}
				if !strings.EqualFold(g.KeyFingerprint, fpr) && rc.keyVerifier == nil {
					// No chain can be followed: the genesis key must be fpr.
					return bad("genesis names directory key %s, but this home's key is %s", g.KeyFingerprint, fpr)
				}
			}
			if err := chainErrs[i]; err != nil {
				return bad("%v", err)
			}
			if err := sigErrs[i]; err != nil {
				return bad("bad signature: %s", strings.TrimPrefix(err.Error(), "bad signature: "))
			}
			if _, err := time.Parse(time.RFC3339, e.Time); err != nil {
				return bad("bad time %q", e.Time)
			}
			if err := actors.entry(ctx, fresh, e); err != nil {
				return bad("%v", err)
			}
			if dropped {
				// nothing: an erased entry was about the erased person only
			} else if err := apply(ctx, fresh, e); err != nil {
				return bad("cannot be replayed (%s): %v", e.Op, err)
			}
			if rc.after != nil {
				if err := rc.after(fresh, e); err != nil {
					return err
				}
			}
			if e.Op == opRekey {
				lastRekey = e.Seq
			}
			prev = e.Hash
			head = Head{Serial: e.Seq, Hash: e.Hash}
			headSig = e.Sig
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
	if cur := chain.current(); !strings.EqualFold(cur.Fingerprint, fpr) {
		if lastRekey == 0 {
			return head, &VerifyError{Seq: 1, Reason: fmt.Sprintf("genesis names directory key %s, but this home's key is %s", cur.Fingerprint, fpr)}
		}
		ve := &VerifyError{Seq: lastRekey, Reason: fmt.Sprintf("the directory's key is %s since this rekey, but this home's key is %s (an interrupted ccdir rekey is finished by running it again)", cur.Fingerprint, fpr)}
		for _, k := range chain.keys[:len(chain.keys)-1] {
			if strings.EqualFold(k.Fingerprint, fpr) {
				return head, &RekeyedError{Old: k.Fingerprint, New: cur.Fingerprint, Seq: lastRekey, Finding: ve}
			}
		}
		return head, ve
	}
	if !rc.allSigs && lastRekey != head.Serial { // a rekey's were checked above
		if err := verify(signedText(head.Serial, head.Hash), headSig); err != nil {
			return head, &VerifyError{Seq: head.Serial, Reason: fmt.Sprintf("bad signature: %s", strings.TrimPrefix(err.Error(), "bad signature: "))}
		}
	}
	return head, nil
}

// compareTable streams one state table from the database and from the
// replay in key order and names the first row that differs.
func compareTable(ctx context.Context, disk, fresh queryer, table, order string) error {
	// The replay has the latest signed schema; the database may be at an
	// older version (its schema was checked against that version): compare
	// the columns the database has.
	dr, err := disk.QueryContext(ctx, `SELECT * FROM `+table+` ORDER BY `+order)
	if err != nil {
		return &VerifyError{Table: table, Row: "-", Reason: err.Error()}
	}
	defer dr.Close()
	cols, err := dr.Columns()
	if err != nil {
		return err
	}
	fr, err := fresh.QueryContext(ctx, `SELECT "`+strings.Join(cols, `", "`)+`" FROM `+table+` ORDER BY `+order)
	if err != nil {
		return &VerifyError{Table: table, Row: "-", Reason: fmt.Sprintf("columns %v: %v", cols, err)}
	}
	defer fr.Close()
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

// At names a ledger entry as a caller recorded it: its serial, and its
// hash ("" if the caller recorded none).
type At struct {
	Serial int64
	Hash   string
}

// pastChecked are the snapshots at earlier entries that the replay which
// checked the head made (see CheckedAt); valid while the head does not move.
type pastChecked struct {
	head Head
	at   map[int64]*Snapshot
}

// CheckedAt is Checked, and, from the same replay, the directory as its
// signed ledger says it was just after each entry named in at (for a
// digest: the entry it was made at, and the one the last digest was made
// at). The hash chain is checked up to the head, whose signature (by the
// key fpr, checked with verify) covers every entry; the genesis, the
// actors of member-made entries and the state tables (which must be what
// the replay gives) are checked as Checked does. An At's hash, if given,
// must be the hash of the ledger's entry at that serial, and an At beyond
// the head names an entry the ledger lacks: either is a *TamperError (the
// caller recorded an entry the signed ledger does not have), as is
// anything Checked refuses. The snapshots are kept while the head does
// not move, so asking again for the same entries costs no replay, and
// the replay is the one the Store keeps (see vouch): asking only for the
// head is Checked.
func (s *Store) CheckedAt(ctx context.Context, fpr string, verify VerifyFunc, at ...At) (*Snapshot, []*Snapshot, error) {
	for _, a := range at {
		if a.Serial < 1 {
			return nil, nil, fmt.Errorf("directory: CheckedAt(%d): serials start at 1", a.Serial)
		}
	}
	// missing reports whether an entry before head is not kept yet.
	missing := func(head Head, past *pastChecked) bool {
		for _, a := range at {
			if a.Serial < head.Serial && (past == nil || past.head != head || past.at[a.Serial] == nil) {
				return true
			}
		}
		return false
	}
	s.cacheMu.Lock()
	past := s.checkedAt
	s.cacheMu.Unlock()
	head, _, err := readHead(ctx, s.r)
	if err != nil {
		return nil, nil, err
	}
	var cur *Snapshot
	if !missing(head, past) {
		if cur, err = s.Checked(ctx, fpr, verify); err != nil {
			return nil, nil, err
		}
	}
	if cur == nil || missing(cur.Head, past) {
		if cur, past, err = s.replayAt(ctx, fpr, verify, at); err != nil {
			return nil, nil, err
		}
	}
	head = cur.Head
	out := make([]*Snapshot, len(at))
	for i, a := range at {
		var snap *Snapshot
		switch {
		case a.Serial > head.Serial:
			return nil, nil, &TamperError{Finding: &VerifyError{Seq: a.Serial,
				Reason: fmt.Sprintf("recorded (hash %.16s…), but the ledger ends at entry %d", a.Hash, head.Serial)}}
		case a.Serial == head.Serial:
			snap = cur
		default:
			snap = past.at[a.Serial]
		}
		if a.Hash != "" && a.Hash != snap.Head.Hash {
			return nil, nil, &TamperError{Finding: &VerifyError{Seq: a.Serial,
				Reason: fmt.Sprintf("its hash is %.16s…, not the %.16s… recorded for it", snap.Head.Hash, a.Hash)}}
		}
		out[i] = snap.clone()
	}
	return cur, out, nil
}

// replayAt is CheckedAt's replay of the whole ledger, in one read
// transaction, keeping the state after each entry of at before the head;
// it becomes the Store's kept replay, and its snapshots the cached ones.
func (s *Store) replayAt(ctx context.Context, fpr string, verify VerifyFunc, at []At) (*Snapshot, *pastChecked, error) {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback()
	head, headTime, err := readHead(ctx, tx)
	if err != nil {
		return nil, nil, err
	}
	want := map[int64]bool{}
	for _, a := range at {
		want[a.Serial] = a.Serial < head.Serial
	}
	past := &pastChecked{head: head, at: map[int64]*Snapshot{}}
	after := func(fresh queryer, e *Entry) error {
		if !want[e.Seq] {
			return nil
		}
		snap, err := readSnapshot(ctx, fresh, Head{Serial: e.Seq, Hash: e.Hash}, e.Time)
		past.at[e.Seq] = snap
		return err
	}
	s.replayMu.Lock()
	err = s.checkSchema(ctx, tx) // as vouch does, first
	if err == nil {
		err = s.replayInto(ctx, tx, fpr, verify, after)
	}
	s.replayMu.Unlock()
	if IsVerifyError(err) {
		return nil, nil, &TamperError{Finding: err}
	}
	if err != nil {
		return nil, nil, err
	}
	cur, err := readSnapshot(ctx, tx, head, headTime)
	if err != nil {
		return nil, nil, err
	}
	s.cacheMu.Lock()
	s.checked, s.checkedAt = cur.clone(), past
	s.cacheMu.Unlock()
	return cur, past, nil
}

// readSnapshot reads the state tables through q as the snapshot at head.
func readSnapshot(ctx context.Context, q queryer, head Head, t string) (*Snapshot, error) {
	snap := &Snapshot{Head: head, Time: t}
	var err error
	if snap.Info, err = readInfo(ctx, q); err != nil {
		return nil, err
	}
	if snap.Members, err = readMembers(ctx, q, ""); err != nil {
		return nil, err
	}
	if snap.Contacts, err = readContacts(ctx, q, ""); err != nil {
		return nil, err
	}
	return snap, nil
}

// DB returns the pool for the operational tables other packages keep in
// the same file, beside but outside the signed state (digests, the
// outbox, seen signatures): one connection of its own, BEGIN IMMEDIATE.
// It is not the pool Update writes through, so using it inside an Update
// cannot deadlock: a read sees the last commit, a write waits for the
// Update's lock like another process would, and fails with "database is
// locked" after the busy timeout rather than hang. A write that must
// commit with the Update goes through Tx.SQL. Verify checks the schema of
// these tables against their owners' Migrations; it neither replays nor
// compares their rows.
func (s *Store) DB() *sql.DB { return s.ops }
