package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
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

// contactKey checks that pub is usable now and belongs to email, and
// returns it as the directory keeps it. With anyUID a key without a user
// ID for email is accepted and a warning returned.
func contactKey(pub *keys.Public, email string, anyUID bool, now time.Time) (*directory.Key, string, error) {
	if err := pub.Check(now); err != nil {
		return nil, "", withHint(fmt.Errorf("key %s for %s: %w", pub.Fingerprint, email, err),
			"ask the contact for a current key with an encryption subkey")
	}
	var warning string
	if !pub.HasEmail(email) {
		if !anyUID {
			return nil, "", withHint(fmt.Errorf("key %s has no user ID with %s (it has: %s)", pub.Fingerprint, email, quoteAll(pub.UserIDs)),
				"use --any-uid to accept it anyway, once you have checked the fingerprint with the contact")
		}
		warning = fmt.Sprintf("key %s has no user ID with %s; accepted because of --any-uid", pub.Fingerprint, email)
	}
	armored, err := pub.Armored()
	if err != nil {
		return nil, "", err
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
	return k, warning, nil
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
