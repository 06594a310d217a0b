package keys

import "errors"

// Sentinel errors. Functions wrap them with detail (a fingerprint, a date),
// so compare with errors.Is.
var (
	// ErrNoKey: the input holds no OpenPGP key.
	ErrNoKey = errors.New("no openpgp key found")
	// ErrSecretKey: the input holds secret key material where a public key
	// was expected. Secret keys are never accepted by mistake.
	ErrSecretKey = errors.New("input contains secret key material")
	// ErrTooLarge: the input is larger than the limit for its kind.
	ErrTooLarge = errors.New("input too large")

	// ErrExpired: the primary key (or its self-signature) has expired.
	ErrExpired = errors.New("key expired")
	// ErrRevoked: the key carries a valid revocation signature.
	ErrRevoked = errors.New("key revoked")
	// ErrNoEncryptionKey: no valid encryption-capable (sub)key.
	ErrNoEncryptionKey = errors.New("no usable encryption key")
	// ErrNoSigningKey: no valid signing-capable (sub)key.
	ErrNoSigningKey = errors.New("no usable signing key")
	// ErrWeakKey: an algorithm or key size below the accepted minimum
	// (RSA below 2048 bits, rejected curves or algorithms).
	ErrWeakKey = errors.New("weak key")
	// ErrNoValidSelfSig: no user ID carries a valid self-signature at the time
	// of the check. A self-signature dated in the future (a fresh key and a
	// clock running behind) ends up here too.
	ErrNoValidSelfSig = errors.New("no valid self-signature")

	// ErrPassphraseRequired: the secret key is encrypted and no passphrase
	// was given.
	ErrPassphraseRequired = errors.New("secret key is encrypted, passphrase required")
	// ErrWrongPassphrase: the passphrase does not decrypt the secret key.
	ErrWrongPassphrase = errors.New("wrong passphrase")
	// ErrInsecurePermissions: a file holding a secret (the directory's
	// secret key, a passphrase, a password) is accessible by group or
	// others (OpenPrivateFile).
	ErrInsecurePermissions = errors.New("insecure permissions")

	// ErrBadSignature: a signature does not verify.
	ErrBadSignature = errors.New("bad signature")
)
