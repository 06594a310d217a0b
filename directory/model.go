package directory

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Roles a contact can hold for a ccTLD.
const (
	RoleSecurity = "security"
	RoleAdmin    = "admin"
)

// Member statuses.
const (
	StatusActive   = "active"
	StatusInactive = "inactive"
)

// Info is the directory's identity, fixed by the genesis entry.
type Info struct {
	Name           string `json:"name"`
	Address        string `json:"address"`
	ListAddress    string `json:"list_address,omitempty"`
	KeyFingerprint string `json:"key_fingerprint"`
	PublicKey      string `json:"public_key,omitempty"`
}

// SendKeyAddress is LOCAL-sendkey@DOMAIN for the directory address
// LOCAL@DOMAIN: mail to it is answered with the directory's public key.
func (i Info) SendKeyAddress() string {
	local, domain, _ := strings.Cut(i.Address, "@")
	return local + "-sendkey@" + domain
}

// BounceAddress is LOCAL-bounces@DOMAIN for the directory address
// LOCAL@DOMAIN: the envelope sender of everything the directory sends is
// a +tag of it (package outbox), and the delivery status notifications
// that come back to it mark what bounced.
func (i Info) BounceAddress() string {
	local, domain, _ := strings.Cut(i.Address, "@")
	return local + "-bounces@" + domain
}

// Addresses are every address the directory takes mail for: the -sendkey
// address, the directory's (mail commands), the -bounces address and the
// list's (if any). It is the one list of them: the server accepts these
// at RCPT, the loop checks never answer them, and no contact may have
// one.
func (i Info) Addresses() []string {
	addrs := []string{i.SendKeyAddress(), i.Address, i.BounceAddress()}
	if i.ListAddress != "" {
		addrs = append(addrs, i.ListAddress)
	}
	return addrs
}

// OwnAddress returns the address of Addresses that email is, or is a
// "+tag" subaddress of (which most mail servers deliver to the same
// mailbox), compared case-insensitively; "" if none.
func (i Info) OwnAddress(email string) string {
	for _, a := range i.Addresses() {
		if sameMailbox(email, a) {
			return a
		}
	}
	return ""
}

// sameMailbox reports whether email is addr or a "+tag" subaddress of
// it, compared case-insensitively.
func sameMailbox(email, addr string) bool {
	local, domain, _ := strings.Cut(strings.ToLower(strings.TrimSpace(email)), "@")
	al, ad, _ := strings.Cut(strings.ToLower(strings.TrimSpace(addr)), "@")
	return al != "" && ad == domain && (local == al || strings.HasPrefix(local, al+"+"))
}

// Head identifies the state of the directory: the serial (sequence number
// of the last ledger entry) and that entry's hash.
type Head struct {
	Serial int64  `json:"serial"`
	Hash   string `json:"head"`
}

func (h Head) String() string { return fmt.Sprintf("serial %d head %s", h.Serial, h.Hash) }

// Member is a ccTLD of the community, keyed by its A-label.
type Member struct {
	TLD     string `json:"tld"`
	Org     string `json:"org"`
	Country string `json:"country,omitempty"`
	Status  string `json:"status"`
}

// Phone is a number in E.164 form; Emergency marks the one to call first.
type Phone struct {
	Number    string `json:"number"`
	Emergency bool   `json:"emergency,omitempty"`
}

// Role is what a contact is for one ccTLD.
type Role struct {
	TLD  string `json:"tld"`
	Role string `json:"role"`
}

// Key is a contact's OpenPGP public key as the directory keeps it.
type Key struct {
	Fingerprint string `json:"fingerprint"`
	Algorithm   string `json:"algorithm,omitempty"`
	Created     string `json:"created,omitempty"` // RFC 3339
	Expires     string `json:"expires,omitempty"` // RFC 3339, empty if never
	Armored     string `json:"armored"`
}

// ExpiresAt returns the key's expiry, and false if it never expires.
func (k *Key) ExpiresAt() (time.Time, bool) {
	if k == nil || k.Expires == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, k.Expires)
	return t, err == nil
}

// Contact is one person or team mailbox, unique by email.
type Contact struct {
	ID        int64    `json:"id,omitempty"`
	Email     string   `json:"email"`
	Name      string   `json:"name"`
	Phones    []Phone  `json:"phones"`
	Roles     []Role   `json:"roles"`
	Languages []string `json:"languages,omitempty"`
	TimeZone  string   `json:"timezone,omitempty"`
	Always    bool     `json:"24x7"`
	Key       *Key     `json:"key,omitempty"`
	// Confirmed is the time of the last ledger entry that added or
	// changed the contact: when the entry last changed, not when anyone
	// confirmed it. It is signed state and keeps its name (and its JSON
	// key "confirmed") so released homes and exports hash the same; people
	// see it labelled "changed". "Last confirmed" is the contact's last
	// accepted PONG, operational data in the pings table
	// (liveness.Confirmed), never part of the signed state.
	Confirmed string `json:"confirmed,omitempty"`
}

