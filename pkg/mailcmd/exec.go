package mailcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Caps on what one reply carries.
const (
	maxKeysPerReply = 20 // KEY attachments
	maxSearchHits   = 25 // SEARCH result lines
)

// refusal is a command that cannot run, said to the sender (msg).
// detail, when set, is what only the log says (Result.Summary): what a
// member is not told, as the internals of a tampered pending change.
type refusal struct {
	msg    string
	detail error
}

func (e *refusal) Error() string { return e.msg }
func (e *refusal) Unwrap() error { return e.detail }

func refuse(format string, args ...any) error { return &refusal{msg: fmt.Sprintf(format, args...)} }

var errNoKey = errors.New("contact has no key")

// isUserError reports whether err is a refusal of the command (told to
// the sender) rather than a failure of the machinery.
func isUserError(err error) bool {
	var r *refusal
	var de *directory.Error
	var fe *directory.FieldError
	return errors.As(err, &r) || errors.As(err, &de) || errors.As(err, &fe) ||
		errors.Is(err, directory.ErrUnknownTLD) || isKeyError(err)
}

// run is the execution of one mail's commands inside its transaction.
type run struct {
	ctx   context.Context
	tx    *directory.Tx
	a     *inbound.Accepted
	now   time.Time
	dry   bool
	email string // the sender's email

	// start is the head the mail found: what a reply of a DRY-RUN or a
	// failed mail quotes, as its changes are rolled back.
	start directory.Head
	// view is the directory as the mail's changes so far leave it, so
	// that queries after a change see it.
	view   *directory.Snapshot
	before directory.Contact  // the sender before the mail
	me     *directory.Contact // the sender after the mail (set at the end)

	attached   []*keys.Public
	attachErrs []string
	attachRead bool
	results    []CommandResult
	parts      []pgpmime.Part
	notices    *liveness.Notices
	changed    bool
	wantDigest bool
	digest     *outbox.Message
	digestErr  error
	failed     bool
	cfg        Config

	// pending are the ids of the changes proposed (liveness.Propose),
	// proofs the possession challenges to queue with the reply.
	pending     []string
	proofs      []proof
	tokenSecret []byte // what challenge tokens are derived from: the outbox key
	// auth authenticates pending changes: the outbox key, the home's
	// record of decisions (Handler.Decisions).
	auth liveness.Auth
	rand io.Reader
}

// proof is the possession challenge of a pending key change: sent to
// contact's address, encrypted to pending.NewKey alone.
type proof struct {
	pending liveness.Pending
	contact directory.Contact // as registered, with its current key
	token   string
}

// mayKeep checks a command that wrote ledger entries, or asks for a
// pending change (asking: 1, the change it is about to ask for), against
// the limits on changes by mail: the evidence kept with each entry or
// change (the signed content and its signature,
// inbound.Accepted.Evidence) is at most Config.MaxEvidence bytes, and
// the mails of one contact make at most Config.ChangesPerDay changes in
// 24 hours, this mail's included (perDay). Over a limit the command is
// refused: the sender is told in the reply, and no change of the mail is
// kept.
func (r *run) mayKeep(asking int) error {
	if len(r.a.Evidence) == 0 {
		return errors.New("mailcmd: accepted mail without evidence")
	}
	if n := len(r.a.Evidence); n > r.cfg.MaxEvidence {
		return refuse("not done: a change keeps its mail's signed content, at most %d bytes, and this one's is %d bytes; send it without other attachments", r.cfg.MaxEvidence, n)
	}
	return r.perDay(asking)
}

// perDay refuses a command over Config.ChangesPerDay for the sender's
// contact: its ledger entries by mail in the last 24 hours
// (Tx.MemberChanges), the pending changes it asked for
// (liveness.MemberRequests: each sends notices, some to an address
// outside the directory), and asking more about to be made. A VETO is
// never refused for it.
func (r *run) perDay(asking int) error {
	since := r.now.Add(-24 * time.Hour)
	n, err := r.tx.MemberChanges(r.before.ID, since)
	if err != nil {
		return err
	}
	m, err := liveness.MemberRequests(r.ctx, r.tx.SQL(), r.before.ID, since)
	if err != nil {
		return err
	}
	if n+m+asking > r.cfg.ChangesPerDay {
		return refuse("not done: at most %d changes a day by mail for one contact (pending changes included), reached in the last 24 hours; try again later, or ask the operator", r.cfg.ChangesPerDay)
	}
	return nil
}

