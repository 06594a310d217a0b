package directory

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// edSigner signs ledger entries with a stdlib Ed25519 key, so that this
// package's tests need nothing of the project.
type edSigner struct {
	priv ed25519.PrivateKey
}

func newSigner(seed byte) *edSigner {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return &edSigner{priv: ed25519.NewKeyFromSeed(s)}
}

func (s *edSigner) Sign(data []byte) ([]byte, error) { return ed25519.Sign(s.priv, data), nil }
func (s *edSigner) Fingerprint() string {
	sum := sha256.Sum256(s.priv.Public().(ed25519.PublicKey))
	return strings.ToUpper(hex.EncodeToString(sum[:20]))
}
func (s *edSigner) Verify(data, sig []byte) error { return s.verify(data, sig) }
func (s *edSigner) verify(data, sig []byte) error {
	if !ed25519.Verify(s.priv.Public().(ed25519.PublicKey), data, sig) {
		return errors.New("signature does not verify")
	}
	return nil
}

type fixture struct {
	t      testing.TB
	ctx    context.Context
	path   string
	signer *edSigner
	s      *Store
	clock  time.Time

	migrations []Migration // of other owners, for opts
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, nil)
}

// newFixtureWith is newFixture with other owners' migrations.
func newFixtureWith(t testing.TB, ms []Migration) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), path: filepath.Join(t.TempDir(), "directory.db"),
		signer: newSigner(1), clock: time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), migrations: ms}
	info := Info{Name: "Test directory", Address: "ccdir@example.org", KeyFingerprint: f.signer.Fingerprint(), PublicKey: "test"}
	s, err := Create(f.ctx, f.path, info, f.opts())
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
	t.Cleanup(func() { f.s.Close() })
	return f
}

func (f *fixture) opts() Options {
	return Options{Signer: f.signer, Now: func() time.Time { f.clock = f.clock.Add(time.Minute); return f.clock }, Migrations: f.migrations}
}

func (f *fixture) update(fn func(*Tx) error) []Entry {
	f.t.Helper()
	e, err := f.s.Update(f.ctx, Operator, fn)
	if err != nil {
		f.t.Fatal(err)
	}
	return e
}

func (f *fixture) verify() (Head, error) {
	return f.s.Verify(f.ctx, f.signer.Fingerprint(), f.signer.verify)
}

func (f *fixture) serial() int64 {
	h, err := f.s.Head(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return h.Serial
}

// populate adds two ccTLDs and three contacts.
func (f *fixture) populate() {
	f.update(func(tx *Tx) error {
		for _, m := range []Member{{TLD: "pt", Org: "Associação DNS.PT"}, {TLD: "рф", Org: "Coordination Center for TLD RU"}} {
			if _, err := tx.AddMember(m); err != nil {
				return err
			}
		}
		for i, c := range []Contact{
			{Email: "ana@dns.pt", Name: "Ana Sousa", Phones: []Phone{{Number: "+351 21 314 1516", Emergency: true}},
				Roles: []Role{{TLD: "pt", Role: "security"}}, Languages: []string{"pt", "en"}, TimeZone: "Europe/Lisbon", Always: true,
				Key: &Key{Fingerprint: "AAAA000000000000000000000000000000000001", Armored: "k1"}},
			{Email: "ivan@cctld.ru", Name: "Иван Петров", Phones: []Phone{{Number: "+7 495 737 0601"}},
				Roles: []Role{{TLD: "xn--p1ai", Role: "security"}}},
			{Email: "noc@dns.pt", Name: "NOC", Phones: []Phone{{Number: "+351 21 314 1500"}},
				Roles: []Role{{TLD: "pt", Role: "admin"}, {TLD: "рф", Role: "admin"}}},
		} {
			if _, err := tx.AddContact(c); err != nil {
				return fmt.Errorf("contact %d: %w", i, err)
			}
		}
		return nil
	})
}

func TestCreateRefusesExisting(t *testing.T) {
	f := newFixture(t)
	_, err := Create(f.ctx, f.path, Info{KeyFingerprint: f.signer.Fingerprint()}, f.opts())
	if !errors.Is(err, ErrHomeExists) {
		t.Fatalf("Create over an existing file: %v, want ErrHomeExists", err)
	}
}

func TestMutationsAndVerify(t *testing.T) {
	f := newFixture(t)
	f.populate()
	if got := f.serial(); got != 6 {
		t.Fatalf("serial after genesis + 2 members + 3 contacts = %d, want 6", got)
	}
	c, err := f.s.Contact(f.ctx, "ANA@DNS.PT")
	if err != nil {
		t.Fatal(err)
	}
	if c.Phones[0].Number != "+351213141516" || !c.Phones[0].Emergency || c.Languages[1] != "en" {
		t.Fatalf("contact not normalized: %+v", c)
	}
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error {
			c.Phones = append(c.Phones, Phone{Number: "+351 912 345 678"})
			return nil
		})
		return err
	})
	f.update(func(tx *Tx) error {
		_, err := tx.SetKey("ivan@cctld.ru", &Key{Fingerprint: "BBBB000000000000000000000000000000000002", Armored: "k2"})
		return err
	})
	f.update(func(tx *Tx) error { _, err := tx.RemoveContact("noc@dns.pt"); return err })
	head, err := f.verify()
	if err != nil {
		t.Fatal(err)
	}
	if head.Serial != 9 {
		t.Fatalf("verify head %v, want serial 9", head)
	}
	snap, err := f.s.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Members) != 2 || len(snap.Contacts) != 2 || snap.Head != head {
		t.Fatalf("snapshot: %d members, %d contacts, head %v", len(snap.Members), len(snap.Contacts), snap.Head)
	}
}

