package directory

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// ErrUnchanged reports an update that would change nothing; no entry is written.
var ErrUnchanged = errors.New("nothing to change")

// Tx is one write transaction: every change made through it applies to the
// state tables and appends one signed ledger entry; all of them commit
// together or not at all. What is signed must extend a state the ledger
// vouches for: before its first entry, a Tx checks (once, see Check) that
// the state tables it started from are exactly what replaying the signed
// ledger gives, and refuses with a *TamperError otherwise, so that rows
// written into the file without the directory key are never signed into
// an entry by whoever changes the directory next.
type Tx struct {
	ctx     context.Context
	s       *Store
	tx      execer
	actor   Actor
	head    Head
	entries []Entry
	touched bool // SQL was used for operational tables
	checked bool // the tables this transaction started from agree with the ledger
	changes []ContactChange
	rekey   rekeyTx // a rekey in this transaction (Rekey)
	version int     // the version of the entries it writes (ledgerVersion), once read
}

// ContactChange is a contact as a transaction found it (Before; nil: it
// added the contact) and as it leaves it (After; nil: it removed it).
type ContactChange struct {
	Before, After *Contact
}

// record notes a change of a contact (copies of the states).
func (t *Tx) record(before, after *Contact) {
	clone := func(c *Contact) *Contact {
		if c == nil {
			return nil
		}
		d := *c
		d.Phones, d.Roles, d.Languages = slices.Clone(c.Phones), slices.Clone(c.Roles), slices.Clone(c.Languages)
		if c.Key != nil {
			k := *c.Key
			d.Key = &k
		}
		return &d
	}
	id := func(ch ContactChange) int64 {
		if ch.Before != nil {
			return ch.Before.ID
		}
		return ch.After.ID
	}
	ch := ContactChange{clone(before), clone(after)}
	for i := range t.changes {
		if id(t.changes[i]) == id(ch) {
			t.changes[i].After = ch.After
			if t.changes[i].Before == nil && ch.After == nil {
				t.changes = slices.Delete(t.changes, i, i+1) // added, then removed
			}
			return
		}
	}
	t.changes = append(t.changes, ch)
}

// ContactChanges are the contacts the transaction has changed so far, in
// the order of their first change, each from its state before the
// transaction to its state now: what the notices of its changes are
// made from (liveness.Notices).
func (t *Tx) ContactChanges() []ContactChange { return slices.Clone(t.changes) }

// Update runs fn in one write transaction and commits it if fn returns nil.
// It returns the entries written. On any error nothing is written.
func (s *Store) Update(ctx context.Context, actor Actor, fn func(*Tx) error) ([]Entry, error) {
	if s.opts.ReadOnly || s.opts.Signer == nil {
		return nil, errors.New("the directory is open read-only (no directory key)")
	}
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE through the DSN
	if err != nil {
		return nil, err
	}
	clearLocked := func() {
		s.lockedMu.Lock()
		s.locked = nil
		s.lockedMu.Unlock()
	}
	defer clearLocked()
	defer tx.Rollback()
	t := &Tx{ctx: ctx, s: s, tx: tx, actor: actor}
	h, _, err := readHead(ctx, tx)
	var de *Error
	if err != nil && !(errors.As(err, &de) && de.Err == ErrNotDirectory) {
		return nil, err
	}
	t.head = h
	if err := fn(t); err != nil {
		return nil, err
	}
	if len(t.entries) == 0 && !t.touched {
		return nil, ErrUnchanged
	}
	// Once the write lock goes, another process may commit: Checked must
	// no longer take the tables as compared.
	clearLocked()
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if t.checked {
		s.advance(ctx, h, t.entries)
	}
	return t.entries, nil
}

// append applies one operation and writes its signed ledger entry. The
// first one of the transaction checks the tables first (a genesis, on an
// empty ledger, has nothing to check).
func (t *Tx) append(op string, payload any) error {
	e, err := t.newEntry(op, payload)
	if err != nil {
		return err
	}
	if err := apply(t.ctx, t.tx, e); err != nil {
		return t.explain(op, err)
	}
	return t.seal(e)
}

