// Package mailcmd is the language of the signed mail commands members send
// to the directory: Parse reads the command block of a signed text, and
// Handler runs an accepted mail (see package inbound) against the
// directory and queues its answer.
//
// One mail is handled in one transaction of the directory: the signature
// is marked seen (a replay runs nothing), each change is a ledger entry
// whose actor is "member:FINGERPRINT" and whose evidence is the signed
// mail, and the messages it causes are queued in the outbox:
//
//   - one reply (kind "reply") to the sender's registered address,
//     encrypted to its registered key and signed by the directory in one
//     OpenPGP message (RFC 3156 §6.2), listing each command and its result;
//     at most Config.RepliesPerHour per contact;
//   - one notice (kind "notify") per contact concerned by a change: the
//     changed contact at its previous address and key, and the other
//     contacts of its ccTLDs, so that no entry changes silently;
//   - the digest asked for with DIGEST (kind "digest-request");
//   - the possession challenge of a pending key change (kind "key-proof",
//     liveness.KindProof), to the sender's address encrypted to the new
//     key alone, sent whatever the reply cap.
//
// Replies and notices are built by fanout.Personal, the contacts' keys
// read through the Handler's fanout.Keys (each parsed once per Handler,
// checked at each mail's time). A contact whose key keys.Unusable
// refuses gets no reply or notice (it cannot be sent unencrypted); the
// Result says so.
//
// Decisions the issue left open:
//
//   - a mail with any invalid line runs nothing (as Schleuder does); a
//     command that fails while running (a refusal) rolls back every change
//     of the mail, later commands do not run, and only the reply is sent;
//   - the reply of a DRY-RUN or of a failed mail quotes the head the
//     mail found (one that exists), "unchanged", and for a DRY-RUN how
//     many ledger entries the mail would add, never the serial and hash
//     its rolled-back changes reached;
//   - SET PHONE replaces the regular numbers and keeps the emergency one;
//     SET EMERGENCY-PHONE replaces the emergency number and keeps the
//     regular ones; "none" clears, but one number always remains;
//   - ADD-CONTACT takes a phone before the name (the directory requires
//     one): ADD-CONTACT <tld> <email> <phone> <name...>; it adds a
//     security contact; an existing contact of another ccTLD just gets
//     the role (no key needed);
//   - KEY-ROTATE and ADD-CONTACT take the one attached key with a user ID
//     for the email (and, for KEY-ROTATE, another fingerprint than the
//     current one), usable now;
//   - KEY-REFRESH takes an attached newer copy of the sender's registered
//     key (the same fingerprint: a later expiry, new subkeys), merged into
//     the registered copy (keys.Public.Refresh), as a key.refresh entry,
//     announced like any change; when the refreshed key still stops
//     working (keys.Public.UsableUntil) before its primary key expires
//     (a subkey not extended), or no later than before, the reply warns,
//     naming the subkey, its expiry and the gpg command that extends it;
//     a copy that is not newer changes nothing;
//     KEY-ROTATE with only the registered key attached is refused with a
//     pointer to KEY-REFRESH (a refresh is not a key change); a copy with
//     the owner's revocation is always taken (export.RefreshedKey), and as
//     the revoked key can get nothing, the sender gets no reply (never an
//     unencrypted one) while the other contacts of its ccTLDs are told;
//   - REMOVE-CONTACT cannot remove the sender itself;
//   - authorize decides every command, per ccTLD with its status: a
//     sender needs a role for an active ccTLD, and ADD-CONTACT and
//     REMOVE-CONTACT on a ccTLD need that ccTLD active and the sender
//     its admin (an inactive ccTLD's contacts are the operator's);
//   - after KEY-ROTATE the reply is encrypted to the new key, the notice
//     to the old one;
//   - a KEY-ROTATE signed by the registered key alone, and every SET
//     EMAIL, are pending changes (liveness.Propose) due after
//     Config.ChangeDelay, announced as requests; a pending key change
//     also sends a challenge (kind "key-proof") encrypted to the new key
//     alone, answered with CONFIRM <id> <token> signed by the registered
//     key, without which it expires; VETO <id> stops a waiting change,
//     by the contact it concerns or an admin of one of its active ccTLDs;
//   - queries after a change in the same mail see the change; DIGEST sends
//     the digest of the directory as it was before the mail.
package mailcmd
