package directory

import (
	"encoding/hex"
	"fmt"
)

// GenesisPrevHash is the previous hash of the genesis entry: 64 zeros.
const GenesisPrevHash = "0000000000000000000000000000000000000000000000000000000000000000"

// EntryHash is the hash of e as the ledger computes it (see
// [HashedEntry.Hash]).
func EntryHash(e *Entry) string { return computeHash(e) }

// SignedText is what the directory key signs for the entry seq of hash
// hash: "ccdir ledger entry SEQ HASH\n".
func SignedText(seq int64, hash string) []byte { return signedText(seq, hash) }

// HashedEntry is what an entry's hash covers, with the evidence by its
// SHA-256 only: what a digest carries of each entry, so that a member
// can recompute its hash without the member's mail kept as evidence.
type HashedEntry struct {
	Seq      int64
	Time     string
	Actor    string
	Op       string
	PrevHash string
	// EvidenceSHA256 is the SHA-256 of the entry's evidence (or the
	// digest kept of erased evidence), nil for an entry without evidence.
	EvidenceSHA256 []byte
	Payload        string
	// Version is the entry's version (0 or 1: version 1; see
	// EntryVersion). A version 2 or 3 entry's hash covers SHA-256(salt
	// || payload), the salt's 16 bytes given in hex by Salt, or, once
	// its payload was erased (Payload ""), PayloadDigest (hex), the
	// digest kept. A version 3 entry's also covers Subject, in clear
	// (see EntrySubject).
	Version       int
	Salt          string
	PayloadDigest string
	Subject       string
}

// Hashed returns what e's hash covers.
func Hashed(e *Entry) HashedEntry {
	return HashedEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Op: e.Op, PrevHash: e.PrevHash, Payload: e.Payload,
		EvidenceSHA256: e.evidenceSum(), Version: e.Version, Salt: e.Salt, PayloadDigest: e.PayloadDigest, Subject: e.Subject}
}

// Hash is the entry's hash, computed as the ledger computes it (one
// function, computeHash): SHA-256 over the domain string of its version
// ("ccdir ledger v1\x00", "ccdir ledger v2\x00", "ccdir ledger v3\x00"),
// the sequence number as 8 bytes big endian, then time, actor, op,
// prev_hash, the evidence's SHA-256 (its 32 bytes, or nothing without
// evidence), the payload (version 1) or its salted digest (versions 2
// and 3: 32 bytes) and, in version 3, the subject, each preceded by its
// length as 8 bytes big endian. A version 1 entry whose payload was
// erased (Tombstone) has no hash that can be recomputed.
func (h *HashedEntry) Hash() string {
	return computeHash(h.entry())
}

// Tombstone reports a version 1 entry whose payload was erased: it keeps
// its hash, which cannot be recomputed; a contact.erase entry after it
// must cover it (Entry.Erasure), and the next entry's prev_hash and the
// signatures vouch for it.
func (h *HashedEntry) Tombstone() bool { return h.entry().Tombstone() }

func (h *HashedEntry) entry() *Entry {
	e := &Entry{Seq: h.Seq, Time: h.Time, Actor: h.Actor, Op: h.Op, PrevHash: h.PrevHash, Payload: h.Payload,
		Version: h.Version, Salt: h.Salt, PayloadDigest: h.PayloadDigest, Subject: h.Subject}
	if h.EvidenceSHA256 != nil {
		e.EvidenceDigest = hex.EncodeToString(h.EvidenceSHA256)
	}
	return e
}

// Versions checks that the versions of a ledger's entries, taken in
// order (Step), never go down, and that each is one this package knows:
// an entry relabelled to an earlier version (a version 3 entry as a
// version 1 tombstone, whose hash is not recomputed) is found. It is the
// one rule of verify, ccdir check (digest.Check) and the README's
// check.py.
type Versions struct {
	version int
	since   int64
}

// Step takes the entry seq of version v (0: version 1).
func (w *Versions) Step(seq int64, v int) error {
	v = versionOf(v)
	switch {
	case v > EntryVersion:
		return fmt.Errorf("entry %d is of version %d, which this ccdir does not know (it knows 1 to %d): use a newer ccdir", seq, v, EntryVersion)
	case v < w.version:
		return fmt.Errorf("entry %d is of version %d, after entry %d of version %d: versions never go down", seq, v, w.since, w.version)
	case v > w.version:
		w.version, w.since = v, seq
	}
	return nil
}