func (h *Handler) execute(ctx context.Context, tx *directory.Tx, a *inbound.Accepted, s *Script, now time.Time, dig *outbox.Message, digErr error) (*run, error) {
	// Inside Update the write lock is held: this read sees the latest
	// commit, and nobody can commit another before this transaction ends.
	// The tables must say what the signed ledger says, or a change made
	// now would sign rows written without the directory key (and answers
	// would hand them out).
	fpr, verify, err := h.ledgerCheck()
	if err != nil {
		return nil, err
	}
	if !queriesOnly(s) {
		if err := tx.Check(fpr, verify); err != nil {
			return nil, err
		}
	}
	snap, err := h.Store.Checked(ctx, fpr, verify)
	if err != nil {
		return nil, err
	}
	me := contactByFingerprint(snap, a.Key.Fingerprint)
	if me == nil {
		return nil, ErrUnknownSender
	}
	r := &run{ctx: ctx, tx: tx, a: a, now: now, dry: s.DryRun, email: me.Email, start: snap.Head, view: snap, before: cloneContact(*me),
		notices: liveness.NewNotices(snap, me.Email), digest: dig, digestErr: digErr, cfg: h.config(), tokenSecret: h.Outbox.Key, rand: h.rand(),
		auth: liveness.Auth{Secret: h.Outbox.Key, Decisions: h.Decisions}}
	for _, c := range s.Commands {
		if r.failed {
			r.results = append(r.results, CommandResult{Command: c, Skipped: true, Text: "not run: an earlier command failed"})
			continue
		}
		serial := tx.Head().Serial
		text, err := r.do(&c)
		if err == nil && tx.Head().Serial != serial {
			if err = r.mayKeep(0); err != nil {
				text = ""
			} else if more, serr := r.supersede(); serr != nil {
				return nil, serr
			} else if len(more) > 0 {
				text += "\n" + strings.Join(more, "\n")
			}
		}
		if err != nil {
			if !isUserError(err) {
				return nil, err
			}
			r.failed = true
		}
		r.results = append(r.results, CommandResult{Command: c, Err: err, Text: text})
	}
	self := cloneContact(*r.self())
	r.me = &self
	return r, nil
}

// queries are the verbs that only read the directory (Store.Checked's
// view); any other verb may change it, reading the tables as it does.
// (ACK, PONG, VETO and CONFIRM write operational tables only: the
// relay's, the pings, the pending changes.)
var queries = map[string]bool{VerbHelp: true, VerbList: true, VerbShow: true, VerbSearch: true, VerbKey: true,
	VerbCall: true, VerbDigest: true, VerbWhoami: true, VerbAck: true, VerbAcks: true, VerbPong: true,
	VerbVeto: true, VerbConfirm: true}

// queriesOnly reports whether a script only reads: then the tables need
// not be checked under the write lock (no entry is signed).
func queriesOnly(s *Script) bool {
	for _, c := range s.Commands {
		if !queries[c.Verb] {
			return false
		}
	}
	return true
}

func cloneContact(c directory.Contact) directory.Contact {
	c.Phones = slices.Clone(c.Phones)
	c.Roles = slices.Clone(c.Roles)
	c.Languages = slices.Clone(c.Languages)
	if c.Key != nil {
		k := *c.Key
		c.Key = &k
	}
	return c
}

func (r *run) self() *directory.Contact { return r.find(r.email) }

func (r *run) find(email string) *directory.Contact {
	i, ok := slices.BinarySearchFunc(r.view.Contacts, email, func(c directory.Contact, e string) int { return strings.Compare(c.Email, e) })
	if !ok {
		return nil
	}
	return &r.view.Contacts[i]
}

