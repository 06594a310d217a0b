package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// DefaultMaxSecurityContacts is the number of security contacts a ccTLD
// may have when Options leaves it zero (as in TLD-OPS).
const DefaultMaxSecurityContacts = 3

// Options configures a Store. The zero value opens read-write with the
// defaults documented on each field.
type Options struct {
	// Signer signs new ledger entries; without it the store is read-only.
	Signer Signer
	// Now is the clock of new entries; nil means time.Now.
	Now func() time.Time
	// MaxSecurityContacts per ccTLD; 0 means DefaultMaxSecurityContacts.
	MaxSecurityContacts int
	// ReadOnly opens the database without write access. Nothing is
	// migrated: a schema older than this package's still opens (Verify
	// checks it against its own version), a newer one is refused.
	ReadOnly bool
	// Migrations are the schema steps of the other packages that keep
	// tables in the database (each exports its list). Open applies those
	// not applied yet, after the signed tables' own; Verify accepts
	// exactly the tables they make. Pass every owner's steps: a database
	// with steps of an owner not given is refused as newer.
	Migrations []Migration
	// Evidence re-verifies, in Verify, the signed mail kept with each
	// entry a member made; nil checks only that the actor's key was
	// registered.
	Evidence EvidenceFunc
	// EvidenceID gives, in Verify, the id of the signed mail kept with a
	// member's entries, so that one mail kept by two separate groups of
	// entries (a replay) is a finding; nil does not look.
	EvidenceID EvidenceIDFunc
	// Asked reads, in Verify, the evidence of an entry that applied a
	// change which waited (liveness.ParseApplyEvidence), so that a change
	// a member asked for by signed mail is checked as an entry the mail
	// made is; nil looks only at entries of actor member:FPR.
	Asked AskedFunc
	// Fingerprints lists the fingerprints of an armored public key: its
	// primary key's, then its subkeys' (keys.Fingerprints). Tx uses it to
	// refuse a contact key that shares any of them with the directory's
	// own key; nil compares the primary fingerprints only.
	Fingerprints func(armored string) ([]string, error)
	// Operator is the operator's own address and key, which are never a
	// contact's: Tx refuses them wherever a contact's email or key is
	// set, as it refuses the directory's own. The zero value reserves
	// nothing.
	Operator Reserved
	// BounceAddress is the configured bounce address (bounces.address)
	// when there is one: the envelope sender of everything the directory
	// sends is a +TAG of it. Tx refuses it, and its +TAG forms, as a
	// contact's email, as it refuses the directory's own addresses
	// (Info.OwnAddress, which hold the default LOCAL-bounces@DOMAIN).
	// "" reserves nothing more.
	BounceAddress string
	// Genesis is the actor Create names in the genesis entry (the
	// operator who made the directory, OperatorActor); the zero value
	// is Operator.
	Genesis Actor
	// KeyVerifier and SplitSignatures let a replay follow the chain of
	// the directory's keys (see KeyChain): the entries signed by a key
	// other than the one the caller trusts (fpr of Verify, Checked) are
	// checked with the key the signed state names just before them,
	// parsed by KeyVerifier, and a rekey entry's two signatures are
	// split by SplitSignatures and checked each on its own. With either
	// nil, a ledger whose entries are not all signed by the caller's key
	// does not verify.
	KeyVerifier     KeyVerifierFunc
	SplitSignatures SplitFunc
}

// Reserved is an address and a key that belong to someone who is not a
// contact (the operator).
type Reserved struct {
	Email        string   // normalized; "" for none
	Fingerprints []string // the key's primary key's and subkeys', upper-case hex
}

// Store is an open directory database: a single-connection writer pool
// for Update, a pool of readers, and a single-connection pool of its own
// for the operational tables (DB).
type Store struct {
	path  string
	w     *sql.DB // one connection, BEGIN IMMEDIATE; only Update and Open use it
	r     *sql.DB // readers
	ops   *sql.DB // one connection, BEGIN IMMEDIATE; what DB returns
	opts  Options
	steps *migrationSet

	cleanup func() error // removes the private copy openPrivateCopy made; nil otherwise

	cacheMu sync.Mutex
	cached  *Snapshot // the last Snapshot read, by head
	checked *Snapshot // the last Checked snapshot, by head
	// checkedAt are snapshots at earlier entries from the replay that
	// checked the head (CheckedAt).
	checkedAt *pastChecked

	// locked is the head an open Update's Tx.Check vouched for, while
	// it holds the write lock. lockedMu is only ever held for a moment
	// (never across a replay), so an Update never waits on it holding
	// the database's write lock.
	lockedMu sync.Mutex
	locked   *Head

	replayMu sync.Mutex
	replay   *replayed                    // the ledger replayed up to a head (see vouch)
	schemas  map[string]map[string]string // the schema the recorded steps make, by versions (see checkSchema)
}

