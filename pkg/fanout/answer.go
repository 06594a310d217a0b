package fanout

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// KindRefused is the outbox kind of the answer to a signed mail that was
// refused, whichever service refused it: one kind, so that one cap per
// contact (Answer.PerHour) holds for all of them.
const KindRefused = "refused"

// DefaultAnswersPerHour is the cap of answers of one kind to one contact
// in an hour when the caller sets none: the default of
// commands.replies_per_hour.
const DefaultAnswersPerHour = 20

// OuterSubject is the neutral visible Subject of an answer.
const OuterSubject = "Encrypted message"

// Answer is the answer to a signed mail the directory refused, to its
// signer alone: what was refused, why, and what to fix. It is a
// Personal message to the signer's registered address and key (never the
// envelope sender or a From), its Subject a fixed text or the mail's
// signed Subject (never the outer one, which anyone on the way may set),
// and it is rate limited per contact: at most PerHour answers of Kind
// within an hour, and one per refused mail (Ref).
type Answer struct {
	// Kind is the outbox kind: KindRefused, or a kind with a cap of its
	// own (the relay's answer to a post over the limits, once an hour).
	Kind string
	// PerHour caps the answers of Kind to one contact in an hour
	// (DefaultAnswersPerHour if 0).
	PerHour int
	// Seen is the refused mail's replay id: the answer's ref and
	// Message-ID are made from it, so a mail refused twice is answered
	// once.
	Seen string
	// Envelope is the envelope sender (the directory's address).
	Envelope string
	// From is the address the mail was sent to, with the directory's name.
	From mail.Address
	// To is the signer: its registered address and key.
	To  mail.Address
	Key *directory.Key
	// What and Outcome say what was refused: "Your " + What + " to " +
	// From + ", signed …, " + Outcome + ":" (e.g. "post", "was not
	// relayed to anyone").
	What, Outcome string
	// Title is the Subject's start ("Not relayed"); Subject the mail's
	// signed Subject, cleaned, or "" ("your " + What then).
	Title, Subject string
	SignedAt       time.Time
	// Why is what to fix, a sentence or more without the final period.
	Why string
	Now time.Time
}

// Ref is the outbox ref of the answer: stable per refused mail.
func (a *Answer) Ref() string {
	sum := sha256.Sum256([]byte("ccdir answer\x00" + a.Seen))
	return answerPrefix + hex.EncodeToString(sum[:12])
}

// answerPrefix starts the local part of an answer's Message-ID (Ref).
const answerPrefix = "refused-"

// IsAnswerID reports whether id (a Message-ID, without angle brackets)
// is one of an answer to refused mail (Ref@domain) sent from an address
// whose domain is among domains: a mail that answers it is an
// auto-responder's answer to ours, and answering it again would loop.
func IsAnswerID(id string, domains ...string) bool {
	local, domain, ok := strings.Cut(id, "@")
	hexPart, found := strings.CutPrefix(strings.ToLower(local), answerPrefix)
	if !ok || !found || len(hexPart) != 24 {
		return false
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return false
	}
	for _, d := range domains {
		if d != "" && strings.EqualFold(domain, d) {
			return true
		}
	}
	return false
}

// Text is the answer's body.
func (a *Answer) Text() string {
	why := strings.TrimRight(a.Why, ". ")
	return fmt.Sprintf("Your %s to %s, signed %s, %s:\n%s.\n\nNothing of it was kept.\n",
		a.What, a.From.Address, a.SignedAt.UTC().Format("2006-01-02 15:04:05 UTC"), a.Outcome, why)
}

// subject is the protected Subject: Title and the signed Subject, or a
// fixed text.
func (a *Answer) subject() string {
	if a.Subject != "" {
		return a.Title + ": " + a.Subject
	}
	return a.Title + ": your " + a.What
}

// Queue queues the answer inside tx, signed by signer and encrypted to
// the key as ks reads it at Now. It returns "" when queued, or why not,
// for the log: the contact had PerHour answers of Kind within the hour,
// this mail was answered already, or its key cannot be used (nothing can
// be said in private). The error is for failures of the machinery.
func (a *Answer) Queue(ctx context.Context, tx *sql.Tx, ob *outbox.Outbox, signer *keys.Secret, ks *Keys) (notQueued string, err error) {
	if a.Key == nil {
		return "no key", nil
	}
	perHour := a.PerHour
	if perHour <= 0 {
		perHour = DefaultAnswersPerHour
	}
	n, err := outbox.CountSince(ctx, tx, a.Kind, a.To.Address, a.Now.Add(-time.Hour))
	if err != nil {
		return "", fmt.Errorf("count answers: %w", err)
	}
	if n >= perHour {
		return fmt.Sprintf("rate limit (%d answers in the hour)", n), nil
	}
	pub, err := ks.Public(a.Key, a.Now)
	if err != nil {
		return keys.Reason(err), nil
	}
	ref := a.Ref()
	domain := a.From.Address[strings.LastIndexByte(a.From.Address, '@')+1:]
	p := &Personal{Kind: a.Kind, Ref: ref, Envelope: a.Envelope, From: a.From, To: a.To,
		Subject: a.subject(), OuterSubject: OuterSubject, Date: a.Now, MessageID: ref + "@" + domain,
		Parts: []pgpmime.Part{{ContentType: "text/plain", Body: []byte(a.Text())}},
		Extra: []pgpmime.Field{{Key: "Auto-Submitted", Value: "auto-replied"}}}
	m, err := p.Message(signer, pub)
	if err != nil {
		if keys.Unusable(err) {
			return keys.Reason(err), nil
		}
		return "", err
	}
	added, err := ob.EnqueueTx(ctx, tx, m)
	switch {
	case err != nil:
		return "", err
	case added == 0:
		return "answered already", nil
	}
	return "", nil
}
