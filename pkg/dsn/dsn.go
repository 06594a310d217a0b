// Package dsn reads delivery status notifications (bounces): the
// standard form of RFC 3464 (multipart/report; report-type=delivery-status
// with a message/delivery-status part; RFC 6533's global form too) and
// the common plain-text forms of MTAs that send none (Postfix's, Exim's
// and qmail's wording, as far as they can be recognised).
//
// It only reads: which message a report is about is not its business
// (the bounce address's tag says that, package outbox), and nothing in a
// report is trusted beyond "some MTA says this recipient failed". Input
// is bounded: at most MaxBytes are read, MaxDepth levels of multipart
// and MaxParts parts are looked at, each part's text at most MaxPartBytes,
// at most MaxRecipients recipients are kept.
package dsn

import (
	"bufio"
	"errors"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// Limits.
const (
	MaxBytes      = 4 << 20  // read of a whole report
	MaxPartBytes  = 64 << 10 // read of one part's text
	MaxDepth      = 4        // nested multiparts
	MaxParts      = 32       // parts looked at in all
	MaxRecipients = 50       // per-recipient groups kept
	maxField      = 1000     // bytes kept of one field
)

// Forms of report.
const (
	FormRFC3464 = "rfc3464"
	FormPostfix = "postfix"
	FormExim    = "exim"
	FormQmail   = "qmail"
)

// Actions of a recipient (RFC 3464 §2.3.3).
const (
	ActionFailed    = "failed"
	ActionDelayed   = "delayed"
	ActionDelivered = "delivered"
	ActionRelayed   = "relayed"
	ActionExpanded  = "expanded"
)

// ErrNotReport is the error of Parse for a message that is no delivery
// status notification it recognises (an auto-reply, spam, a warning
// in plain text).
var ErrNotReport = errors.New("not a delivery status notification")

// Report is what a notification says.
type Report struct {
	Form         string      // FormRFC3464, FormPostfix, FormExim or FormQmail
	EnvelopeID   string      // Original-Envelope-Id, if any
	ReportingMTA string      // Reporting-MTA, if any
	Recipients   []Recipient // in the order given
}

// Recipient is the report about one recipient.
type Recipient struct {
	Final      string // Final-Recipient address (type prefix cut), if given
	Original   string // Original-Recipient address, if given
	Action     string // lower case: failed, delayed, delivered, relayed, expanded
	Status     string // "5.1.1", if given
	Diagnostic string // Diagnostic-Code (type prefix kept, e.g. "smtp; 550 …"), or the text's reason
	RemoteMTA  string // Remote-MTA, if given
}

// Permanent reports whether the report says delivery to r failed for
// good: Action failed (whatever the status class: an MTA that gave up
// after days says failed with 4.x.x), or, without an Action, a 5.x.x
// status.
func (r Recipient) Permanent() bool {
	switch r.Action {
	case ActionFailed:
		return true
	case "":
		return strings.HasPrefix(r.Status, "5.")
	}
	return false
}

// Failed returns the recipients for which delivery failed for good.
func (r *Report) Failed() []Recipient {
	var out []Recipient
	for _, rc := range r.Recipients {
		if rc.Permanent() {
			out = append(out, rc)
		}
	}
	return out
}

// Reason is a one-line account of a recipient's failure, for the log and
// the outbox: status, diagnostic, and the recipient if it says one.
func (r Recipient) Reason() string {
	var parts []string
	if r.Status != "" {
		parts = append(parts, r.Status)
	}
	if r.Diagnostic != "" {
		parts = append(parts, r.Diagnostic)
	}
	if r.Final != "" {
		parts = append(parts, "(recipient "+r.Final+")")
	}
	return strings.Join(parts, " ")
}

// Parse reads one message and returns the report it is, or ErrNotReport
// (wrapped), or an error reading it.
func Parse(r io.Reader) (*Report, error) {
	br := bufio.NewReader(io.LimitReader(r, MaxBytes))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, errors.Join(ErrNotReport, err)
	}
	p := &parser{}
	p.walk(h, br, 0)
	if p.report != nil {
		return p.report, nil
	}
	if rep := plainText(subject(h), p.texts); rep != nil {
		return rep, nil
	}
	return nil, ErrNotReport
}

func subject(h textproto.Header) string {
	return strings.ToLower(h.Get("Subject"))
}

type parser struct {
	parts  int
	report *Report  // the first delivery-status part
	texts  []string // text/plain parts outside attached messages, in order
}

