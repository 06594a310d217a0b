// Package fanout is what every service that mails contacts shares (the
// digest, the alert list, the answers to mail commands): the one key
// cache and the one answer to "can we send to this key".
//
// [Keys] reads contacts' registered keys: each parsed once per run (a
// digest) or per instance (the relay), checked at the time asked, and
// kept as the pgpmime.Recipient that copies are encrypted to. Any failure
// to read a registered key skips that recipient; errors of the later
// steps (sealing a copy, signing and encrypting a reply) skip the
// recipient when keys.Unusable says so, and fail the run otherwise;
// keys.Reason says why in a few words.
//
// fanout knows nothing of digests, lists or commands: it imports pgpmime,
// outbox, keys and directory, never digest, relay, mailcmd or receive.
package fanout
