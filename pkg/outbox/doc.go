// Package outbox is the durable queue of outgoing mail and the transports
// that deliver it.
//
// Every message is first written to the table outbox in the directory's
// SQLite file, one row per (kind, ref, recipient), then handed to a
// Transport chosen by URL (see NewTransport):
//
//	smtp://[user@]host[:587][?starttls=off]   submission, STARTTLS required
//	smtps://[user@]host[:465]                 submission over implicit TLS
//	sendmail:/usr/sbin/sendmail               pipe to the local MTA
//	maildir:/path                             a maildir folder (the default)
//
// Messages that share a big part (a digest or a list post to many
// recipients) store it once: PutBlob stores the part, and each Message
// names it by Blob beside its own head (Data) and Tail. The part is
// deleted once every message that uses it is sent.
//
// A message accepted by the transport is marked sent at once (the results
// of parallel connections share a commit), and its body is dropped from
// the file; a connection sends its next message only after that. A crash
// therefore loses nothing, and the next Deliver re-sends at most the
// messages that were in flight. Temporary failures (4xx replies, network
// errors, timeouts, sendmail exit 75) are retried with exponential backoff
// until the message has waited longer than DeliverOptions.RetryFor;
// permanent ones (5xx) are marked failed with the server's answer.
//
// Every row carries a MAC made with Outbox.Key, a secret kept outside the
// database; Deliver sends only rows whose MAC checks out and marks the
// others failed (ErrUnauthentic), so that someone who can write the
// database but not the key cannot make the directory send their mail.
//
// The package never prints and never sees a password except through
// TransportOptions.Password.
package outbox