// newEntry makes the next entry of the transaction, for op with payload,
// unsigned: of the version the ledger's schema holds (ledgerVersion),
// salted from version 2 on, with its subject from version 3 on.
func (t *Tx) newEntry(op string, payload any) (*Entry, error) {
	if !t.checked && !(op == opGenesis && t.head.Serial == 0) {
		if err := t.Check(t.s.opts.Signer.Fingerprint(), t.s.opts.Signer.Verify); err != nil {
			return nil, err
		}
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	prev := t.head.Hash
	if t.head.Serial == 0 {
		prev = zeroHash
	}
	if t.version == 0 {
		if t.version, err = ledgerVersion(t.ctx, t.tx); err != nil {
			return nil, err
		}
	}
	e := &Entry{
		Version:  t.version,
		Seq:      t.head.Serial + 1,
		Time:     t.s.opts.Now().UTC().Truncate(time.Second).Format(time.RFC3339),
		Actor:    t.actor.Name,
		Op:       op,
		Payload:  string(p),
		Evidence: t.actor.Evidence,
		PrevHash: prev,
	}
	if e.Version >= entryV2 {
		if e.Salt, err = newSalt(); err != nil {
			return nil, err
		}
	}
	if e.Version >= entryV3 {
		e.Subject = EntrySubject(e.Seq, e.Op, e.Payload)
	}
	return e, nil
}

// seal hashes, signs and writes e, whose effect is applied, as the
// transaction's head.
func (t *Tx) seal(e *Entry) error {
	var err error
	e.Hash = computeHash(e)
	if e.Sig, err = t.signEntry(e); err != nil {
		return fmt.Errorf("sign ledger entry %d: %w", e.Seq, err)
	}
	if err := insertEntry(t.ctx, t.tx, e); err != nil {
		return err
	}
	t.head = Head{Serial: e.Seq, Hash: e.Hash}
	t.entries = append(t.entries, *e)
	return nil
}

// explain turns a constraint violation that slipped past the checks into
// a refusal; anything else passes through.
func (t *Tx) explain(op string, err error) error {
	if isConstraint(err, 0) {
		return &Error{Err: ErrPolicy, Msg: fmt.Sprintf("%s refused by the database: %v", op, err)}
	}
	return err
}

// SQL returns the transaction for writes to operational tables (seen
// signatures, the outbox) that must commit together with the ledger
// entries, or without any. It must not be used on the state tables or the
// ledger, which only the methods of Tx change. An Update whose fn used SQL
// commits even if it wrote no ledger entry.
func (t *Tx) SQL() *sql.Tx {
	t.touched = true
	return t.tx.(*sql.Tx)
}

// Head is the head the transaction has reached so far.
func (t *Tx) Head() Head { return t.head }

// AddMember adds a ccTLD.
func (t *Tx) AddMember(m Member) (Member, error) {
	if err := m.Normalize(); err != nil {
		return m, err
	}
	if _, err := readMember(t.ctx, t.tx, m.TLD); err == nil {
		return m, refuse(ErrExists, "change it with: ccdir member update "+m.TLD, "ccTLD %s is already a member", m.TLD)
	} else if !errors.Is(err, ErrNotFound) {
		return m, err
	}
	return m, t.append(opMemberAdd, m)
}

// UpdateMember changes a ccTLD through fn; the code cannot change.
func (t *Tx) UpdateMember(tld string, fn func(*Member) error) (Member, error) {
	old, err := readMember(t.ctx, t.tx, tld)
	if err != nil {
		return old, err
	}
	m := old
	if err := fn(&m); err != nil {
		return m, err
	}
	m.TLD = old.TLD
	if err := m.Normalize(); err != nil {
		return m, err
	}
	if m == old {
		return m, ErrUnchanged
	}
	return m, t.append(opMemberUpdate, m)
}

// RemoveMember removes a ccTLD that no contact serves any more.
func (t *Tx) RemoveMember(tld string) error {
	m, err := readMember(t.ctx, t.tx, tld)
	if err != nil {
		return err
	}
	var n int
	if err := t.tx.QueryRowContext(t.ctx, `SELECT count(*) FROM roles WHERE tld = ?`, m.TLD).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return refuse(ErrPolicy, fmt.Sprintf("list them with: ccdir contact list %s; then remove them or drop their role", m.TLD),
			"ccTLD %s still has %d contact(s)", m.TLD, n)
	}
	return t.append(opMemberRemove, memberRemovePayload{TLD: m.TLD})
}

