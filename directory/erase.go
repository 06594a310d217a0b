package directory

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// opContactErase erases a person: see Tx.Erase.
const opContactErase = "contact.erase"

// MaxEraseReason is the length of an erasure's reason, in characters.
const MaxEraseReason = 200

// Erasure is what a contact.erase entry says (its payload): the
// contacts erased (their ids, never their data), the entries whose
// payload (and evidence) it erased, those whose evidence only it
// erased, and why.
type Erasure struct {
	IDs     []int64 `json:"ids"`
	Redacts []int64 `json:"redacts"`
	// Entries says, of each entry of Redacts in turn, what is kept of it
	// and whom it was about (Covers checks an erased entry against it).
	Entries  []ErasedEntry `json:"entries"`
	Evidence []int64       `json:"evidence"`
	Reason   string        `json:"reason"`
}

// ErasedEntry is what a contact.erase entry records of an entry whose
// payload it erases: its operation, the contact it was about (one of
// the erasure's ids), its version, its hash, and Fields, the digest of
// what it keeps once erased (ErasedFields), so that nothing of it can
// be changed afterwards, not even in a version 1 tombstone, whose hash
// cannot be recomputed.
type ErasedEntry struct {
	Seq     int64  `json:"seq"`
	Op      string `json:"op"`
	Contact int64  `json:"contact"`
	Version int    `json:"version"`
	Hash    string `json:"hash"`
	Fields  string `json:"fields"`
}

// erasableOps are the operations whose payload an erasure erases: the
// only ones that hold a contact's data, each about one contact.
var erasableOps = []string{opContactAdd, opContactUpdate, opContactRemove, opKeySet, opKeyRefresh}

// entryContact is the contact an entry of an erasable operation is
// about (a contact.add: the contact it adds, whose id is its serial).
func entryContact(seq int64, op, payload string) (int64, bool) {
	switch op {
	case opContactAdd:
		return seq, true
	case opContactUpdate:
		var c Contact
		if decodeStrict(payload, &c) != nil {
			return 0, false
		}
		return c.ID, true
	case opContactRemove:
		var c contactRemovePayload
		if decodeStrict(payload, &c) != nil {
			return 0, false
		}
		return c.ID, true
	case opKeySet, opKeyRefresh:
		var c keySetPayload
		if decodeStrict(payload, &c) != nil {
			return 0, false
		}
		return c.ID, true
	}
	return 0, false
}

// EntrySubject is the subject of the entry seq of operation op with
// payload, as a version 3 entry's hash covers it, in clear: for the
// operations whose payload an erasure can erase (contact.add,
// contact.update, contact.remove, key.set, key.refresh: each about one
// contact), "contact:ID", the contact it is about (a contact.add: its
// own serial); "" for every other operation, whose payload is never
// erased and says itself what it is about. It binds an erased entry to
// its contact once its payload is gone: a contact.erase must record
// each entry it erases as about the contact its subject names (Covers).
func EntrySubject(seq int64, op, payload string) string {
	if !slices.Contains(erasableOps, op) {
		return ""
	}
	id, ok := entryContact(seq, op, payload)
	if !ok {
		return "" // a payload that does not decode: replay refuses it
	}
	return contactSubject(id)
}

func contactSubject(id int64) string { return fmt.Sprintf("contact:%d", id) }

// CheckSubject checks the subject h gives against its payload: a version
// 3 entry's must be the one its payload makes (EntrySubject) while the
// payload is there (once erased, Covers checks it against the erasure's
// record); an entry of an earlier version has none.
func (h *HashedEntry) CheckSubject() error {
	switch {
	case h.Version < entryV3 && h.Subject != "":
		return fmt.Errorf("entry %d, of version %d, has a subject (%q): only version 3 entries have one", h.Seq, versionOf(h.Version), h.Subject)
	case h.Version < entryV3 || h.Payload == "":
		return nil
	}
	if want := EntrySubject(h.Seq, h.Op, h.Payload); h.Subject != want {
		return fmt.Errorf("entry %d's subject is %q, but its payload is about %q", h.Seq, h.Subject, want)
	}
	return nil
}

