package liveness

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
)

// The proof of possession of a new key (issue 11, guarded key changes):
// a KEY-ROTATE signed by the registered key alone is a pending change
// (Propose), and the directory sends a challenge encrypted to the new key
// only, with a single-use token. Only the holder of the new key can read
// it; the member proves it by answering CONFIRM <id> <token> in a mail
// signed by the registered (old) key, and Prove records it. A key change
// whose proof never came is not applied at its due time.

// ConfirmVerb is the mail command that answers a possession challenge.
const ConfirmVerb = "CONFIRM"

// KindProof is the outbox kind of a possession challenge, to the new key
// of a pending key change.
const KindProof = "key-proof"

// NewProofToken makes the token of a possession challenge, as ping
// tokens are made (tokenOf: HMAC-SHA256 under secret, the home's outbox
// key, of a fresh nonce from rand), and returns it with the hash the
// pending change keeps (Pending.ProofHash; ProofHash of the token). The
// nonce is not kept: the token is sent once and cannot be made again, a
// read of the database gives neither.
func NewProofToken(secret []byte, rand io.Reader) (token, hash string, err error) {
	if len(secret) < 16 {
		return "", "", fmt.Errorf("liveness: no token secret")
	}
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", "", err
	}
	token = tokenOf(secret, fmt.Sprintf("proof %x", b))
	return token, ProofHash(token), nil
}

// ProofSubject is the protected Subject of a possession challenge.
func ProofSubject(info directory.Info) string {
	return info.Name + ": proof of your new key"
}

// ProofBody is the text of the possession challenge of the pending key
// change id: c (the contact as registered, with its current key) asked
// at requested to change to key newKey, due at due. It holds the line
// "CONFIRM <id> <token>" alone, to be copied into a mail signed by the
// current key. from is the directory's address.
func ProofBody(info directory.Info, from string, c *directory.Contact, newKey *directory.Key, id, token string, requested, due time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: proof of your new key\n\n", info.Name)
	fmt.Fprintf(&b, "At %s, a mail signed by the registered key\n%s of %s <%s>\nasked to change it to the key\n%s (change %s).\n\n",
		requested.UTC().Format(timeFormat), fingerprint(c.Key), c.Name, c.Email, newKey.Fingerprint, id)
	b.WriteString("This message is encrypted to that new key only: reading it proves that\nyou hold it. To prove it, answer with a mail to ")
	fmt.Fprintf(&b, "%s, signed with\nthe CURRENT key %s (the one the directory still\nhas for you), whose text begins with these two lines:\n\n", from, fingerprint(c.Key))
	fmt.Fprintf(&b, "DIRECTORY %s\n%s %s %s\n\n", from, ConfirmVerb, id, token)
	fmt.Fprintf(&b, "The token works once, for this change alone. Without the answer the\nchange is never made. With it, the new key takes effect at %s,\nunless the change is vetoed before then (VETO %s, signed by the\ncurrent key or by an admin contact of your ccTLD).\n",
		due.UTC().Format(timeFormat), id)
	b.WriteString("\nTo make a key change at once instead, sign the KEY-ROTATE mail with\nboth keys (gpg -u OLD -u NEW).\n")
	fmt.Fprintf(&b, "\n-- \n%s <%s>\nDirectory key %s\n", info.Name, from, info.KeyFingerprint)
	return b.String()
}
