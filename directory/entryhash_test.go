package directory

import (
	"fmt"
	"testing"
)

// TestHashedEntryMatchesLedger holds HashedEntry.Hash, what a member
// recomputes from a digest, equal to the ledger's own hash.
func TestHashedEntryMatchesLedger(t *testing.T) {
	for i, e := range []Entry{
		{Seq: 1, Time: "2026-01-01T00:00:00Z", Actor: "operator", Op: "genesis", PrevHash: GenesisPrevHash, Payload: `{"v":1}`},
		{Seq: 42, Time: "2026-01-02T00:00:00Z", Actor: "member:ABCD", Op: "contact.update", PrevHash: "ab", Payload: `{"name":"Иван"}`, Evidence: []byte("the member's mail")},
		{Seq: 7},
		{Seq: 8, Version: 2, Salt: "00112233445566778899aabbccddeeff", Time: "t", Actor: "operator", Op: "contact.add", PrevHash: "ab", Payload: `{"email":"x@y"}`, Evidence: []byte("mail")},
		// Erased: a version 2 payload and its evidence by their digests, a
		// version 1 entry's evidence by its digest.
		{Seq: 9, Version: 2, Time: "t", Actor: "operator", Op: "contact.add", PrevHash: "ab", PayloadDigest: "aa", EvidenceDigest: "bb"},
		{Seq: 10, Version: 1, Time: "t", Actor: "operator", Op: "contact.add", PrevHash: "ab", Payload: "{}", EvidenceDigest: "bb"},
	} {
		h := Hashed(&e)
		if got, want := h.Hash(), EntryHash(&e); got != want {
			t.Errorf("entry %d: HashedEntry.Hash %s, ledger %s", i, got, want)
		}
		if h.Tombstone() != e.Tombstone() {
			t.Errorf("entry %d: tombstone %v", i, h.Tombstone())
		}
		if (len(e.Evidence) > 0 || e.EvidenceDigest != "") != (h.EvidenceSHA256 != nil) {
			t.Errorf("entry %d: evidence sum %x", i, h.EvidenceSHA256)
		}
	}
	// A version 2 entry erased hashes as it did whole.
	whole := Entry{Seq: 8, Version: 2, Salt: "00112233445566778899aabbccddeeff", Time: "t", Actor: "operator", Op: "contact.add", PrevHash: "ab", Payload: `{"email":"x@y"}`, Evidence: []byte("mail")}
	erased := Entry{Seq: 8, Version: 2, Time: "t", Actor: "operator", Op: "contact.add", PrevHash: "ab", PayloadDigest: whole.PayloadSum(), EvidenceDigest: whole.EvidenceSum()}
	if h := Hashed(&erased); h.Hash() != EntryHash(&whole) || h.Tombstone() {
		t.Errorf("erased version 2 entry: %s, want %s", h.Hash(), EntryHash(&whole))
	}
	if h := Hashed(&Entry{Seq: 3, Version: 1, Op: "contact.add"}); !h.Tombstone() {
		t.Error("an erased version 1 entry is no tombstone")
	}
	if got := string(SignedText(3, "ff")); got != fmt.Sprintf("ccdir ledger entry %d %s\n", 3, "ff") {
		t.Errorf("SignedText = %q", got)
	}
}
