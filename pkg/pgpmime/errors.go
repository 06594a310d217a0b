package pgpmime

import "errors"

// Sentinel errors; functions wrap them with detail, so compare with errors.Is.
var (
	// ErrHeader: a header value (name, address, subject, file name,
	// parameter, message ID, extra field) is malformed or contains control
	// characters such as CR or LF.
	ErrHeader = errors.New("invalid header value")
	// ErrEntity: an entity given to Sign or SignEncrypt is not a CRLF MIME
	// entity with a header.
	ErrEntity = errors.New("invalid MIME entity")
	// ErrTooLarge: an input is larger than its limit.
	ErrTooLarge = errors.New("input too large")
	// ErrMalformed: a message or entity being read does not have the
	// expected PGP/MIME structure.
	ErrMalformed = errors.New("malformed PGP/MIME message")
	// ErrBadSignature: a signature does not verify, or was made by a key
	// outside the keyring.
	ErrBadSignature = errors.New("bad signature")
	// ErrDecrypt: the message cannot be decrypted with the given key.
	ErrDecrypt = errors.New("cannot decrypt message")
)