func TestRefusalsChangeNothing(t *testing.T) {
	f := newFixture(t)
	f.populate()
	before := f.serial()
	cases := []struct {
		name string
		fn   func(*Tx) error
		want error
	}{
		{"duplicate member", func(tx *Tx) error { _, err := tx.AddMember(Member{TLD: "PT", Org: "x"}); return err }, ErrExists},
		{"undelegated", func(tx *Tx) error { _, err := tx.AddMember(Member{TLD: "zz", Org: "x"}); return err }, ErrUnknownTLD},
		{"duplicate contact", func(tx *Tx) error {
			_, err := tx.AddContact(Contact{Email: "Ana@dns.pt", Name: "A", Phones: []Phone{{Number: "+351213141516"}}, Roles: []Role{{TLD: "pt", Role: "admin"}}})
			return err
		}, ErrExists},
		{"not a member", func(tx *Tx) error {
			_, err := tx.AddContact(Contact{Email: "x@nic.br", Name: "X", Phones: []Phone{{Number: "+55 11 5509 3500"}}, Roles: []Role{{TLD: "br", Role: "security"}}})
			return err
		}, ErrNotFound},
		{"shared key", func(tx *Tx) error {
			_, err := tx.SetKey("ivan@cctld.ru", &Key{Fingerprint: "AAAA000000000000000000000000000000000001", Armored: "k"})
			return err
		}, ErrExists},
		{"member with contacts", func(tx *Tx) error { return tx.RemoveMember("pt") }, ErrPolicy},
		{"fourth security contact", func(tx *Tx) error {
			for i := range 3 {
				_, err := tx.AddContact(Contact{Email: fmt.Sprintf("s%d@dns.pt", i), Name: "S", Phones: []Phone{{Number: "+351213141516"}}, Roles: []Role{{TLD: "pt", Role: "security"}}})
				if err != nil {
					return err
				}
			}
			return nil
		}, ErrPolicy},
		{"bad phone", func(tx *Tx) error {
			_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Phones = []Phone{{Number: "12345"}}; return nil })
			return err
		}, nil},
		{"no phone", func(tx *Tx) error {
			_, err := tx.UpdateContact("ana@dns.pt", func(c *Contact) error { c.Phones = nil; return nil })
			return err
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.s.Update(f.ctx, Operator, tc.fn)
			if err == nil {
				t.Fatal("accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var fe *FieldError
			if tc.want == nil && !errors.As(err, &fe) {
				t.Fatalf("err = %v, want a *FieldError", err)
			}
			if got := f.serial(); got != before {
				t.Fatalf("serial moved from %d to %d after a refusal", before, got)
			}
		})
	}
	if _, err := f.verify(); err != nil {
		t.Fatal(err)
	}
}

