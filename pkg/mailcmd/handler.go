package mailcmd

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Outbox kinds of the messages a command mail causes.
const (
	KindReply         = outbox.KindReply    // the answer to a command mail
	KindNotify        = liveness.KindNotice // a change announced to the contacts it concerns
	KindDigestRequest = "digest-request"    // the digest, asked for with DIGEST
)

// Defaults for Config.
const (
	DefaultRepliesPerHour = 20
	DefaultWindow         = time.Hour
	DefaultChangesPerDay  = 10
	DefaultMaxEvidence    = 256 << 10
	DefaultChangeDelay    = 72 * time.Hour // changes.delay
)

// Config is what the operator sets for mail commands. Zero values mean
// the documented defaults.
type Config struct {
	// Address is the directory's mail address, the From of every reply;
	// empty means the address recorded in the directory (Info.Address).
	Address string
	// RepliesPerHour caps the replies one contact gets within Window
	// (default DefaultRepliesPerHour). Over the cap the commands still
	// run, but no reply (nor requested digest) is queued.
	RepliesPerHour int
	// Window is the period of the reply cap (default DefaultWindow, one
	// hour).
	Window time.Duration
	// Digest configures the digest sent for DIGEST (subject, attachments).
	Digest digest.Config
	// ChangesPerDay caps the ledger entries the mails of one contact make
	// within 24 hours (default DefaultChangesPerDay); a change past it is
	// refused, and the sender told. Unlike RepliesPerHour, it stops the
	// change, not only the answer.
	ChangesPerDay int
	// MaxEvidence caps, in bytes, the evidence kept with each change made
	// by mail (the signed content and the signature; default
	// DefaultMaxEvidence); a change from a mail whose evidence is larger
	// is refused, and the sender told.
	MaxEvidence int
	// PingInterval is ping.interval (default liveness.DefaultInterval): a
	// contact whose last PONG is younger is "confirmed" for CALL, which
	// ranks it before stale and never-confirmed ones.
	PingInterval time.Duration
	// ChangeDelay is changes.delay (default DefaultChangeDelay): how long
	// a key or email change asked for by mail waits, pending, before it
	// is applied, so that the contact's old key or an admin of its ccTLD
	// can stop it with VETO. A KEY-ROTATE signed by both the old and the
	// new key does not wait.
	ChangeDelay time.Duration
}

// Handler runs the commands of accepted mail. Its fields are set by the
// caller; a nil Now means time.Now, a nil Rand crypto/rand (the nonces
// of possession challenges). It is safe for concurrent use (mails
// are handled one at a time, as the directory is written one transaction
// at a time).
type Handler struct {
	Store  *directory.Store
	Secret *keys.Secret
	Outbox *outbox.Outbox
	Config Config
	Now    func() time.Time
	Rand   io.Reader
	// Decisions is the home's record of decided pending changes
	// (liveness.Decisions): a VETO, or a change superseded, is recorded
	// there before the mail's transaction commits, so that no earlier
	// copy of its row put back in the database revives it. Nil: the
	// rows' MACs alone.
	Decisions *liveness.Decisions

	mu       sync.Mutex   // one mail at a time: signing with Secret is not concurrent
	keyCache *fanout.Keys // contacts' keys (see keys)
	ledgerV  *keys.Verifier
}

// ledgerCheck returns the directory key's fingerprint and the check of
// its signatures on ledger entries (directory.Tx.Check). h.mu is held.
func (h *Handler) ledgerCheck() (string, directory.VerifyFunc, error) {
	if h.ledgerV == nil {
		v, err := h.Secret.Public().NewVerifier(h.now())
		if err != nil {
			return "", nil, fmt.Errorf("mailcmd: directory key: %w", err)
		}
		h.ledgerV = v
	}
	return h.Secret.Fingerprint(), h.ledgerV.Verify, nil
}

// Errors of Handle. A replay (inbound.ErrReplay) is returned wrapped as is.
var (
	// ErrUnknownSender: the signing key is no longer registered to a
	// contact (it changed since inbound checked it). Nothing ran.
	ErrUnknownSender = errors.New("the signing key is not registered to a contact")
)

// CommandResult is the outcome of one command.
type CommandResult struct {
	Command Command
	// Err is nil if the command succeeded (or, in a dry run, would).
	Err error
	// Skipped: the command did not run because an earlier one failed.
	Skipped bool
	// Text is what the reply says about the command.
	Text string
}