func (r *run) member(tld string) *directory.Member {
	for i := range r.view.Members {
		if r.view.Members[i].TLD == tld {
			return &r.view.Members[i]
		}
	}
	return nil
}

// put records a changed or added contact in the view; remove drops one.
func (r *run) put(c directory.Contact) {
	i, ok := slices.BinarySearchFunc(r.view.Contacts, c.Email, func(c directory.Contact, e string) int { return strings.Compare(c.Email, e) })
	if ok {
		r.view.Contacts[i] = c
	} else {
		r.view.Contacts = slices.Insert(r.view.Contacts, i, c)
	}
	r.advance()
}

func (r *run) remove(email string) {
	r.view.Contacts = slices.DeleteFunc(r.view.Contacts, func(c directory.Contact) bool { return c.Email == email })
	r.advance()
}

func (r *run) advance() {
	r.view.Head = r.tx.Head()
	r.view.Time = r.now.Format(time.RFC3339)
	r.changed = true
}

func (r *run) do(c *Command) (string, error) {
	// VETO and CONFIRM are decided with the change they name.
	var change *liveness.Pending
	if c.Verb == VerbVeto || c.Verb == VerbConfirm {
		p, err := r.getPending(c)
		if err != nil {
			return "", err
		}
		change = &p
	}
	if err := authorize(r.view, r.self(), c, change); err != nil {
		return "", err
	}
	switch c.Verb {
	case VerbHelp:
		return r.help(), nil
	case VerbList:
		return r.list(), nil
	case VerbShow:
		return r.show(c.TLD)
	case VerbSearch:
		return r.search(c.Query), nil
	case VerbKey:
		return r.key(c)
	case VerbCall:
		return r.call(c.TLD)
	case VerbDigest:
		if r.dry {
			return "the current digest would be sent to you as a separate encrypted message", nil
		}
		if r.digestErr != nil {
			return "", refuse("no digest can be sent to you: %v", r.digestErr)
		}
		r.wantDigest = true
		return "the current digest is sent to you as a separate encrypted message (unless the reply limit is reached)", nil
	case VerbWhoami:
		return r.whoami(), nil
	case VerbAck:
		return r.ack(c)
	case VerbAcks:
		return r.acks(c)
	case VerbPong:
		return r.pong(c)
	case VerbSetName, VerbSetPhone, VerbSetEmergency, VerbSetLanguages, VerbSetTimeZone, VerbSet24x7:
		return r.set(c)
	case VerbSetEmail:
		return r.setEmail(c)
	case VerbVeto:
		return r.veto(change)
	case VerbConfirm:
		return r.confirm(c, change)
	case VerbKeyRotate:
		return r.keyRotate()
	case VerbKeyRefresh:
		return r.keyRefresh()
	case VerbAddContact:
		return r.addContact(c)
	case VerbRemoveContact:
		return r.removeContact(c)
	}
	return "", refuse("unknown command %s", c.Verb)
}

// set changes a field of the sender's own entry.
//
// Phones: SET PHONE replaces the regular (non-emergency) numbers and
// keeps the emergency one; SET EMERGENCY-PHONE replaces the emergency
// number and keeps the regular ones; "none" removes them, as long as one
// number is left.
func (r *run) set(c *Command) (string, error) {
	before := cloneContact(*r.self())
	after, err := r.tx.UpdateContact(before.Email, func(ct *directory.Contact) error {
		var emergency, regular []directory.Phone
		for _, p := range ct.Phones {
			if p.Emergency {
				emergency = append(emergency, p)
			} else {
				regular = append(regular, p)
			}
		}
		switch c.Verb {
		case VerbSetName:
			ct.Name = c.Name
		case VerbSetPhone:
			regular = nil
			for _, n := range c.Phones {
				if !slices.ContainsFunc(emergency, func(p directory.Phone) bool { return p.Number == n }) {
					regular = append(regular, directory.Phone{Number: n})
				}
			}
			if len(regular)+len(emergency) == 0 {
				return refuse("a contact needs at least one phone number; give one, or set an emergency phone first")
			}
			ct.Phones = append(emergency, regular...)
		case VerbSetEmergency:
			emergency = nil
			if len(c.Phones) == 1 {
				emergency = []directory.Phone{{Number: c.Phones[0], Emergency: true}}
				regular = slices.DeleteFunc(regular, func(p directory.Phone) bool { return p.Number == c.Phones[0] })
			}
			if len(regular)+len(emergency) == 0 {
				return refuse("a contact needs at least one phone number; set a regular phone first")
			}
			ct.Phones = append(emergency, regular...)
		case VerbSetLanguages:
			ct.Languages = c.Languages
		case VerbSetTimeZone:
			ct.TimeZone = c.TimeZone
		case VerbSet24x7:
			ct.Always = c.Yes
		}
		return nil
	})
	if errors.Is(err, directory.ErrUnchanged) {
		return "unchanged: your entry already says so", nil
	}
	if err != nil {
		return "", err
	}
	r.put(after)
	lines := liveness.Describe(&before, &after)
	r.announce(&before, &after, liveness.RoleTLDs(&before, &after), lines)
	return r.did(lines), nil
}

