package fanout

import (
	"sync"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Keys reads contacts' registered keys for sending. Each registered key
// is parsed once per Keys and checked at the time asked; its verdict at
// the last time asked is kept. Any failure to read or check a registered
// key is a verdict on that key (the recipient is skipped), never a
// failure of the run.
//
// A Keys made by NewKeys keeps of a usable key only the encryption key
// that copies are made with (a pgpmime.Recipient, a few hundred bytes),
// never the parsed certificate: ten thousand parsed certificates take
// about 190 MB. Asked at another time, it parses the key again. That is
// the cache of one run (a digest, at one time).
//
// A Keys made by NewKeysKept keeps the parsed certificates, for an
// instance that sends at many times (the relay, one post after another):
// a key is parsed once for the life of the instance, and only checked
// again at each new time. A key registered anew (same fingerprint, other
// armored text) replaces the old one.
//
// A Keys is safe for concurrent use.
type Keys struct {
	keep bool
	mu   sync.Mutex
	m    map[string]*keyEntry // by fingerprint
}

type keyEntry struct {
	armored string

	mu   sync.Mutex // the entry is read and checked by one goroutine at a time
	pub  *keys.Public
	perr error // why the key could not be parsed (kept certificates only)
	at   time.Time
	done bool // rcpt and err hold the verdict at at
	rcpt *pgpmime.Recipient
	err  error
	// until is when the key stops working (keys.Public.UsableUntil) as
	// read at at; read says the key could be parsed.
	until time.Time
	read  bool
}

// NewKeys returns the key cache of one run.
func NewKeys() *Keys { return &Keys{m: map[string]*keyEntry{}} }

// NewKeysKept returns the key cache of an instance: it keeps parsed
// certificates.
func NewKeysKept() *Keys { return &Keys{keep: true, m: map[string]*keyEntry{}} }

func (c *Keys) entry(k *directory.Key) *keyEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k.Fingerprint]
	if !ok || e.armored != k.Armored {
		e = &keyEntry{armored: k.Armored}
		c.m[k.Fingerprint] = e
	}
	return e
}

// Recipient returns the key to encrypt k's copies to at t, or why k
// cannot be used (keys.ErrNoKey for a nil k).
func (c *Keys) Recipient(k *directory.Key, t time.Time) (*pgpmime.Recipient, error) {
	if k == nil {
		return nil, keys.ErrNoKey
	}
	e := c.verdict(k, t)
	defer e.mu.Unlock()
	return e.rcpt, e.err
}

// verdict returns k's entry, locked, holding its verdict at t (checked
// now unless it is the one cached for t).
func (c *Keys) verdict(k *directory.Key, t time.Time) *keyEntry {
	e := c.entry(k)
	e.mu.Lock()
	if !e.done || !e.at.Equal(t) {
		_, e.rcpt, e.err = c.check(e, t)
		e.at, e.done = t, true
	}
	return e
}

// Err reports why k cannot be used at t, or nil.
func (c *Keys) Err(k *directory.Key, t time.Time) error {
	_, err := c.Recipient(k, t)
	return err
}

// Public returns k's parsed certificate, checked at t, for a message
// signed and encrypted to it alone (pgpmime.SignEncrypt); or why k cannot
// be used. A Keys made by NewKeys parses it for this call.
func (c *Keys) Public(k *directory.Key, t time.Time) (*keys.Public, error) {
	if k == nil {
		return nil, keys.ErrNoKey
	}
	e := c.entry(k)
	e.mu.Lock()
	defer e.mu.Unlock()
	pub, rcpt, err := c.check(e, t)
	e.rcpt, e.err, e.at, e.done = rcpt, err, t, true
	if err != nil {
		return nil, err
	}
	return pub, nil
}

// UsableUntil returns when k stops working for the directory, as read
// at t (keys.Public.UsableUntil: the earliest of the primary key's
// expiry and the latest expiries of its encryption and signing keys;
// zero: never), whether or not k can be used at t; false when there is
// no key or it cannot be read. It answers from the verdict cached at t.
func (c *Keys) UsableUntil(k *directory.Key, t time.Time) (time.Time, bool) {
	if k == nil {
		return time.Time{}, false
	}
	e := c.verdict(k, t)
	defer e.mu.Unlock()
	return e.until, e.read
}

// Load reads and checks the given keys at t, in parallel; nil keys are
// passed over. Later calls of Recipient at t answer from the cache.
func (c *Keys) Load(ks []*directory.Key, t time.Time) {
	pgpmime.Parallel(len(ks), 0, func(i int) {
		if ks[i] != nil {
			c.Recipient(ks[i], t) //nolint:errcheck // the verdict is cached
		}
	})
}

// LoadContacts is Load for the keys of contacts.
func (c *Keys) LoadContacts(contacts []directory.Contact, t time.Time) {
	ks := make([]*directory.Key, 0, len(contacts))
	seen := map[*directory.Key]bool{}
	for i := range contacts {
		if k := contacts[i].Key; k != nil && !seen[k] {
			seen[k] = true
			ks = append(ks, k)
		}
	}
	c.Load(ks, t)
}

// check parses (unless kept) and checks e's key at t; e.mu is held.
func (c *Keys) check(e *keyEntry, t time.Time) (*keys.Public, *pgpmime.Recipient, error) {
	e.until, e.read = time.Time{}, false
	pub := e.pub
	if pub == nil {
		var err error
		if c.keep {
			if e.perr != nil {
				return nil, nil, e.perr
			}
			pub, err = keys.ParsePublicOne([]byte(e.armored))
			e.pub, e.perr = pub, err
		} else {
			pub, err = keys.ParsePublicOneAt([]byte(e.armored), t)
		}
		if err != nil {
			return nil, nil, err
		}
	}
	// At t, as Check, which then reuses the signatures verified.
	e.until, e.read = pub.UsableUntil(t), true
	if err := pub.Check(t); err != nil {
		return nil, nil, err
	}
	r, err := pgpmime.NewRecipient(pub, t)
	if err != nil {
		return nil, nil, err
	}
	return pub, r, nil
}