// Result says what Handle did with one mail.
type Result struct {
	Script      *Script
	ParseErrors []*LineError // if any, no command ran
	DryRun      bool
	// Failed: a command failed, so no change of this mail was kept and
	// nothing but the reply was sent.
	Failed  bool
	Results []CommandResult
	// Entries are the ledger entries committed (none for a dry run or a
	// failure).
	Entries []directory.Entry
	// Replied: the reply was queued, to ReplyTo. RateLimited: it was not,
	// because the contact reached Config.RepliesPerHour.
	Replied     bool
	RateLimited bool
	ReplyTo     string
	// ReplyErr says why no reply could be built (no usable key), if so.
	ReplyErr error
	// Notified are the addresses a change notice was queued to.
	Notified []string
	// Pending are the ids of the pending changes the mail asked for (a
	// KEY-ROTATE signed by the old key alone, SET EMAIL), kept only when
	// the mail's changes are; Challenged the addresses a possession
	// challenge was queued to, encrypted to the new key.
	Pending    []string
	Challenged []string
	// DigestQueued: DIGEST queued the digest to the sender.
	DigestQueued bool
}

// errRollback ends a transaction whose changes must not be kept (dry run,
// failed command); its results are then recorded by a second one.
var errRollback = errors.New("mailcmd: roll back")

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (h *Handler) rand() io.Reader {
	if h.Rand != nil {
		return h.Rand
	}
	return rand.Reader
}

func (h *Handler) config() Config {
	c := h.Config
	if c.RepliesPerHour <= 0 {
		c.RepliesPerHour = DefaultRepliesPerHour
	}
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.ChangesPerDay <= 0 {
		c.ChangesPerDay = DefaultChangesPerDay
	}
	if c.MaxEvidence <= 0 {
		c.MaxEvidence = DefaultMaxEvidence
	}
	if c.PingInterval <= 0 {
		c.PingInterval = liveness.DefaultInterval
	}
	if c.ChangeDelay <= 0 {
		c.ChangeDelay = DefaultChangeDelay
	}
	return c
}

// Handle runs the commands of one accepted mail and queues what it causes,
// all in one transaction of the directory: the seen mark of its signature
// (inbound.MarkSeen; a replay is refused and nothing runs), the ledger
// entries of its changes (actor "member:FINGERPRINT", the signed content
// and signature as evidence, inbound.Accepted.Evidence), one reply to the sender's registered address and key, the
// notices of every change, and the digest asked for with DIGEST.
//
// A mail with an invalid command line runs nothing: the reply lists what
// was wrong. If a command fails while running (a refusal by the
// directory, a bad key), every change of the mail is rolled back, later
// commands do not run, and only the reply is queued. DRY-RUN runs the
// commands and rolls their changes back; the reply says what would have
// happened. In both cases the mail is still marked seen.
//
// The error is for failures of the machinery (database, signing): the
// caller should have the mail retried. A replay returns an error wrapping
// inbound.ErrReplay; a signer no longer registered, ErrUnknownSender.
func (h *Handler) Handle(ctx context.Context, a *inbound.Accepted) (*Result, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if a == nil || a.Key == nil {
		return nil, ErrUnknownSender
	}
	cfg := h.config()
	now := h.now()
	script, perrs := Parse(a.Text)
	res := &Result{Script: script, ParseErrors: perrs, DryRun: script.DryRun && len(perrs) == 0}
	actor := directory.Actor{Name: "member:" + a.Key.Fingerprint, Evidence: a.Evidence}
	ids := newIDs(a.Seen)

	if len(perrs) > 0 || len(script.Commands) == 0 {
		_, err := h.Store.Update(ctx, actor, func(tx *directory.Tx) error {
			if err := a.MarkSeen(ctx, tx.SQL()); err != nil {
				return err
			}
			info, err := h.Store.Info(ctx)
			if err != nil {
				return err
			}
			me, err := tx.Contact(a.Contact.Email)
			if err != nil || me.Key == nil || !strings.EqualFold(me.Key.Fingerprint, a.Key.Fingerprint) {
				return ErrUnknownSender
			}
			return h.commitReply(ctx, tx, cfg, a, now, ids, res, nil, info, me)
		})
		if err != nil {
			return nil, err
		}
		return res, nil
	}

	// The digest is built before the transaction: it reads the store
	// through its own pools.
	var dig *outbox.Message
	var digErr error
	if !script.DryRun && hasVerb(script, VerbDigest) {
		from := cfg.Address
		if from == "" {
			info, err := h.Store.Info(ctx)
			if err != nil {
				return nil, err
			}
			from = info.Address
		}
		j := &digest.Job{Store: h.Store, Secret: h.Secret, Outbox: h.Outbox, Config: cfg.Digest, Now: h.Now}
		m, err := j.MessageFor(ctx, a.Contact.Email, ids.messageID("digest", "")+"@"+domainOf(from))
		switch {
		case directory.Temporary(err):
			return nil, err // the mail is retried, not answered "no digest"
		case err != nil:
			digErr = err
		default:
			m.Kind, m.Ref = KindDigestRequest, ids.ref
			dig = &m
		}
	}

	var out *run
	entries, err := h.Store.Update(ctx, actor, func(tx *directory.Tx) error {
		defer h.Decisions.Forget(tx.SQL()) // rolled back: nothing decided
		if err := a.MarkSeen(ctx, tx.SQL()); err != nil {
			return err
		}
		var err error
		out, err = h.execute(ctx, tx, a, script, now, dig, digErr)
		if err != nil {
			return err
		}
		res.Results = out.results
		res.Failed = out.failed
		if script.DryRun || out.failed {
			return errRollback
		}
		if err := h.commitReply(ctx, tx, cfg, a, now, ids, res, out, out.view.Info, *out.me); err != nil {
			return err
		}
		return h.Decisions.Commit(tx.SQL()) // last, before tx commits
	})
	if errors.Is(err, errRollback) {
		_, err = h.Store.Update(ctx, actor, func(tx *directory.Tx) error {
			if err := a.MarkSeen(ctx, tx.SQL()); err != nil {
				return err
			}
			me, err := tx.Contact(out.before.Email)
			if err != nil || me.Key == nil || !strings.EqualFold(me.Key.Fingerprint, a.Key.Fingerprint) {
				return ErrUnknownSender
			}
			return h.commitReply(ctx, tx, cfg, a, now, ids, res, out, out.view.Info, me)
		})
		entries = nil
	}
	if err != nil {
		return nil, err
	}
	res.Entries = entries
	return res, nil
}

