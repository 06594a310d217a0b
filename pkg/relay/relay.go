package relay

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Outbox kinds.
const (
	// Kind is the outbox kind of list copies; their ref is the alert id,
	// so each recipient gets one copy of an alert at most.
	Kind = outbox.KindAlert
	// KindReply is the kind of the reply to a post that was not relayed:
	// the kind of every answer to a refused mail (fanout.KindRefused), so
	// that one cap per contact holds for them all (Config.RepliesPerHour).
	KindReply = fanout.KindRefused
	// KindLimit is the kind of the answer to a post refused because its
	// author posted too much: one per author per hour, however many posts.
	KindLimit = "alert-limit"
)

// Defaults and limits.
const (
	DefaultTLP = TLPAmber
	// OuterSubject is the neutral outer Subject of every copy.
	OuterSubject = "Encrypted message"
	// DefaultPostsPerMinute and DefaultPostsPerHour cap the posts of one
	// author that are relayed (Config.PostsPerMinute, PostsPerHour):
	// enough for a running incident, not for a flood.
	DefaultPostsPerMinute = 5
	DefaultPostsPerHour   = 20
	idLen                 = 8
	idAlphabet            = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
)

// Config is what the operator sets for the list. The zero value means the
// documented defaults.
type Config struct {
	// ListAddress is the list's address; empty means the one recorded in
	// the directory (Info.ListAddress). Copies come from it.
	ListAddress string
	// Tag starts every copy's Subject; empty means "[" + directory name + "]".
	Tag string
	// DefaultTLP is the label of a post that carries none (default AMBER).
	DefaultTLP string
	// NoCopyToSender: the author gets no copy of their own post (by
	// default they do). The zero value is the default, hence the negation.
	NoCopyToSender bool
	// KeepMessageID keeps the original Message-ID as the protected
	// Message-ID of the copies (default: dropped): only a signed one
	// (Accepted.MessageIDSigned); a post without one gets an id of the
	// directory's own, the same in all its copies.
	KeepMessageID bool
	// Archive keeps each post as received (still encrypted to the
	// directory key when it was) in alerts.archive. Default: no content
	// is kept.
	Archive bool
	// PostsPerMinute and PostsPerHour cap the posts one author gets
	// relayed in any minute and any hour (DefaultPostsPerMinute,
	// DefaultPostsPerHour). A post over a cap is relayed to nobody; its
	// author is told once an hour (KindLimit).
	PostsPerMinute, PostsPerHour int
	// RepliesPerHour caps the answers to refused mail one contact gets in
	// an hour, whichever service refused it (fanout.DefaultAnswersPerHour;
	// ccdir sets commands.replies_per_hour). The answer to posts over the
	// per-author limits goes once an hour, apart.
	RepliesPerHour int
}

// Relay re-sends members' posts to the list address to every member,
// encrypted to each one's key and signed by the directory. Set the
// exported fields, then share it: Handle may be called concurrently (posts
// are handled one at a time).
type Relay struct {
	Store  *directory.Store
	Secret *keys.Secret
	Outbox *outbox.Outbox
	Config Config
	Now    func() time.Time // nil: time.Now
	// Rand is the randomness of alert ids and encryption; nil means
	// crypto/rand. It is read from several goroutines: it must be safe
	// for concurrent use.
	Rand io.Reader

	mu   sync.Mutex
	keys *fanout.Keys // the members' keys, each parsed once per Relay
}

// Errors of Handle. A replay returns an error wrapping inbound.ErrReplay.
var (
	// ErrUnknownSender: the signing key is no longer registered to an
	// active contact. Nothing was relayed.
	ErrUnknownSender = errors.New("the signing key is not registered to an active contact")
	// ErrNoList: the directory has no list address.
	ErrNoList = errors.New("the directory has no list address")
)

// Skipped is a recipient who gets no copy, and why.
type Skipped struct {
	Email  string   `json:"email"`
	TLDs   []string `json:"tlds"`
	Reason string   `json:"reason"`
}

// Result says what Handle did with one post.
type Result struct {
	Alert  string `json:"alert,omitempty"` // the alert id; "" if not relayed
	TLP    string `json:"tlp"`
	Author string `json:"author"` // the signer's registered email
	// Queued counts the copies queued, the author's own included.
	Queued  int       `json:"queued"`
	Skipped []Skipped `json:"skipped"` // no usable key
	// Refused says why the post was not relayed (a TLP:RED post without
	// TO: line or not encrypted, a TO: line naming nobody known, a mail signed for the
	// command address); the author is told in an encrypted reply
	// (Replied) unless over the reply limit or without a usable key.
	Refused string `json:"refused,omitempty"`
	Replied bool   `json:"replied,omitempty"`
	// NotTold says why the author of a refused post was not answered
	// (the rate limit, no usable key).
	NotTold string `json:"not_told,omitempty"`
}