// Contact reads a contact inside the transaction.
func (t *Tx) Contact(email string) (Contact, error) { return readContact(t.ctx, t.tx, email) }

// ContactByID reads, inside the transaction, the contact with the id
// (Contact.ID), whatever its address is now; ErrNotFound when it was
// removed.
func (t *Tx) ContactByID(id int64) (Contact, error) {
	cs, err := readContacts(t.ctx, t.tx, `WHERE id = ?`, id)
	if err != nil {
		return Contact{}, err
	}
	if len(cs) == 0 {
		return Contact{}, refuse(ErrNotFound, "list contacts with: ccdir contact list", "no contact %d", id)
	}
	return cs[0], nil
}

// Member reads a ccTLD inside the transaction.
func (t *Tx) Member(tld string) (Member, error) { return readMember(t.ctx, t.tx, tld) }

// AddContact adds a new contact. Its roles' ccTLDs must be members.
func (t *Tx) AddContact(c Contact) (Contact, error) {
	c.ID, c.Confirmed = 0, ""
	if err := c.Normalize(); err != nil {
		return c, err
	}
	if old, err := readContact(t.ctx, t.tx, c.Email); err == nil {
		hint := fmt.Sprintf("to give it another ccTLD: ccdir contact update %s --add-role %s:%s", c.Email, c.Roles[0].TLD, c.Roles[0].Role)
		if r := old.RoleFor(c.Roles[0].TLD); r != "" {
			hint = fmt.Sprintf("it is already the %s contact of %s; change it with: ccdir contact update %s", r, c.Roles[0].TLD, c.Email)
		}
		return c, refuse(ErrExists, hint, "contact %s already exists (%s)", c.Email, old.Name)
	} else if !errors.Is(err, ErrNotFound) {
		return c, err
	}
	if err := t.checkOwnAddress(c.Email); err != nil {
		return c, err
	}
	if err := t.checkContact(&c); err != nil {
		return c, err
	}
	if err := t.append(opContactAdd, c); err != nil {
		return c, err
	}
	c.ID = t.head.Serial
	c.Confirmed = t.entries[len(t.entries)-1].Time
	t.record(nil, &c)
	return c, t.checkLimits(c.Roles)
}

// UpdateContact changes the contact with this email through fn.
func (t *Tx) UpdateContact(email string, fn func(*Contact) error) (Contact, error) {
	old, err := readContact(t.ctx, t.tx, email)
	if err != nil {
		return old, err
	}
	c := old
	c.Phones = append([]Phone(nil), old.Phones...)
	c.Roles = append([]Role(nil), old.Roles...)
	c.Languages = append([]string(nil), old.Languages...)
	if old.Key != nil {
		k := *old.Key
		c.Key = &k
	}
	if err := fn(&c); err != nil {
		return c, err
	}
	c.ID, c.Confirmed = old.ID, old.Confirmed
	if len(c.Roles) == 0 {
		return c, refuse(ErrPolicy, "remove the contact instead: ccdir contact remove "+old.Email,
			"contact %s would have no ccTLD left", old.Email)
	}
	if err := c.Normalize(); err != nil {
		return c, err
	}
	if reflect.DeepEqual(normalized(old), normalized(c)) {
		return c, ErrUnchanged
	}
	if c.Email != old.Email {
		other, err := readContact(t.ctx, t.tx, c.Email)
		if err == nil {
			return c, refuse(ErrExists, "", "email %s already belongs to contact %s", c.Email, other.Name)
		}
		if !errors.Is(err, ErrNotFound) {
			return c, err
		}
		if err := t.checkOwnAddress(c.Email); err != nil {
			return c, err
		}
	}
	if err := t.checkContact(&c); err != nil {
		return c, err
	}
	payload := c
	payload.Confirmed = ""
	if err := t.append(opContactUpdate, payload); err != nil {
		return c, err
	}
	c.Confirmed = t.entries[len(t.entries)-1].Time
	t.record(&old, &c)
	return c, t.checkLimits(c.Roles)
}

func normalized(c Contact) Contact {
	if len(c.Languages) == 0 {
		c.Languages = nil
	}
	return c
}

