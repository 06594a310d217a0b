// Package liveness keeps the directory true over time: reachability
// pings (a signed PONG proves that a contact's mailbox receives, its key
// decrypts and signs), key-expiry reminders, the pending key and email
// changes that wait for changes.delay unless proven at once, and the
// notices of every change of a contact's key, email or roles. Its tables
// are operational (not signed state): a PONG changes no ledger entry, so
// verify stays ok after any number of them.
package liveness
