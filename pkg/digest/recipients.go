package digest

import (
	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// SkipInactive is the reason a contact whose every role is at an inactive
// ccTLD gets no digest.
const SkipInactive = "ccTLD inactive"

// recipient is a contact who gets the digest, with the key to encrypt to.
type recipient struct {
	contact directory.Contact
	key     *pgpmime.Recipient
}

// recipients splits the snapshot's contacts into those with a usable key
// (checked through kr) and a role at an active ccTLD
// (directory.Snapshot.Reachable), and those skipped, with the reason.
func recipients(s *directory.Snapshot, kr *keyring) ([]recipient, []Skipped) {
	kr.add(s.Contacts)
	var out []recipient
	var skipped []Skipped
	for i := range s.Contacts {
		c := &s.Contacts[i]
		if !s.Reachable(c) {
			skipped = append(skipped, Skipped{c.Email, SkipInactive})
			continue
		}
		if c.Key == nil {
			skipped = append(skipped, Skipped{c.Email, "no key"})
			continue
		}
		key, err := kr.recipient(c)
		if err != nil {
			skipped = append(skipped, Skipped{c.Email, "unusable key: " + err.Error()})
			continue
		}
		out = append(out, recipient{contact: *c, key: key})
	}
	return out, skipped
}