// RemoveContact removes a contact and all its roles.
func (t *Tx) RemoveContact(email string) (Contact, error) {
	c, err := readContact(t.ctx, t.tx, email)
	if err != nil {
		return c, err
	}
	if err := t.append(opContactRemove, contactRemovePayload{ID: c.ID, Email: c.Email}); err != nil {
		return c, err
	}
	t.record(&c, nil)
	return c, nil
}

// SetKey sets (or, with nil, removes) a contact's OpenPGP key.
func (t *Tx) SetKey(email string, k *Key) (Contact, error) {
	c, err := readContact(t.ctx, t.tx, email)
	if err != nil {
		return c, err
	}
	if k != nil && c.Key != nil && reflect.DeepEqual(*k, *c.Key) {
		return c, ErrUnchanged
	}
	if k == nil && c.Key == nil {
		return c, ErrUnchanged
	}
	if k != nil {
		if k.Fingerprint == "" || k.Armored == "" {
			return c, &FieldError{Field: "key", Value: "", Err: errors.New("key without fingerprint or armored data")}
		}
		if err := t.checkFingerprint(c.ID, k); err != nil {
			return c, err
		}
	}
	if err := t.append(opKeySet, keySetPayload{ID: c.ID, Email: c.Email, Key: k}); err != nil {
		return c, err
	}
	old := c
	c.Key = k
	c.Confirmed = t.entries[len(t.entries)-1].Time
	t.record(&old, &c)
	return c, nil
}

// RefreshKey replaces a contact's key with a newer copy of the same key
// (the same fingerprint: extended expiry, new subkeys; see
// keys.Public.Refresh). It is not a key change: the ledger entry
// (key.refresh) can only be replayed onto the same fingerprint. A
// contact without a key, or with another one, is refused.
func (t *Tx) RefreshKey(email string, k *Key) (Contact, error) {
	c, err := readContact(t.ctx, t.tx, email)
	if err != nil {
		return c, err
	}
	switch {
	case k == nil || k.Fingerprint == "" || k.Armored == "":
		return c, &FieldError{Field: "key", Value: "", Err: errors.New("key without fingerprint or armored data")}
	case c.Key == nil:
		return c, refuse(ErrPolicy, "import it as a new key", "%s has no key to refresh", c.Email)
	case c.Key.Fingerprint != k.Fingerprint:
		return c, refuse(ErrPolicy, "a refresh is a newer copy of the registered key, not another key",
			"key %s is not the registered key %s of %s", k.Fingerprint, c.Key.Fingerprint, c.Email)
	case reflect.DeepEqual(*k, *c.Key):
		return c, ErrUnchanged
	}
	if err := t.checkKey(k); err != nil { // a refresh can bring subkeys
		return c, err
	}
	if err := t.checkRefresh(c.Key, k); err != nil {
		return c, err
	}
	if err := t.append(opKeyRefresh, keySetPayload{ID: c.ID, Email: c.Email, Key: k}); err != nil {
		return c, err
	}
	old := c
	c.Key = k
	c.Confirmed = t.entries[len(t.entries)-1].Time
	t.record(&old, &c)
	return c, nil
}

// checkRefresh makes sure that k, a refresh of old labelled with old's
// fingerprint, is that key (its primary fingerprint, through
// Options.Fingerprints) and keeps every subkey of old: a refresh only
// adds.
func (t *Tx) checkRefresh(old, k *Key) error {
	fprs := t.s.opts.Fingerprints
	if fprs == nil {
		return nil
	}
	nw, err := fprs(k.Armored)
	if err != nil {
		return &FieldError{Field: "key", Value: k.Fingerprint, Err: err}
	}
	if len(nw) == 0 || !strings.EqualFold(nw[0], k.Fingerprint) {
		return refuse(ErrPolicy, "a refresh is a newer copy of the registered key", "the refreshed key is not key %s", k.Fingerprint)
	}
	return keptSubkeys(fprs, old.Fingerprint, old.Armored, k.Armored)
}

