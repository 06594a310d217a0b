package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Ledger operations.
const (
	opGenesis       = "genesis"
	opMemberAdd     = "member.add"
	opMemberUpdate  = "member.update"
	opMemberRemove  = "member.remove"
	opContactAdd    = "contact.add"
	opContactUpdate = "contact.update"
	opContactRemove = "contact.remove"
	opKeySet        = "key.set"
	opKeyRefresh    = "key.refresh"     // a newer copy of the same key (same fingerprint)
	opDirectoryKey  = "directory.key"   // a newer copy of the directory's own key (same fingerprint)
	opRekey         = "directory.rekey" // the directory's own key replaced, signed by the old and the new key
)

type genesisPayload struct {
	Version int `json:"version"`
	Info
}

type memberRemovePayload struct {
	TLD string `json:"tld"`
}

type contactRemovePayload struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
}

type keySetPayload struct {
	ID    int64  `json:"id"`
	Email string `json:"email"`
	Key   *Key   `json:"key"` // nil removes the key
}

// directoryKeyPayload is a newer copy of the directory's own key: the
// same fingerprint (new user IDs, a new expiry), never another key.
type directoryKeyPayload struct {
	Fingerprint string `json:"fingerprint"`
	PublicKey   string `json:"public_key"`
}

// RekeyPayload is what a directory.rekey entry says: the directory key
// OldFingerprint is replaced by NewFingerprint, whose armored public key
// (certified by the old key) is PublicKey. Revoked says the old key was
// retired for a compromise: Revocation is then the old key, armored,
// with its revocation signature (reason Reason), which the directory
// publishes beside the new key. The entry is signed by both keys.
type RekeyPayload struct {
	OldFingerprint string `json:"old_fingerprint"`
	NewFingerprint string `json:"new_fingerprint"`
	PublicKey      string `json:"public_key"`
	Revoked        bool   `json:"old_revoked,omitempty"`
	Reason         string `json:"revocation_reason,omitempty"`
	Revocation     string `json:"old_revocation,omitempty"`
}