// walk reads one entity: a multipart's parts, a delivery-status part, or
// a text part (kept for the plain-text forms). Attached messages
// (message/rfc822: the copy of what bounced) are not read.
func (p *parser) walk(h textproto.Header, body io.Reader, depth int) {
	p.parts++
	if p.parts > MaxParts {
		return
	}
	e, err := message.New(message.Header{Header: h}, body)
	if e == nil || (err != nil && !message.IsUnknownCharset(err)) {
		return
	}
	mt, params, _ := e.Header.ContentType()
	switch {
	case mt == "" || mt == "text/plain":
		if len(p.texts) < 4 {
			p.texts = append(p.texts, readText(e.Body))
		}
	case strings.HasPrefix(mt, "multipart/"):
		if depth >= MaxDepth || params["boundary"] == "" {
			return
		}
		mr := textproto.NewMultipartReader(e.Body, params["boundary"])
		for p.parts < MaxParts {
			part, err := mr.NextPart()
			if err != nil {
				return
			}
			p.walk(part.Header, part, depth+1)
		}
	case mt == "message/delivery-status" || mt == "message/global-delivery-status":
		if p.report == nil {
			p.report = statusFields(io.LimitReader(e.Body, MaxPartBytes))
		}
	}
}

func readText(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, MaxPartBytes))
	return strings.ToValidUTF8(strings.ReplaceAll(string(b), "\r\n", "\n"), "\uFFFD")
}

// statusFields reads the body of a message/delivery-status part: a group
// of per-message fields, then one group per recipient, separated by
// blank lines (RFC 3464 §2.1). Groups that carry no recipient are
// skipped. A part without any is still a report (of no recipients).
func statusFields(r io.Reader) *Report {
	br := bufio.NewReader(r)
	rep := &Report{Form: FormRFC3464}
	first := true
	for len(rep.Recipients) < MaxRecipients {
		// Blank lines between groups (some MTAs put more than one).
		for {
			b, err := br.Peek(1)
			if err != nil {
				return rep
			}
			if b[0] != '\r' && b[0] != '\n' {
				break
			}
			br.ReadByte()
		}
		h, err := textproto.ReadHeader(br)
		if h.Len() == 0 && err != nil {
			return rep
		}
		if first && !h.Has("Final-Recipient") && !h.Has("Original-Recipient") {
			rep.EnvelopeID = field(h.Get("Original-Envelope-Id"))
			rep.ReportingMTA = cutType(field(h.Get("Reporting-Mta")))
			first = false
		} else if h.Has("Final-Recipient") || h.Has("Original-Recipient") || h.Has("Action") {
			first = false
			rep.Recipients = append(rep.Recipients, Recipient{
				Final:      cutType(field(h.Get("Final-Recipient"))),
				Original:   cutType(field(h.Get("Original-Recipient"))),
				Action:     strings.ToLower(field(h.Get("Action"))),
				Status:     statusCode(field(h.Get("Status"))),
				Diagnostic: field(h.Get("Diagnostic-Code")),
				RemoteMTA:  cutType(field(h.Get("Remote-Mta"))),
			})
		}
		if err != nil {
			return rep
		}
	}
	return rep
}

// field is a header value on one line, at most maxField bytes, control
// characters made spaces.
func field(v string) string {
	v = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, v)
	v = strings.Join(strings.Fields(v), " ")
	if len(v) > maxField {
		v = v[:maxField]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
	}
	return strings.ToValidUTF8(v, "\uFFFD")
}

// cutType cuts the address or name type: "rfc822; a@b" is "a@b".
func cutType(v string) string {
	if t, rest, ok := strings.Cut(v, ";"); ok && !strings.ContainsAny(t, "@<> ") {
		return strings.Trim(strings.TrimSpace(rest), "<>")
	}
	return strings.Trim(v, "<>")
}

var statusRE = regexp.MustCompile(`\b([245])\.([0-9]{1,3})\.([0-9]{1,3})\b`)

// statusCode is the x.y.z of a Status field ("5.1.1 (user unknown)" is
// "5.1.1"); "" if none.
func statusCode(v string) string {
	if m := statusRE.FindString(v); m != "" && strings.HasPrefix(strings.TrimSpace(v), m) {
		return m
	}
	return ""
}