func hasVerb(s *Script, verb string) bool {
	for _, c := range s.Commands {
		if c.Verb == verb {
			return true
		}
	}
	return false
}

// commitReply queues, inside tx, the reply (unless over the rate limit),
// and, when out holds changes that are kept, the notices and the digest.
// With a nil out (a mail whose commands did not parse) only the reply.
//
// me is the sender as registered when the reply is sent: after the mail's
// own changes if they are kept (so the new key after KEY-ROTATE), before
// them otherwise.
func (h *Handler) commitReply(ctx context.Context, tx *directory.Tx, cfg Config, a *inbound.Accepted, now time.Time, ids ids, res *Result, out *run, info directory.Info, me directory.Contact) error {
	sq := tx.SQL()
	from := cfg.Address
	if from == "" {
		from = info.Address
	}
	keep := out != nil && !res.DryRun && !res.Failed

	n, err := outbox.CountSince(ctx, sq, KindReply, me.Email, now.Add(-cfg.Window))
	if err != nil {
		return fmt.Errorf("count replies: %w", err)
	}
	var msgs []outbox.Message
	res.RateLimited = n >= cfg.RepliesPerHour
	// The notices: the sender is not told what its reply says.
	var notices []*liveness.Notice
	if out != nil {
		for _, nt := range out.notices.List() {
			if !res.RateLimited && me.Key != nil && nt.Email == me.Email && nt.Key.Fingerprint == me.Key.Fingerprint {
				continue
			}
			notices = append(notices, nt)
		}
	}
	if !res.RateLimited {
		body := replyBody(cfg, info, from, a, now, res, out, notices)
		var parts []pgpmime.Part
		if out != nil {
			parts = out.parts
		}
		m, err := h.message(info, from, &me, mailHeaders{
			kind: KindReply, ref: ids.ref, subject: replySubject(a), messageID: ids.messageID("reply", ""),
			inReplyTo: a.MessageID, auto: "auto-replied", body: body, parts: parts,
		}, now)
		if err != nil {
			if !isKeyError(err) {
				return err
			}
			res.ReplyErr = err
		} else {
			msgs = append(msgs, m)
			res.Replied, res.ReplyTo = true, me.Email
		}
		if keep && out.wantDigest && out.digest != nil {
			msgs = append(msgs, *out.digest)
			res.DigestQueued = true
		}
	}
	if keep && len(notices) > 0 {
		// A recipient without a usable key gets nothing: a notice cannot
		// be sent unencrypted.
		m := &liveness.Mailer{Info: info, From: from, Secret: h.Secret, Keys: h.keys(), OuterSubject: h.outerSubject()}
		key := ""
		if out.before.Key != nil {
			key = out.before.Key.Fingerprint
		}
		ms, sent, _, err := m.Messages(notices, liveness.Change{
			Via: "signed mail", By: fmt.Sprintf("a mail signed by %s <%s> (key %s)", Echo(out.before.Name), out.before.Email, key),
			Subject: info.Name + ": " + noticeSubject(notices), Head: out.view.Head, Ref: ids.ref,
			MessageID: func(rcpt string) string { return ids.messageID("notify", rcpt) },
		}, now)
		if err != nil {
			return err
		}
		msgs = append(msgs, ms...)
		res.Notified = append(res.Notified, sent...)
	}
	if keep {
		for _, pr := range out.proofs {
			// The challenge goes to the new key alone, whatever the reply
			// cap: without it the change can never be proven.
			to := directory.Contact{Email: pr.contact.Email, Name: pr.contact.Name, Key: pr.pending.NewKey}
			m, err := h.message(info, from, &to, mailHeaders{
				kind: liveness.KindProof, ref: ids.ref, subject: liveness.ProofSubject(info), messageID: ids.messageID("proof", ""),
				auto: "auto-generated", body: liveness.ProofBody(info, from, &pr.contact, pr.pending.NewKey, pr.pending.ID, pr.token, pr.pending.Requested, pr.pending.Due),
			}, now)
			if err != nil {
				return fmt.Errorf("challenge of change %s: %w", pr.pending.ID, err)
			}
			msgs = append(msgs, m)
			res.Challenged = append(res.Challenged, to.Email)
		}
		res.Pending = slices.Clone(out.pending)
	}
	if len(msgs) == 0 {
		return nil
	}
	_, err = h.Outbox.EnqueueTx(ctx, sq, msgs...)
	return err
}

