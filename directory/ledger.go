package directory

import (
	"context"
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

// zeroHash is the previous hash of the genesis entry.
var zeroHash = strings.Repeat("0", 64)

// ledgerDomain separates ledger hashes from any other SHA-256 use.
const ledgerDomain = "ccdir ledger v1\x00"

// computeHash returns the entry's hash: SHA-256 over the domain string, the
// sequence number and length-prefixed fields. The evidence enters through
// its own hash, so it could be pruned without breaking the chain.
func computeHash(e *Entry) string {
	h := sha256.New()
	h.Write([]byte(ledgerDomain))
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
	if len(e.Evidence) > 0 {
		sum := sha256.Sum256(e.Evidence)
		field(sum[:])
	} else {
		field(nil)
	}
	field([]byte(e.Payload))
	return hex.EncodeToString(h.Sum(nil))
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
	_, err := tx.ExecContext(ctx, `INSERT INTO ledger (seq, time, actor, op, payload, evidence, prev_hash, hash, sig)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.Time, e.Actor, e.Op, e.Payload, evidence, e.PrevHash, e.Hash, e.Sig)
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

const entryColumns = `seq, time, actor, op, payload, evidence, prev_hash, hash, sig`

func scanEntry(rows *sql.Rows, e *Entry) error {
	return rows.Scan(&e.Seq, &e.Time, &e.Actor, &e.Op, &e.Payload, &e.Evidence, &e.PrevHash, &e.Hash, &e.Sig)
}

// Log calls fn for every ledger entry with a sequence number of at least
// since, in order. Entries are streamed, not loaded at once.
func (s *Store) Log(ctx context.Context, since int64, fn func(*Entry) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT `+entryColumns+` FROM ledger WHERE seq >= ? ORDER BY seq`, since)
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