// ErasedFields is the hex SHA-256 of what an erased entry keeps besides
// its hash: over "ccdir erased entry\x00", its serial (8 bytes big
// endian), then time, actor, op, prev_hash and the evidence's SHA-256
// (its 32 bytes, or nothing), each preceded by its length as 8 bytes
// big endian.
func ErasedFields(h *HashedEntry) string {
	d := sha256.New()
	d.Write([]byte("ccdir erased entry\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(h.Seq))
	d.Write(n[:])
	for _, f := range [][]byte{[]byte(h.Time), []byte(h.Actor), []byte(h.Op), []byte(h.PrevHash), h.EvidenceSHA256} {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		d.Write(n[:])
		d.Write(f)
	}
	return hex.EncodeToString(d.Sum(nil))
}

func versionOf(v int) int { return max(v, entryV1) }

// Covers checks an entry whose payload the erasure erases, given what
// its hash covers and its hash, against what the erasure recorded of
// it: the same operation, version, hash and kept fields, and about the
// contact it names: by the subject its hash covers (version 3), or,
// where the payload is still at hand (as in an earlier copy), by the
// payload. Of a version 1 or 2 entry whose payload is gone, nobody can
// tell whom it was about: the erasure is taken at its word there (see
// check: an entry about a contact never comes before its contact.add).
// It is the one rule of verify, ccdir check (digest.Check) and the
// README's check.py.
func (p *Erasure) Covers(h *HashedEntry, hash string) error {
	i := slices.Index(p.Redacts, h.Seq)
	if i < 0 {
		return fmt.Errorf("the contact.erase does not name entry %d", h.Seq)
	}
	r := p.Entries[i]
	switch {
	case r.Op != h.Op:
		return fmt.Errorf("the contact.erase erased a %s as entry %d, not a %s", r.Op, h.Seq, h.Op)
	case r.Version != versionOf(h.Version):
		return fmt.Errorf("the contact.erase erased entry %d of version %d, not %d", h.Seq, r.Version, versionOf(h.Version))
	case !strings.EqualFold(r.Hash, hash):
		return fmt.Errorf("the contact.erase erased entry %d with hash %.16s…, not %.16s…", h.Seq, r.Hash, hash)
	case !strings.EqualFold(r.Fields, ErasedFields(h)):
		return fmt.Errorf("entry %d's time, actor, operation, previous hash or evidence digest is not what the contact.erase erased", h.Seq)
	}
	if h.Version >= entryV3 && h.Subject != contactSubject(r.Contact) {
		return fmt.Errorf("entry %d is about %q (its hash says so), not contact %d, whom the contact.erase says it was about", h.Seq, h.Subject, r.Contact)
	}
	if h.Payload != "" {
		if id, ok := entryContact(h.Seq, h.Op, h.Payload); !ok || id != r.Contact {
			return fmt.Errorf("entry %d is not about contact %d, whom the contact.erase says it was about", h.Seq, r.Contact)
		}
	}
	return nil
}

// check refuses an erase payload that could not have been written by
// Tx.Erase at serial seq: serials after the genesis and before seq, in
// order, each once; each entry erased an erasable operation about one
// of the contacts erased (a contact.add: the contact it adds), at or
// after the contact.add of that contact. With entry versions that never
// go down, the last rule means that an erasure of a contact added by a
// version 3 entry can only record version 3 entries as theirs, each
// bound to its contact by its subject (Covers).
func (p *Erasure) check(seq int64) error {
	if len(p.IDs) == 0 || p.Reason == "" {
		return errors.New("contact.erase without contacts or reason")
	}
	if len(p.Entries) != len(p.Redacts) {
		return errors.New("contact.erase does not record every entry it redacts")
	}
	for i, r := range p.Entries {
		switch {
		case r.Seq != p.Redacts[i]:
			return fmt.Errorf("contact.erase records entry %d for entry %d", r.Seq, p.Redacts[i])
		case !slices.Contains(erasableOps, r.Op):
			return fmt.Errorf("contact.erase erases entry %d, a %s: only a contact's own entries (%s) can be erased", r.Seq, r.Op, strings.Join(erasableOps, ", "))
		case !slices.Contains(p.IDs, r.Contact):
			return fmt.Errorf("contact.erase erases entry %d, about contact %d, which it does not erase", r.Seq, r.Contact)
		case r.Op == opContactAdd && r.Contact != r.Seq:
			return fmt.Errorf("contact.erase erases entry %d, a contact.add, as about contact %d", r.Seq, r.Contact)
		case r.Seq < r.Contact:
			// Contact N is added by entry N: nothing before is about it.
			return fmt.Errorf("contact.erase erases entry %d as about contact %d, whom entry %d added later", r.Seq, r.Contact, r.Contact)
		case r.Version < entryV1 || r.Version > entryV3:
			return fmt.Errorf("contact.erase erases entry %d of version %d", r.Seq, r.Version)
		}
	}
	// A person erased is erased whole, from the entry that added them.
	for _, id := range p.IDs {
		if !slices.ContainsFunc(p.Entries, func(r ErasedEntry) bool { return r.Op == opContactAdd && r.Seq == id }) {
			return fmt.Errorf("contact.erase erases contact %d, but not the contact.add that added it", id)
		}
	}
	seen := map[int64]bool{}
	for _, list := range [][]int64{p.Redacts, p.Evidence} {
		if !slices.IsSorted(list) {
			return errors.New("contact.erase serials out of order")
		}
		for _, s := range list {
			if s <= 1 || s >= seq || seen[s] {
				return fmt.Errorf("contact.erase names entry %d", s)
			}
			seen[s] = true
		}
	}
	return nil
}

// Erasure returns what the entry erases when it is a contact.erase
// entry (nil otherwise), for whoever checks a ledger outside the home
// (an erased payload is accepted only where such an entry covers it).
func (e *Entry) Erasure() (*Erasure, error) {
	if e.Op != opContactErase {
		return nil, nil
	}
	var p Erasure
	if err := decodeStrict(e.Payload, &p); err != nil {
		return nil, err
	}
	if err := p.check(e.Seq); err != nil {
		return nil, err
	}
	return &p, nil
}

// applyErase deletes what is left of the erased contacts: in the live
// tables, the contact and its roles; in a replay nothing, since the
// entries about them are not applied there (see eraseCover).
func applyErase(ctx context.Context, db execer, e *Entry) error {
	var p Erasure
	if err := decodeStrict(e.Payload, &p); err != nil {
		return err
	}
	if err := p.check(e.Seq); err != nil {
		return err
	}
	for _, id := range p.IDs {
		if _, err := db.ExecContext(ctx, `DELETE FROM roles WHERE contact_id = ?`, id); err != nil {
			return err
		}
		if _, err := db.ExecContext(ctx, `DELETE FROM contacts WHERE id = ?`, id); err != nil {
			return err
		}
	}
	return nil
}

// cover is what the contact.erase entries of a ledger say of one entry:
// which erased its payload (payloadBy) or only its evidence
// (evidenceBy), with the reason.
type cover struct {
	payloadBy, evidenceBy int64
	reason                string
	erasure               *Erasure // the one of payloadBy
	refusedBy             int64    // a contact.erase that names it but is refused
	refusal               error    // why
}

// Redaction is an entry a contact.erase entry erased: its payload and
// evidence (Payload), or its evidence only.
type Redaction struct {
	Seq     int64  // the entry erased
	By      int64  // the contact.erase entry
	Reason  string // the erasure's reason
	Payload bool   // its payload too, not only its evidence
}

func (r Redaction) String() string {
	what := "redacted"
	if !r.Payload {
		what = "evidence redacted"
	}
	return fmt.Sprintf("entry %d %s by entry %d (erase: %s)", r.Seq, what, r.By, r.Reason)
}

// eraseCover reads, through q, what every contact.erase entry of the
// ledger covers, by serial. It is read before a replay, which needs it
// at entries that come before their erasure; each erase entry is itself
// checked (hash, signature) when the replay reaches it, and a payload
// it does not hold as read here is a finding then.
func eraseCover(ctx context.Context, q queryer) (map[int64]cover, error) {
	rows, err := q.QueryContext(ctx, `SELECT seq, payload FROM ledger WHERE op = ? ORDER BY seq`, opContactErase)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]cover{}
	for rows.Next() {
		var seq int64
		var payload string
		if err := rows.Scan(&seq, &payload); err != nil {
			return nil, err
		}
		p, err := (&Entry{Seq: seq, Op: opContactErase, Payload: payload}).Erasure()
		if err != nil {
			// It covers nothing, and the replay refuses it at its
			// serial; the entries it names say why.
			var named Erasure
			if json.Unmarshal([]byte(payload), &named) == nil {
				for _, s := range named.Redacts {
					if c := out[s]; c.refusedBy == 0 {
						c.refusedBy, c.refusal = seq, err
						out[s] = c
					}
				}
			}
			continue
		}
		for _, s := range p.Redacts {
			c := out[s]
			if c.payloadBy == 0 {
				c.payloadBy, c.reason, c.erasure = seq, p.Reason, p
			}
			out[s] = c
		}
		for _, s := range p.Evidence {
			c := out[s]
			if c.evidenceBy == 0 && c.payloadBy == 0 {
				c.evidenceBy, c.reason = seq, p.Reason
			}
			out[s] = c
		}
	}
	return out, rows.Err()
}

// checkCover checks an entry against what the erasures say of it: an
// erased payload or evidence that no contact.erase entry covers is
// tampering; an entry an erasure covers still holds what it erased is
// a finding too (the erasure did not happen, or the data came back). It
// reports whether the entry's effect is dropped from the replay.
func checkCover(e *Entry, c cover) (dropped bool, err error) {
	switch {
	case e.Redacted() && c.payloadBy == 0 && c.refusedBy != 0:
		return false, fmt.Errorf("its payload was erased, but entry %d, the contact.erase naming it, is refused (%v): tampering", c.refusedBy, c.refusal)
	case e.Redacted() && c.payloadBy == 0:
		return false, errors.New("its payload was erased, but no contact.erase entry covers it: tampering")
	case e.EvidenceErased() && c.payloadBy == 0 && c.evidenceBy == 0:
		return false, errors.New("its evidence was erased, but no contact.erase entry covers it: tampering")
	case c.payloadBy != 0 && (!e.Redacted() || len(e.Evidence) > 0 || e.Salt != ""):
		return false, fmt.Errorf("entry %d (contact.erase) erased it, but it still holds its payload, salt or evidence", c.payloadBy)
	case c.evidenceBy != 0 && len(e.Evidence) > 0:
		return false, fmt.Errorf("entry %d (contact.erase) erased its evidence, but it still holds it", c.evidenceBy)
	}
	if c.payloadBy != 0 {
		h := Hashed(e)
		if err := c.erasure.Covers(&h, e.Hash); err != nil {
			return false, fmt.Errorf("%v (erased by entry %d): tampering", err, c.payloadBy)
		}
	}
	return c.payloadBy != 0, nil
}

// Redactions lists the entries contact.erase entries erased, in ledger
// order. It reads what the erasures say; Verify checks that it holds.
func (s *Store) Redactions(ctx context.Context) ([]Redaction, error) {
	covers, err := eraseCover(ctx, s.r)
	if err != nil {
		return nil, err
	}
	out := make([]Redaction, 0, len(covers))
	for seq, c := range covers {
		if c.payloadBy == 0 && c.evidenceBy == 0 {
			continue // named only by an erasure that is refused
		}
		r := Redaction{Seq: seq, By: c.payloadBy, Reason: c.reason, Payload: c.payloadBy != 0}
		if !r.Payload {
			r.By = c.evidenceBy
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out, nil
}

// Erased is what Tx.Erase erased, for the owners of the operational
// tables, which erase the person from theirs in the same transaction
// (each through its own Erase): the contacts' ids, every address, key
// fingerprint (primary, upper case), name and phone number the ledger
// says they had (an owner that knows of more, adds them: AddEmail). It
// lives only in memory.
type Erased struct {
	Entry        int64 // the contact.erase entry
	IDs          []int64
	Emails       []string
	Fingerprints []string
	Names        []string
	Phones       []string
	Redacted     []int64 // entries whose payload and evidence were erased
	Evidence     []int64 // entries whose evidence only was erased
}

// AddEmail adds an address of the person that an owner of operational
// tables knows of (a pending change's new address), for the owners
// that erase after it.
func (e *Erased) AddEmail(email string) { e.Emails = addOnce(e.Emails, strings.ToLower(email)) }

// AddFingerprint adds a key of the person that an owner of operational
// tables knows of (a pending change's new key).
func (e *Erased) AddFingerprint(fpr string) {
	e.Fingerprints = addOnce(e.Fingerprints, strings.ToUpper(fpr))
}

// HasEmail reports whether email (any case) was one of the person's.
func (e *Erased) HasEmail(email string) bool {
	return slices.ContainsFunc(e.Emails, func(x string) bool { return strings.EqualFold(x, email) })
}

// HasFingerprint reports whether fpr (any case) was one of the person's keys.
func (e *Erased) HasFingerprint(fpr string) bool {
	return slices.ContainsFunc(e.Fingerprints, func(x string) bool { return strings.EqualFold(x, fpr) })
}

// NormalizeEraseReason checks an erasure's reason: required, at most
// MaxEraseReason characters, with the rules of names (no control or
// invisible characters). It is signed into the ledger and shown by
// verify: it should say why (a request under GDPR article 17, its
// reference), never whom.
func NormalizeEraseReason(reason string) (string, error) {
	r, err := NormalizeName(reason, "reason")
	if err != nil {
		return "", err
	}
	if utf8.RuneCountInString(r) > MaxEraseReason {
		return "", fieldError("reason", reason, fmt.Sprintf("longer than %d characters", MaxEraseReason))
	}
	return r, nil
}

// person is what the ledger says of one contact id, collected for Erase.
type person struct {
	last    string // its address at its latest entry
	removed bool   // its latest entry removed it
	entries []int64
	emails  []string
	names   []string
	phones  []string
	fprs    []string
}

func addOnce(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func (p *person) contact(c *Contact) {
	p.emails = addOnce(p.emails, c.Email)
	p.last = c.Email
	p.names = addOnce(p.names, c.Name)
	for _, ph := range c.Phones {
		p.phones = addOnce(p.phones, ph.Number)
	}
	if c.Key != nil {
		p.fprs = addOnce(p.fprs, strings.ToUpper(c.Key.Fingerprint))
	}
}

// Erase erases a person under data-protection law: the contact with
// address email now, else the removed contact whose last address it
// was, else the contact that had it before (see whoseAddress: an address
// that names several people at that step is refused, nothing written): one contact.erase entry,
// made by the transaction's actor, names the contacts by id, the entries
// it redacts and the reason, and deletes the contacts and their roles;
// then every earlier entry about them (contact.add, contact.update,
// contact.remove, key.set, key.refresh: the only payloads that hold a
// contact's data, each about one contact) loses its payload and evidence
// (a version 2 entry keeps the digests its hash covers, a version 1
// entry becomes a tombstone that keeps its hash and signature), and
// every other entry whose evidence is the person's (signed by a key
// they had, the same mail as an erased entry, or a mail naming one of
// their addresses, names or phone numbers) loses its evidence, its
// digest kept. Verify accepts exactly these redactions. A reason is
// required (NormalizeEraseReason), and must not name the person
// (Erased.mentioned): it stays in the ledger for good. The operational tables are the
// caller's to erase, in the same transaction, through their owners and
// the Erased returned; Store.Scrub then removes the erased bytes from
// the file.
func (t *Tx) Erase(email, reason string) (*Erased, error) {
	norm, err := NormalizeEmail(email)
	if err != nil {
		return nil, err
	}
	if reason, err = NormalizeEraseReason(reason); err != nil {
		return nil, err
	}
	// What is read to decide what to erase must be what the ledger
	// vouches for.
	if err := t.Check(t.s.opts.Signer.Fingerprint(), t.s.opts.Signer.Verify); err != nil {
		return nil, err
	}
	type row struct {
		seq      int64
		op       string
		actor    string
		evidence []byte
		version  int
		payload  string
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT seq, op, actor, payload, evidence, version FROM ledger ORDER BY seq`)
	if err != nil {
		return nil, err
	}
	var all []row
	contactOf := map[int64]int64{}
	people := map[int64]*person{}
	of := func(id int64) *person {
		if people[id] == nil {
			people[id] = &person{}
		}
		return people[id]
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.op, &r.actor, &r.payload, &r.evidence, &r.version); err != nil {
			rows.Close()
			return nil, err
		}
		all = append(all, r)
		if r.payload == "" {
			continue // erased already
		}
		if id, ok := entryContact(r.seq, r.op, r.payload); ok {
			contactOf[r.seq] = id
		}
		switch r.op {
		case opContactAdd, opContactUpdate:
			var c Contact
			if decodeStrict(r.payload, &c) != nil {
				continue
			}
			id := c.ID
			if r.op == opContactAdd {
				id = r.seq
			}
			p := of(id)
			p.entries = append(p.entries, r.seq)
			p.contact(&c)
		case opContactRemove:
			var c contactRemovePayload
			if decodeStrict(r.payload, &c) != nil {
				continue
			}
			p := of(c.ID)
			p.entries = append(p.entries, r.seq)
			p.emails = addOnce(p.emails, c.Email)
			p.last, p.removed = c.Email, true
		case opKeySet, opKeyRefresh:
			var c keySetPayload
			if decodeStrict(r.payload, &c) != nil {
				continue
			}
			p := of(c.ID)
			p.entries = append(p.entries, r.seq)
			p.emails = addOnce(p.emails, c.Email)
			p.last = c.Email
			if c.Key != nil {
				p.fprs = addOnce(p.fprs, strings.ToUpper(c.Key.Fingerprint))
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ids, err := whoseAddress(people, norm)
	if err != nil {
		return nil, err
	}
	er := &Erased{IDs: ids}
	redact := map[int64]bool{}
	for _, id := range ids {
		p := people[id]
		for _, s := range p.entries {
			redact[s] = true
		}
		for _, x := range p.emails {
			er.Emails = addOnce(er.Emails, x)
		}
		for _, x := range p.names {
			er.Names = addOnce(er.Names, x)
		}
		for _, x := range p.phones {
			er.Phones = addOnce(er.Phones, x)
		}
		for _, x := range p.fprs {
			er.Fingerprints = addOnce(er.Fingerprints, x)
		}
	}
	// The reason stays in the ledger for good: it must not name them.
	if er.mentioned([]byte(reason)) {
		return nil, refuse(ErrPolicy, "say why (a request's reference, e.g. 'GDPR art. 17 request 2026-42'), never whom: the reason is never erased",
			"the reason names the person erased (an address, name or phone number of theirs)")
	}
	slices.Sort(er.IDs)
	for _, l := range [][]string{er.Emails, er.Names, er.Phones, er.Fingerprints} {
		slices.Sort(l)
	}
	// The evidence to erase: the mails of the erased entries (the same
	// evidence kept by the other entries of that mail), mails the
	// person signed, and mails that name them.
	mails := map[[32]byte]bool{}
	for _, r := range all {
		if redact[r.seq] && len(r.evidence) > 0 {
			mails[sha256.Sum256(r.evidence)] = true
		}
	}
	for _, r := range all {
		switch {
		case redact[r.seq]:
			er.Redacted = append(er.Redacted, r.seq)
		case len(r.evidence) == 0:
		case er.HasFingerprint(strings.TrimPrefix(r.actor, memberActor)) && strings.HasPrefix(r.actor, memberActor),
			mails[sha256.Sum256(r.evidence)], er.mentioned(r.evidence):
			er.Evidence = append(er.Evidence, r.seq)
		}
	}
	recs := []ErasedEntry{}
	for _, seq := range er.Redacted {
		e, err := t.entry(seq)
		if err != nil {
			return nil, err
		}
		// What it keeps once erased: its hash, and ErasedFields of it.
		h := Hashed(e)
		h.Payload, h.Salt, h.PayloadDigest = "", "", e.PayloadSum()
		recs = append(recs, ErasedEntry{Seq: seq, Op: e.Op, Contact: contactOf[seq], Version: versionOf(e.Version), Hash: e.Hash, Fields: ErasedFields(&h)})
	}
	if err := t.append(opContactErase, Erasure{IDs: er.IDs, Redacts: nonNil(er.Redacted), Entries: recs, Evidence: nonNil(er.Evidence), Reason: reason}); err != nil {
		return nil, err
	}
	er.Entry = t.head.Serial
	// Zero what is deleted from here on, in this transaction's
	// connection (the operational tables' erasure goes through it too).
	if _, err := t.tx.ExecContext(t.ctx, `PRAGMA secure_delete = ON`); err != nil {
		return nil, err
	}
	for _, s := range er.Redacted {
		if err := t.redact(s, true); err != nil {
			return nil, err
		}
	}
	for _, s := range er.Evidence {
		if err := t.redact(s, false); err != nil {
			return nil, err
		}
	}
	return er, nil
}

// whoseAddress is the person an erasure of the address norm erases:
// the contact that has it now; else a removed contact whose address it
// was last; else a contact that had it before (a person's earlier
// addresses are theirs). Several at the first of these that has any
// are refused, named: a reused address (security@…) must not erase
// another person.
func whoseAddress(people map[int64]*person, norm string) ([]int64, error) {
	var now, last, ever []int64
	for id, p := range people {
		switch {
		case p.last == norm && !p.removed:
			now = append(now, id)
		case p.last == norm:
			last = append(last, id)
		case slices.Contains(p.emails, norm):
			ever = append(ever, id)
		}
	}
	for _, ids := range [][]int64{now, last, ever} {
		slices.Sort(ids)
		switch {
		case len(ids) == 1:
			return ids, nil
		case len(ids) > 1:
			var named []string
			for _, id := range ids {
				p := people[id]
				state := "now"
				if p.removed {
					state = "removed, last"
				}
				named = append(named, fmt.Sprintf("contact %d (%s %s)", id, state, p.last))
			}
			return nil, refuse(ErrPolicy, "erase each person by the address they have now (ccdir contact list shows it)",
				"the address %s names more than one person: %s; nothing erased", norm, strings.Join(named, ", "))
		}
	}
	return nil, refuse(ErrNotFound, "list contacts with: ccdir contact list; an address already erased is not known any more",
		"no contact, present or past, has the address %s", norm)
}

// mentioned reports whether a mail names the person: one of their
// addresses or names of five bytes or more (any case), or a phone number of theirs however it
// is spaced or punctuated ("+351 21-234 5678" for +351212345678).
func (e *Erased) mentioned(mail []byte) bool {
	low := bytes.ToLower(mail)
	for _, s := range e.Emails {
		if bytes.Contains(low, bytes.ToLower([]byte(s))) {
			return true
		}
	}
	for _, s := range e.Names {
		// A short name ("NOC") is a word of other mails too.
		if len(s) >= 5 && bytes.Contains(low, bytes.ToLower([]byte(s))) {
			return true
		}
	}
	digits := bytes.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		if strings.ContainsRune(" -./()\t", r) {
			return -1
		}
		return '|' // a word between: not one number
	}, mail)
	for _, p := range e.Phones {
		if d := strings.TrimPrefix(p, "+"); len(d) >= 6 && bytes.Contains(digits, []byte(d)) {
			return true
		}
	}
	return false
}

func nonNil(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// redact erases the payload (and salt and evidence) of the entry seq, or
// its evidence only, keeping the digests its hash covers.
func (t *Tx) redact(seq int64, payload bool) error {
	e, err := t.entry(seq)
	if err != nil {
		return err
	}
	null := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	ev := null(e.EvidenceSum())
	if !payload {
		_, err = t.tx.ExecContext(t.ctx, `UPDATE ledger SET evidence = NULL, evidence_digest = ? WHERE seq = ?`, ev, seq)
		return err
	}
	_, err = t.tx.ExecContext(t.ctx, `UPDATE ledger SET payload = '', salt = NULL, evidence = NULL, payload_digest = ?, evidence_digest = ? WHERE seq = ?`,
		null(e.PayloadSum()), ev, seq)
	return err
}

// entry reads the ledger entry seq.
func (t *Tx) entry(seq int64) (*Entry, error) {
	var e Entry
	cols, err := ledgerColumns(t.ctx, t.tx)
	if err != nil {
		return nil, err
	}
	rows, err := t.tx.QueryContext(t.ctx, `SELECT `+cols+` FROM ledger WHERE seq = ?`, seq)
	if err != nil {
		return nil, err
	}
	ok := rows.Next()
	if ok {
		err = scanEntry(rows, &e)
	}
	rows.Close()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("erase: no ledger entry %d", seq)
	}
	return &e, nil
}

// Scrub removes from the database file what deleted rows left behind
// (after an erasure): VACUUM rewrites the file from its live rows, and
// a checkpoint empties the WAL, so that neither holds an erased byte.
// It runs outside any transaction, through the writer's connection.
func (s *Store) Scrub(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	// A checkpoint waits (the busy timeout) for readers of the WAL in
	// other processes; one that keeps reading makes it fail: try again.
	for try := 0; ; try++ {
		var busy, logFrames, done int
		if err := s.w.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		if busy == 0 {
			return nil
		}
		if try == 2 {
			return &Error{Err: ErrPolicy, Msg: "the WAL could not be emptied: another process keeps reading the directory",
				Hint: "the erased rows are gone, but their bytes may stay in directory.db-wal: stop ccdir serve, then run: ccdir contact erase --scrub"}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Delete runs, in t (the transaction of the erasure), each statement of
// byEmail once for every address of the erased person and each of
// byFingerprint once for every key they had, the value bound as ?1, and
// returns how many rows they deleted: the one way the owners' Erase
// functions delete the person from their own tables.
func (er *Erased) Delete(t *Tx, byEmail, byFingerprint []string) (int64, error) {
	var n int64
	run := func(queries, values []string) error {
		for _, v := range values {
			for _, q := range queries {
				res, err := t.tx.ExecContext(t.ctx, q, v)
				if err != nil {
					return err
				}
				k, err := res.RowsAffected()
				if err != nil {
					return err
				}
				n += k
			}
		}
		return nil
	}
	if err := run(byEmail, er.Emails); err != nil {
		return n, err
	}
	return n, run(byFingerprint, er.Fingerprints)
}
