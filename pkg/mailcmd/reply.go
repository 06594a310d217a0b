package mailcmd

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// mailHeaders describe one personal message of the directory.
type mailHeaders struct {
	kind, ref string
	subject   string // protected (real) subject
	messageID string // local part; the directory's domain is added
	inReplyTo string // the command mail's Message-ID, if any
	auto      string // Auto-Submitted value
	body      string
	parts     []pgpmime.Part
}

// message builds one mail to a contact: the inner entity with the real
// headers, signed and encrypted in one OpenPGP message to the contact's
// key (RFC 3156 §6.2), inside a multipart/encrypted mail with neutral
// outer headers.
func (h *Handler) message(info directory.Info, from string, to *directory.Contact, mh mailHeaders, now time.Time) (outbox.Message, error) {
	if to.Key == nil {
		return outbox.Message{}, fmt.Errorf("%s: %w", to.Email, errNoKey)
	}
	pub, err := h.keys().Public(to.Key, now)
	if err != nil {
		return outbox.Message{}, fmt.Errorf("key of %s: %w", to.Email, err)
	}
	extra := []pgpmime.Field{{Key: "Auto-Submitted", Value: mh.auto}}
	if ref := messageIDRef(mh.inReplyTo); ref != "" {
		extra = append(extra, pgpmime.Field{Key: "In-Reply-To", Value: ref}, pgpmime.Field{Key: "References", Value: ref})
	}
	subject := h.outerSubject()
	p := &fanout.Personal{Kind: mh.kind, Ref: mh.ref, Envelope: from,
		From:    mail.Address{Name: info.Name, Address: from},
		To:      mail.Address{Name: to.Name, Address: to.Email},
		Subject: mh.subject, OuterSubject: subject, Date: now, MessageID: mh.messageID + "@" + domainOf(from),
		Parts: append([]pgpmime.Part{{ContentType: "text/plain", Body: []byte(mh.body)}}, mh.parts...),
		Extra: extra}
	if kc := h.Config.Digest.KeyChange; kc.Told(now) {
		// The directory's rekey, at the top of every message it sends
		// a contact, with the new and the old key.
		p.Parts[0].Body = append([]byte(kc.Notice(now)), p.Parts[0].Body...)
		k := slices.IndexFunc(p.Parts, func(x pgpmime.Part) bool { return x.Filename == export.KeyChangeFile })
		if k < 0 {
			p.Parts = append(p.Parts, pgpmime.Part{ContentType: "application/pgp-keys", Filename: export.KeyChangeFile})
			k = len(p.Parts) - 1
		}
		p.Parts[k].Body = kc.Keys // the key HELP attaches, and the old one
	}
	return p.Message(h.Secret, pub)
}

// outerSubject is the neutral outer Subject of every personal message.
func (h *Handler) outerSubject() string {
	if s := h.Config.Digest.Subject; s != "" {
		return s
	}
	return digest.DefaultSubject
}

// keys is the Handler's key cache: each registered key parsed once for
// the life of the Handler, and checked at each mail's time. h.mu is held.
func (h *Handler) keys() *fanout.Keys {
	if h.keyCache == nil {
		h.keyCache = fanout.NewKeysKept()
	}
	return h.keyCache
}

// messageIDRef returns "<id>" for a Message-ID given with or without
// angle brackets, or "" if it is not a plausible one (a header written
// from it must stay one header).
func messageIDRef(id string) string {
	id = strings.TrimSpace(id)
	id = strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
	if id == "" || len(id) > 250 || !strings.Contains(id, "@") {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return ""
		}
	}
	return "<" + id + ">"
}

// replySubject is "Re: " and the command mail's subject, cleaned.
//
// Only a Subject of the signed content (protected headers) is answered:
// the outer one can be set by anyone on the way, and the reply is signed
// by the directory. Without a signed Subject the reply says a fixed text.
func replySubject(a *inbound.Accepted) string {
	s := ""
	if a.SubjectSigned {
		s = a.Subject
	}
	s = strings.Join(strings.Fields(Echo(s)), " ")
	if utf8.RuneCountInString(s) > 150 {
		s = string([]rune(s)[:150]) + "…"
	}
	if s == "" {
		return "Re: your commands"
	}
	if len(s) >= 3 && strings.EqualFold(s[:3], "re:") {
		return s
	}
	return "Re: " + s
}

