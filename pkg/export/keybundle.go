package export

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// ErrNoUserID is the Err of a [KeyError] for a key none of whose user IDs
// carries the contact's email.
var ErrNoUserID = errors.New("no user ID with the contact's email")

// KeyError says why a key cannot be a contact's ([ContactKey]): it cannot
// be used (Err from [keys.Public.Check]), or it is someone else's
// ([ErrNoUserID]).
type KeyError struct {
	Fingerprint string
	Email       string   // the contact's
	UserIDs     []string // the key's, as they are
	Err         error
}

func (e *KeyError) Error() string {
	if errors.Is(e.Err, ErrNoUserID) {
		q := make([]string, len(e.UserIDs))
		for i, u := range e.UserIDs {
			q[i] = strconv.QuoteToGraphic(u)
		}
		return fmt.Sprintf("key %s has no user ID with %s (it has: %s)", e.Fingerprint, e.Email, strings.Join(q, ", "))
	}
	return fmt.Sprintf("key %s for %s: %v", e.Fingerprint, e.Email, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// ContactKey is the one check that pub may be the key of the contact
// with email: usable at now, with a user ID that carries email. It
// returns the key as the directory keeps it. With anyUID a key without
// such a user ID is accepted, and noUID says so (for the caller's
// warning). Errors of the check are [*KeyError].
func ContactKey(pub *keys.Public, email string, anyUID bool, now time.Time) (k *directory.Key, noUID bool, err error) {
	if err := pub.Check(now); err != nil {
		return nil, false, &KeyError{Fingerprint: pub.Fingerprint, Email: email, UserIDs: pub.UserIDs, Err: err}
	}
	if !pub.HasEmail(email) {
		if !anyUID {
			return nil, false, &KeyError{Fingerprint: pub.Fingerprint, Email: email, UserIDs: pub.UserIDs, Err: ErrNoUserID}
		}
		noUID = true
	}
	k, err = KeyOf(pub)
	return k, noUID, err
}

// KeyOf is pub as the directory keeps it (its minimal form,
// keys.Public.Armored), unchecked: [ContactKey] is the check of a
// contact's key.
func KeyOf(pub *keys.Public) (*directory.Key, error) {
	armored, err := pub.Armored()
	if err != nil {
		return nil, err
	}
	k := &directory.Key{
		Fingerprint: pub.Fingerprint,
		Algorithm:   pub.Algorithm,
		Created:     pub.Created.UTC().Format(time.RFC3339),
		Armored:     string(armored),
	}
	if !pub.Expires.IsZero() {
		k.Expires = pub.Expires.UTC().Format(time.RFC3339)
	}
	return k, nil
}

// Refreshed is a refresh of a contact's registered key, as
// [RefreshedKey] takes it.
type Refreshed struct {
	Key     *directory.Key
	NoUID   bool              // taken without a user ID for the email (anyUID)
	Revoked []keys.Revocation // the revocations the refresh brings
	// Unusable is why the refreshed key cannot be sent to any more (an
	// error of [keys.Public.Check]); only ever set with Revoked.
	Unusable error
}

// RefreshedKey is the one check of merged, a refresh of reg (the
// contact's registered key) by [keys.Public.Refresh], for the contact
// with email. A refresh that brings a revocation by the key's own
// primary key (of the key, or of a subkey) is always taken, usable or
// not: only the key's owner can make one, and it can only disable; the
// contact then gets nothing encrypted to the key, which the caller says
// (Unusable). Any other refresh must leave a key that [ContactKey]
// accepts; the fingerprint is the contact's already, so a registered key
// without a user ID for the email stays acceptable without one.
func RefreshedKey(reg, merged *keys.Public, email string, anyUID bool, now time.Time) (*Refreshed, error) {
	if revs := merged.RevocationsSince(reg); len(revs) > 0 {
		k, err := KeyOf(merged)
		if err != nil {
			return nil, err
		}
		return &Refreshed{Key: k, Revoked: revs, Unusable: merged.Check(now)}, nil
	}
	k, noUID, err := ContactKey(merged, email, anyUID || !reg.HasEmail(email), now)
	if err != nil {
		return nil, err
	}
	return &Refreshed{Key: k, NoUID: noUID && anyUID}, nil
}

// KeyBundle is a bundle of public keys (as `gpg --export --armor` writes,
// or [WriteKeys]), found by fingerprint ([KeyBundle.Fingerprint]: what an
// export names for each contact, whatever the key's user IDs say) or by
// the emails of their user IDs, normalized ([KeyBundle.Email]: for input
// that names no fingerprint). A nil *KeyBundle holds no key.
type KeyBundle struct {
	byFpr   map[string]*keys.Public
	byEmail map[string][]*keys.Public // distinct keys, in the bundle's order
}

// DuplicateKeyError is the error of [KeyBundle.Email] for a bundle with
// two keys for one email.
type DuplicateKeyError struct {
	Email         string
	First, Second string // fingerprints
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("two keys for %s: %s and %s", e.Email, e.First, e.Second)
}

// ParseKeyBundle parses every key of data. The same key twice is one key.
func ParseKeyBundle(data []byte) (*KeyBundle, error) {
	pubs, err := keys.ParsePublic(data)
	if err != nil {
		return nil, err
	}
	return NewKeyBundle(pubs...), nil
}

// NewKeyBundle is the bundle of pubs, each filed under its fingerprint
// and each email of its user IDs (user IDs without a valid email are
// ignored).
func NewKeyBundle(pubs ...*keys.Public) *KeyBundle {
	b := &KeyBundle{byFpr: map[string]*keys.Public{}, byEmail: map[string][]*keys.Public{}}
	for _, p := range pubs {
		fpr := strings.ToUpper(p.Fingerprint)
		if _, ok := b.byFpr[fpr]; ok {
			continue
		}
		b.byFpr[fpr] = p
		for _, e := range p.Emails {
			n, err := directory.NormalizeEmail(e)
			if err != nil || slices.Contains(b.byEmail[n], p) {
				continue
			}
			b.byEmail[n] = append(b.byEmail[n], p)
		}
	}
	return b
}

// Len is the number of keys in b.
func (b *KeyBundle) Len() int {
	if b == nil {
		return 0
	}
	return len(b.byFpr)
}

// Fingerprint is the key of b with fingerprint fpr, or nil.
func (b *KeyBundle) Fingerprint(fpr string) *keys.Public {
	if b == nil {
		return nil
	}
	return b.byFpr[strings.ToUpper(fpr)]
}

// Email is the one key of b with a user ID for email (normalized), nil
// if none has one, a [*DuplicateKeyError] if several have.
func (b *KeyBundle) Email(email string) (*keys.Public, error) {
	if b == nil {
		return nil, nil
	}
	ps := b.byEmail[email]
	switch len(ps) {
	case 0:
		return nil, nil
	case 1:
		return ps[0], nil
	}
	return nil, &DuplicateKeyError{Email: email, First: ps[0].Fingerprint, Second: ps[1].Fingerprint}
}
