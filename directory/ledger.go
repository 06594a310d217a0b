package directory

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Signer signs ledger entries with the directory key, and checks them:
// before a transaction appends its first entry, the ledger it extends is
// replayed and its head's signature checked (see Tx).
type Signer interface {
	// Sign returns a detached signature over data.
	Sign(data []byte) ([]byte, error)
	// Verify checks a detached signature over data made by this key. It
	// must be safe for concurrent use.
	Verify(data, sig []byte) error
	// Fingerprint is the signing key's fingerprint, uppercase hex.
	Fingerprint() string
}

// VerifyFunc checks a detached signature made by the directory key.
type VerifyFunc func(data, sig []byte) error

// KeyVerifierFunc parses an armored directory key as it stood in the
// signed state when it started to sign (at, the time of the entry that
// named it) and returns its fingerprint (uppercase hex) and the check of
// its signatures, which must be safe for concurrent use: how a replay
// checks the entries signed by the directory's earlier keys.
type KeyVerifierFunc func(armored string, at time.Time) (fpr string, verify VerifyFunc, err error)

// SplitFunc splits a block of detached signatures into its signature
// packets, in order (keys.SplitSignatures): a rekey entry carries two.
type SplitFunc func(sig []byte) ([][]byte, error)

// zeroHash is the previous hash of the genesis entry.
var zeroHash = strings.Repeat("0", 64)

// ledgerDomain separates ledger hashes from any other SHA-256 use; each
// entry version has its own.
const (
	ledgerDomain   = "ccdir ledger v1\x00"
	ledgerDomainV2 = "ccdir ledger v2\x00"
	ledgerDomainV3 = "ccdir ledger v3\x00"
)

// Entry versions. A version 1 entry's hash covers its payload itself; a
// version 2 entry's covers a salted digest of it (PayloadSum), so that
// the payload (and its salt) can be erased and the hash still
// recomputes from the digest kept; a version 3 entry's covers, besides,
// its subject in clear (Entry.Subject: the contact it is about), so that
// an erasure of it can be checked against whom it was about once its
// payload is gone. New entries are of the latest version the ledger's
// signed schema holds (ledgerVersion: EntryVersion once Open migrated
// it); version 1 and 2 entries, made before, stay as they are.
const (
	entryV1 = 1
	entryV2 = 2
	entryV3 = 3
	// EntryVersion is the version of the entries this package writes.
	EntryVersion = entryV3
)

// saltBytes is the length of a version 2 entry's salt.
const saltBytes = 16

// computeHash returns the entry's hash: SHA-256 over the version's domain
// string, the sequence number and length-prefixed fields. The evidence
// enters through its own hash (EvidenceSum), so it can be erased without
// breaking the chain; from version 2 on the payload too, through its
// salted digest (PayloadSum); from version 3 on, the entry's subject
// follows, in clear. A version 1 entry whose payload was erased (a
// tombstone, Tombstone) has no hash that can be recomputed: it keeps its
// stored hash and signature, and the chain links through them.
func computeHash(e *Entry) string {
	h := sha256.New()
	switch {
	case e.Version >= entryV3:
		h.Write([]byte(ledgerDomainV3))
	case e.Version == entryV2:
		h.Write([]byte(ledgerDomainV2))
	default:
		h.Write([]byte(ledgerDomain))
	}
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	h.Write(n[:])
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(e.Time))
	field([]byte(e.Actor))
	field([]byte(e.Op))
	field([]byte(e.PrevHash))
	field(e.evidenceSum())
	if e.Version >= entryV2 {
		field(e.payloadSum())
	} else {
		field([]byte(e.Payload))
	}
	if e.Version >= entryV3 {
		field([]byte(e.Subject))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// evidenceSum is the SHA-256 of the evidence, or the digest kept of
// evidence that was erased; nil for an entry that never had any.
func (e *Entry) evidenceSum() []byte {
	if len(e.Evidence) > 0 {
		sum := sha256.Sum256(e.Evidence)
		return sum[:]
	}
	if e.EvidenceDigest != "" {
		return decodeDigest(e.EvidenceDigest)
	}
	return nil
}

// payloadSum is a version 2 entry's salted digest of its payload,
// SHA-256(salt || payload) with the salt's 16 bytes, or the digest kept
// of a payload that was erased.
func (e *Entry) payloadSum() []byte {
	if e.Payload == "" && e.PayloadDigest != "" {
		return decodeDigest(e.PayloadDigest)
	}
	salt, err := hex.DecodeString(e.Salt)
	if err != nil {
		salt = []byte(e.Salt) // then the hash does not match
	}
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(e.Payload))
	return h.Sum(nil)
}