func dsn(path string, ro bool, extra url.Values) string {
	v := url.Values{}
	v.Set("_busy_timeout", "5000")
	v.Set("_foreign_keys", "on")
	if ro {
		v.Set("mode", "ro")
	} else {
		v.Set("_journal_mode", "WAL")
		v.Set("_synchronous", "FULL")
		v.Set("_txlock", "immediate")
	}
	for k, vs := range extra {
		v[k] = vs
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: v.Encode()}
	return u.String()
}

// Create makes a new directory database at path with its genesis entry,
// naming the directory and its key. It refuses to touch an existing file.
func Create(ctx context.Context, path string, info Info, opts Options) (_ *Store, err error) {
	if opts.Signer == nil {
		return nil, errors.New("create: no signer")
	}
	if info.KeyFingerprint != opts.Signer.Fingerprint() {
		return nil, fmt.Errorf("create: genesis names key %s but the signer is %s", info.KeyFingerprint, opts.Signer.Fingerprint())
	}
	if kv := opts.KeyVerifier; kv != nil {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		got, _, err := kv(info.PublicKey, now())
		if err != nil {
			return nil, fmt.Errorf("create: the directory's public key: %w", err)
		}
		if !strings.EqualFold(got, info.KeyFingerprint) {
			return nil, fmt.Errorf("create: the directory's public key is %s, not %s", got, info.KeyFingerprint)
		}
	}
	path, err = filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, &Error{Err: ErrHomeExists, Msg: fmt.Sprintf("%s already exists", path)}
	}
	if err != nil {
		return nil, err
	}
	f.Close()
	defer func() {
		if err != nil {
			for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
				os.Remove(path + suffix)
			}
		}
	}()
	s, err := open(path, opts, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if _, err = s.w.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", applicationID)); err != nil {
		return nil, fmt.Errorf("create schema: %w", err)
	}
	if err = applySteps(ctx, s.w, s.steps.pending(nil), s.opts.Now()); err != nil {
		return nil, err
	}
	actor := opts.Genesis
	if actor.Name == "" {
		actor = Operator
	}
	_, err = s.Update(ctx, actor, func(tx *Tx) error {
		return tx.append(opGenesis, genesisPayload{Version: 1, Info: info})
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Open opens an existing directory database and, unless opts.ReadOnly,
// applies the schema steps it has not had yet (the signed tables' first,
// then opts.Migrations), each in its own transaction, before it returns.
// A database with a step newer than these is refused (ErrNewerSchema).
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// Resolve a symlinked database once: its WAL file, the one checked
	// and copied below, is the one SQLite reads, beside the target.
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Err: ErrNotFound, Msg: fmt.Sprintf("no directory database at %s", path),
			Hint: "create a directory with: ccdir init --name NAME --address ADDR"}
	}
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &Error{Err: ErrNotDirectory, Msg: fmt.Sprintf("%s is not a regular file", path)}
	}
	// The WAL and index files beside it are regular files or absent:
	// opening anything else (a named pipe) could block forever.
	for _, suffix := range []string{"-wal", "-shm"} {
		if st, err := os.Lstat(path + suffix); err == nil && !st.Mode().IsRegular() {
			return nil, &Error{Err: ErrNotDirectory, Msg: fmt.Sprintf("%s%s is not a regular file", path, suffix),
				Hint: "remove it; SQLite makes it again"}
		}
	}
	s, err := open(path, opts, nil)
	if err != nil {
		return nil, err
	}
	// Check through the read-only pool, before the writer's first
	// connection sets its pragmas: a file that is not ours stays untouched.
	err = s.check(ctx)
	if err != nil && opts.ReadOnly && cantOpen(err) && emptyWAL(path) {
		// A read-only copy of a home (an auditor's) in a folder nobody
		// may write: SQLite cannot make the WAL index beside it. With no
		// WAL file (or an empty one) the database file holds everything,
		// and nobody changes it: read it as immutable.
		s.Close()
		if s, err = open(path, opts, url.Values{"immutable": {"1"}}); err != nil {
			return nil, err
		}
		err = s.check(ctx)
	} else if err != nil && opts.ReadOnly && cantOpen(err) {
		// The same, but the WAL file holds commits the database file
		// does not (the copy was taken while a ccdir had the home open):
		// read a private copy of both, in a temporary folder where
		// SQLite may build the index. The originals are only read.
		s.Close()
		if s, err = openPrivateCopy(path, opts); err != nil {
			return nil, &Error{Err: ErrNotDirectory, Msg: fmt.Sprintf("%s cannot be read: %v", path, err),
				Hint: "its folder is read-only and the WAL file beside it holds commits: let ccdir write to the folder, or set TMPDIR to a folder it may write"}
		}
		err = s.check(ctx)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migrate refuses a newer schema and, on a writable store, applies the
// pending steps.
func (s *Store) migrate(ctx context.Context) error {
	applied, _, err := readApplied(ctx, s.r)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	if err := s.steps.checkNewer(s.path, applied); err != nil {
		return err
	}
	pending := s.steps.pending(applied)
	if s.opts.ReadOnly || len(pending) == 0 {
		return nil
	}
	return applySteps(ctx, s.w, pending, s.opts.Now())
}

// openPrivateCopy opens, read-only, an in-memory copy of the database at
// path with the commits of its WAL file. Both files are copied into a new
// temporary folder, where SQLite may write: there the WAL is checkpointed
// into the database file, which is then loaded into a memory database
// (SQLite's memdb VFS, shared by the Store's pools) and the folder removed
// before it returns, so a copy of the directory stays on disk only while
// it is loaded (not while it is verified; a kill -9 then leaves nothing).
// Close frees the memory. The Store keeps path as its name.
func openPrivateCopy(path string, opts Options) (_ *Store, err error) {
	dir, err := os.MkdirTemp("", "ccdir-read-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	copyPath := filepath.Join(dir, filepath.Base(path))
	for _, suffix := range []string{"", "-wal"} {
		if err := copyFile(path+suffix, copyPath+suffix); err != nil {
			return nil, err
		}
	}
	mem := "/" + filepath.Base(dir) // unique in this process: the folder's name
	memVFS := url.Values{"vfs": {"memdb"}}
	hold, err := sql.Open("sqlite3", dsn(mem, false, memVFS))
	if err != nil {
		return nil, err
	}
	// One connection, kept open (never back in the pool, which could
	// close it) for as long as the Store: the memory database lives
	// while a connection to it does.
	holdConn, err := hold.Conn(context.Background())
	if err != nil {
		hold.Close()
		return nil, err
	}
	release := func() error { return errors.Join(holdConn.Close(), hold.Close()) }
	defer func() {
		if err != nil {
			release()
		}
	}()
	if err := loadInto(holdConn, copyPath); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	s, err := open(mem, opts, memVFS)
	if err != nil {
		return nil, err
	}
	s.path, s.cleanup = path, release
	return s, nil
}

// loadInto copies the database at path, its WAL checkpointed into it
// first (a memory database has no WAL), into the memory database of the
// connection dc, with SQLite's backup API: the same pages, rowids and
// schema text.
func loadInto(dc *sql.Conn, path string) error {
	ctx := context.Background()
	src, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		return err
	}
	defer src.Close()
	sc, err := src.Conn(ctx)
	if err != nil {
		return err
	}
	defer sc.Close()
	var mode string
	if err := sc.QueryRowContext(ctx, `PRAGMA journal_mode=DELETE`).Scan(&mode); err != nil {
		return err
	}
	if mode != "delete" {
		return fmt.Errorf("%s: journal mode %s after checkpoint", path, mode)
	}
	return dc.Raw(func(d any) error {
		return sc.Raw(func(s any) error {
			dst, ok1 := d.(*sqlite3.SQLiteConn)
			from, ok2 := s.(*sqlite3.SQLiteConn)
			if !ok1 || !ok2 {
				return errors.New("not a SQLite connection")
			}
			b, err := dst.Backup("main", from, "main")
			if err != nil {
				return err
			}
			if _, err := b.Step(-1); err != nil {
				b.Finish()
				return err
			}
			return b.Finish()
		})
	})
}

// copyFile copies the regular file from to a new file to, mode 0600. It
// never opens anything but a regular file (a named pipe would block).
func copyFile(from, to string) error {
	if st, err := os.Lstat(from); err != nil {
		return err
	} else if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", from)
	}
	in, err := os.OpenFile(from, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if st, err := in.Stat(); err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", from)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// cantOpen reports SQLite's failures to open a WAL database read-only
// without write access to its folder.
func cantOpen(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrCantOpen || se.Code == sqlite3.ErrReadonly)
}

// emptyWAL reports whether the database at path has no WAL file beside
// it, or an empty one: then the database file holds every commit.
func emptyWAL(path string) bool {
	st, err := os.Lstat(path + "-wal")
	return errors.Is(err, fs.ErrNotExist) || (err == nil && st.Mode().IsRegular() && st.Size() == 0)
}

// open makes the pools; extra are more DSN parameters for all of them.
func open(path string, opts Options, extra url.Values) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxSecurityContacts == 0 {
		opts.MaxSecurityContacts = DefaultMaxSecurityContacts
	}
	steps, err := newMigrationSet(opts.Migrations)
	if err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite3", dsn(path, opts.ReadOnly, extra))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite3", dsn(path, true, extra))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(4)
	ops, err := sql.Open("sqlite3", dsn(path, opts.ReadOnly, extra))
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	ops.SetMaxOpenConns(1)
	return &Store{path: path, w: w, r: r, ops: ops, opts: opts, steps: steps}, nil
}

