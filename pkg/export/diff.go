package export

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// DefaultKeyNoteDays is how many days before a key expires a digest warns
// about it, in the change list ([ChangeKeyExpiring]) and in the note to its
// owner ([KeyNote]).
const DefaultKeyNoteDays = 60

// ChangeKind says what a [Change] is. The kinds are ordered as a change
// list shows them for one contact: the member first, then the contact,
// its details, its roles and its key.
type ChangeKind int

// Kinds of [Change].
const (
	ChangeMemberAdded    ChangeKind = iota + 1 // Name: the org
	ChangeMemberRemoved                        // Name: the org it had
	ChangeMemberChanged                        // Detail: org, country and status, old → new
	ChangeContactAdded                         // Detail: role there, and the key
	ChangeContactRemoved                       // Detail: the role it had there
	ChangeEmail                                // Email: the new one; Detail: old → new
	ChangeName                                 // Detail: old → new
	ChangePhones                               // Detail: old → new
	ChangeLanguages                            // Detail: old → new
	ChangeTimeZone                             // Detail: old → new
	ChangeRoleAdded                            // an existing contact now serves TLD; Detail: the role
	ChangeRoleRemoved                          // Detail: the role it had
	ChangeRoleChanged                          // Detail: old → new
	Change24x7                                 // Detail: old → new ("no → yes")
	ChangeKeyNew                               // the contact had no key; Detail: fingerprint, expiry
	ChangeKeyRotated                           // another fingerprint; Detail: old → new
	ChangeKeyUpdated                           // same fingerprint, another expiry; Detail: old → new
	ChangeKeyRemoved                           // Detail: the fingerprint it had
	ChangeKeyExpiring                          // expires within DefaultKeyNoteDays; Detail: fingerprint, date
	ChangeKeyUnusable                          // revoked, expired…; Detail: why
)

var changeNames = [...]string{
	ChangeMemberAdded:    "member added",
	ChangeMemberRemoved:  "member removed",
	ChangeMemberChanged:  "member changed",
	ChangeContactAdded:   "contact added",
	ChangeContactRemoved: "contact removed",
	ChangeEmail:          "email changed",
	ChangeName:           "name changed",
	ChangePhones:         "phones changed",
	ChangeLanguages:      "languages changed",
	ChangeTimeZone:       "time zone changed",
	ChangeRoleAdded:      "role added",
	ChangeRoleRemoved:    "role removed",
	ChangeRoleChanged:    "role changed",
	Change24x7:           "24x7 changed",
	ChangeKeyNew:         "new key",
	ChangeKeyRotated:     "key rotated",
	ChangeKeyUpdated:     "key expiry changed",
	ChangeKeyRemoved:     "key removed",
	ChangeKeyExpiring:    "key expiring",
	ChangeKeyUnusable:    "key unusable",
}

// fieldChanges gives each detail field of [directory.ContactFields] (by
// its Field) the kind of its change; a test checks that none is missing.
var fieldChanges = map[string]ChangeKind{
	"Email":     ChangeEmail,
	"Name":      ChangeName,
	"Phones":    ChangePhones,
	"Languages": ChangeLanguages,
	"TimeZone":  ChangeTimeZone,
	"Always":    Change24x7,
}