// RoleFor returns the contact's role for tld, or "".
func (c *Contact) RoleFor(tld string) string {
	for _, r := range c.Roles {
		if r.TLD == tld {
			return r.Role
		}
	}
	return ""
}

// SetRole adds or changes the contact's role for tld.
func (c *Contact) SetRole(tld, role string) {
	for i := range c.Roles {
		if c.Roles[i].TLD == tld {
			c.Roles[i].Role = role
			return
		}
	}
	c.Roles = append(c.Roles, Role{TLD: tld, Role: role})
}

// DropRole removes the contact's role for tld and reports whether it had one.
func (c *Contact) DropRole(tld string) bool {
	n := len(c.Roles)
	c.Roles = slices.DeleteFunc(c.Roles, func(r Role) bool { return r.TLD == tld })
	return len(c.Roles) != n
}

// Normalize validates m and puts it in canonical form.
func (m *Member) Normalize() error {
	t, err := LookupCCTLD(m.TLD)
	if err != nil {
		return err
	}
	m.TLD = t.Code
	if m.Org, err = NormalizeName(m.Org, "org"); err != nil {
		return err
	}
	if m.Country == "" {
		m.Country = t.Country
	}
	if m.Country != "" {
		if m.Country, err = NormalizeCountry(m.Country); err != nil {
			return err
		}
	}
	switch m.Status {
	case "":
		m.Status = StatusActive
	case StatusActive, StatusInactive:
	default:
		return &FieldError{Field: "status", Value: m.Status, Err: fmt.Errorf("want %s or %s", StatusActive, StatusInactive)}
	}
	return nil
}

