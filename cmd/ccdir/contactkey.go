package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
)

// Size caps on key files read from the command line.
const (
	maxKeyFile    = 1 << 20
	maxBundleFile = 64 << 20
)

func readCapped(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, max)
	}
	return b, nil
}

// contactKey checks that pub is usable now and belongs to email
// (export.ContactKey), and returns it as the directory keeps it. With
// anyUID a key without a user ID for email is accepted and a warning
// returned.
func contactKey(pub *keys.Public, email string, anyUID bool, now time.Time) (*directory.Key, string, error) {
	k, noUID, err := export.ContactKey(pub, email, anyUID, now)
	if err != nil {
		return nil, "", keyHint(err)
	}
	var warning string
	if noUID {
		warning = fmt.Sprintf("key %s has no user ID with %s; accepted because of --any-uid", pub.Fingerprint, email)
	}
	return k, warning, nil
}

// What a key read from a file does to a contact's registered key.
type keyChange int

const (
	keyUnchanged keyChange = iota // the registered copy is as new
	keyNew                        // the contact had no key
	keyRefreshed                  // a newer copy of the registered key (same fingerprint)
	keyReplaced                   // another key, allowed by --replace
	keyRevoked                    // a copy of the registered key with a revocation that leaves it unusable
)

// replaceError refuses a key that would replace a contact's registered
// key without --replace.
type replaceError struct {
	email, old, new string
}

func (e *replaceError) Error() string {
	return fmt.Sprintf("%s already has key %s; not replaced by %s", e.email, e.old, e.new)
}

// planKey decides what pub does for contact c: a contact without a key
// gets it (checked by contactKey); a newer copy of the registered key
// (same fingerprint) is merged into it (keys.Public.Refresh), and a copy
// that is not newer changes nothing; another key replaces the registered
// one only with replace, and is otherwise a *replaceError. The key
// returned is the one to store.
func planKey(c directory.Contact, pub *keys.Public, anyUID, replace bool, now time.Time) (*directory.Key, keyChange, string, error) {
	switch {
	case c.Key == nil:
		k, warn, err := contactKey(pub, c.Email, anyUID, now)
		return k, keyNew, warn, err
	case c.Key.Fingerprint != pub.Fingerprint:
		if !replace {
			return nil, keyUnchanged, "", &replaceError{email: c.Email, old: c.Key.Fingerprint, new: pub.Fingerprint}
		}
		k, warn, err := contactKey(pub, c.Email, anyUID, now)
		return k, keyReplaced, warn, err
	}
	reg, err := keys.ParsePublicOne([]byte(c.Key.Armored))
	if err != nil {
		return nil, keyUnchanged, "", fmt.Errorf("the registered key of %s: %w", c.Email, err)
	}
	merged, err := reg.Refresh(pub)
	if errors.Is(err, keys.ErrNotNewer) {
		return nil, keyUnchanged, "", nil
	}
	if err != nil {
		return nil, keyUnchanged, "", err
	}
	r, err := export.RefreshedKey(reg, merged, c.Email, anyUID, now)
	if err != nil {
		return nil, keyUnchanged, "", keyHint(err)
	}
	var note string
	if r.NoUID {
		note = fmt.Sprintf("key %s has no user ID with %s; accepted because of --any-uid", pub.Fingerprint, c.Email)
	}
	if len(r.Revoked) > 0 {
		note = revokedNote(c.Email, r)
		if r.Unusable != nil {
			return r.Key, keyRevoked, note, nil
		}
	}
	return r.Key, keyRefreshed, note, nil
}

// revokedNote says what a refresh with revocations did to the contact
// with email: the key revoked, and that the contact gets nothing
// encrypted until a new key is registered; or which subkeys were
// revoked, when the key can still be used.
func revokedNote(email string, r *export.Refreshed) string {
	var what []string
	for _, rv := range r.Revoked {
		what = append(what, rv.String())
	}
	if r.Unusable == nil {
		return fmt.Sprintf("key %s of %s: %s; it can still be used", r.Key.Fingerprint, email, strings.Join(what, "; "))
	}
	head := fmt.Sprintf("key %s of %s is %s", r.Key.Fingerprint, email, strings.Join(what, "; "))
	if r.Revoked[0].Subkey != "" {
		head = fmt.Sprintf("key %s of %s: %s, so it cannot be used (%s)", r.Key.Fingerprint, email, strings.Join(what, "; "), keys.Reason(r.Unusable))
	}
	return head + fmt.Sprintf("; %s gets nothing encrypted until a new key is registered (ccdir key import FILE --replace %s)", email, email)
}

// keyHint adds to err, if it is about a contact's key (export.KeyError),
// the hint of what to do.
func keyHint(err error) error {
	var ke *export.KeyError
	switch {
	case !errors.As(err, &ke):
		return err
	case errors.Is(ke.Err, export.ErrNoUserID):
		return withHint(err, "use --any-uid to accept it anyway, once you have checked the fingerprint with the contact")
	case errors.Is(ke.Err, keys.ErrUnsupportedKey):
		return withHint(err, "ask the contact for a new key: %s", keys.NewKeyAdvice)
	case errors.Is(ke.Err, keys.ErrWeakKey):
		return withHint(err, "ask the contact for a new key of at least %d bits: %s", keys.MinRSABits, keys.NewKeyAdvice)
	}
	return withHint(err, "ask the contact for a current key with an encryption subkey")
}

// readOneKey reads a file that must hold exactly one public key.
func readOneKey(name string) (*keys.Public, error) {
	b, err := readCapped(name, maxKeyFile)
	if err != nil {
		return nil, err
	}
	pub, err := keys.ParsePublicOne(b)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", name, err)
	}
	return pub, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// quoteAll quotes texts from outside (user IDs of a key) so that control
// characters in them cannot reach the terminal.
func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.QuoteToGraphic(s)
	}
	return strings.Join(q, ", ")
}
