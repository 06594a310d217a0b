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

// keyHint adds to err, if it is about a contact's key (export.KeyError),
// the hint of what to do.
func keyHint(err error) error {
	var ke *export.KeyError
	switch {
	case !errors.As(err, &ke):
		return err
	case errors.Is(ke.Err, export.ErrNoUserID):
		return withHint(err, "use --any-uid to accept it anyway, once you have checked the fingerprint with the contact")
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
