// Package keys holds the directory's own OpenPGP key ([Secret]) and the
// public keys of members ([Public]).
//
// It is built on github.com/ProtonMail/go-crypto/openpgp/v2, which (unlike the
// classic openpgp package) honours [packet.Config.MinRSABits] and reports why
// a key is unusable. Keys are generated as v4 keys, because GnuPG 2.2 cannot
// read v6 keys.
//
// Every error that describes an unusable key wraps one of the sentinel errors
// (ErrExpired, ErrRevoked, ...), so callers can pick a hint with [errors.Is].
//
// Input limits: a single key file may hold at most [MaxKeyBytes], a bundle of
// keys at most [MaxBundleBytes]; signatures given to Verify at most
// [MaxSignatureBytes].
//
// The package imports nothing from the rest of ccdir.
package keys