// keptSubkeys makes sure that armored, a newer copy of key fpr (old, its
// copy before), keeps every subkey of old (fprs: Options.Fingerprints):
// a refresh only adds. Tx checks a contact key refresh and a directory
// key copy with it, replay a directory.key entry.
func keptSubkeys(fprs func(string) ([]string, error), fpr, old, armored string) error {
	nw, err := fprs(armored)
	if err != nil {
		return &FieldError{Field: "key", Value: fpr, Err: err}
	}
	was, err := fprs(old)
	if err != nil {
		return fmt.Errorf("the registered key %s: %w", fpr, err)
	}
	for _, f := range was[min(1, len(was)):] {
		if !slices.ContainsFunc(nw, func(g string) bool { return strings.EqualFold(f, g) }) {
			return refuse(ErrPolicy, "a refresh only adds to the registered key", "the refreshed key %s drops its subkey %s", strings.ToUpper(fpr), strings.ToUpper(f))
		}
	}
	return nil
}

// checkContact makes sure the contact's ccTLDs are members and its key is
// not another contact's.
func (t *Tx) checkContact(c *Contact) error {
	for _, r := range c.Roles {
		if _, err := readMember(t.ctx, t.tx, r.TLD); err != nil {
			if errors.Is(err, ErrNotFound) {
				return refuse(ErrNotFound, fmt.Sprintf("add it first: ccdir member add %s --org ORG", r.TLD),
					"ccTLD %s is not a member of the directory", r.TLD)
			}
			return err
		}
	}
	if c.Key != nil {
		return t.checkFingerprint(c.ID, c.Key)
	}
	return nil
}

// MaxKeyBytes is the largest armored key a contact can have. A real key
// is far smaller (an RSA-4096 key with three subkeys and four user IDs
// is about 10 KiB as gpg exports it, four times that with the superseded
// self-signatures of several expiry extensions), and every key is copied
// into each ledger entry that sets or refreshes it and into every digest.
const MaxKeyBytes = 64 << 10

// checkKey refuses k as a contact's key if it is over MaxKeyBytes or the
// directory's own (checkOwnKey): what every place that sets a contact's
// key checks.
func (t *Tx) checkKey(k *Key) error {
	if len(k.Armored) > MaxKeyBytes {
		return refuse(ErrPolicy, "export it without superseded signatures: gpg --export-options export-minimal --armor --export FINGERPRINT",
			"key %s is %d KiB armored; a contact's key is at most %d KiB", k.Fingerprint, (len(k.Armored)+1023)>>10, MaxKeyBytes>>10)
	}
	if err := t.checkOwnKey(k); err != nil {
		return err
	}
	return t.checkOperatorKey(k)
}

// checkOperatorKey refuses the operator's own key (Options.Operator) as
// a contact's key, and any key that shares its primary key or a subkey
// with it: mail to the operator and mail to the contact could not be told
// apart by their key.
func (t *Tx) checkOperatorKey(k *Key) error {
	reserved := t.s.opts.Operator.Fingerprints
	if len(reserved) == 0 {
		return nil
	}
	theirs := []string{k.Fingerprint}
	if fprs := t.s.opts.Fingerprints; fprs != nil {
		var err error
		if theirs, err = fprs(k.Armored); err != nil {
			return &FieldError{Field: "key", Value: k.Fingerprint, Err: err}
		}
	}
	for _, f := range theirs {
		for _, r := range reserved {
			if strings.EqualFold(f, r) {
				return refuse(ErrPolicy, "a contact needs a key of its own; the operator's key (operator.key) is for the directory's mail to the operator",
					"key %s is the operator's key (or shares the key %s with it), not a contact's", k.Fingerprint, strings.ToUpper(f))
			}
		}
	}
	return nil
}

// checkOwnKey refuses the directory's own key as a contact's key, and any
// key that shares its primary key or a subkey with it (a subkey of ours
// bound to another primary key): mail encrypted to the contact would be
// encrypted to the directory, and the contact's signature could not be
// told from the directory's.
func (t *Tx) checkOwnKey(k *Key) error {
	info, err := readInfo(t.ctx, t.tx)
	if err != nil {
		return err
	}
	own := map[string]bool{strings.ToUpper(info.KeyFingerprint): true}
	theirs := []string{k.Fingerprint}
	if fprs := t.s.opts.Fingerprints; fprs != nil {
		ours, err := fprs(info.PublicKey)
		if err != nil {
			return fmt.Errorf("the directory's public key: %w", err)
		}
		for _, f := range ours {
			own[strings.ToUpper(f)] = true
		}
		if theirs, err = fprs(k.Armored); err != nil {
			return &FieldError{Field: "key", Value: k.Fingerprint, Err: err}
		}
	}
	for _, f := range theirs {
		if !own[strings.ToUpper(f)] {
			continue
		}
		hint := "a contact needs a key of its own; the directory's key signs the ledger and the directory's mail"
		if strings.EqualFold(f, k.Fingerprint) && strings.EqualFold(f, info.KeyFingerprint) {
			return refuse(ErrPolicy, hint, "key %s is the directory's own key, not a contact's", k.Fingerprint)
		}
		return refuse(ErrPolicy, hint, "key %s shares the key %s with the directory's own key %s", k.Fingerprint, strings.ToUpper(f), info.KeyFingerprint)
	}
	return nil
}

