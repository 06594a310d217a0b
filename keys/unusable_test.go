package keys

import (
	"errors"
	"fmt"
	"testing"
)

func TestUnusable(t *testing.T) {
	for _, tc := range []struct {
		err      error
		unusable bool
		reason   string
	}{
		{ErrNoKey, true, "no key"},
		{ErrExpired, true, "key expired"},
		{ErrRevoked, true, "key revoked"},
		{ErrNoEncryptionKey, true, "key has no usable encryption subkey"},
		{ErrNoSigningKey, true, "unusable key"},
		{ErrWeakKey, true, "key too weak"},
		{ErrNoValidSelfSig, true, "unusable key"},
		{ErrSecretKey, false, "unusable key"},
		{ErrTooLarge, false, "unusable key"},
		{ErrPassphraseRequired, false, "unusable key"},
		{ErrWrongPassphrase, false, "unusable key"},
		{ErrInsecurePermissions, false, "unusable key"},
		{ErrBadSignature, false, "unusable key"},
		{errors.New("disk full"), false, "unusable key"},
		{nil, false, "unusable key"},
	} {
		name := "nil"
		if tc.err != nil {
			name = tc.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			if got := Unusable(tc.err); got != tc.unusable {
				t.Errorf("Unusable(%v) = %v, want %v", tc.err, got, tc.unusable)
			}
			// Wrapped with detail, as Check and pgpmime return them.
			wrapped := fmt.Errorf("key of a@example.org: %w", fmt.Errorf("%w: key ABCD", tc.err))
			if tc.err != nil {
				if got := Unusable(wrapped); got != tc.unusable {
					t.Errorf("Unusable(%v) = %v, want %v", wrapped, got, tc.unusable)
				}
				if got := Reason(wrapped); got != tc.reason {
					t.Errorf("Reason(%v) = %q, want %q", wrapped, got, tc.reason)
				}
			}
		})
	}
}
