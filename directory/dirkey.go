package directory

import (
	"errors"
	"strings"
)

// SetDirectoryKey records armored, a newer copy of the directory's own
// key (the same fingerprint: user IDs added or revoked, a new expiry), as
// the directory's public key: a directory.key ledger entry, which replays
// only onto the same fingerprint; another key is a rollover, not this.
// With Options.Fingerprints the copy must be that key and keep every
// subkey of the recorded one. The same copy again is ErrUnchanged.
func (t *Tx) SetDirectoryKey(armored string) (Info, error) {
	info, err := readInfo(t.ctx, t.tx)
	if err != nil {
		return info, err
	}
	if strings.TrimSpace(armored) == "" {
		return info, &FieldError{Field: "public_key", Value: "", Err: errors.New("no key")}
	}
	if armored == info.PublicKey {
		return info, ErrUnchanged
	}
	old := &Key{Fingerprint: info.KeyFingerprint, Armored: info.PublicKey}
	if err := t.checkRefresh(old, &Key{Fingerprint: info.KeyFingerprint, Armored: armored}); err != nil {
		return info, err
	}
	if err := t.append(opDirectoryKey, directoryKeyPayload{Fingerprint: info.KeyFingerprint, PublicKey: armored}); err != nil {
		return info, err
	}
	info.PublicKey = armored
	return info, nil
}