// replyBody lists each command and its result; out is nil when the
// commands did not parse.
func replyBody(cfg Config, info directory.Info, from string, a *inbound.Accepted, now time.Time, res *Result, out *run, notices []*liveness.Notice) string {
	var b strings.Builder
	name := Echo(info.Name)
	fmt.Fprintf(&b, "%s: the answer to your command mail\n\n", name)
	fmt.Fprintf(&b, "Your mail signed %s by key %s was read at %s.\n",
		a.SignedAt.UTC().Format("2006-01-02 15:04:05 UTC"), a.Key.Fingerprint, now.Format("2006-01-02 15:04:05 UTC"))
	switch {
	case len(res.ParseErrors) > 0:
		b.WriteString("\nNo command of your mail was run: a mail with an unknown or malformed\ncommand runs none of them. These lines are wrong:\n\n")
		for _, e := range res.ParseErrors {
			fmt.Fprintf(&b, "  %s\n", e.Error())
		}
		b.WriteString("\nCorrect them and send the mail again; send HELP for the commands.\n")
		return footer(&b, info, from)
	case len(res.Script.Commands) == 0:
		b.WriteString("\nYour mail holds no command. This is how to write one:\n\n")
		b.WriteString(helpText(from, info.ListAddress, cfg.ChangeDelay))
		b.WriteString("\n")
		return footer(&b, info, from)
	case res.DryRun:
		b.WriteString("\nDRY-RUN: nothing was changed and nothing else was sent. Each result\nbelow says what would happen.\n")
	case res.Failed:
		b.WriteString("\nA command failed, so no change of this mail was kept and nothing else\nwas sent (no notice, no digest). Commands after it did not run.\n")
	}
	for _, r := range res.Results {
		fmt.Fprintf(&b, "\n> %s\n", r.Command.Text)
		switch {
		case r.Skipped:
			b.WriteString(r.Text + "\n")
		case r.Err != nil:
			fmt.Fprintf(&b, "FAILED: %s\n", echo(r.Err.Error(), maxErrEcho))
		default:
			b.WriteString(r.Text + "\n")
		}
	}
	if len(notices) > 0 {
		var to []string
		for _, n := range notices {
			to = append(to, n.Email)
		}
		verb := "A notice of the changes goes to"
		if res.DryRun || res.Failed {
			verb = "A notice of the changes would go to"
		}
		fmt.Fprintf(&b, "\n%s: %s.\n", verb, strings.Join(to, ", "))
	}
	if out != nil {
		b.WriteString(headLine(res, out))
	}
	return footer(&b, info, from)
}

// headLine says where the directory stands after the mail. A DRY-RUN
// or a failed mail keeps nothing: it quotes the head the mail found,
// which exists, never the one its rolled-back changes reached (a
// serial and hash that no ledger ever has), and says what it would
// have added.
func headLine(res *Result, out *run) string {
	h := out.view.Head
	if !res.DryRun && !res.Failed {
		return fmt.Sprintf("\nDirectory serial %d, head %s.\n", h.Serial, h.Hash)
	}
	what := "nothing of this mail was kept"
	if res.DryRun {
		switch n := h.Serial - out.start.Serial; n {
		case 0:
			what = "this mail would add no ledger entry"
		case 1:
			what = "this mail would add 1 ledger entry"
		default:
			what = fmt.Sprintf("this mail would add %d ledger entries", n)
		}
	}
	return fmt.Sprintf("\nDirectory serial %d, head %s (unchanged: %s).\n", out.start.Serial, out.start.Hash, what)
}

func footer(b *strings.Builder, info directory.Info, from string) string {
	fmt.Fprintf(b, "\n-- \n%s <%s>\nDirectory key %s\n", Echo(info.Name), from, info.KeyFingerprint)
	return b.String()
}