// did words the changes for the reply.
func (r *run) did(lines []string) string {
	prefix := "done: "
	if r.dry {
		prefix = "would do: "
	}
	return prefix + strings.Join(lines, "\n"+strings.Repeat(" ", len(prefix)))
}

func (r *run) keyRotate() (string, error) {
	me := r.self()
	cur := ""
	if me.Key != nil {
		cur = me.Key.Fingerprint
	}
	pub, err := r.pickKey(me.Email, cur)
	if err != nil {
		return "", r.sameKeyHint(err, cur)
	}
	k, err := contactKey(pub, me.Email, r.now)
	if err != nil {
		return "", err
	}
	// Possession of the new key: its own signature of this mail, checked
	// on its own (inbound.Accepted.Signatures), beside the registered
	// key's that inbound accepted the mail by. Without it the change
	// waits, and the new key proves itself by answering a challenge.
	if !r.a.SignedBy(pub.Fingerprint) {
		return r.proposeKey(me, k)
	}
	before := cloneContact(*me)
	after, err := r.tx.SetKey(me.Email, k)
	if err != nil {
		return "", err
	}
	r.put(after)
	lines := liveness.Describe(&before, &after)
	r.announce(&before, &after, liveness.RoleTLDs(&before, nil), lines)
	return r.did(append(lines, "replies and digests are encrypted to the new key from now on; a notice goes to the old one")), nil
}

// authorize is the one decision of whether sender may run c by mail,
// taken on view (the directory as the mail's earlier commands leave it)
// before the command runs:
//
//   - every command needs a sender that holds a role for an active ccTLD
//     (the pipeline's key index says the same; this is the check inside
//     the mail's transaction);
//   - a change to the contacts of a ccTLD (ADD-CONTACT, REMOVE-CONTACT)
//     is decided for that ccTLD alone: it must be a member, active, and
//     the sender one of its admins. Being an admin of another ccTLD, or
//     an admin of this one while another of the sender's ccTLDs is
//     active, is not enough: an inactive ccTLD's contacts are changed by
//     the operator only;
//   - VETO of a pending change (change) is for the contact it concerns
//     (signing with its registered key: the key a key change replaces)
//     and for the admin contacts of that contact's active ccTLDs;
//     CONFIRM of one for that contact alone;
//   - every other command reads, or changes the sender's own entry.
func authorize(view *directory.Snapshot, sender *directory.Contact, c *Command, change *liveness.Pending) error {
	status := func(tld string) string {
		for _, m := range view.Members {
			if m.TLD == tld {
				return m.Status
			}
		}
		return ""
	}
	active := false
	for _, role := range sender.Roles {
		active = active || status(role.TLD) == directory.StatusActive
	}
	if !active {
		return refuse("none of your ccTLDs is active in the directory; ask the operator")
	}
	var what string
	switch c.Verb {
	case VerbVeto:
		who := contactByID(view, change.ContactID)
		if who != nil && who.ID == sender.ID {
			return nil
		}
		tlds := "its ccTLDs"
		if who != nil {
			for _, tld := range view.ActiveTLDs(who) {
				if sender.RoleFor(tld) == directory.RoleAdmin {
					return nil
				}
			}
			tlds = strings.Join(displayAll(view.ActiveTLDs(who)), ", ")
		}
		return refuse("not vetoed: you may not veto change %s; only %s itself (signed by its registered key) or an admin contact of %s may", change.ID, change.Email, tlds)
	case VerbConfirm:
		if change.ContactID != sender.ID {
			return refuse("not confirmed: change %s is not a change of yours", change.ID)
		}
		return nil
	case VerbAddContact:
		what = "add its contacts"
	case VerbRemoveContact:
		what = "remove its contacts"
	default:
		return nil
	}
	switch status(c.TLD) {
	case "":
		return refuse("%s is not a member of the directory", display(c.TLD))
	case directory.StatusActive:
	default:
		return refuse("%s is %s in the directory: its contacts are changed by the operator only", display(c.TLD), status(c.TLD))
	}
	if sender.RoleFor(c.TLD) != directory.RoleAdmin {
		return refuse("only an admin contact of %s may %s; you are not one (ask one of them, or the operator)", display(c.TLD), what)
	}
	return nil
}