// check makes sure the file is a ccdir database of a layout we know.
func (s *Store) check(ctx context.Context) error {
	var app, ver int64
	err := s.r.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&app)
	if err == nil {
		err = s.r.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&ver)
	}
	if err != nil {
		var se sqlite3.Error
		if errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt) {
			return &Error{Err: ErrNotDirectory, Msg: fmt.Sprintf("%s is damaged or not a SQLite database: %v", s.path, err),
				Hint: "restore it from a backup, then run: ccdir verify"}
		}
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	if app != applicationID {
		return &Error{Err: ErrNotDirectory, Msg: fmt.Sprintf("%s is a SQLite database but not a ccdir directory (application id %#x)", s.path, app),
			Hint: "point --home at a folder made by ccdir init"}
	}
	if ver > int64(SchemaVersion()) {
		return newerSchema(s.path, Owner, int(ver), SchemaVersion())
	}
	if ver < 1 {
		return &Error{Err: ErrNotDirectory, Msg: fmt.Sprintf("%s has layout version %d; this ccdir knows versions 1 to %d", s.path, ver, SchemaVersion()),
			Hint: "use the ccdir release that created it"}
	}
	return nil
}

// Close closes the pools (and removes a private copy).
func (s *Store) Close() error {
	s.replayMu.Lock()
	if s.replay != nil {
		s.replay.close()
		s.replay = nil
	}
	s.replayMu.Unlock()
	err := errors.Join(s.r.Close(), s.ops.Close(), s.w.Close())
	if s.cleanup != nil {
		err = errors.Join(err, s.cleanup())
		s.cleanup = nil
	}
	return err
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// Info returns the directory's identity.
func (s *Store) Info(ctx context.Context) (Info, error) {
	return readInfo(ctx, s.r)
}

func readInfo(ctx context.Context, q queryer) (Info, error) {
	var i Info
	err := q.QueryRowContext(ctx, `SELECT name, address, list_address, key_fingerprint, public_key FROM directory WHERE id = 1`).
		Scan(&i.Name, &i.Address, &i.ListAddress, &i.KeyFingerprint, &i.PublicKey)
	if errors.Is(err, sql.ErrNoRows) {
		return i, &Error{Err: ErrNotDirectory, Msg: "the directory has no genesis entry"}
	}
	return i, err
}

// Members returns all ccTLDs of the directory, by code.
func (s *Store) Members(ctx context.Context) ([]Member, error) {
	return readMembers(ctx, s.r, "")
}

// Member returns one ccTLD (code or U-label).
func (s *Store) Member(ctx context.Context, tld string) (Member, error) {
	return readMember(ctx, s.r, tld)
}

func readMember(ctx context.Context, q queryer, tld string) (Member, error) {
	t, err := LookupCCTLD(tld)
	if err != nil {
		return Member{}, err
	}
	ms, err := readMembers(ctx, q, t.Code)
	if err != nil {
		return Member{}, err
	}
	if len(ms) == 0 {
		return Member{}, refuse(ErrNotFound, "list members with: ccdir member list", "ccTLD %s is not a member of the directory", t.Display())
	}
	return ms[0], nil
}

func readMembers(ctx context.Context, q queryer, tld string) ([]Member, error) {
	query := `SELECT tld, org, country, status FROM members`
	var args []any
	if tld != "" {
		query += ` WHERE tld = ?`
		args = append(args, tld)
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY tld`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Member
	for rows.Next() {
		var m Member
		if err := rows.Scan(&m.TLD, &m.Org, &m.Country, &m.Status); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Contact returns the contact with this email.
func (s *Store) Contact(ctx context.Context, email string) (Contact, error) {
	return readContact(ctx, s.r, email)
}

// ContactByFingerprint returns the contact whose registered key has this fingerprint.
func (s *Store) ContactByFingerprint(ctx context.Context, fpr string) (Contact, error) {
	cs, err := readContacts(ctx, s.r, `WHERE key_fingerprint = ?`, strings.ToUpper(fpr))
	if err != nil {
		return Contact{}, err
	}
	if len(cs) == 0 {
		return Contact{}, refuse(ErrNotFound, "", "no contact has key %s", fpr)
	}
	return cs[0], nil
}

func readContact(ctx context.Context, q queryer, email string) (Contact, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return Contact{}, err
	}
	cs, err := readContacts(ctx, q, `WHERE email = ?`, norm)
	if err != nil {
		return Contact{}, err
	}
	if len(cs) == 0 {
		return Contact{}, refuse(ErrNotFound, "list contacts with: ccdir contact list", "no contact with email %s", norm)
	}
	return cs[0], nil
}

// Contacts returns the contacts with a role for tld, or all contacts if
// tld is empty, sorted by email.
func (s *Store) Contacts(ctx context.Context, tld string) ([]Contact, error) {
	if tld == "" {
		return readContacts(ctx, s.r, "")
	}
	m, err := readMember(ctx, s.r, tld)
	if err != nil {
		return nil, err
	}
	return readContacts(ctx, s.r, `WHERE id IN (SELECT contact_id FROM roles WHERE tld = ?)`, m.TLD)
}

const contactColumns = `id, email, name, phones, languages, timezone, always,
	key_fingerprint, key_algorithm, key_created, key_expires, key_armored, confirmed`

func readContacts(ctx context.Context, q queryer, where string, args ...any) ([]Contact, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+contactColumns+` FROM contacts `+where+` ORDER BY email`, args...)
	if err != nil {
		return nil, err
	}
	var out []Contact
	byID := map[int64]int{}
	for rows.Next() {
		var c Contact
		var phones, langs string
		var fpr sql.NullString
		var k Key
		if err := rows.Scan(&c.ID, &c.Email, &c.Name, &phones, &langs, &c.TimeZone, &c.Always,
			&fpr, &k.Algorithm, &k.Created, &k.Expires, &k.Armored, &c.Confirmed); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(phones), &c.Phones); err != nil {
			rows.Close()
			return nil, fmt.Errorf("contact %s: phones: %w", c.Email, err)
		}
		if err := json.Unmarshal([]byte(langs), &c.Languages); err != nil {
			rows.Close()
			return nil, fmt.Errorf("contact %s: languages: %w", c.Email, err)
		}
		if fpr.Valid {
			k.Fingerprint = fpr.String
			c.Key = &k
		}
		byID[c.ID] = len(out)
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	// Roles: one query for all contacts read.
	rrows, err := q.QueryContext(ctx, `SELECT contact_id, tld, role FROM roles ORDER BY contact_id, tld`)
	if err != nil {
		return nil, err
	}
	defer rrows.Close()
	for rrows.Next() {
		var id int64
		var r Role
		if err := rrows.Scan(&id, &r.TLD, &r.Role); err != nil {
			return nil, err
		}
		if i, ok := byID[id]; ok {
			out[i].Roles = append(out[i].Roles, r)
		}
	}
	return out, rrows.Err()
}

// Snapshot reads the whole directory at one head in one read transaction.
// The last snapshot read is kept: while the head has not moved, a copy of
// it is returned instead of reading and decoding every row again (a busy
// mail server reads the directory for every command mail).
func (s *Store) Snapshot(ctx context.Context) (*Snapshot, error) {
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
	cached := s.cached
	s.cacheMu.Unlock()
	if cached != nil && cached.Head == snap.Head {
		return cached.clone(), nil
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
	s.cached = snap.clone()
	s.cacheMu.Unlock()
	return &snap, nil
}
