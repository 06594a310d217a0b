package directory

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
	// EvidenceSHA256 is the SHA-256 of the entry's evidence, nil for an
	// entry without evidence.
	EvidenceSHA256 []byte
	Payload        string
}

// Hashed returns what e's hash covers.
func Hashed(e *Entry) HashedEntry {
	h := HashedEntry{Seq: e.Seq, Time: e.Time, Actor: e.Actor, Op: e.Op, PrevHash: e.PrevHash, Payload: e.Payload}
	if len(e.Evidence) > 0 {
		sum := sha256.Sum256(e.Evidence)
		h.EvidenceSHA256 = sum[:]
	}
	return h
}

// Hash is the entry's hash, the same as the ledger's (EntryHash; a test
// holds the two equal): SHA-256 over the domain string
// "ccdir ledger v1\x00", the sequence number as 8 bytes big endian, then
// time, actor, op, prev_hash, the evidence's SHA-256 (its 32 bytes, or
// nothing without evidence) and the payload, each preceded by its length
// as 8 bytes big endian.
func (h *HashedEntry) Hash() string {
	s := sha256.New()
	s.Write([]byte(ledgerDomain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(h.Seq))
	s.Write(n[:])
	for _, f := range [][]byte{[]byte(h.Time), []byte(h.Actor), []byte(h.Op), []byte(h.PrevHash), h.EvidenceSHA256, []byte(h.Payload)} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		s.Write(n[:])
		s.Write(f)
	}
	return hex.EncodeToString(s.Sum(nil))
}
