// Package inbound is the one pipeline every incoming message goes through,
// whether it arrives over SMTP/LMTP (ccdir serve) or from an MTA pipe
// (ccdir process): [Pipeline.Process] reads one message and returns either
// an [Accepted] message (a fresh, unseen signature by the registered key of
// an active contact, bound to this directory) or a [*Refusal] that says why
// in one line.
//
// Checks, in order:
//
//  1. size: at most Config.MaxMessageBytes are read;
//  2. the header, with go-message and a cap on its size;
//  3. mail loops, which are dropped silently (Refusal.Drop): an empty
//     envelope sender (a bounce), Auto-Submitted other than "no",
//     Precedence bulk, list or junk, our own address as From or envelope
//     sender, an X-Loop naming us;
//  4. the MIME structure, with caps on depth and part count;
//  5. the form: PGP/MIME encrypted (RFC 3156 §6.1 nested or §6.2
//     combined), PGP/MIME signed, inline clear-signed text, an inline
//     armored OpenPGP message (encrypted or only signed); a text/plain
//     alternative of text/html is read; Exchange-mangled PGP/MIME (the
//     encrypted parts inside multipart/mixed) is repaired. Decryption is
//     capped (MaxDecompressedMessageSize and a limit on the plaintext).
//     Clear-signed text is read as UTF-8 whatever the unsigned MIME
//     charset says; bytes that are not UTF-8, or a declared charset that
//     would read them differently, are refused;
//  6. the signature verifies, and its issuer (primary key or subkey) is the
//     registered key of a contact with a role for an active ccTLD;
//  7. that key is usable now, not only when it signed (go-crypto judges a
//     key at the signature's time);
//  8. freshness: now-Window ≤ signature time ≤ now+Skew;
//  9. binding: the address the message was sent to is named on a
//     "DIRECTORY <address>" line of the command block of the signed text
//     ([ScanBlock]: from the first non-blank line up to a blank line, a
//     signature delimiter or a quoted line), or in a signed (protected)
//     To or Cc header of the signed MIME entity. Accepted.Block is that
//     block and Accepted.Binding says which of the two bound it, so that
//     the mail commands and the list read the same block and need not
//     read the message again;
//  10. replay: the signature was not seen before (table seen_signatures),
//     and is not older than what was forgotten (seen_horizon).
//
// The From header is never used for identity: the sender is the contact
// whose key made the signature.
//
// # Who is told
//
// Every refusal has a [Kind]; one table decides, per kind, whether the
// signer is told why ([Kind.Tellable]). A refusal names its [Signer] only
// when the signature verified against a contact's registered key and is
// not a replay (seen, or older than the horizon), so an answer can go
// only to the member who signed, at the registered address, and never
// to whoever sent a copy. The answer itself is the caller's (package
// receive).
//
// # Replay protection
//
// The replay id (Accepted.Seen) is a SHA-256 over what the signature
// covers: the signer's fingerprint, the hashed part of the signature
// packet (type, time, hashed subpackets) and a digest of the signed
// content. It is not a hash of the signature packet bytes: the unhashed
// subpacket area (and an ECDSA signature's s value) can be changed by
// anyone without breaking the signature, which would let an attacker replay
// a signature under a new id. The caller marks the id seen with MarkSeen in
// the same transaction that executes the commands.
//
// Seen ids are kept for the longer of the window and SeenRetention (plus
// the skew), so that a run with a shorter commands.window does not forget
// what a run with a longer one still accepts. What Prune deletes is
// recorded as a horizon (table seen_horizon, ForgottenBefore): a signature
// dated before it is refused whatever the window, since whether it was
// used is no longer known.
package inbound
