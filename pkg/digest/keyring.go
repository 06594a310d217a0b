package digest

import (
	"sync"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// keyring parses and checks contacts' keys at one time, each key once
// per run, and keeps of a usable key only the encryption key that copies
// are made with (a pgpmime.Recipient, a few hundred bytes), never the
// parsed certificate: ten thousand parsed certificates take about 190 MB.
// It is safe for concurrent use.
type keyring struct {
	t  time.Time
	mu sync.Mutex
	m  map[string]keyInfo // by armored key
}

type keyInfo struct {
	rcpt *pgpmime.Recipient
	err  error // why the key cannot be used; nil with rcpt
}

func newKeyring(t time.Time) *keyring {
	return &keyring{t: t, m: map[string]keyInfo{}}
}

// add parses and checks, in parallel, the keys of contacts not seen yet.
func (k *keyring) add(contacts []directory.Contact) {
	var todo []string
	k.mu.Lock()
	queued := map[string]bool{}
	for _, c := range contacts {
		if c.Key == nil {
			continue
		}
		if _, ok := k.m[c.Key.Armored]; !ok && !queued[c.Key.Armored] {
			queued[c.Key.Armored] = true
			todo = append(todo, c.Key.Armored)
		}
	}
	k.mu.Unlock()
	states := make([]keyInfo, len(todo))
	pgpmime.Parallel(len(todo), 0, func(i int) { states[i] = k.parse(todo[i]) })
	k.mu.Lock()
	for i, a := range todo {
		k.m[a] = states[i]
	}
	k.mu.Unlock()
}

func (k *keyring) parse(armored string) keyInfo {
	pub, err := keys.ParsePublicOneAt([]byte(armored), k.t)
	if err == nil {
		err = pub.Check(k.t)
	}
	if err != nil {
		return keyInfo{err: err}
	}
	r, err := pgpmime.NewRecipient(pub, k.t)
	return keyInfo{rcpt: r, err: err}
}

// state returns what is known of c's key, parsing it now if it was not
// added before.
func (k *keyring) state(c *directory.Contact) keyInfo {
	if c.Key == nil {
		return keyInfo{err: keys.ErrNoKey}
	}
	k.mu.Lock()
	s, ok := k.m[c.Key.Armored]
	k.mu.Unlock()
	if ok {
		return s
	}
	s = k.parse(c.Key.Armored)
	k.mu.Lock()
	k.m[c.Key.Armored] = s
	k.mu.Unlock()
	return s
}

// usable reports why c's key cannot be used at the keyring's time, or nil.
func (k *keyring) usable(c *directory.Contact) error { return k.state(c).err }