// Summary is one line for the operator's log: what the post did, never
// what it said.
func (r *Result) Summary() string {
	if r.Refused != "" {
		s := "not relayed: " + r.Refused
		switch {
		case r.Replied:
			s += " (author told)"
		case r.NotTold != "":
			s += " (author not told: " + r.NotTold + ")"
		}
		return s
	}
	s := fmt.Sprintf("alert %s TLP:%s, %d copies queued", r.Alert, r.TLP, r.Queued)
	if len(r.Skipped) > 0 {
		s += fmt.Sprintf(", %d recipients without a usable key", len(r.Skipped))
	}
	return s
}

func (r *Relay) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC().Truncate(time.Second)
	}
	return time.Now().UTC().Truncate(time.Second)
}

func (r *Relay) rand() io.Reader {
	if r.Rand != nil {
		return r.Rand
	}
	return rand.Reader
}

// settings is Config with the defaults filled in from the directory.
type settings struct {
	Config
	info directory.Info
}

func (r *Relay) settings(info directory.Info) (settings, error) {
	c := r.Config
	if c.ListAddress == "" {
		c.ListAddress = info.ListAddress
	}
	if c.ListAddress == "" || outbox.CheckAddress(c.ListAddress) != nil {
		return settings{}, ErrNoList
	}
	if c.Tag == "" {
		c.Tag = "[" + info.Name + "]"
	}
	if c.DefaultTLP = NormalizeTLP(c.DefaultTLP); c.DefaultTLP == "" {
		c.DefaultTLP = DefaultTLP
	}
	if c.PostsPerMinute <= 0 {
		c.PostsPerMinute = DefaultPostsPerMinute
	}
	if c.PostsPerHour <= 0 {
		c.PostsPerHour = DefaultPostsPerHour
	}
	return settings{Config: c, info: info}, nil
}

