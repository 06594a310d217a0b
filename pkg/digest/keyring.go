package digest

import (
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// keyring is the run's key cache (fanout.Keys) at one time: a digest
// checks keys when it was made, and a digest resumed much later encrypts
// to keys as they are valid then, through a keyring of its own.
type keyring struct {
	t    time.Time
	keys *fanout.Keys
}

func newKeyring(t time.Time) *keyring {
	return &keyring{t: t, keys: fanout.NewKeys()}
}

// add parses and checks, in parallel, the keys of contacts not seen yet.
func (k *keyring) add(contacts []directory.Contact) { k.keys.LoadContacts(contacts, k.t) }

// recipient returns the key to encrypt c's copy to, or why c's key
// cannot be used.
func (k *keyring) recipient(c *directory.Contact) (*pgpmime.Recipient, error) {
	return k.keys.Recipient(c.Key, k.t)
}

// usable reports why c's key cannot be used at the keyring's time, or nil.
func (k *keyring) usable(c *directory.Contact) error { return k.keys.Err(c.Key, k.t) }

// until is when c's key stops working, as read at the keyring's time
// (fanout.Keys.UsableUntil, from the same cached check as usable).
func (k *keyring) until(c *directory.Contact) (time.Time, bool) {
	return k.keys.UsableUntil(c.Key, k.t)
}

// check is how the digest's body judges keys: by the keyring.
func (k *keyring) check() export.KeyCheck { return export.KeyCheck{Usable: k.usable, Until: k.until} }