// The plain-text forms. Each is recognised by the wording its MTA uses
// for a permanent failure; anything that reads as a warning (delayed,
// will retry) is not a report of failure, and anything else (an
// auto-reply, spam) is not a report.
var (
	qmailRE    = regexp.MustCompile(`(?m)^Hi\. This is the qmail-send program`)
	qmailPerm  = regexp.MustCompile(`(?i)this is a permanent error`)
	eximRE     = regexp.MustCompile(`(?i)this message was created automatically by mail delivery software`)
	eximFailed = regexp.MustCompile(`(?i)(the following address\(es\) failed|permanent error)`)
	postfixRE  = regexp.MustCompile(`(?i)this is the mail system at host|i'm sorry to have to inform you that your message could not\s+be delivered`)
	postfixNot = regexp.MustCompile(`(?i)this is a delivery status notification, not an error|this is a warning only|delivery to the following recipients was successful`)
	warningRE  = regexp.MustCompile(`(?i)(warning: message .* delayed|delay(ed)? (in )?delivery|not yet been delivered|will (keep trying|retry|try again))`)
	angleAddr  = regexp.MustCompile(`(?m)^<([^<>\s@]+@[^<>\s@]+)>:?\s*(.*)$`)
	eximAddr   = regexp.MustCompile(`(?m)^ {2}(\S+@\S+)\s*$`)
	smtpCode   = regexp.MustCompile(`\b([45][0-9][0-9])[ -]`)
)

// plainText recognises a report among the text parts of a message with
// no delivery-status part.
func plainText(subj string, texts []string) *Report {
	if len(texts) == 0 || strings.Contains(subj, "warning") || strings.Contains(subj, "delayed") || strings.Contains(subj, "delay") {
		return nil
	}
	text := texts[0]
	if cut := strings.Index(text, "\n--- Below this line is a copy of the message"); cut >= 0 {
		text = text[:cut]
	}
	for _, marker := range []string{"\n------ This is a copy of the message", "\n----- Original message -----"} {
		if cut := strings.Index(text, marker); cut >= 0 {
			text = text[:cut]
		}
	}
	switch {
	case qmailRE.MatchString(text):
		if !qmailPerm.MatchString(text) {
			return nil
		}
		return textReport(FormQmail, text, angleAddr)
	case eximRE.MatchString(text):
		if !eximFailed.MatchString(text) || warningRE.MatchString(text) {
			return nil
		}
		return eximReport(text)
	case postfixRE.MatchString(text):
		if postfixNot.MatchString(text) || warningRE.MatchString(text) {
			return nil
		}
		return textReport(FormPostfix, text, angleAddr)
	}
	return nil
}

// textReport takes "<addr>: reason" paragraphs (Postfix's and qmail's
// form): the reason runs to the next blank line.
func textReport(form, text string, re *regexp.Regexp) *Report {
	rep := &Report{Form: form}
	for _, m := range re.FindAllStringSubmatchIndex(text, MaxRecipients) {
		addr := text[m[2]:m[3]]
		rest := text[m[4]:]
		if i := strings.Index(rest, "\n\n"); i >= 0 {
			rest = rest[:i]
		}
		rep.Recipients = append(rep.Recipients, textRecipient(addr, rest))
	}
	if len(rep.Recipients) == 0 {
		return nil
	}
	return rep
}

// eximReport takes Exim's "The following address(es) failed:" list: an
// address indented by two spaces, its reason indented by four.
func eximReport(text string) *Report {
	rep := &Report{Form: FormExim}
	for _, m := range eximAddr.FindAllStringSubmatchIndex(text, MaxRecipients) {
		addr := strings.TrimSuffix(text[m[2]:m[3]], ":")
		var reason []string
		for _, line := range strings.Split(text[m[1]:], "\n")[1:] {
			if !strings.HasPrefix(line, "    ") {
				break
			}
			reason = append(reason, strings.TrimSpace(line))
		}
		rep.Recipients = append(rep.Recipients, textRecipient(addr, strings.Join(reason, " ")))
	}
	if len(rep.Recipients) == 0 {
		return nil
	}
	return rep
}

func textRecipient(addr, reason string) Recipient {
	reason = field(reason)
	rc := Recipient{Final: strings.Trim(addr, "<>"), Action: ActionFailed, Diagnostic: reason}
	if m := statusRE.FindString(reason); m != "" {
		rc.Status = m
	} else if c := smtpCode.FindStringSubmatch(reason); c != nil {
		rc.Status = c[1][:1] + ".0.0"
	}
	if strings.HasPrefix(rc.Status, "4.") {
		// Plain text saying 4xx is a warning, whatever the wording.
		rc.Action = ActionDelayed
	}
	return rc
}
