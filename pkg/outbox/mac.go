package outbox

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
)

// KeySize is the length of the outbox key.
const KeySize = 32

// NewKey returns a new random outbox key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k) // never fails (crypto/rand)
	return k
}

// ErrNoKey is the error of Enqueue and Deliver on an Outbox without its
// key (Outbox.Key).
var ErrNoKey = errors.New("outbox: no outbox key: the outbox cannot vouch for what it would queue or send")

// ErrUnauthentic is wrapped by the error recorded for a row that fails
// authentication: it was not queued by a ccdir holding the outbox key
// (someone wrote it into the database, or changed it there), or it was
// queued by a ccdir older than the key. It is never sent.
var ErrUnauthentic = errors.New("not made by this ccdir (outbox row fails authentication): possible database tampering")

// unauthentic is the error recorded for a row that fails authentication.
func unauthentic(legacy bool) error {
	if legacy {
		return fmt.Errorf("%w; or queued by a ccdir older than outbox authentication: not sent, re-run the job that queued it (ccdir digest send --force for a digest)", ErrUnauthentic)
	}
	return fmt.Errorf("%w: not sent", ErrUnauthentic)
}

func (o *Outbox) checkKey() error {
	if len(o.Key) != KeySize {
		return ErrNoKey
	}
	return nil
}

// mac authenticates what a row makes the transport do: its kind and ref,
// envelope sender and recipient, and the content of its head, shared
// part and tail (by their SHA-256; shared is nil without a shared part).
// Nothing in it depends on the row's id or the shared part's id, so the
// MAC is made before the row is written and checked against the bytes
// that would go on the wire.
func (o *Outbox) mac(kind, ref, from, to string, data []byte, shared *[sha256.Size]byte, tail []byte) []byte {
	h := hmac.New(sha256.New, o.Key)
	h.Write([]byte("ccdir outbox row v1\x00"))
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, s := range []string{kind, ref, from, to} {
		field([]byte(s))
	}
	sum := func(b []byte) []byte { s := sha256.Sum256(b); return s[:] }
	field(sum(data))
	if shared == nil {
		field(nil)
	} else {
		field(shared[:])
	}
	field(sum(tail))
	return h.Sum(nil)
}

// authentic reports whether stored is the MAC of the row as it would be
// sent.
func (o *Outbox) authentic(stored []byte, kind, ref, from, to string, data []byte, shared *[sha256.Size]byte, tail []byte) bool {
	return len(stored) == sha256.Size && hmac.Equal(stored, o.mac(kind, ref, from, to, data, shared, tail))
}

// Unauthentic returns the rows that Deliver would attempt (queued or
// deferred, due or not) but would refuse because they fail
// authentication: what `ccdir verify` reports as tampering. It only
// reads, a batch of rows and one shared part at a time, so it runs on a
// read-only copy of the database.
func (o *Outbox) Unauthentic(ctx context.Context) ([]Row, error) {
	if err := o.checkKey(); err != nil {
		return nil, err
	}
	sums := map[int64]*[sha256.Size]byte{} // shared parts' SHA-256, from their data
	blobSum := func(id int64) (*[sha256.Size]byte, error) {
		if s, ok := sums[id]; ok {
			return s, nil
		}
		var data []byte
		err := o.db.QueryRowContext(ctx, `SELECT data FROM outbox_blob WHERE id = ?`, id).Scan(&data)
		if errors.Is(err, sql.ErrNoRows) {
			sums[id] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		s := sha256.Sum256(data)
		sums[id] = &s
		return &s, nil
	}
	var out []Row
	var last int64
	for {
		rows, err := o.db.QueryContext(ctx, `SELECT `+rowColumns+`, body, coalesce(blob, 0), tail, mac FROM outbox
			WHERE status IN ('queued', 'deferred') AND id > ? ORDER BY id LIMIT 64`, last)
		if err != nil {
			return nil, fmt.Errorf("outbox: check: %w", err)
		}
		type item struct {
			Row
			body, tail, mac []byte
			blob            int64
		}
		var batch []item
		for rows.Next() {
			var it item
			var status string
			var created, next, sent int64
			if err := rows.Scan(&it.ID, &it.Kind, &it.Ref, &it.From, &it.To, &status, &it.Attempts, &created, &next, &sent, &it.LastError, &it.Size,
				&it.body, &it.blob, &it.tail, &it.mac); err != nil {
				rows.Close()
				return nil, fmt.Errorf("outbox: check: %w", err)
			}
			it.Status = Status(status)
			it.Created, it.NextAttempt, it.SentAt = fromMilli(created), fromMilli(next), fromMilli(sent)
			batch = append(batch, it)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("outbox: check: %w", err)
		}
		if len(batch) == 0 {
			return out, nil
		}
		for _, it := range batch {
			last = it.ID
			var shared *[sha256.Size]byte
			if it.blob != 0 {
				if shared, err = blobSum(it.blob); err != nil {
					return nil, fmt.Errorf("outbox: check: %w", err)
				}
				if shared == nil {
					continue // gone: Deliver skips it too
				}
			}
			if len(it.body) == 0 {
				continue // nothing to send
			}
			if !o.authentic(it.mac, it.Kind, it.Ref, it.From, it.To, it.body, shared, it.tail) {
				it.Row.LastError = unauthentic(len(it.mac) == 0).Error()
				out = append(out, it.Row)
			}
		}
	}
}