// String returns the kind as a digest shows it: "key rotated".
func (k ChangeKind) String() string {
	if k > 0 && int(k) < len(changeNames) {
		return changeNames[k]
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one difference between the directory the last digest showed
// and now, as seen by the members of one ccTLD: a change to a contact
// who serves several ccTLDs is listed under each of them, like the contact
// itself in the directory.
type Change struct {
	Kind   ChangeKind
	TLD    string // A-label; "" for a contact without a role
	Email  string // the contact's email (the new one for ChangeEmail); "" for a member
	Name   string // the contact's name, or the member's org
	Detail string // what changed, "old → new" where there is an old value
}

// String describes the change on one line, without its ccTLD:
// "Ana Sousa <ana@dns.pt>: key rotated: AAAA … → BBBB …".
func (c Change) String() string {
	var b strings.Builder
	if c.Email != "" {
		fmt.Fprintf(&b, "%s <%s>: ", c.Name, c.Email)
	}
	b.WriteString(c.Kind.String())
	switch {
	case c.Email == "" && c.Kind != ChangeMemberChanged && c.Name != "":
		b.WriteString(": " + c.Name)
	case c.Detail != "":
		b.WriteString(": " + c.Detail)
	}
	return b.String()
}

const arrow = " → "

// Diff lists what changed from prev, the directory the last digest showed,
// to cur: members added, removed or changed (org, country, status);
// contacts added or removed; a change of any detail of a contact in
// [directory.ContactFields] (email, name, phones, languages, time zone,
// 24x7: contacts are matched by ID, so a new address is a change, not a
// removal and an addition; contacts without an ID are matched by email)
// and of its roles; keys new, rotated, re-dated or removed. It also lists every key of cur
// that usable refuses ([ChangeKeyUnusable]) or that expires within
// [DefaultKeyNoteDays] days after now ([ChangeKeyExpiring]): those are
// states, not changes, and are listed at every digest until fixed.
//
// A change of a contact is listed under each ccTLD it serves in cur (both
// before and now, if there are such), a removal under each it served;
// roles for a removed member are not listed apart from the member's
// removal. The list is sorted by TLD, then email, then kind. A nil prev
// (the first digest) gives no list. usable reports why a contact's key
// cannot be used (it is called only for contacts with a key); nil accepts
// every key that has not expired at now. Diff reads no clock: it is a pure
// function of its arguments.
func Diff(prev, cur *directory.Snapshot, now time.Time, check KeyCheck) []Change {
	if prev == nil || cur == nil {
		return nil
	}
	check = check.resolve(now)
	details := directory.DetailFields()
	var out []Change
	add := func(kind ChangeKind, tlds []string, email, name, detail string) {
		if len(tlds) == 0 {
			tlds = []string{""}
		}
		for _, tld := range tlds {
			out = append(out, Change{Kind: kind, TLD: tld, Email: email, Name: name, Detail: detail})
		}
	}

	// Members, by code.
	prevMembers := map[string]directory.Member{}
	for _, m := range prev.Members {
		prevMembers[m.TLD] = m
	}
	curMembers := map[string]bool{}
	for _, m := range sortedMembers(cur) {
		curMembers[m.TLD] = true
		p, ok := prevMembers[m.TLD]
		if !ok {
			add(ChangeMemberAdded, []string{m.TLD}, "", m.Org, "")
			continue
		}
		var what []string
		if p.Org != m.Org {
			what = append(what, "org "+p.Org+arrow+m.Org)
		}
		if p.Country != m.Country {
			what = append(what, "country "+orNone(p.Country)+arrow+orNone(m.Country))
		}
		if p.Status != m.Status {
			what = append(what, "status "+p.Status+arrow+m.Status)
		}
		if len(what) > 0 {
			add(ChangeMemberChanged, []string{m.TLD}, "", m.Org, strings.Join(what, "; "))
		}
	}
	removedMember := map[string]bool{}
	for _, m := range sortedMembers(prev) {
		if !curMembers[m.TLD] {
			removedMember[m.TLD] = true
			add(ChangeMemberRemoved, []string{m.TLD}, "", m.Org, "")
		}
	}

	// Contacts: pairs by ID, then by email among those left.
	prevContacts := sortedContacts(prev)
	matched := make([]bool, len(prevContacts))
	byID := map[int64]int{}
	byEmail := map[string]int{}
	for i, c := range prevContacts {
		if c.ID != 0 {
			byID[c.ID] = i
		}
		byEmail[c.Email] = i
	}
	curContacts := sortedContacts(cur)
	pair := make([]int, len(curContacts))
	for j, c := range curContacts {
		pair[j] = -1
		if i, ok := byID[c.ID]; ok && c.ID != 0 && !matched[i] {
			pair[j], matched[i] = i, true
		}
	}
	for j, c := range curContacts {
		if i, ok := byEmail[c.Email]; ok && pair[j] < 0 && !matched[i] {
			pair[j], matched[i] = i, true
		}
	}

	for j := range curContacts {
		c := &curContacts[j]
		serves := roleTLDs(c, nil)
		if pair[j] < 0 {
			for _, r := range c.Roles {
				add(ChangeContactAdded, []string{r.TLD}, c.Email, c.Name, r.Role+", "+contactKey(c.Key))
			}
			if len(c.Roles) == 0 {
				add(ChangeContactAdded, nil, c.Email, c.Name, contactKey(c.Key))
			}
		} else {
			p := &prevContacts[pair[j]]
			// Details matter where the contact was known already; where it
			// is new, its role is the news.
			tlds := roleTLDs(c, p)
			if len(tlds) == 0 {
				tlds = serves
			}
			for _, f := range details {
				if pt, ct := f.Text(p), f.Text(c); pt != ct {
					add(fieldChanges[f.Field], tlds, c.Email, c.Name, pt+arrow+ct)
				}
			}
			for _, tld := range unionTLDs(p, c) {
				pr, cr := p.RoleFor(tld), c.RoleFor(tld)
				switch {
				case pr == cr:
				case pr == "":
					add(ChangeRoleAdded, []string{tld}, c.Email, c.Name, cr)
				case cr == "":
					if !removedMember[tld] {
						add(ChangeRoleRemoved, []string{tld}, c.Email, c.Name, pr)
					}
				default:
					add(ChangeRoleChanged, []string{tld}, c.Email, c.Name, pr+arrow+cr)
				}
			}
			switch pk, ck := p.Key, c.Key; {
			case pk == nil && ck != nil:
				add(ChangeKeyNew, tlds, c.Email, c.Name, keySummary(ck))
			case pk != nil && ck == nil:
				add(ChangeKeyRemoved, tlds, c.Email, c.Name, keys.GroupFingerprint(pk.Fingerprint))
			case pk == nil || ck == nil:
			case !sameFingerprint(pk.Fingerprint, ck.Fingerprint):
				add(ChangeKeyRotated, tlds, c.Email, c.Name, keys.GroupFingerprint(pk.Fingerprint)+arrow+keySummary(ck))
			case pk.Expires != ck.Expires:
				add(ChangeKeyUpdated, tlds, c.Email, c.Name, "expires "+expiryDate(pk)+arrow+expiryDate(ck))
			}
		}
		if st := keyStatus(c, now, DefaultKeyNoteDays, check); st.kind != 0 {
			add(st.kind, serves, c.Email, c.Name, st.detail(c))
		}
	}
	for i := range prevContacts {
		if matched[i] {
			continue
		}
		p := &prevContacts[i]
		for _, r := range p.Roles {
			add(ChangeContactRemoved, []string{r.TLD}, p.Email, p.Name, r.Role)
		}
		if len(p.Roles) == 0 {
			add(ChangeContactRemoved, nil, p.Email, p.Name, "")
		}
	}

	slices.SortStableFunc(out, func(a, b Change) int {
		return cmp.Or(
			strings.Compare(a.TLD, b.TLD),
			strings.Compare(a.Email, b.Email),
			cmp.Compare(a.Kind, b.Kind),
			strings.Compare(a.Detail, b.Detail),
		)
	})
	return out
}

// KeyCheck is how a digest judges its contacts' keys at its date. A
// digest passes its key cache, which reads each key once for both
// (fanout.Keys: Err and UsableUntil at the digest's date); a nil field
// has a default.
type KeyCheck struct {
	// Usable reports why c's key cannot be used, or nil; it is called
	// only for a contact with a key. nil: every key that has not stopped
	// working (Until) at now can be used.
	Usable func(c *directory.Contact) error
	// Until reports when c's key stops working: keys.Public.UsableUntil,
	// the earliest of the primary key's expiry and the latest expiries
	// of its encryption-capable and signing-capable keys (zero: never);
	// false when it cannot tell, and then the expiry the directory
	// records (Key.Expires, the primary key's) counts. It is called only
	// for a contact with a key. nil: read from the armored key at now.
	Until func(c *directory.Contact) (time.Time, bool)
}

// resolve returns k with the defaults of its nil fields, at now.
func (k KeyCheck) resolve(now time.Time) KeyCheck {
	if k.Until == nil {
		k.Until = func(c *directory.Contact) (time.Time, bool) {
			pub, err := keys.ParsePublicOne([]byte(c.Key.Armored))
			if err != nil {
				return time.Time{}, false
			}
			return pub.UsableUntil(now), true
		}
	}
	if k.Usable == nil {
		until := k.Until
		k.Usable = func(c *directory.Contact) error {
			if exp, ok := keyEnd(c, until); ok && !exp.After(now) {
				return errKeyExpired
			}
			return nil
		}
	}
	return k
}

// keyEnd is when c's key stops working as until tells, else as the
// directory records; false: never.
func keyEnd(c *directory.Contact, until func(*directory.Contact) (time.Time, bool)) (time.Time, bool) {
	if t, ok := until(c); ok {
		return t, !t.IsZero()
	}
	return c.Key.ExpiresAt()
}

var errKeyExpired = errors.New("key expired")

// keyState is what a digest says about a key at a time: nothing,
// expiring, or unusable.
type keyState struct {
	kind    ChangeKind // 0, ChangeKeyExpiring or ChangeKeyUnusable
	expires time.Time  // when the key expires (or expired), zero if never
	err     error      // why it is unusable; nil if it merely expired
}

// keyStatus reports whether c's key is unusable at now or expires within
// days after now, by when it stops working (k.Until); kind is 0 if
// neither, or if c has no key. A key that has stopped working counts as
// unusable even if k.Usable accepts it. k is resolved.
func keyStatus(c *directory.Contact, now time.Time, days int, k KeyCheck) keyState {
	if c.Key == nil {
		return keyState{}
	}
	exp, expires := keyEnd(c, k.Until)
	st := keyState{expires: exp}
	switch err := k.Usable(c); {
	case err != nil && !(errors.Is(err, errKeyExpired) && expires && !exp.After(now)):
		st.kind, st.err = ChangeKeyUnusable, err
	case expires && !exp.After(now):
		st.kind = ChangeKeyUnusable
	case expires && !exp.After(now.Add(time.Duration(days)*24*time.Hour)):
		st.kind = ChangeKeyExpiring
	}
	return st
}

// detail describes the state of c's key in a change list.
func (st keyState) detail(c *directory.Contact) string {
	fp := keys.GroupFingerprint(c.Key.Fingerprint)
	switch {
	case st.err != nil:
		return fp + ": " + st.err.Error()
	case st.kind == ChangeKeyUnusable:
		return fp + " expired on " + st.expires.UTC().Format(time.DateOnly)
	}
	return fp + " expires on " + st.expires.UTC().Format(time.DateOnly)
}

// roleTLDs returns the ccTLDs c serves, sorted; with also non-nil, only
// those that also serves.
func roleTLDs(c, also *directory.Contact) []string {
	var out []string
	for _, r := range c.Roles {
		if also == nil || also.RoleFor(r.TLD) != "" {
			out = append(out, r.TLD)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// unionTLDs returns the ccTLDs a or b serves, sorted.
func unionTLDs(a, b *directory.Contact) []string {
	var out []string
	for _, r := range a.Roles {
		out = append(out, r.TLD)
	}
	for _, r := range b.Roles {
		out = append(out, r.TLD)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// keySummary describes a key in a change: "AAAA 1111 … (expires 2027-01-10)".
func keySummary(k *directory.Key) string {
	if k.Expires == "" {
		return keys.GroupFingerprint(k.Fingerprint) + " (never expires)"
	}
	return keys.GroupFingerprint(k.Fingerprint) + " (expires " + expiryDate(k) + ")"
}

// contactKey describes the key of a new contact: "key AAAA … (…)", or "no key".
func contactKey(k *directory.Key) string {
	if k == nil {
		return "no key"
	}
	return "key " + keySummary(k)
}

// expiryDate returns the UTC date a key expires, or "never".
func expiryDate(k *directory.Key) string {
	if k.Expires == "" {
		return "never"
	}
	return date(k.Expires)
}

func sameFingerprint(a, b string) bool {
	norm := func(s string) string { return strings.ToUpper(strings.ReplaceAll(s, " ", "")) }
	return norm(a) == norm(b)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