// helpText explains how to write a command mail to address, and, when
// the directory has a list (list is not ""), how to post an alert.
func helpText(address, list string, delay time.Duration) string {
	return strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(`How to send commands to the directory

Write a mail to ADDR, signed with the OpenPGP key the directory has for
you (PGP/MIME or inline; encrypting it to the directory's key is
recommended). The first lines of the signed text are the commands, one
per line, in any case; they end at the first blank line, at a signature
("-- ") or at a quoted line ("> "). The signed text must name the
directory: put the line

  DIRECTORY ADDR

among the commands (or sign the To header). A mail with an unknown or
malformed command runs none of them; at most 50 commands per mail. Put
DRY-RUN first to see what would happen without changing anything.

Queries:
  HELP                      this text
  LIST                      the ccTLDs, with their number of contacts
  SHOW <tld>                a ccTLD and its contacts
  SEARCH <text>             ccTLDs and contacts whose code, organisation,
                            name or email contain the text
  KEY <email|fingerprint>   a contact's public key, attached
  CALL <tld>                who to call now at a ccTLD, best first
  DIGEST                    the current digest, as a separate mail
  WHOAMI                    your own entry

Reachability:
  PONG <token>              answer the directory's reachability check:
                            copy its PONG line (the token works once)

Alerts of the encrypted list:
LISTPOST  ACK <id>                  acknowledge an alert you received
  ACKS <id>                 which ccTLDs acknowledged your alert (author only)

Your own entry (every change is announced to your ccTLD's contacts):
  SET NAME <name>                     invisible characters are refused,
                                      the zero-width joiner and non-joiner
                                      (U+200D, U+200C) of Persian or Indic
                                      names too: leave them out, or write
                                      the name in Latin letters
  SET PHONE <number>[, <number>...]   replaces your regular numbers
                                      (keeps the emergency one); none
  SET EMERGENCY-PHONE <number>        replaces the emergency number; none
  SET LANGUAGES <tag>[, <tag>...]     such as: en, pt; none
  SET TIMEZONE <zone>                 such as: Europe/Lisbon; none
  SET 24X7 yes|no
  SET EMAIL <address>                 your new address: a pending change
                                      (see below), announced to both
                                      addresses
  KEY-ROTATE                attach the new public key (application/pgp-keys
                            or a .asc file) with a user ID for your email;
                            sign the mail with your current key AND the new
                            one (gpg -u OLD -u NEW) for it to take effect at
                            once; signed by the current key alone it is a
                            pending change, and a challenge goes to the new
                            key, to answer with CONFIRM
  KEY-REFRESH               attach a newer copy of your current key (the
                            same fingerprint: a later expiry, new subkeys),
                            as gpg --export --armor writes it; sign the
                            mail with that key before it expires

Pending changes (an email change, a KEY-ROTATE signed by the current key
alone) take effect after DELAY unless vetoed; each has an id,
chg-..., that its notices and the answer give:
  VETO <id>                 stop a pending change: your own, or one of a
                            contact of a ccTLD you are an admin contact of
  CONFIRM <id> <token>      prove that you hold the new key of your pending
                            KEY-ROTATE: copy the line of the challenge sent
                            encrypted to it, and sign with your current key
                            (without it the new key never takes effect)

For the admin contacts of a ccTLD:
  ADD-CONTACT <tld> <email> <phone> <name...>
                            adds a security contact; attach its public key
                            (the phone in international form, no spaces)
  REMOVE-CONTACT <tld> <email>
                            drops its role for the ccTLD, and removes the
                            contact if it has no other

Example:

  DIRECTORY ADDR
  SET PHONE +351 21 000 0000
  WHOAMI`, "LISTPOST", listHelp(list)), "ADDR", address), "DELAY", durationText(delay))
}

// listHelp is how to post to the list at list, for helpText: "" when
// the directory has none.
func listHelp(list string) string {
	if list == "" {
		return ""
	}
	return strings.ReplaceAll(`  post an alert: write to LIST, signed with your key, encrypted to
  the directory's key (attached as directory-key.asc; it carries a user
  ID for LIST, so gpg -r LIST finds it), with the line

    DIRECTORY LIST

  at the top of the text; every member gets it, encrypted to their key
`, "LIST", list)
}

// durationText is a delay as the help and the answers say it: "72 hours".
func durationText(d time.Duration) string {
	if d > 0 && d%time.Hour == 0 {
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}

// help is HELP's answer: helpText, and the directory's public key
// attached (directory-key.asc, the copy the signed ledger records, with
// a user ID for each of the directory's addresses), so that the member's
// mail client can encrypt to it by the address they write to.
func (r *run) help() string {
	info := r.view.Info
	text := helpText(info.Address, info.ListAddress, r.cfg.ChangeDelay)
	if strings.TrimSpace(info.PublicKey) == "" {
		return text
	}
	const name = "directory-key.asc"
	for _, p := range r.parts {
		if p.Filename == name {
			return text
		}
	}
	r.parts = append(r.parts, pgpmime.Part{ContentType: "application/pgp-keys", Filename: name, Body: []byte(info.PublicKey)})
	return text + fmt.Sprintf("\n\nThe directory's key %s is attached as %s.", info.KeyFingerprint, name)
}
