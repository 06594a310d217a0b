// Package pgpmime builds and reads OpenPGP mail: PGP/MIME (RFC 3156) with
// protected headers (draft-autocrypt-lamps-protected-headers, "v1"), on
// github.com/emersion/go-message and github.com/ProtonMail/go-crypto
// (openpgp/v2 and its packet package).
//
// A digest (or a list post) is built in five steps, each done once per
// digest except the last two:
//
//	inner, _ := BuildInner(protected, parts)   // multipart/mixed, real headers inside
//	signed, _ := Sign(inner, dirKey)            // multipart/signed (RFC 3156 §5), one signature
//	enc, _ := NewEncrypter(signed, now)         // literal data packet compressed once
//	sealed := enc.Seal(nil)                     // encrypted once: one session key, one SEIPDv1 packet
//	r, _ := NewRecipient(rcptKey, now)          // per recipient: its encryption key, chosen once
//	c, _ := sealed.Copy(r, outer, nil)          // per recipient: its PKESK and headers
//
// A Copy is the recipient's whole multipart/encrypted mail as a head, a
// shared part (the armored encrypted entity, the same bytes for every
// copy, stored once by the outbox) and a tail. Encrypt and BuildEncrypted
// make the same mail for one recipient alone.
//
// A personal reply is signed and encrypted in one OpenPGP message whose
// signature names its recipient (RFC 3156 §6.2): SignEncrypt.
//
// Reading: Open decrypts a multipart/encrypted message, Verify checks a
// multipart/signed entity, ParseInner returns the protected headers and the
// parts of an inner entity.
//
// Output choices that matter for interoperability (see the dependency
// notes): the encrypted data is SEIPDv1 with MDC and AES-256 (GnuPG 2.2
// cannot read SEIPDv2), and every armor carries the CRC-24 line (GnuPG 2.2
// rejects armor without it when the base64 text has no '=' padding).
//
// Header data never becomes header structure: text with control characters
// (CR, LF, ...) and malformed addresses are refused with ErrHeader instead
// of being encoded into something else; non-ASCII text is encoded per
// RFC 2047 (headers) and RFC 2231 (file names).
//
// Output is deterministic: MIME boundaries are derived from a hash of the
// content, so the same input gives the same bytes. Only the OpenPGP layers
// use randomness.
package pgpmime
