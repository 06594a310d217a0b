package outbox

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
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