// decodeDigest decodes a hex digest; what is not hex is taken as it is
// (and then no hash matches).
func decodeDigest(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		return []byte(s)
	}
	return b
}

// EvidenceSum is the hex SHA-256 of the entry's evidence (or the digest
// kept of erased evidence), as its hash covers it; "" without evidence.
func (e *Entry) EvidenceSum() string {
	if s := e.evidenceSum(); s != nil {
		return hex.EncodeToString(s)
	}
	return ""
}

// PayloadSum is the hex salted digest of a version 2 entry's payload (or
// the digest kept of an erased payload), as its hash covers it; "" for
// a version 1 entry, whose hash covers the payload itself.
func (e *Entry) PayloadSum() string {
	if e.Version < entryV2 {
		return ""
	}
	return hex.EncodeToString(e.payloadSum())
}

// Redacted reports whether the entry's payload was erased (by a
// contact.erase entry): a version 2 entry then keeps the digests its
// hash covers, a version 1 entry is a tombstone (Tombstone).
func (e *Entry) Redacted() bool { return e.Payload == "" }

// Tombstone reports a version 1 entry whose payload was erased: its
// hash cannot be recomputed; it keeps its hash and signature.
func (e *Entry) Tombstone() bool { return e.Redacted() && e.Version < entryV2 }

// EvidenceErased reports an entry whose evidence was erased, its digest
// kept.
func (e *Entry) EvidenceErased() bool { return len(e.Evidence) == 0 && e.EvidenceDigest != "" }

