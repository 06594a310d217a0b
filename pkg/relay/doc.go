// Package relay is the encrypted alert list: a member's post to the list
// address, accepted by pkg/inbound (a fresh, unseen signature by an
// active contact's registered key, bound to this directory), is re-sent to
// every active contact with a usable key, each copy encrypted to that
// contact's key and signed by the directory key (RFC 3156 §6.1: the inner
// entity is signed once, then encrypted per recipient), through the
// outbox (kind "alert", ref the alert id: one copy per recipient, whatever
// happens). Members' keys are read through pkg/fanout's key cache (one
// per Relay: each key parsed once, checked at each post's time);
// keys.Unusable and keys.Reason decide and say which recipients are
// skipped; the copies are made and queued by fanout.Queue, inside the
// post's one transaction; the reply to a post that is not relayed is
// built by fanout.Personal.
//
// # What a copy shows
//
// The protected Subject is the list tag, the TLP label, the original
// subject and the alert id. The text starts with a short block naming the
// author (name, email, ccTLDs, key fingerprint) and the verdict on the
// signature, then the original text and the original attachments, their
// bodies unchanged. Nothing else of the original header is kept (no
// Received, X-Mailer, addresses, nor the Message-ID unless
// Config.KeepMessageID, and then only a signed one). The outer header is neutral, with List-Id
// (RFC 2919), List-Post, List-Help (RFC 2369), Precedence: list (so that
// members' autoresponders stay quiet; a list copy is not Auto-Submitted)
// and X-Loop.
//
// # Traffic Light Protocol
//
// A post carries a label TLP:CLEAR, GREEN, AMBER, AMBER+STRICT or RED
// (TLP:WHITE is read as CLEAR) in its subject or in the first lines of its
// text (up to the first blank line); if it carries several, the most
// restrictive applies; if none, Config.DefaultTLP (AMBER). A post that
// shows a more restrictive label anywhere else (further down its text, in
// a quoted line, in an unsigned Subject, in any other text a reader sees:
// another text part or a text attachment, the HTML alternative, a
// forwarded message and its Subject; inbound.Accepted.Shown) is refused, never relayed under
// the weaker one, and its author is told where the label is. A "TO:" line
// among those first lines (ccTLD codes, meaning all contacts of that
// ccTLD, or contacts' emails, separated by commas or spaces) limits the
// recipients, whatever the label; a TLP:RED post must have one, and is
// never sent to the whole list. A TLP:RED post must also have reached the
// list encrypted (Accepted.Encrypted): one whose text crossed SMTP in
// clear (inline or PGP/MIME signed only) is relayed to nobody.
//
// # Refused posts
//
// Unsigned, unknown, stale, replayed or badly signed posts never reach
// the relay: inbound refuses them (at the end of DATA under serve, with a
// log line under process), and so it does a post not bound to the list (a
// DIRECTORY line of the command block, see inbound.ScanBlock, or a signed
// To or Cc, must name the address it was sent to); the relay takes that
// binding from inbound (Accepted.Binding) and does not read the post
// again. A post the relay cannot send as asked — a TLP:RED post without a
// TO: line or not encrypted, a TO: line naming nobody the directory knows, a post bound to
// the command address rather than the list, too many attachments, more
// posts by its author than Config.PostsPerMinute or PostsPerHour allow
// (counted from the alerts table) — is not relayed to anyone: its
// signature is marked seen and the author gets an encrypted, signed reply
// saying why and how to fix it (a reply rather than an SMTP rejection,
// because under process a rejection reaches nobody, and the reply is
// authenticated; the answer to a post over the per-author limits goes
// once an hour at most, kind KindLimit, so that the answers are no flood
// either; the others share with every answer to refused mail one kind,
// fanout.KindRefused, and one cap per contact, Config.RepliesPerHour:
// fanout.Answer builds them all). Its error is nil and Result.Refused
// says why.
//
// # Acknowledgements
//
// Every alert has an id of 8 base32 characters (40 random bits). The
// tables alerts and alert_recipients record who posted which label when,
// who got a copy (delivery state from the outbox) and who acknowledged it
// (Ack, for the mail command ACK <id>); AckStatus (ACKS <id>, for the
// author only) and Alerts (ccdir alerts, for the operator) report it per
// ccTLD. They never hold the content, unless Config.Archive keeps the
// post as received.
package relay
