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
	} {
		h := Hashed(&e)
		if got, want := h.Hash(), EntryHash(&e); got != want {
			t.Errorf("entry %d: HashedEntry.Hash %s, ledger %s", i, got, want)
		}
		if (len(e.Evidence) > 0) != (h.EvidenceSHA256 != nil) {
			t.Errorf("entry %d: evidence sum %x", i, h.EvidenceSHA256)
		}
	}
	if got := string(SignedText(3, "ff")); got != fmt.Sprintf("ccdir ledger entry %d %s\n", 3, "ff") {
		t.Errorf("SignedText = %q", got)
	}
}