// Handle relays one accepted post (inbound guarantees a fresh, unseen
// signature by an active contact's registered key). In one transaction of
// the directory it marks the signature seen (a replay returns an error
// wrapping inbound.ErrReplay, and nothing is sent), records the alert and
// its recipients, and queues one copy per recipient (kind "alert", ref
// the alert id): the inner entity is signed once, and encrypted to each
// recipient's key in parallel. A crash before the commit leaves nothing;
// after it, every copy is in the outbox, once.
//
// Recipients without a usable key are skipped and reported (Result, and
// a note in the author's copy). A post that cannot be relayed as asked
// (see Result.Refused) is marked seen and answered with an encrypted
// reply to the author; the error is then nil.
//
// The error is for failures of the machinery (database, signing): the
// caller should have the post retried.
func (r *Relay) Handle(ctx context.Context, a *inbound.Accepted) (*Result, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keys == nil {
		r.keys = fanout.NewKeysKept()
	}
	if a == nil || a.Key == nil {
		return nil, ErrUnknownSender
	}
	if r.Store == nil || r.Secret == nil || r.Outbox == nil {
		return nil, errors.New("relay: Store, Secret and Outbox are required")
	}
	info, err := r.Store.Info(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := r.settings(info)
	if err != nil {
		return nil, err
	}
	now := r.now()
	// Only a signed Subject reaches the copies (and may carry the label):
	// an outer one could have been changed on the way, and the copies are
	// signed by the directory.
	subject, unsigned := "", a.Subject
	if a.SubjectSigned {
		subject, unsigned = a.Subject, ""
	}
	p := parsePost(subject, unsigned, a.Text, a.Shown, cfg.Tag, cfg.DefaultTLP)
	res := &Result{TLP: p.tlp, Skipped: []Skipped{}}
	actor := directory.Actor{Name: "member:" + a.Key.Fingerprint}
	_, err = r.Store.Update(ctx, actor, func(tx *directory.Tx) error {
		sq := tx.SQL()
		if err := a.MarkSeen(ctx, sq); err != nil {
			return err
		}
		// Inside Update the write lock is held: this read sees the latest
		// commit, and nobody commits another before this one ends. The
		// recipients and their keys are what the signed ledger says
		// (directory.Store.Checked): a key written into the tables
		// without the directory key gets no copy.
		v, err := r.Secret.Public().NewVerifier(now)
		if err != nil {
			return fmt.Errorf("relay: directory key: %w", err)
		}
		snap, err := r.Store.Checked(ctx, r.Secret.Fingerprint(), v.Verify)
		if err != nil {
			return err
		}
		author := authorOf(snap, a.Key.Fingerprint)
		if author == nil {
			return ErrUnknownSender
		}
		res.Author = author.Email
		if why := p.refusal(cfg, a, boundToList(a, cfg.ListAddress)); why != "" {
			return r.refuse(ctx, sq, cfg, a, author, why, now, res)
		}
		if why, err := overLimit(ctx, sq, cfg, author.Email, now); err != nil || why != "" {
			if err != nil {
				return err
			}
			res.Refused = why
			return r.answer(ctx, sq, cfg, a, author, inbound.RefusedPostLimit, KindLimit, 1, why, now, res)
		}
		targets, err := p.targets(snap, author, !cfg.NoCopyToSender)
		if err != nil {
			return r.refuse(ctx, sq, cfg, a, author, err.Error(), now, res)
		}
		return r.relay(ctx, sq, cfg, a, p, author, targets, now, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// authorOf returns the contact with a role for an active ccTLD whose
// registered key is fpr.
func authorOf(s *directory.Snapshot, fpr string) *directory.Contact {
	for i := range s.Contacts {
		c := &s.Contacts[i]
		if c.Key != nil && strings.EqualFold(c.Key.Fingerprint, fpr) && s.Reachable(c) {
			return c
		}
	}
	return nil
}

// refusal says why a post cannot be relayed as it is, or "".
func (p *post) refusal(cfg settings, a *inbound.Accepted, bound bool) string {
	attachments, directories := len(a.Attachments), a.Block.Directories
	if !bound {
		what := "the signed content does not name the list"
		if len(directories) > 0 {
			what = fmt.Sprintf("the post was signed for %s (its DIRECTORY line), not for the list", quoteAll(directories[:1])[0])
		}
		return fmt.Sprintf("%s: a mail for the command address is not relayed; to post to the list %s, "+
			"put the line DIRECTORY %s at the top of the text (or sign the To header)", what, cfg.ListAddress, cfg.ListAddress)
	}
	if attachments > pgpmime.MaxParts-1 {
		return fmt.Sprintf("the post has %d attachments; the list relays at most %d", attachments, pgpmime.MaxParts-1)
	}
	if slices.Index(tlpOrder, p.shown) > slices.Index(tlpOrder, p.tlp) {
		// Fail closed: the label that would apply is weaker than one the
		// post shows, which the author may have meant.
		return fmt.Sprintf("the post shows the label TLP:%s (in %s), more restrictive than TLP:%s, the label it would be relayed under: "+
			"a post's label is read only from its signed Subject and the first lines of its signed text (up to the first blank line), "+
			"and a post is never relayed under a weaker label than one it shows; put TLP:%s in the first lines of the text%s, sign the post and send it again",
			p.shown, p.shownAt, p.tlp, p.shown, map[bool]string{true: " with a TO: line naming its recipients", false: ""}[p.shown == TLPRed])
	}
	if p.tlp == TLPRed && !a.Encrypted {
		// Fail closed: relaying it would tell everyone named that a text
		// meant for them alone is fine to send in clear.
		return fmt.Sprintf("the post is labelled TLP:RED but reached the list unencrypted: its text crossed the network in clear, "+
			"so it is relayed to nobody (take what it says as possibly read on the way); a TLP:RED post must be encrypted "+
			"to the directory's key (%s, key fingerprint %s): sign it, encrypt it and send it again",
			cfg.info.Address, keys.GroupFingerprint(cfg.info.KeyFingerprint))
	}
	if p.tlp == TLPRed && !p.hasTo {
		return "the post is labelled TLP:RED, and a TLP:RED post goes only to the contacts its author names, never to the whole list; " +
			"add a line such as\n\n  TO: pt, de, someone@example.org\n\nat the top of the text (ccTLD codes for all contacts of a ccTLD, " +
			"or contacts' email addresses), sign the post and send it again"
	}
	return ""
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(strings.Trim(x, "<>"), s) {
			return true
		}
	}
	return false
}

// recipient is a target whose key was read.
type recipient struct {
	target
	key *pgpmime.Recipient
	err error // the key cannot be used
}

// prepare reads and checks every target's key, in parallel.
func (r *Relay) prepare(targets []target, now time.Time) []recipient {
	out := make([]recipient, len(targets))
	pgpmime.Parallel(len(targets), 0, func(i int) {
		t := targets[i]
		out[i] = recipient{target: t}
		out[i].key, out[i].err = r.keys.Recipient(t.contact.Key, now)
	})
	return out
}

// newID returns a fresh alert id: 40 random bits in base32.
func (r *Relay) newID(ctx context.Context, sq *sql.Tx) (string, error) {
	enc := base32.NewEncoding(idAlphabet).WithPadding(base32.NoPadding)
	for range 8 {
		var b [5]byte
		if _, err := io.ReadFull(r.rand(), b[:]); err != nil {
			return "", err
		}
		id := enc.EncodeToString(b[:])
		var n int
		if err := sq.QueryRowContext(ctx, `SELECT count(*) FROM alerts WHERE id = ?`, id).Scan(&n); err != nil {
			return "", err
		}
		if n == 0 {
			return id, nil
		}
	}
	return "", errors.New("relay: no free alert id (is the randomness broken?)")
}

// relay records the alert and queues its copies, inside the post's
// transaction.
func (r *Relay) relay(ctx context.Context, sq *sql.Tx, cfg settings, a *inbound.Accepted, p *post, author *directory.Contact, targets []target, now time.Time, res *Result) error {
	id, err := r.newID(ctx, sq)
	if err != nil {
		return err
	}
	res.Alert = id
	var archive []byte
	if cfg.Archive {
		archive = a.Raw
	}
	if _, err := sq.ExecContext(ctx, `INSERT INTO alerts (id, author_email, author_fpr, tlp, created, archive) VALUES (?, ?, ?, ?, ?, ?)`,
		id, author.Email, a.Key.Fingerprint, p.tlp, now.UnixMilli(), archive); err != nil {
		return fmt.Errorf("relay: record alert: %w", err)
	}

	rcpts := r.prepare(targets, now)
	var good []*recipient
	for i := range rcpts {
		rc := &rcpts[i]
		if rc.err != nil {
			s := Skipped{Email: rc.contact.Email, TLDs: rc.tlds, Reason: keys.Reason(rc.err)}
			if !rc.author {
				res.Skipped = append(res.Skipped, s)
			}
			continue
		}
		good = append(good, rc)
	}

	// Sign once for everyone; the author's copy carries the note about
	// the skipped recipients, so it is signed apart when there is one.
	c := &composer{cfg: cfg, a: a, p: p, id: id, author: author, now: now, secret: r.Secret}
	common, err := c.sealed(nil, r.rand())
	if err != nil {
		return err
	}
	authorEnc := common
	if len(res.Skipped) > 0 {
		if authorEnc, err = c.sealed(res.Skipped, r.rand()); err != nil {
			return err
		}
	}
	if cfg.NoCopyToSender && len(res.Skipped) > 0 {
		// The author gets the note alone, with the post: they have no
		// other way to learn who was not reached.
		if key, err := r.keys.Recipient(author.Key, now); err == nil {
			good = append(good, &recipient{target: target{contact: *author, author: true}, key: key})
		}
	}

	mark := func(rc *recipient, state, reason string) error {
		_, err := sq.ExecContext(ctx, `INSERT INTO alert_recipients (alert_id, email, tlds, author, state, reason) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (alert_id, email) DO UPDATE SET state = excluded.state, reason = excluded.reason`,
			id, rc.contact.Email, strings.Join(rc.tlds, ","), rc.author, state, reason)
		return err
	}
	for i := range rcpts {
		if rc := &rcpts[i]; rc.err != nil {
			if err := mark(rc, "skipped", keys.Reason(rc.err)); err != nil {
				return fmt.Errorf("relay: record recipients: %w", err)
			}
		}
	}
	fq := &fanout.Queue{Outbox: r.Outbox, Kind: Kind, Ref: id, From: c.cfg.info.Address, Tx: sq, Rand: r.rand(),
		Done: func(ctx context.Context, _ *sql.Tx, batch []fanout.Outcome) error {
			for _, o := range batch {
				rc := good[o.Index]
				state, reason := "queued", ""
				if o.Err != nil {
					state, reason = "skipped", keys.Reason(o.Err)
					if !rc.author {
						res.Skipped = append(res.Skipped, Skipped{Email: rc.contact.Email, TLDs: rc.tlds, Reason: reason})
					}
				} else {
					res.Queued++
				}
				if err := mark(rc, state, reason); err != nil {
					return fmt.Errorf("relay: record recipients: %w", err)
				}
			}
			return nil
		},
	}
	if _, err := fq.Run(ctx, len(good), func(i int) (fanout.Copy, error) {
		enc := common
		if good[i].author {
			enc = authorEnc
		}
		return fanout.Copy{To: good[i].contact.Email, Key: good[i].key, Sealed: enc, Outer: c.outer(&good[i].contact)}, nil
	}); err != nil {
		return err
	}
	_, err = sq.ExecContext(ctx, `UPDATE alerts SET recipients = ? WHERE id = ?`, res.Queued, id)
	return err
}

// overLimit says why a post by the contact email is over a per-author
// limit (Config.PostsPerMinute, PostsPerHour), or "": it counts the
// alerts the relay recorded for the author in the last minute and hour.
func overLimit(ctx context.Context, sq *sql.Tx, cfg settings, email string, now time.Time) (string, error) {
	times, err := postTimes(ctx, sq, email, now.Add(-time.Hour))
	if err != nil {
		return "", err
	}
	var why string
	var until time.Time
	for _, l := range []struct {
		max        int
		per        time.Duration
		name, unit string
	}{{cfg.PostsPerMinute, time.Minute, "a minute", "minute"}, {cfg.PostsPerHour, time.Hour, "an hour", "hour"}} {
		in := times // relayed in the last l.per
		for len(in) > 0 && !in[0].After(now.Add(-l.per)) {
			in = in[1:]
		}
		if len(in) < l.max {
			continue
		}
		// The post that lets one more through is the l.max-th newest.
		if next := in[len(in)-l.max].Add(l.per); next.After(until) {
			until = next
			posts := map[bool]string{true: "post", false: "posts"}[l.max == 1]
			why = fmt.Sprintf("the list relays at most %d %s by one author %s, and you had %d relayed in the last %s: "+
				"this post, and any you send before %s, is relayed to nobody (you get this answer once an hour at most); "+
				"send what is still needed again after that time, in fewer posts", l.max, posts, l.name, len(in), l.unit,
				next.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
	}
	return why, nil
}

// refuse answers a post that is not relayed with an encrypted, signed
// reply to the author's registered address, unless the author had
// Config.RepliesPerHour answers to refused mail within the hour.
func (r *Relay) refuse(ctx context.Context, sq *sql.Tx, cfg settings, a *inbound.Accepted, author *directory.Contact, why string, now time.Time, res *Result) error {
	res.Refused = strings.ReplaceAll(strings.ReplaceAll(why, "\n\n", " "), "\n", " ")
	return r.answer(ctx, sq, cfg, a, author, inbound.RefusedPost, KindReply, cfg.RepliesPerHour, why, now, res)
}

// answer queues the answer of kind saying why to the author of a post
// that is not relayed (fanout.Answer, the one answer to refused mail),
// unless the author had perHour of that kind within the hour. Whether a
// refusal is told is inbound's table's to say (inbound.Kind.Tellable).
func (r *Relay) answer(ctx context.Context, sq *sql.Tx, cfg settings, a *inbound.Accepted, author *directory.Contact, refusal inbound.Kind, kind string, perHour int, why string, now time.Time, res *Result) error {
	if !refusal.Tellable() {
		res.NotTold = refusal.Silent()
		return nil
	}
	// Only a signed Subject is echoed: the outer one can be set by anyone
	// on the way, and this answer is signed by the directory.
	subject := ""
	if a.SubjectSigned {
		subject = cleanSubject(a.Subject, cfg.Tag)
	}
	ans := &fanout.Answer{Kind: kind, PerHour: perHour, Seen: a.Seen, Envelope: cfg.info.Address,
		From: address(cfg.info.Name, cfg.ListAddress), To: address(author.Name, author.Email), Key: author.Key,
		What: "post", Outcome: "was not relayed to anyone", Title: "Not relayed", Subject: subject,
		SignedAt: a.SignedAt, Why: why, Now: now}
	notTold, err := ans.Queue(ctx, sq, r.Outbox, r.Secret, r.keys)
	if err != nil {
		return err
	}
	res.Replied, res.NotTold = notTold == "", notTold
	return nil
}

func domainOf(addr string) string { return addr[strings.LastIndexByte(addr, '@')+1:] }

func address(name, addr string) mail.Address { return mail.Address{Name: name, Address: addr} }