// Normalize validates c and puts it in canonical form: email and phones
// normalized, roles sorted by ccTLD, languages canonical BCP 47 tags.
func (c *Contact) Normalize() error {
	var err error
	if c.Email, err = NormalizeEmail(c.Email); err != nil {
		return err
	}
	if c.Name, err = NormalizeName(c.Name, "name"); err != nil {
		return err
	}
	if len(c.Phones) == 0 {
		return &FieldError{Field: "phone", Value: "", Err: fmt.Errorf("a contact needs at least one phone number")}
	}
	seen := map[string]bool{}
	phones := make([]Phone, 0, len(c.Phones))
	for _, p := range c.Phones {
		n, err := NormalizePhone(p.Number)
		if err != nil {
			return err
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		phones = append(phones, Phone{Number: n, Emergency: p.Emergency})
	}
	c.Phones = phones
	if len(c.Roles) == 0 {
		return &FieldError{Field: "role", Value: "", Err: fmt.Errorf("a contact needs a role for at least one ccTLD")}
	}
	roles := make([]Role, 0, len(c.Roles))
	for _, r := range c.Roles {
		t, err := LookupCCTLD(r.TLD)
		if err != nil {
			return err
		}
		role, err := NormalizeRole(r.Role)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(roles, func(x Role) bool { return x.TLD == t.Code }) {
			return &FieldError{Field: "role", Value: t.Code, Err: fmt.Errorf("ccTLD given twice")}
		}
		roles = append(roles, Role{TLD: t.Code, Role: role})
	}
	slices.SortFunc(roles, func(a, b Role) int { return strings.Compare(a.TLD, b.TLD) })
	c.Roles = roles
	if len(c.Languages) > 0 {
		if c.Languages, err = NormalizeLanguages(c.Languages); err != nil {
			return err
		}
	}
	if c.Languages == nil {
		c.Languages = []string{}
	}
	if c.TimeZone != "" {
		if c.TimeZone, err = NormalizeTimeZone(c.TimeZone); err != nil {
			return err
		}
	}
	if c.Key != nil && c.Key.Fingerprint == "" {
		return &FieldError{Field: "key", Value: "", Err: fmt.Errorf("key without fingerprint")}
	}
	return nil
}

// Actor says who asked for a change: the operator, or a member whose signed
// mail is kept as evidence.
type Actor struct {
	Name     string // "operator:<name>", "member:<fingerprint>"; "operator" in older entries
	Evidence []byte // the signed mail, if any
}

// Operator is the actor of changes made with the CLI by an operator
// without a name: what ccdir wrote before entries named the operator
// (OperatorActor), still read and replayed as it is.
var Operator = Actor{Name: operatorActor}

// operatorActor is the actor, and the prefix of the actor, of changes
// made by the operator.
const operatorActor = "operator"

// MaxOperatorName is the longest operator name, in characters.
const MaxOperatorName = 64

// OperatorActor is the actor of changes made with the CLI by the
// operator called name: "operator:NAME", so that every entry says which
// operator made it. The name follows the rules of names
// (NormalizeName: NFC, one space for every run of white space, no
// control, invisible or bidi characters) and has at most
// MaxOperatorName characters.
func OperatorActor(name string) (Actor, error) {
	n, err := NormalizeOperatorName(name)
	if err != nil {
		return Actor{}, err
	}
	return Actor{Name: operatorActor + ":" + n}, nil
}

// NormalizeOperatorName checks and normalizes an operator's name (see
// OperatorActor).
func NormalizeOperatorName(name string) (string, error) {
	n, err := NormalizeName(name, "operator name")
	if err != nil {
		return "", err
	}
	if utf8.RuneCountInString(n) > MaxOperatorName {
		return "", fieldError("operator name", name, fmt.Sprintf("longer than %d characters", MaxOperatorName))
	}
	return n, nil
}

// Entry is one ledger entry.
type Entry struct {
	Seq      int64  `json:"seq"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Op       string `json:"op"`
	Payload  string `json:"payload"`
	Evidence []byte `json:"-"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	Sig      []byte `json:"-"`
	// Version is the entry's version (1, 2, or EntryVersion for the
	// entries written now); Salt (hex) is a version 2 or 3 entry's, of
	// the salted digest of its payload that its hash covers (PayloadSum).
	Version int    `json:"version"`
	Salt    string `json:"salt,omitempty"`
	// PayloadDigest and EvidenceDigest (hex) are kept once the payload
	// (of a version 2 entry) or the evidence was erased (Tx.Erase), so
	// that the hash still recomputes; "" otherwise.
	PayloadDigest  string `json:"payload_digest,omitempty"`
	EvidenceDigest string `json:"evidence_digest,omitempty"`
	// Subject is what a version 3 entry is about, in clear, covered by
	// its hash (see EntrySubject): "contact:ID" for the entries that hold
	// a contact's data, "" for the others and for entries of versions 1
	// and 2.
	Subject string `json:"subject,omitempty"`
}

// Snapshot is the whole directory at one head, read in one transaction.
type Snapshot struct {
	Info     Info
	Head     Head
	Time     string // time of the head entry
	Members  []Member
	Contacts []Contact // sorted by email
}

// ContactsOf returns the contacts with a role for tld, security first, then by name.
func (s *Snapshot) ContactsOf(tld string) []Contact {
	var out []Contact
	for _, c := range s.Contacts {
		if c.RoleFor(tld) != "" {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b Contact) int {
		ra, rb := a.RoleFor(tld), b.RoleFor(tld)
		if ra != rb {
			if ra == RoleSecurity {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// ActiveTLDs returns the ccTLDs of c's roles that are active members of
// the directory, in the order of c's roles.
func (s *Snapshot) ActiveTLDs(c *Contact) []string {
	var out []string
	for _, r := range c.Roles {
		if slices.ContainsFunc(s.Members, func(m Member) bool { return m.TLD == r.TLD && m.Status == StatusActive }) {
			out = append(out, r.TLD)
		}
	}
	return out
}

// Reachable reports whether c receives directory data — the digest, list
// copies, the notices of changes made by mail to other contacts — which a
// contact does only through a role at an active ccTLD: one whose every
// role is at inactive ccTLDs gets nothing (and cannot run commands
// either). This is the one rule of it; the digest reports such a contact
// as skipped ("ccTLD inactive").
func (s *Snapshot) Reachable(c *Contact) bool {
	return len(s.ActiveTLDs(c)) > 0
}

// clone returns a deep copy, which its holder may change freely.
func (s *Snapshot) clone() *Snapshot {
	c := *s
	c.Members = slices.Clone(s.Members)
	c.Contacts = make([]Contact, len(s.Contacts))
	for i, ct := range s.Contacts {
		ct.Phones = slices.Clone(ct.Phones)
		ct.Roles = slices.Clone(ct.Roles)
		ct.Languages = slices.Clone(ct.Languages)
		if ct.Key != nil {
			k := *ct.Key
			ct.Key = &k
		}
		c.Contacts[i] = ct
	}
	return &c
}
