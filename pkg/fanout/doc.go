// Package fanout is what every service that mails contacts shares (the
// digest, the alert list, the answers to mail commands): the one key
// cache, the one answer to "can we send to this key", and the one
// sign-once / encrypt-per-recipient queueing path.
//
// [Keys] reads contacts' registered keys: each parsed once per run (a
// digest) or per instance (the relay), checked at the time asked, and
// kept as the pgpmime.Recipient that copies are encrypted to. Any failure
// to read a registered key skips that recipient; errors of the later
// steps (sealing a copy, signing and encrypting a reply) skip the
// recipient when keys.Unusable says so, and fail the run otherwise;
// keys.Reason says why in a few words.
//
// [Queue] is the fan-out: the caller signs each inner entity once and
// seals it once (pgpmime.Encrypter.Seal) for all who get it, and says per
// recipient which sealed entity, key and outer header; Queue makes the
// copies in parallel, stores each shared part once (outbox.PutBlobTx) and
// enqueues the copies in batches of BatchSize, in the caller's
// transaction (the relay: one post, one transaction) or one transaction
// per batch (a digest to thousands), and reports per recipient queued or
// skipped. What a copy says, and recording who got it, stay with the
// caller.
//
// [Personal] is the one builder of a message to one contact alone (the
// answers and notices of mail commands, the relay's reply to a post it
// did not relay): signed and encrypted to the contact's key in one
// OpenPGP message (pgpmime.SignEncrypt), read through Keys.Public; the
// caller enqueues it with whatever else its transaction queues.
//
// fanout knows nothing of digests, lists or commands: it imports pgpmime,
// outbox, keys and directory, never digest, relay, mailcmd or receive.
package fanout
