package fanout

import (
	"bytes"
	"net/mail"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Personal is one message of the directory to one contact alone (the
// answer to a command mail, a notice of a change, the reply to a post
// that was not relayed): signed and encrypted in one OpenPGP message to
// the contact's registered key (RFC 3156 §6.2, pgpmime.SignEncrypt, so
// the signature names its one recipient), inside a multipart/encrypted
// mail with neutral outer headers.
type Personal struct {
	Kind, Ref string // the outbox's
	Envelope  string // the envelope sender (the directory's address)
	From      mail.Address
	To        mail.Address // the contact's registered address
	Subject   string       // the protected (real) Subject
	// OuterSubject is the visible Subject.
	OuterSubject string
	Date         time.Time
	MessageID    string // without angle brackets; protected and outer alike
	Parts        []pgpmime.Part
	// Extra are more outer fields (Auto-Submitted, In-Reply-To…).
	Extra []pgpmime.Field
}

// Message builds p signed by signer and encrypted to key (read through
// Keys.Public), as an outbox message to p.To. Errors about key wrap the
// keys sentinels (keys.Unusable).
func (p *Personal) Message(signer *keys.Secret, key *keys.Public) (outbox.Message, error) {
	inner, err := pgpmime.BuildInner(pgpmime.Protected{
		From: p.From, To: []mail.Address{p.To}, Subject: p.Subject, Date: p.Date, MessageID: p.MessageID,
	}, p.Parts)
	if err != nil {
		return outbox.Message{}, err
	}
	var asc bytes.Buffer
	if err := pgpmime.SignEncrypt(&asc, inner, signer, key); err != nil {
		return outbox.Message{}, err
	}
	var buf bytes.Buffer
	if err := pgpmime.BuildEncrypted(&buf, pgpmime.Outer{
		From: p.From, To: p.To, Subject: p.OuterSubject, Date: p.Date, MessageID: p.MessageID, Extra: p.Extra,
	}, asc.Bytes()); err != nil {
		return outbox.Message{}, err
	}
	return outbox.Message{Kind: p.Kind, Ref: p.Ref, From: p.Envelope, To: p.To.Address, Data: buf.Bytes()}, nil
}