// addContact adds a security contact to a ccTLD. A new contact needs its
// key attached; an existing contact of another ccTLD gets the role.
func (r *run) addContact(c *Command) (string, error) {
	if old := r.find(c.Email); old != nil {
		if role := old.RoleFor(c.TLD); role != "" {
			return "", refuse("%s is already the %s contact of %s", c.Email, role, display(c.TLD))
		}
		before := cloneContact(*old)
		after, err := r.tx.UpdateContact(c.Email, func(ct *directory.Contact) error {
			ct.SetRole(c.TLD, directory.RoleSecurity)
			return nil
		})
		if err != nil {
			return "", err
		}
		r.put(after)
		lines := liveness.Describe(&before, &after)
		r.announce(&before, &after, []string{c.TLD}, lines)
		return r.did(append([]string{fmt.Sprintf("%s (already a contact of another ccTLD) is now a security contact of %s", c.Email, display(c.TLD))}, lines...)), nil
	}
	// A contact removed within changes.delay (by this mail or an
	// earlier one) and added again by mail would have its key swapped
	// at once, past the guard of key changes: the operator decides.
	if at, err := r.tx.RemovedSince(c.Email, r.now.Add(-r.cfg.ChangeDelay)); err != nil {
		return "", err
	} else if !at.IsZero() {
		return "", refuse("not added: %s was removed from the directory on %s; re-adding it (with another key) within %s of that waits for the operator: ask them",
			c.Email, at.UTC().Format(dueFormat), durationText(r.cfg.ChangeDelay))
	}
	pub, err := r.pickKey(c.Email, "")
	if err != nil {
		return "", err
	}
	k, err := contactKey(pub, c.Email, r.now)
	if err != nil {
		return "", err
	}
	after, err := r.tx.AddContact(directory.Contact{
		Email: c.Email, Name: c.Name, Phones: []directory.Phone{{Number: c.Phones[0]}},
		Roles: []directory.Role{{TLD: c.TLD, Role: directory.RoleSecurity}}, Key: k,
	})
	if err != nil {
		return "", err
	}
	r.put(after)
	line := fmt.Sprintf("%s added %s <%s> as a security contact of %s (phone %s, key %s)",
		r.email, after.Name, after.Email, display(c.TLD), c.Phones[0], k.Fingerprint)
	r.announce(nil, &after, []string{c.TLD}, []string{line})
	return r.did([]string{line}), nil
}