// CheckOwnAddress refuses email as a contact's address as every change
// of a contact's email does (checkOwnAddress): one of the directory's
// own addresses, the configured bounce address (each with its +tag
// forms) or the operator's (Options.Operator). It is for a caller that
// must refuse an address before it makes the change (a SET EMAIL by
// mail, which waits for changes.delay): the same refusal, now, from the
// one list of reserved addresses.
func (t *Tx) CheckOwnAddress(email string) error { return t.checkOwnAddress(email) }

// checkOwnAddress refuses one of the directory's own addresses
// (Info.OwnAddress, and the configured bounce address,
// Options.BounceAddress, with their +tag forms), or the operator's
// (Options.Operator, with its +tag forms), as a contact's email: mail
// to one of the directory's would come back to it, and a digest sent
// there would be dropped as a loop; the operator's is where the
// directory reports to the operator, never a contact.
func (t *Tx) checkOwnAddress(email string) error {
	info, err := readInfo(t.ctx, t.tx)
	if err != nil {
		return err
	}
	own, what := info.OwnAddress(email), "the directory's address"
	switch b := t.s.opts.BounceAddress; {
	case own == "":
		if b != "" && sameMailbox(email, b) {
			own, what = b, "the directory's bounce address (bounces.address)"
		}
	case own == info.ListAddress:
		what = "the list's address"
	case own == info.SendKeyAddress():
		what = "the directory's key-request address"
	case own == info.BounceAddress():
		what = "the directory's bounce address"
	}
	if own != "" {
		if own != email {
			what = "delivered to " + what + " " + own
		}
		return refuse(ErrPolicy, "a contact needs a mailbox of its own", "%s is %s, not a contact's", email, what)
	}
	if op := t.s.opts.Operator.Email; op != "" && sameMailbox(email, op) {
		what := "the operator's address"
		if !strings.EqualFold(op, email) {
			what = "delivered to " + what + " " + op // a +tag of it
		}
		return refuse(ErrPolicy, "a contact needs a mailbox of its own; the operator's address (operator.address) is where the directory reports to the operator",
			"%s is %s, not a contact's", email, what)
	}
	return nil
}

// checkFingerprint refuses k as the key of contact id if it is another
// contact's, or the directory's own (checkOwnKey).
func (t *Tx) checkFingerprint(id int64, k *Key) error {
	if err := t.checkKey(k); err != nil {
		return err
	}
	fpr := k.Fingerprint
	var email string
	err := t.tx.QueryRowContext(t.ctx, `SELECT email FROM contacts WHERE key_fingerprint = ? AND id != ?`, fpr, id).Scan(&email)
	switch {
	case err == nil:
		return refuse(ErrExists, "every contact needs a key of their own", "key %s is already registered to %s", fpr, email)
	case errors.Is(err, sql.ErrNoRows):
		return nil
	}
	return err
}

// checkLimits enforces the number of security contacts per ccTLD.
func (t *Tx) checkLimits(roles []Role) error {
	max := t.s.opts.MaxSecurityContacts
	for _, r := range roles {
		if r.Role != RoleSecurity {
			continue
		}
		var n int
		if err := t.tx.QueryRowContext(t.ctx, `SELECT count(*) FROM roles WHERE tld = ? AND role = 'security'`, r.TLD).Scan(&n); err != nil {
			return err
		}
		if n > max {
			return refuse(ErrPolicy, fmt.Sprintf("remove one first, give this one the admin role, or raise limits.security_contacts (now %d)", max),
				"ccTLD %s would have %d security contacts; the limit is %d", r.TLD, n, max)
		}
	}
	return nil
}