// tamper opens the database file behind the store's back.
func tamper(t *testing.T, path, stmt string, args ...any) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_foreign_keys=off")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(stmt, args...)
	if err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
	isDML := strings.HasPrefix(stmt, "UPDATE") || strings.HasPrefix(stmt, "DELETE") || strings.HasPrefix(stmt, "INSERT")
	if n, _ := res.RowsAffected(); isDML && n == 0 {
		t.Fatalf("%s changed nothing", stmt)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	cases := []struct {
		name string
		stmt string
		want string
	}{
		{"phone in a state row", `UPDATE contacts SET phones = '[{"number":"+351210000000"}]' WHERE email = 'ana@dns.pt'`,
			`table contacts, row id=4 ("ana@dns.pt"): column phones`},
		{"payload in the ledger", `UPDATE ledger SET payload = replace(payload, '+74957370601', '+74950000000') WHERE seq = 5`,
			"ledger entry 5: content does not match its hash"},
		{"deleted ledger row", `DELETE FROM ledger WHERE seq = 3`, "ledger entry 3: missing"},
		{"swapped signature", `UPDATE ledger SET sig = (SELECT sig FROM ledger WHERE seq = 2) WHERE seq = 4`,
			"ledger entry 4: bad signature"},
		{"extra state row", `INSERT INTO members (tld, org, country, status, added_seq, updated_seq) VALUES ('br', 'NIC.br', 'BR', 'active', 2, 2)`,
			`table members, row tld="br"`},
		{"deleted last entry", `DELETE FROM ledger WHERE seq = 6`, "ledger entry 6: missing: the state was changed by entry 6, but the ledger ends at entry 5"},
		{"deleted member row", `DELETE FROM members WHERE tld = 'pt'`, `table members, row tld="pt": is in the ledger but missing from the database`},
		{"extra role row", `INSERT INTO roles (contact_id, tld, role) VALUES (5, 'pt', 'admin')`, `table roles, row contact_id=5 tld="pt": is in the database but not in the ledger`},
		{"rewritten genesis key", `UPDATE ledger SET hash = 'x' WHERE seq = 1`, "ledger entry 1: content does not match"},
		{"trigger", `CREATE TRIGGER t AFTER INSERT ON ledger BEGIN UPDATE contacts SET phones = '[]'; END`, `the database has a trigger "t"`},
		{"view", `CREATE VIEW v AS SELECT 1`, `the database has a view "v"`},
		{"changed column type", `ALTER TABLE members ADD COLUMN extra TEXT`, "table members is not defined as ccdir defines it"},
		{"dropped index", `DROP INDEX roles_tld`, "the database lacks index roles_tld"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.populate()
			if _, err := f.verify(); err != nil {
				t.Fatalf("before tampering: %v", err)
			}
			tamper(t, f.path, tc.stmt)
			_, err := f.verify()
			if !IsVerifyError(err) {
				t.Fatalf("verify after tampering: %v, want a VerifyError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("verify: %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestVerifyWrongKey(t *testing.T) {
	f := newFixture(t)
	f.populate()
	other := newSigner(2)
	_, err := f.s.Verify(f.ctx, other.Fingerprint(), other.verify)
	if !IsVerifyError(err) || !strings.Contains(err.Error(), "ledger entry 1: genesis names directory key "+f.signer.Fingerprint()) {
		t.Fatalf("verify with another key: %v", err)
	}
}

func TestOpenRefusesForeignDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "other.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), path, Options{}); !errors.Is(err, ErrNotDirectory) {
		t.Fatalf("open a foreign database: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("opening a foreign database changed it")
	}
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), empty, Options{}); !errors.Is(err, ErrNotDirectory) {
		t.Fatalf("open an empty file: %v", err)
	}
	if st, _ := os.Stat(empty); st.Size() != 0 {
		t.Fatalf("opening an empty file wrote %d bytes", st.Size())
	}
	if _, err := Open(context.Background(), filepath.Join(dir, "missing.db"), Options{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open a missing database: %v", err)
	}
}

func TestUpdateOperationalOnly(t *testing.T) {
	f := newFixtureWith(t, []Migration{{Owner: "test", Version: 1, Name: "ops", Up: `CREATE TABLE ops (x TEXT)`}})
	entries, err := f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		_, err := tx.SQL().Exec(`INSERT INTO ops VALUES ('a')`)
		return err
	})
	if err != nil || len(entries) != 0 {
		t.Fatalf("Update with operational writes only: %v, %d entries", err, len(entries))
	}
	var n int
	if err := f.s.DB().QueryRow(`SELECT count(*) FROM ops`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("ops rows: %d, %v", n, err)
	}
	// A failure rolls the operational write back with the rest.
	_, err = f.s.Update(f.ctx, Operator, func(tx *Tx) error {
		if _, err := tx.SQL().Exec(`INSERT INTO ops VALUES ('b')`); err != nil {
			return err
		}
		_, err := tx.AddMember(Member{TLD: "zz", Org: "x"})
		return err
	})
	if err == nil {
		t.Fatal("accepted zz")
	}
	if err := f.s.DB().QueryRow(`SELECT count(*) FROM ops`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("ops rows after a refused update: %d, %v", n, err)
	}
	if _, err := f.verify(); err != nil {
		t.Fatal(err)
	}
}

func TestSnapshotCacheIsACopy(t *testing.T) {
	f := newFixture(t)
	f.populate()
	a, err := f.s.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	a.Contacts[0].Phones[0].Number = "changed by the caller"
	a.Contacts[0].Key = nil
	b, err := f.s.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if b.Contacts[0].Phones[0].Number == "changed by the caller" || b.Contacts[0].Key == nil {
		t.Fatal("a caller's change reached the cached snapshot")
	}
	f.update(func(tx *Tx) error {
		_, err := tx.UpdateContact(b.Contacts[0].Email, func(c *Contact) error { c.Name = "New Name"; return nil })
		return err
	})
	c, err := f.s.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Head == b.Head || c.Contacts[0].Name != "New Name" {
		t.Fatalf("snapshot after a change: head %v, name %q", c.Head, c.Contacts[0].Name)
	}
}