// noticeSubject says what the notices of one mail tell: changes made, or
// only changes asked for (pending), or only what became of pending ones.
func noticeSubject(ns []*liveness.Notice) string {
	var made, asked, decided bool
	for _, n := range ns {
		made = made || len(n.Lines) > 0
		asked = asked || len(n.Asked) > 0
		decided = decided || len(n.Decided) > 0
	}
	switch {
	case !made && asked:
		return "change asked for by signed mail"
	case !made && !asked && decided:
		return "pending change stopped by signed mail"
	}
	return "change by signed mail"
}

// isKeyError reports whether err says a contact's key cannot be sent to
// (keys.Unusable), or that the contact has none.
func isKeyError(err error) bool { return keys.Unusable(err) || errors.Is(err, errNoKey) }

func contactByFingerprint(s *directory.Snapshot, fpr string) *directory.Contact {
	for i := range s.Contacts {
		if k := s.Contacts[i].Key; k != nil && strings.EqualFold(k.Fingerprint, fpr) {
			return &s.Contacts[i]
		}
	}
	return nil
}

// ids derives the outbox ref and message IDs of one mail's messages from
// its replay id, so that they are stable and unique per mail.
type ids struct {
	ref  string
	seed string
}

func newIDs(seen string) ids {
	sum := sha256.Sum256([]byte("ccdir mailcmd\x00" + seen))
	seed := hex.EncodeToString(sum[:12])
	ref := seen
	if ref == "" || len(ref) > 128 || !isHex(ref) {
		ref = seed
	}
	return ids{ref: "mail-" + ref, seed: seed}
}

func (i ids) messageID(kind, rcpt string) string {
	id := kind + "-" + i.seed
	if rcpt != "" {
		sum := sha256.Sum256([]byte(rcpt))
		id += "-" + hex.EncodeToString(sum[:6])
	}
	return id
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

// Summary is one line for the operator's log: what the mail did, never
// what it said.
func (r *Result) Summary() string {
	var parts []string
	n := 0
	if r.Script != nil {
		n = len(r.Script.Commands)
	}
	switch {
	case len(r.ParseErrors) > 0:
		parts = append(parts, fmt.Sprintf("%d bad lines, nothing run", len(r.ParseErrors)))
	case r.Failed:
		parts = append(parts, fmt.Sprintf("%d commands, one failed, nothing kept", n))
	case r.DryRun:
		parts = append(parts, fmt.Sprintf("dry run of %d commands", n))
	default:
		parts = append(parts, fmt.Sprintf("%d commands, %d ledger entries", n, len(r.Entries)))
	}
	switch {
	case r.Replied:
		parts = append(parts, "reply queued")
	case r.RateLimited:
		parts = append(parts, "no reply (rate limit)")
	case r.ReplyErr != nil:
		parts = append(parts, "no reply: "+r.ReplyErr.Error())
	}
	if len(r.Notified) > 0 {
		parts = append(parts, fmt.Sprintf("%d notices", len(r.Notified)))
	}
	if len(r.Pending) > 0 {
		parts = append(parts, "pending "+strings.Join(r.Pending, ", "))
	}
	for _, c := range r.Results {
		var rf *refusal
		if errors.As(c.Err, &rf) && rf.detail != nil {
			parts = append(parts, fmt.Sprintf("%s refused: %v", c.Command.Verb, rf.detail))
		}
	}
	if len(r.Challenged) > 0 {
		parts = append(parts, "challenge to the new key queued")
	}
	if r.DigestQueued {
		parts = append(parts, "digest queued")
	}
	return strings.Join(parts, ", ")
}