// removeContact drops a contact's role for a ccTLD, and the contact if it
// has no other.
func (r *run) removeContact(c *Command) (string, error) {
	old := r.find(c.Email)
	if old == nil || old.RoleFor(c.TLD) == "" {
		return "", refuse("%s is not a contact of %s", c.Email, display(c.TLD))
	}
	if old.Email == r.email {
		return "", refuse("you cannot remove yourself by mail; ask another admin of %s or the operator", display(c.TLD))
	}
	before := cloneContact(*old)
	if len(before.Roles) > 1 {
		after, err := r.tx.UpdateContact(c.Email, func(ct *directory.Contact) error {
			ct.DropRole(c.TLD)
			return nil
		})
		if err != nil {
			return "", err
		}
		r.put(after)
		line := fmt.Sprintf("%s removed %s <%s> from %s (still a contact of %s)", r.email, after.Name, after.Email, display(c.TLD), tldList(&after))
		r.announce(&before, &after, []string{c.TLD}, []string{line})
		return r.did([]string{line}), nil
	}
	if _, err := r.tx.RemoveContact(c.Email); err != nil {
		return "", err
	}
	r.remove(c.Email)
	line := fmt.Sprintf("%s removed %s <%s> from %s and from the directory", r.email, before.Name, before.Email, display(c.TLD))
	r.announce(&before, nil, []string{c.TLD}, []string{line})
	return r.did([]string{line}), nil
}

// announce records the notice of a change (liveness.Notices.Announce:
// to the affected contact's previous address and key, and its new ones,
// and to the other contacts of the ccTLDs concerned who receive directory
// data). The sender is told by the reply instead, unless the change
// reaches it at another key.
func (r *run) announce(before, after *directory.Contact, tlds []string, lines []string) {
	r.notices.Announce(before, after, tlds, lines)
}

// pickKey returns the one attached key with a user ID for email, other
// than the key exclude.
func (r *run) pickKey(email, exclude string) (*keys.Public, error) {
	r.readAttached()
	var found []*keys.Public
	for _, k := range r.attached {
		if k.HasEmail(email) && !strings.EqualFold(k.Fingerprint, exclude) {
			found = append(found, k)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		return nil, refuse("%d attached keys have a user ID with %s; attach only one", len(found), email)
	case len(r.attached) == 0 && len(r.attachErrs) == 0:
		return nil, refuse("no key is attached; attach the public key of %s (application/pgp-keys, or a .asc file)", email)
	}
	msg := fmt.Sprintf("no attached key is a new key with a user ID for %s", email)
	if len(r.attachErrs) > 0 {
		msg += " (" + strings.Join(r.attachErrs, "; ") + ")"
	}
	return nil, refuse("%s", msg)
}

// readAttached reads the keys attached to the mail, once
// (inbound.AttachedKeys, the reading inbound checked signatures with).
func (r *run) readAttached() {
	if r.attachRead {
		return
	}
	r.attachRead = true
	var problems []*inbound.KeyAttachmentError
	r.attached, problems = inbound.AttachedKeys(r.a.Attachments)
	for _, p := range problems {
		if p.Filename == "" {
			r.attachErrs = append(r.attachErrs, p.Err.Error())
		} else {
			r.attachErrs = append(r.attachErrs, fmt.Sprintf("attachment %q: %v", Echo(p.Filename), p.Err))
		}
	}
}

// contactKey checks that pub is usable now and belongs to email
// (export.ContactKey, as `ccdir contact --key` does), and returns it as
// the directory keeps it.
func contactKey(pub *keys.Public, email string, now time.Time) (*directory.Key, error) {
	k, _, err := export.ContactKey(pub, email, false, now)
	var ke *export.KeyError
	switch {
	case !errors.As(err, &ke):
		return k, err
	case errors.Is(ke.Err, export.ErrNoUserID):
		return nil, refuse("key %s has no user ID with %s", pub.Fingerprint, email)
	}
	return nil, refuse("key %s cannot be used: %v", pub.Fingerprint, ke.Err)
}

func tldList(c *directory.Contact) string {
	s := make([]string, len(c.Roles))
	for i, r := range c.Roles {
		s[i] = display(r.TLD)
	}
	return strings.Join(s, ", ")
}

func display(tld string) string { return directory.DisplayTLD(tld) }

func displayAll(tlds []string) []string {
	out := make([]string, len(tlds))
	for i, t := range tlds {
		out[i] = display(t)
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
