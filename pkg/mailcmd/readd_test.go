package mailcmd

import (
	"testing"
	"time"
)

// An admin co-contact cannot swap another contact's key at once by
// removing it and adding its address again with another key: in the same
// mail, or in a later one within changes.delay, the ADD-CONTACT is
// refused (the operator decides), and nothing of the mail is kept. After
// the delay the address is a new contact's like any other.
func TestReaddRemovedContact(t *testing.T) {
	f := newFixture(t)
	evil := f.newKey("alice@dns.pt")
	before, _ := f.store.Contact(f.ctx, "alice@dns.pt")
	want := "FAILED: not added: alice@dns.pt was removed from the directory on 2026-11-02 10:00 UTC; re-adding it (with another key) within 72 hours of that waits for the operator: ask them"
	f.refused("bob@dns.pt", "REMOVE-CONTACT pt alice@dns.pt\nADD-CONTACT pt alice@dns.pt +351213141516 Alice Silva\n", want, keyPart(t, evil.Public()))
	if c, err := f.store.Contact(f.ctx, "alice@dns.pt"); err != nil || c.Key.Fingerprint != before.Key.Fingerprint {
		t.Fatalf("alice: %+v, %v", c.Key, err)
	}

	// Removed by one mail, added again by the next.
	if res := f.handle(f.accepted("bob@dns.pt", "REMOVE-CONTACT pt alice@dns.pt\n")); res.Failed {
		t.Fatal(res.Results[0].Err)
	}
	f.advance(71 * time.Hour)
	f.refused("bob@dns.pt", "ADD-CONTACT pt alice@dns.pt +351213141516 Alice Silva\n", want, keyPart(t, evil.Public()))
	if _, err := f.store.Contact(f.ctx, "alice@dns.pt"); err == nil {
		t.Fatal("alice is back")
	}

	// After changes.delay: a new contact.
	f.advance(time.Hour + time.Second)
	if res := f.handle(f.accepted("bob@dns.pt", "ADD-CONTACT pt alice@dns.pt +351213141516 Alice Silva\n", keyPart(t, evil.Public()))); res.Failed {
		t.Fatal(res.Results[0].Err)
	}
	if c, err := f.store.Contact(f.ctx, "alice@dns.pt"); err != nil || c.Key.Fingerprint != evil.Fingerprint() {
		t.Fatalf("alice: %+v, %v", c, err)
	}
}