// newSalt returns a fresh random salt, hex.
func newSalt() (string, error) {
	b := make([]byte, saltBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("ledger salt: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// signedText is what the directory key signs for an entry.
func signedText(seq int64, hash string) []byte {
	return fmt.Appendf(nil, "ccdir ledger entry %d %s\n", seq, hash)
}

func insertEntry(ctx context.Context, tx execer, e *Entry) error {
	var evidence any
	if len(e.Evidence) > 0 {
		evidence = e.Evidence
	}
	var salt any
	if e.Salt != "" {
		salt = e.Salt
	}
	if e.Version < entryV2 { // as the releases before version 2 wrote them
		_, err := tx.ExecContext(ctx, `INSERT INTO ledger (seq, time, actor, op, payload, evidence, prev_hash, hash, sig)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.Time, e.Actor, e.Op, e.Payload, evidence, e.PrevHash, e.Hash, e.Sig)
		return err
	}
	// A new entry keeps no digests: they are kept only once what they
	// digest is erased (see Tx.Erase).
	if e.Version == entryV2 { // as the releases of version 2 wrote them
		_, err := tx.ExecContext(ctx, `INSERT INTO ledger (seq, time, actor, op, payload, evidence, prev_hash, hash, sig, version, salt)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Seq, e.Time, e.Actor, e.Op, e.Payload, evidence, e.PrevHash, e.Hash, e.Sig, e.Version, salt)
		return err
	}
	var subject any
	if e.Subject != "" {
		subject = e.Subject
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO ledger (seq, time, actor, op, payload, evidence, prev_hash, hash, sig, version, salt, subject)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time, e.Actor, e.Op, e.Payload, evidence, e.PrevHash, e.Hash, e.Sig, e.Version, salt, subject)
	return err
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func readHead(ctx context.Context, q queryer) (Head, string, error) {
	var h Head
	var t string
	err := q.QueryRowContext(ctx, `SELECT seq, hash, time FROM ledger ORDER BY seq DESC LIMIT 1`).Scan(&h.Serial, &h.Hash, &t)
	if errors.Is(err, sql.ErrNoRows) {
		return Head{}, "", &Error{Err: ErrNotDirectory, Msg: "the ledger is empty"}
	}
	return h, t, err
}

// entryColumns are the ledger's columns as the latest signed schema has
// them; entryColumnsV1 reads a ledger of signed schema 1 (a home not
// migrated yet, which a read-only verify meets) the same way, its
// entries all of version 1 and nothing erased, and entryColumnsV2 one of
// signed schema 2, without subjects.
const (
	entryColumns   = `seq, time, actor, op, payload, evidence, prev_hash, hash, sig, version, salt, payload_digest, evidence_digest, subject`
	entryColumnsV2 = `seq, time, actor, op, payload, evidence, prev_hash, hash, sig, version, salt, payload_digest, evidence_digest, NULL`
	entryColumnsV1 = `seq, time, actor, op, payload, evidence, prev_hash, hash, sig, 1, NULL, NULL, NULL, NULL`
)

// ledgerVersion is the latest entry version the ledger read through q
// can hold, by the columns its signed schema has: 1 without version
// (signed schema 1), 2 without subject (signed schema 2), else 3. It is
// the version of the entries a transaction writes there: Open migrates
// a writable home to the latest schema first, so those are EntryVersion;
// a home of an earlier schema (as the tests make the homes of earlier
// releases) gets entries as its release wrote them.
func ledgerVersion(ctx context.Context, q queryer) (int, error) {
	var version, subject int
	if err := q.QueryRowContext(ctx, `SELECT coalesce(sum(name = 'version'), 0), coalesce(sum(name = 'subject'), 0) FROM pragma_table_info('ledger')`).Scan(&version, &subject); err != nil {
		return 0, err
	}
	switch {
	case version == 0:
		return entryV1, nil
	case subject == 0:
		return entryV2, nil
	}
	return entryV3, nil
}

// ledgerColumns returns the columns to select entries with from the
// ledger read through q, as its schema has them.
func ledgerColumns(ctx context.Context, q queryer) (string, error) {
	v, err := ledgerVersion(ctx, q)
	switch {
	case err != nil:
		return "", err
	case v == entryV1:
		return entryColumnsV1, nil
	case v == entryV2:
		return entryColumnsV2, nil
	}
	return entryColumns, nil
}

func scanEntry(rows *sql.Rows, e *Entry) error {
	var salt, pd, ed, subject sql.NullString
	if err := rows.Scan(&e.Seq, &e.Time, &e.Actor, &e.Op, &e.Payload, &e.Evidence, &e.PrevHash, &e.Hash, &e.Sig,
		&e.Version, &salt, &pd, &ed, &subject); err != nil {
		return err
	}
	e.Salt, e.PayloadDigest, e.EvidenceDigest, e.Subject = salt.String, pd.String, ed.String, subject.String
	return nil
}

// Log calls fn for every ledger entry with a sequence number of at least
// since, in order. Entries are streamed, not loaded at once.
func (s *Store) Log(ctx context.Context, since int64, fn func(*Entry) error) error {
	cols, err := ledgerColumns(ctx, s.r)
	if err != nil {
		return err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+cols+` FROM ledger WHERE seq >= ? ORDER BY seq`, since)
	if err != nil {
		return err
	}
	defer rows.Close()
	var e Entry
	for rows.Next() {
		e = Entry{}
		if err := scanEntry(rows, &e); err != nil {
			return err
		}
		if err := fn(&e); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Head returns the current serial and head hash.
func (s *Store) Head(ctx context.Context) (Head, error) {
	h, _, err := readHead(ctx, s.r)
	return h, err
}

// MemberChanges counts the ledger entries made since since (this
// transaction's included) by signed mail from the contact id: entries
// whose actor is one of the keys the contact has had in that time (a
// KEY-ROTATE by mail names the old key as its actor and sets the new
// one). It is what a limit on changes by mail counts.
func (t *Tx) MemberChanges(id int64, since time.Time) (int, error) {
	c, err := readContacts(t.ctx, t.tx, `WHERE id = ?`, id)
	if err != nil {
		return 0, err
	}
	fprs := map[string]bool{}
	if len(c) == 1 && c[0].Key != nil {
		fprs[strings.ToUpper(c[0].Key.Fingerprint)] = true
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT actor, op, payload FROM ledger WHERE time >= ? ORDER BY seq DESC`,
		since.UTC().Format(time.RFC3339))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var actor, op, payload string
		if err := rows.Scan(&actor, &op, &payload); err != nil {
			return 0, err
		}
		fp, member := strings.CutPrefix(actor, memberActor)
		fp = strings.ToUpper(fp)
		if op == opKeySet && member {
			var p keySetPayload
			if decodeStrict(payload, &p) == nil && p.ID == id {
				fprs[fp] = true // the key it had before this entry
			}
		}
		if member && fprs[fp] {
			n++
		}
	}
	return n, rows.Err()
}

// RemovedSince returns when the contact with address email was last
// removed from the directory (a contact.remove entry) at or after since,
// this transaction's entries included; zero when it was not. It is how a
// contact removed and added again is told apart from a new one.
func (t *Tx) RemovedSince(email string, since time.Time) (time.Time, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return time.Time{}, err
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT time, payload FROM ledger WHERE op = ? AND time >= ? ORDER BY seq DESC`,
		opContactRemove, since.UTC().Format(time.RFC3339))
	if err != nil {
		return time.Time{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var at, payload string
		if err := rows.Scan(&at, &payload); err != nil {
			return time.Time{}, err
		}
		var p contactRemovePayload
		if decodeStrict(payload, &p) == nil && p.Email == norm {
			return time.Parse(time.RFC3339, at)
		}
	}
	return time.Time{}, rows.Err()
}

// MemberEvidence calls fn, in ledger order, with the key fingerprint and
// evidence of every entry made by signed mail dated at or after since,
// read through tx (a transaction on this directory's database, such as
// Tx.SQL), until fn returns false. It is how the incoming-mail pipeline
// finds a signed statement the ledger has used already.
func MemberEvidence(ctx context.Context, tx *sql.Tx, since time.Time, fn func(fpr string, evidence []byte) bool) error {
	rows, err := tx.QueryContext(ctx, `SELECT actor, evidence FROM ledger
		WHERE time >= ? AND actor LIKE 'member:%' AND length(evidence) > 0 ORDER BY seq`,
		since.UTC().Format(time.RFC3339))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var actor string
		var ev []byte
		if err := rows.Scan(&actor, &ev); err != nil {
			return err
		}
		if !fn(strings.TrimPrefix(actor, memberActor), ev) {
			return nil
		}
	}
	return rows.Err()
}

// rekeyTx is what a transaction knows of its rekey (Tx.Rekey).
type rekeyTx struct {
	to   Signer // the new key while its rekey entry is signed
	next Signer // the new key, once its rekey entry is written: it signs the entries after it
}

// signer is the key that signs the transaction's next entry: the
// Store's, or the new key after a rekey in this transaction.
func (t *Tx) signer() Signer {
	if t.rekey.next != nil {
		return t.rekey.next
	}
	return t.s.opts.Signer
}

// signEntry signs e: by the transaction's key, and a rekey entry also by
// the new key, the two signature packets one after the other.
func (t *Tx) signEntry(e *Entry) ([]byte, error) {
	text := signedText(e.Seq, e.Hash)
	sig, err := t.signer().Sign(text)
	if err != nil || e.Op != opRekey {
		return sig, err
	}
	if t.rekey.to == nil {
		return nil, errors.New("directory.rekey without its new key")
	}
	next, err := t.rekey.to.Sign(text)
	if err != nil {
		return nil, fmt.Errorf("sign with the new key: %w", err)
	}
	return append(sig, next...), nil
}

// Rekey replaces the directory key: one directory.rekey entry, signed by
// the key the directory has now (the Store's Signer) and by next, the new
// key, each signature on its own. p names both keys (OldFingerprint must
// be the directory's key, NewFingerprint next's) and carries the new
// public key; with Options.KeyVerifier set, that key must parse and be
// next's. The entries after it in this transaction are signed by next;
// once it commits, the Store still signs with its old Signer, which the
// ledger no longer names: open the directory again with next to change
// it further. One rekey per transaction.
func (t *Tx) Rekey(next Signer, p RekeyPayload) error {
	if next == nil {
		return errors.New("directory: Rekey without a new key")
	}
	if t.rekey.next != nil {
		return refuse(ErrPolicy, "", "one rekey per transaction")
	}
	info, err := readInfo(t.ctx, t.tx)
	if err != nil {
		return err
	}
	cur := t.signer().Fingerprint()
	switch {
	case !strings.EqualFold(info.KeyFingerprint, cur):
		return fmt.Errorf("directory: the directory's key is %s, but this store signs with %s", info.KeyFingerprint, cur)
	case !strings.EqualFold(p.OldFingerprint, cur):
		return fmt.Errorf("directory: rekey of key %s, but the directory's key is %s", p.OldFingerprint, cur)
	case !strings.EqualFold(p.NewFingerprint, next.Fingerprint()):
		return fmt.Errorf("directory: rekey to key %s, but the new signer is %s", p.NewFingerprint, next.Fingerprint())
	}
	if err := p.check(); err != nil {
		return refuse(ErrPolicy, "", "%v", err)
	}
	chain, err := readChain(t.ctx, t.tx)
	if err != nil {
		return err
	}
	for _, k := range chain {
		if strings.EqualFold(k.Fingerprint, p.NewFingerprint) {
			return refuse(ErrPolicy, "make a new key", "rekey to key %s, which the directory had before (since entry %d)", k.Fingerprint, k.Since)
		}
	}
	if kv := t.s.opts.KeyVerifier; kv != nil {
		got, _, err := kv(p.PublicKey, t.s.opts.Now())
		if err != nil {
			return fmt.Errorf("directory: the new public key: %w", err)
		}
		if !strings.EqualFold(got, p.NewFingerprint) {
			return fmt.Errorf("directory: the new public key is %s, not %s", got, p.NewFingerprint)
		}
	}
	t.rekey.to = next
	err = t.append(opRekey, p)
	t.rekey.to = nil
	if err != nil {
		return err
	}
	t.rekey.next = next
	return nil
}

// ChainKey is one key of the directory's chain of keys: the genesis
// names the first, each directory.rekey entry the next.
type ChainKey struct {
	Fingerprint string `json:"fingerprint"`
	// PublicKey is the key, armored, as the entry that named it gives it.
	PublicKey string `json:"public_key"`
	// Since is the entry that named it (1: the genesis), SinceTime its time.
	Since     int64  `json:"since"`
	SinceTime string `json:"since_time"`
	// Until is the rekey entry that replaced it, UntilTime its time; 0
	// and "" for the directory's key now.
	Until     int64  `json:"until,omitempty"`
	UntilTime string `json:"until_time,omitempty"`
	// Revoked: the rekey that replaced it revoked it (a compromise), or
	// a directory.revoke entry since, for Reason; Revocation is the key
	// armored with its revocation. RevokedSince is the entry that
	// revoked it (Until for a rekey's), RevokedTime its time.
	Revoked      bool   `json:"revoked,omitempty"`
	Reason       string `json:"revocation_reason,omitempty"`
	Revocation   string `json:"revocation,omitempty"`
	RevokedSince int64  `json:"revoked_since,omitempty"`
	RevokedTime  string `json:"revoked_time,omitempty"`
}

// chainWalk follows the chain of directory keys through the ledger, one
// entry at a time, in ledger order: the one reading of the genesis and
// rekey payloads for the chain (replay, KeyChain), and, with check set
// (replay), of the directory.key entries' copies of the current key.
type chainWalk struct {
	keys []ChainKey
	// check, if set, checks every armored key the ledger names against
	// the fingerprint it names it by; latest is the current key's
	// latest copy (its entry's, or a directory.key entry's since).
	check  *keyNames
	latest string
}

// keyNames checks an armored directory key a ledger entry gives (the
// genesis's, a rekey's new key, a directory.key copy) on replay: it must
// parse as exactly one public key (Options.KeyVerifier: no secret
// material) whose primary fingerprint is the one the ledger names, so
// that the state's public_key, which HELP replies and digests attach,
// is the key that signs. Options.Fingerprints, if set, also checks that
// a copy keeps every subkey (keptSubkeys, as a contact key refresh).
type keyNames struct {
	parse KeyVerifierFunc
	fprs  func(armored string) ([]string, error)
}

// named checks that armored, given by entry e, is key fpr.
func (k *keyNames) named(e *Entry, what, fpr, armored string) error {
	if k.parse == nil {
		if e.Op == opDirectoryKey {
			return errors.New("its copy of the directory key cannot be checked without a key parser (Options.KeyVerifier)")
		}
		return nil
	}
	at, _ := time.Parse(time.RFC3339, e.Time) // a bad time is named by replay
	got, _, err := k.parse(armored, at)
	if err != nil {
		return fmt.Errorf("%s %s: its public key cannot be read: %v", what, strings.ToUpper(fpr), err)
	}
	if !strings.EqualFold(got, fpr) {
		return fmt.Errorf("%s %s, but the public key it gives is %s", what, strings.ToUpper(fpr), strings.ToUpper(got))
	}
	return nil
}

// current is the key the entries signed now must be signed by; nil
// before the genesis.
func (w *chainWalk) current() *ChainKey {
	if len(w.keys) == 0 {
		return nil
	}
	return &w.keys[len(w.keys)-1]
}

// step takes e into the chain (genesis and rekey entries; others leave
// it as it is).
func (w *chainWalk) step(e *Entry) error {
	switch e.Op {
	case opGenesis:
		if len(w.keys) > 0 {
			return errors.New("a second genesis")
		}
		var g genesisPayload
		if err := decodeStrict(e.Payload, &g); err != nil {
			return fmt.Errorf("genesis: %v", err)
		}
		if w.check != nil {
			if err := w.check.named(e, "genesis names directory key", g.KeyFingerprint, g.PublicKey); err != nil {
				return err
			}
		}
		w.keys = append(w.keys, ChainKey{Fingerprint: strings.ToUpper(g.KeyFingerprint), PublicKey: g.PublicKey, Since: e.Seq, SinceTime: e.Time})
		w.latest = g.PublicKey
	case opRekey:
		p, err := decodeRekey(e.Payload)
		if err != nil {
			return fmt.Errorf("rekey: %v", err)
		}
		cur := w.current()
		if cur == nil {
			return errors.New("a rekey before the genesis")
		}
		if !strings.EqualFold(cur.Fingerprint, p.OldFingerprint) {
			return fmt.Errorf("rekey of key %s, but the directory's key is %s (entry %d)", p.OldFingerprint, cur.Fingerprint, cur.Since)
		}
		for _, k := range w.keys {
			if strings.EqualFold(k.Fingerprint, p.NewFingerprint) {
				return fmt.Errorf("rekey to key %s, which the directory had before (entries %d to %d)", p.NewFingerprint, k.Since, k.Until)
			}
		}
		if w.check != nil {
			if err := w.check.named(e, "rekey to directory key", p.NewFingerprint, p.PublicKey); err != nil {
				return err
			}
		}
		cur.Until, cur.UntilTime = e.Seq, e.Time
		cur.Revoked, cur.Reason, cur.Revocation = p.Revoked, p.Reason, p.Revocation
		if p.Revoked {
			cur.RevokedSince, cur.RevokedTime = e.Seq, e.Time
		}
		w.keys = append(w.keys, ChainKey{Fingerprint: strings.ToUpper(p.NewFingerprint), PublicKey: p.PublicKey, Since: e.Seq, SinceTime: e.Time})
		w.latest = p.PublicKey
	case opDirectoryKey:
		if w.check == nil {
			return nil
		}
		var p directoryKeyPayload
		if err := decodeStrict(e.Payload, &p); err != nil {
			return fmt.Errorf("directory.key: %v", err)
		}
		cur := w.current()
		if cur == nil {
			return errors.New("a directory.key before the genesis")
		}
		if !strings.EqualFold(cur.Fingerprint, p.Fingerprint) {
			return fmt.Errorf("directory.key is key %s, but the directory's key is %s (entry %d): a copy of the same key only", p.Fingerprint, cur.Fingerprint, cur.Since)
		}
		if err := w.check.named(e, "directory.key is a copy of directory key", cur.Fingerprint, p.PublicKey); err != nil {
			return err
		}
		if w.check.fprs != nil {
			if err := keptSubkeys(w.check.fprs, cur.Fingerprint, w.latest, p.PublicKey); err != nil {
				return fmt.Errorf("directory.key: %v", err)
			}
		}
		w.latest = p.PublicKey
	case opDirectoryRevoke:
		return w.stepRevoke(e)
	}
	return nil
}

// KeyChain returns the chain of the directory's keys as the ledger
// names them, the genesis key first and the directory's key now last.
// It reads the ledger as it is: Verify, Checked and CheckedAt check that
// the chain holds (each rekey entry signed by the key before it and the
// key it names) and ends at the key the caller trusts.
func (s *Store) KeyChain(ctx context.Context) ([]ChainKey, error) {
	return readChain(ctx, s.r)
}

// KeyChain is Store.KeyChain inside the transaction.
func (t *Tx) KeyChain() ([]ChainKey, error) { return readChain(t.ctx, t.tx) }

func readChain(ctx context.Context, q queryer) ([]ChainKey, error) {
	cols, err := ledgerColumns(ctx, q)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT `+cols+` FROM ledger WHERE op IN (?, ?, ?) ORDER BY seq`, opGenesis, opRekey, opDirectoryRevoke)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var w chainWalk
	for rows.Next() {
		var e Entry
		if err := scanEntry(rows, &e); err != nil {
			return nil, err
		}
		if err := w.step(&e); err != nil {
			return nil, &VerifyError{Seq: e.Seq, Reason: err.Error()}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(w.keys) == 0 {
		return nil, &Error{Err: ErrNotDirectory, Msg: "the directory has no genesis entry"}
	}
	return w.keys, nil
}
