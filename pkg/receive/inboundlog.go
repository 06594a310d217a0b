package receive

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ccdir/ccdir/pkg/inbound"
)

// Verdicts of the inbound log.
const (
	VerdictAccepted = "accepted" // handled: commands run, a post relayed, a key sent, a bounce marked
	VerdictRefused  = "refused"  // refused (serve: 5xx; process: dropped, exit 0)
	VerdictIgnored  = "ignored"  // taken and dropped without an answer: a loop, not ours, a report naming nothing, a key request over its limit
	VerdictDeferred = "deferred" // not taken for now (4xx, exit 75): it comes again
)

// Reason codes of the inbound log made by this package. A refusal by
// the pipeline or a service has the name of its inbound.Kind as reason
// (unsigned, stale, unbound, commands, ...: inbound/kind.go); ReasonOther
// only when it has no kind (inbound.RefusedOther), its text saying why.
const (
	ReasonRecipient = "recipient"  // not an address of this directory
	ReasonLoop      = "loop"       // a bounce, an automatic or bulk message, our own mail
	ReasonReplay    = "replay"     // the signed message was already used
	ReasonSignature = "signature"  // the signer is no longer registered
	ReasonOther     = "other"      // a refusal of no kind (its text says why)
	ReasonTemporary = "temporary"  // a failure of ours, or a temporary refusal
	ReasonKeyLimit  = "key-limit"  // a key request over its rate limit
	ReasonSender    = "sender"     // a key request from an invalid sender address
	ReasonMalformed = "malformed"  // a key request whose header cannot be read
	ReasonReport    = "report"     // mail to the bounce address that is no failure report
	ReasonBounceTag = "bounce-tag" // a failure report whose address names no message of ours (forged, foreign, already bounced)
	ReasonMixed     = "mixed"      // for the bounce address and another address of ours at once
)

// Caps on what a row keeps of what the sender chose.
const (
	maxLogAddress = 320
	maxLogText    = 200
)

// Entry is one row of the inbound log.
type Entry struct {
	At        time.Time
	Sender    string // the envelope sender (MAIL FROM), "" for a bounce
	Recipient string // the address of ours it was sent to (the first that is ours), else the first given
	Route     string // what that address is for (Route.String)
	Signer    string // the fingerprint of the registered key that signed it, if known
	Verdict   string // VerdictAccepted, VerdictRefused, VerdictIgnored or VerdictDeferred
	Reason    string // a reason code (Reason*); for VerdictAccepted, the route
	Text      string // one short line saying why, never content nor directory data
}

// ignore marks e as taken and dropped for reason, unless a verdict is set.
func (e *Entry) ignore(reason, text string) {
	if e.Verdict == "" {
		e.Verdict, e.Reason, e.Text = VerdictIgnored, reason, text
	}
}

// settle gives e its verdict from Receive's result err, unless one was
// set on the way (ignore).
func (e *Entry) settle(err error) {
	if e.Verdict != "" {
		return
	}
	var ref *inbound.Refusal
	var def *Deferred
	switch {
	case err == nil:
		e.Verdict, e.Reason = VerdictAccepted, e.Route
	case errors.As(err, &def):
		e.Verdict, e.Reason, e.Text = VerdictDeferred, ReasonTemporary, "temporary failure"
	case errors.As(err, &ref) && ref.Temporary:
		e.Verdict, e.Reason, e.Text = VerdictDeferred, ReasonTemporary, ref.Reason
	case errors.As(err, &ref):
		e.Verdict, e.Reason, e.Text = VerdictRefused, refusalReason(ref), ref.Reason
	default:
		e.Verdict, e.Reason, e.Text = VerdictDeferred, ReasonTemporary, "temporary failure"
	}
}

// refusalReason is the reason code of a refusal: this package's own
// refusals have theirs, the others the name of their kind.
func refusalReason(ref *inbound.Refusal) string {
	switch ref {
	case errReplayed:
		return ReasonReplay
	case errSigner:
		return ReasonSignature
	case errMalformed:
		return ReasonMalformed
	case errMixed:
		return ReasonMixed
	}
	if ref.Kind != inbound.RefusedOther {
		return ref.Kind.String()
	}
	return ReasonOther
}

// capText cuts s to at most n bytes, on a rune boundary.
func capText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// record writes e to the inbound log. A failure is logged and nothing
// else: the mail was handled already, and the log never costs one.
func (r *Receiver) record(ctx context.Context, e Entry) {
	if r.Store == nil {
		return
	}
	if err := RecordInbound(context.WithoutCancel(ctx), r.Store.DB(), e); err != nil {
		r.logf("inbound log: %v", err)
	}
}

// RecordInbound writes e to the inbound log of db.
func RecordInbound(ctx context.Context, db *sql.DB, e Entry) error {
	_, err := db.ExecContext(ctx, `INSERT INTO inbound_log (at, sender, recipient, route, signer, verdict, reason, text)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), capText(e.Sender, maxLogAddress), capText(e.Recipient, maxLogAddress), e.Route,
		strings.ToUpper(e.Signer), e.Verdict, e.Reason, capText(e.Text, maxLogText))
	return err
}

// InboundLog returns the rows of the inbound log from since on (all of
// them for the zero time), oldest first.
func InboundLog(ctx context.Context, db *sql.DB, since time.Time) ([]Entry, error) {
	var from int64
	if !since.IsZero() {
		from = since.UnixMilli()
	}
	rows, err := db.QueryContext(ctx, `SELECT at, sender, recipient, route, signer, verdict, reason, text
		FROM inbound_log WHERE at >= ? ORDER BY at, id`, from)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		var e Entry
		var at int64
		if err := rows.Scan(&at, &e.Sender, &e.Recipient, &e.Route, &e.Signer, &e.Verdict, &e.Reason, &e.Text); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
