package export

import (
	"fmt"
	"time"
)

// KeyChange is the directory's last change of key (ccdir rekey), as
// replies and digests tell it: during the overlap (until Until), or for
// as long as it is the last one when the old key was revoked (a
// compromise), every reply and digest says so at the top of its text and
// carries Keys, the new key and beside it the old one (with its
// revocation when revoked), as KeyChangeFile.
type KeyChange struct {
	Old, New string    // the fingerprints
	Replaced time.Time // the time of the rekey entry
	Until    time.Time // the end of the overlap (rollover.overlap)
	Revoked  bool
	Reason   string // of the revocation
	Keys     []byte // armored: the new key, then the old one
}

// KeyChangeFile is the name of the attachment that carries the
// directory's key (DirectoryKeyFile), and KeyChange.Keys while a
// rekey is told.
const KeyChangeFile = "directory-key.asc"

// Told reports whether messages made at now tell of k.
func (k *KeyChange) Told(now time.Time) bool {
	return k != nil && (k.Revoked || now.Before(k.Until))
}

// Notice is what a message made at now says of k, a paragraph ending in
// a blank line; "" when it says nothing (Told).
func (k *KeyChange) Notice(now time.Time) string {
	if !k.Told(now) {
		return ""
	}
	day := func(t time.Time) string { return t.UTC().Format("2006-01-02") }
	if k.Revoked {
		return fmt.Sprintf(`THE DIRECTORY'S KEY CHANGED on %s, AND ITS OLD KEY IS REVOKED.
The directory's key is now %s.
The old key %s was revoked (%s): do not encrypt to it and
trust nothing signed by it after %s; it opens no mail to the directory.
The new key and the old one with its revocation are attached as %s.
Check the new key's fingerprint with the directory's operator by another
way than this mail before you trust it.

`, day(k.Replaced), k.New, k.Old, k.Reason, day(k.Replaced), KeyChangeFile)
	}
	return fmt.Sprintf(`The directory's key changed on %s: it is now
%s, certified by the old key
%s (gpg --check-sigs shows it). Mail encrypted to the old key is
accepted until %s. Both keys are attached as %s.

`, day(k.Replaced), k.New, k.Old, day(k.Until), KeyChangeFile)
}

// DirectoryKeyFile is the name of the directory's public key attached
// to every digest (and named by its text, WriteBody).
const DirectoryKeyFile = "directory-key.asc"