func (p *RekeyPayload) check() error {
	switch {
	case p.OldFingerprint == "" || p.NewFingerprint == "" || p.PublicKey == "":
		return errors.New("directory.rekey needs the old and the new fingerprint and the new public key")
	case strings.EqualFold(p.OldFingerprint, p.NewFingerprint):
		return errors.New("directory.rekey to the same key")
	case p.Revoked != (p.Revocation != ""):
		return errors.New("directory.rekey: a revoked old key needs its revocation, and only a revoked one has one")
	case !p.Revoked && p.Reason != "":
		return errors.New("directory.rekey: a revocation reason, but the old key is not revoked")
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	queryer
}

// decodeStrict unmarshals a payload and refuses unknown fields, so a
// payload edited to carry more than the operation uses does not replay.
func decodeStrict(payload string, v any) error {
	dec := json.NewDecoder(strings.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	if dec.More() {
		return errors.New("payload: trailing data")
	}
	return nil
}

// apply changes the state tables as the entry says. It is the only code
// that writes them, live and during verify's replay alike.
func apply(ctx context.Context, db execer, e *Entry) error {
	switch e.Op {
	case opGenesis:
		var p genesisPayload
		if err := decodeStrict(e.Payload, &p); err != nil {
			return err
		}
		if e.Seq != 1 {
			return errors.New("genesis entry after the first")
		}
		_, err := db.ExecContext(ctx, `INSERT INTO directory (id, name, address, list_address, key_fingerprint, public_key) VALUES (1, ?, ?, ?, ?, ?)`,
			p.Name, p.Address, p.ListAddress, p.KeyFingerprint, p.PublicKey)
		return err
	case opMemberAdd:
		var m Member
		if err := decodeStrict(e.Payload, &m); err != nil {
			return err
		}
		_, err := db.ExecContext(ctx, `INSERT INTO members (tld, org, country, status, added_seq, updated_seq) VALUES (?, ?, ?, ?, ?, ?)`,
			m.TLD, m.Org, m.Country, m.Status, e.Seq, e.Seq)
		return err
	case opMemberUpdate:
		var m Member
		if err := decodeStrict(e.Payload, &m); err != nil {
			return err
		}
		return one(db.ExecContext(ctx, `UPDATE members SET org = ?, country = ?, status = ?, updated_seq = ? WHERE tld = ?`,
			m.Org, m.Country, m.Status, e.Seq, m.TLD))
	case opMemberRemove:
		var p memberRemovePayload
		if err := decodeStrict(e.Payload, &p); err != nil {
			return err
		}
		return one(db.ExecContext(ctx, `DELETE FROM members WHERE tld = ?`, p.TLD))
	case opContactAdd, opContactUpdate:
		var c Contact
		if err := decodeStrict(e.Payload, &c); err != nil {
			return err
		}
		return applyContact(ctx, db, e, &c)
	case opContactRemove:
		var p contactRemovePayload
		if err := decodeStrict(e.Payload, &p); err != nil {
			return err
		}
		return one(db.ExecContext(ctx, `DELETE FROM contacts WHERE id = ? AND email = ?`, p.ID, p.Email))
	case opKeySet:
		var p keySetPayload
		if err := decodeStrict(e.Payload, &p); err != nil {
			return err
		}
		k := p.Key
		var fpr any
		if k == nil {
			k = &Key{}
		} else {
			fpr = k.Fingerprint
		}
		return one(db.ExecContext(ctx, `UPDATE contacts SET key_fingerprint = ?, key_algorithm = ?, key_created = ?, key_expires = ?, key_armored = ?, confirmed = ?, updated_seq = ?
			WHERE id = ? AND email = ?`, fpr, k.Algorithm, k.Created, k.Expires, k.Armored, e.Time, e.Seq, p.ID, p.Email))
	case opKeyRefresh:
		var p keySetPayload
		if err := decodeStrict(e.Payload, &p); err != nil {
			return err
		}
		if p.Key == nil || p.Key.Fingerprint == "" {
			return errors.New("key.refresh without a key")
		}
		// Only the registered key can be refreshed: same fingerprint.
		k := p.Key
		return one(db.ExecContext(ctx, `UPDATE contacts SET key_algorithm = ?, key_created = ?, key_expires = ?, key_armored = ?, confirmed = ?, updated_seq = ?
			WHERE id = ? AND email = ? AND key_fingerprint = ?`, k.Algorithm, k.Created, k.Expires, k.Armored, e.Time, e.Seq, p.ID, p.Email, k.Fingerprint))
	case opDirectoryKey:
		var p directoryKeyPayload
		if err := decodeStrict(e.Payload, &p); err != nil {
			return err
		}
		if p.Fingerprint == "" || strings.TrimSpace(p.PublicKey) == "" {
			return errors.New("directory.key without a key")
		}
		var fpr string
		if err := db.QueryRowContext(ctx, `SELECT key_fingerprint FROM directory WHERE id = 1`).Scan(&fpr); err != nil {
			return err
		}
		if !strings.EqualFold(fpr, p.Fingerprint) {
			return fmt.Errorf("directory.key is key %s, but the directory's key is %s: a copy of the same key only", p.Fingerprint, fpr)
		}
		return one(db.ExecContext(ctx, `UPDATE directory SET public_key = ? WHERE id = 1`, p.PublicKey))
	case opRekey:
		p, err := decodeRekey(e.Payload)
		if err != nil {
			return err
		}
		// Only the key the directory has now can be replaced.
		return one(db.ExecContext(ctx, `UPDATE directory SET key_fingerprint = ?, public_key = ? WHERE id = 1 AND upper(key_fingerprint) = upper(?)`,
			p.NewFingerprint, p.PublicKey, p.OldFingerprint))
	case opContactErase:
		return applyErase(ctx, db, e)
	case opDirectoryRevoke:
		// No table holds the earlier keys: the chain walk takes it.
		_, err := decodeRevoke(e.Payload)
		return err
	default:
		return fmt.Errorf("unknown operation %q", e.Op)
	}
}

func applyContact(ctx context.Context, db execer, e *Entry, c *Contact) error {
	phones, err := json.Marshal(c.Phones)
	if err != nil {
		return err
	}
	langs := []byte("[]")
	if len(c.Languages) > 0 {
		if langs, err = json.Marshal(c.Languages); err != nil {
			return err
		}
	}
	k := c.Key
	var fpr any
	if k == nil {
		k = &Key{}
	} else {
		fpr = k.Fingerprint
	}
	if e.Op == opContactAdd {
		if c.ID != 0 {
			return errors.New("contact.add payload carries an id")
		}
		c.ID = e.Seq
		_, err = db.ExecContext(ctx, `INSERT INTO contacts (id, email, name, phones, languages, timezone, always,
			key_fingerprint, key_algorithm, key_created, key_expires, key_armored, confirmed, added_seq, updated_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.Email, c.Name, string(phones), string(langs), c.TimeZone, c.Always,
			fpr, k.Algorithm, k.Created, k.Expires, k.Armored, e.Time, e.Seq, e.Seq)
	} else {
		err = one(db.ExecContext(ctx, `UPDATE contacts SET email = ?, name = ?, phones = ?, languages = ?, timezone = ?, always = ?,
			key_fingerprint = ?, key_algorithm = ?, key_created = ?, key_expires = ?, key_armored = ?, confirmed = ?, updated_seq = ?
			WHERE id = ?`,
			c.Email, c.Name, string(phones), string(langs), c.TimeZone, c.Always,
			fpr, k.Algorithm, k.Created, k.Expires, k.Armored, e.Time, e.Seq, c.ID))
		if err == nil {
			_, err = db.ExecContext(ctx, `DELETE FROM roles WHERE contact_id = ?`, c.ID)
		}
	}
	if err != nil {
		return err
	}
	for _, r := range c.Roles {
		if _, err := db.ExecContext(ctx, `INSERT INTO roles (contact_id, tld, role) VALUES (?, ?, ?)`, c.ID, r.TLD, r.Role); err != nil {
			return err
		}
	}
	return nil
}

// one checks that a statement changed exactly one row.
func one(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("changed %d rows, want 1", n)
	}
	return nil
}

// isConstraint reports a SQLite constraint violation and its kind.
func isConstraint(err error, ext sqlite3.ErrNoExtended) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrConstraint && (ext == 0 || se.ExtendedCode == ext)
}
