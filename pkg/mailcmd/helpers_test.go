package mailcmd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/relay"
)

const dirAddress = "ccdir@directory.example"

// member is a test contact with its secret key.
type member struct {
	email  string
	secret *keys.Secret
}

// fixture is a directory in a temp folder with a fixed clock, deterministic
// keys and three ccTLDs:
//
//	pt: alice (security, admin? no), bob (admin), dave (security, no key in br)
//	br: carol (security, admin)
//	de: erin (security)
type fixture struct {
	t       *testing.T
	ctx     context.Context
	store   *directory.Store
	dir     *keys.Secret
	ob      *outbox.Outbox
	h       *Handler
	members map[string]*member

	mu    sync.Mutex
	clock time.Time
	n     int // accepted mails made
}

// fixedNow is Monday 2026-11-02 10:00 UTC.
var fixedNow = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

func (f *fixture) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.clock
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clock = f.clock.Add(d)
}

func newFixture(t *testing.T) *fixture { t.Helper(); return newFixtureWith(t, nil) }

// newFixtureWith is newFixture with the store's options changed by opts
// (the operator's reserved address, the bounce address).
func newFixtureWith(t *testing.T, opts func(*directory.Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), clock: fixedNow, members: map[string]*member{}}
	f.dir = keystest.NewSecret(t, "Test Directory", dirAddress)
	f.dir.SetClock(f.now)
	armored, err := f.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	info := directory.Info{Name: "Test Directory", Address: dirAddress, KeyFingerprint: f.dir.Fingerprint(), PublicKey: string(armored)}
	o := directory.Options{Signer: f.dir, Now: f.now, Migrations: slices.Concat(outbox.Migrations, inbound.Migrations, digest.Migrations, relay.Migrations, liveness.Migrations)}
	if opts != nil {
		opts(&o)
	}
	s, err := directory.Create(f.ctx, filepath.Join(t.TempDir(), "directory.db"), info, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	if f.ob, err = outbox.Open(f.ctx, s.DB()); err != nil {
		t.Fatal(err)
	}
	f.ob.Key = outbox.NewKey()
	f.ob.Now = f.now
	f.h = &Handler{Store: s, Secret: f.dir, Outbox: f.ob, Now: f.now,
		Decisions: &liveness.Decisions{Path: filepath.Join(t.TempDir(), "pending-decided"), Secret: f.ob.Key}}

	type spec struct {
		name, email string
		roles       []directory.Role
		phones      []directory.Phone
		langs       []string
		tz          string
		always      bool
	}
	specs := []spec{
		{"Alice Silva", "alice@dns.pt", []directory.Role{{TLD: "pt", Role: "security"}},
			[]directory.Phone{{Number: "+351213141516"}}, []string{"pt", "en"}, "Europe/Lisbon", false},
		{"Bob Costa", "bob@dns.pt", []directory.Role{{TLD: "pt", Role: "admin"}},
			[]directory.Phone{{Number: "+351213141517"}, {Number: "+351912345678", Emergency: true}}, []string{"pt"}, "Europe/Lisbon", false},
		{"Dave Noc", "noc@dns.pt", []directory.Role{{TLD: "pt", Role: "security"}},
			[]directory.Phone{{Number: "+351213141518"}}, []string{"en"}, "America/New_York", true},
		{"Carol Souza", "carol@registro.br", []directory.Role{{TLD: "br", Role: "admin"}},
			[]directory.Phone{{Number: "+551155093500"}}, []string{"pt-BR"}, "America/Sao_Paulo", false},
		{"Erin Weber", "erin@denic.de", []directory.Role{{TLD: "de", Role: "security"}},
			[]directory.Phone{{Number: "+4969272350"}}, []string{"de", "en"}, "Europe/Berlin", false},
	}
	_, err = s.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		for _, m := range []directory.Member{{TLD: "pt", Org: "Associação DNS.PT"}, {TLD: "br", Org: "NIC.br"}, {TLD: "de", Org: "DENIC eG"}} {
			if _, err := tx.AddMember(m); err != nil {
				return err
			}
		}
		for _, sp := range specs {
			sec := keystest.NewSecret(t, sp.name, sp.email)
			sec.SetClock(f.now)
			f.members[sp.email] = &member{email: sp.email, secret: sec}
			if _, err := tx.AddContact(directory.Contact{Email: sp.email, Name: sp.name, Phones: sp.phones, Roles: sp.roles,
				Languages: sp.langs, TimeZone: sp.tz, Always: sp.always, Key: dirKey(t, sec.Public())}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func dirKey(t testing.TB, p *keys.Public) *directory.Key {
	t.Helper()
	a, err := p.Armored()
	if err != nil {
		t.Fatal(err)
	}
	k := &directory.Key{Fingerprint: p.Fingerprint, Algorithm: p.Algorithm, Created: p.Created.UTC().Format(time.RFC3339), Armored: string(a)}
	if !p.Expires.IsZero() {
		k.Expires = p.Expires.UTC().Format(time.RFC3339)
	}
	return k
}

// accepted builds what inbound hands over for a mail from email.
func (f *fixture) accepted(email, text string, atts ...pgpmime.Part) *inbound.Accepted {
	f.t.Helper()
	c, err := f.store.Contact(f.ctx, email)
	if err != nil {
		f.t.Fatal(err)
	}
	pub, err := keys.ParsePublicOne([]byte(c.Key.Armored))
	if err != nil {
		f.t.Fatal(err)
	}
	f.n++
	raw := []byte("From: " + email + "\r\nSubject: commands\r\n\r\n" + text + "\r\n-- mail " + string(rune('0'+f.n)))
	sum := sha256.Sum256(raw)
	return &inbound.Accepted{
		Contact: c, Key: pub, SignedAt: f.now().Add(-time.Minute), Text: text, Attachments: atts,
		Encrypted: true, Form: "pgpmime-encrypted", MessageID: "cmd" + hex.EncodeToString(sum[:4]) + "@dns.example",
		Subject: "commands", Raw: raw, Evidence: raw, Seen: hex.EncodeToString(sum[:]), To: dirAddress,
		Signatures: []inbound.Signature{{Issuer: pub.Fingerprint, Fingerprint: pub.Fingerprint, Contact: email, SignedAt: f.now().Add(-time.Minute)}},
	}
}

// signedToo adds to a a signature by the attached key fpr that verified
// (inbound checks each signature on its own: Accepted.Signatures).
func (f *fixture) signedToo(a *inbound.Accepted, fpr string) *inbound.Accepted {
	a.Signatures = append(a.Signatures, inbound.Signature{Issuer: fpr, Fingerprint: fpr, Attached: true, SignedAt: a.SignedAt})
	return a
}

func (f *fixture) handle(a *inbound.Accepted) *Result {
	f.t.Helper()
	res, err := f.h.Handle(f.ctx, a)
	if err != nil {
		f.t.Fatalf("Handle: %v", err)
	}
	return res
}

func (f *fixture) serial() int64 {
	f.t.Helper()
	h, err := f.store.Head(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return h.Serial
}

// bodies returns the queued messages of kind to rcpt, oldest first.
func (f *fixture) bodies(kind, rcpt string) [][]byte {
	f.t.Helper()
	rows, err := f.store.DB().QueryContext(f.ctx, `SELECT o.body, b.data, o.tail FROM outbox o
		LEFT JOIN outbox_blob b ON b.id = o.blob WHERE o.kind = ? AND o.rcpt = ? ORDER BY o.id`, kind, rcpt)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var head, shared, tail []byte
		if err := rows.Scan(&head, &shared, &tail); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, append(append(head, shared...), tail...))
	}
	return out
}

func (f *fixture) count(kind string) int {
	f.t.Helper()
	var n int
	if err := f.store.DB().QueryRowContext(f.ctx, `SELECT count(*) FROM outbox WHERE kind = ?`, kind).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// opened is a decrypted, verified message.
type opened struct {
	outer string
	inner *pgpmime.Inner
	text  string
}

// open decrypts data with sec and checks the directory's signature.
func (f *fixture) open(data []byte, sec *keys.Secret) *opened {
	f.t.Helper()
	o, err := pgpmime.Open(bytes.NewReader(data), sec, pgpmime.OpenOptions{Keyring: []*keys.Public{f.dir.Public()}, Now: f.now()})
	if err != nil {
		f.t.Fatalf("open: %v", err)
	}
	if !o.Encrypted || !o.Signed || o.SignatureErr != nil || o.Signer != f.dir.Fingerprint() {
		f.t.Fatalf("not encrypted and signed by the directory: encrypted %v signed %v signer %s err %v", o.Encrypted, o.Signed, o.Signer, o.SignatureErr)
	}
	in, err := pgpmime.ParseInner(o.Entity)
	if err != nil {
		f.t.Fatal(err)
	}
	hdr, _, _ := strings.Cut(string(data), "\r\n\r\n")
	return &opened{outer: hdr, inner: in, text: strings.ReplaceAll(string(in.Parts[0].Body), "\r\n", "\n")}
}

// reply returns the last reply to email, opened with its key.
func (f *fixture) reply(email string) *opened {
	f.t.Helper()
	bs := f.bodies(KindReply, email)
	if len(bs) == 0 {
		f.t.Fatalf("no reply to %s", email)
	}
	return f.open(bs[len(bs)-1], f.members[email].secret)
}

func mustContain(t *testing.T, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("text lacks %q:\n%s", w, text)
		}
	}
}
