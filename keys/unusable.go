package keys

import "errors"

// unusable are the errors that mean a key cannot be sent to: every error
// Check returns, and ErrNoKey for a contact without one.
var unusable = []error{ErrNoKey, ErrExpired, ErrRevoked, ErrNoEncryptionKey, ErrNoSigningKey, ErrWeakKey, ErrUnsupportedKey, ErrNoValidSelfSig}

// Unusable reports whether err says that a key cannot be used to send to
// (no key, expired, revoked, weak, without a valid self-signature or a
// usable encryption or signing key): the recipient is skipped, and told
// why where that can be said. Any other error is a failure of the
// machinery, and the run stops.
func Unusable(err error) bool {
	for _, e := range unusable {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Reason is why a key cannot be used, in a few words, for a list of
// recipients who got no copy.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrNoKey):
		return "no key"
	case errors.Is(err, ErrExpired):
		return "key expired"
	case errors.Is(err, ErrRevoked):
		return "key revoked"
	case errors.Is(err, ErrNoEncryptionKey):
		return "key has no usable encryption subkey"
	case errors.Is(err, ErrWeakKey):
		return "key too weak"
	case errors.Is(err, ErrUnsupportedKey):
		return "key algorithm not supported"
	}
	return "unusable key"
}
