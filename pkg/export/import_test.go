package export

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

var importNow = time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)

// importStore is an empty directory whose clock is importNow.
func importStore(t *testing.T) *directory.Store {
	t.Helper()
	dirKey := keystest.NewSecret(t, "Import Test Directory", "dir@ccdir.example")
	pub, err := dirKey.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	s, err := directory.Create(context.Background(), filepath.Join(t.TempDir(), "directory.db"), directory.Info{
		Name: "Import Test Directory", Address: "dir@ccdir.example",
		KeyFingerprint: dirKey.Fingerprint(), PublicKey: string(pub),
	}, directory.Options{Signer: dirKey, Now: func() time.Time { return importNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// contactPublic is a new key of a contact, made a day before importNow.
func contactPublic(t *testing.T, name, email string) *keys.Public {
	t.Helper()
	sec, err := keys.Generate(name, email, keys.AlgoEd25519, importNow.Add(-24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sec.Public()
}

func importCSV(t *testing.T, s *directory.Store, csv string, bundle *KeyBundle) (ImportResult, error) {
	t.Helper()
	rows, err := ParseCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	var res ImportResult
	_, err = s.Update(context.Background(), directory.Operator, func(tx *directory.Tx) error {
		var err error
		res, err = Import(tx, rows, bundle, importNow)
		return err
	})
	return res, err
}

const importHeader = "tld,org,name,email,phones,role,languages,timezone,24x7\n"

func TestImport(t *testing.T) {
	s := importStore(t)
	ana := contactPublic(t, "Ana Sousa", "Ana@DNS.pt")
	res, err := importCSV(t, s, importHeader+
		"pt,DNS.PT,Ana Sousa,ana@dns.pt,emergency:+351211234567,security,pt;en,Europe/Lisbon,yes\n"+
		"br,NIC.br,Ana Sousa,ANA@dns.pt,emergency:+351211234567,admin,pt;en,Europe/Lisbon,yes\n"+
		"pt,DNS.PT,João,joao@dns.pt,+351219999999,admin,,,no\n",
		NewKeyBundle(ana))
	if err != nil {
		t.Fatal(err)
	}
	if res != (ImportResult{Members: 2, Contacts: 2, Keys: 1}) {
		t.Errorf("result %+v", res)
	}
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Contacts) != 2 {
		t.Fatalf("%d contacts", len(snap.Contacts))
	}
	a := snap.Contacts[0]
	if a.Email != "ana@dns.pt" || a.RoleFor("pt") != directory.RoleSecurity || a.RoleFor("br") != directory.RoleAdmin {
		t.Errorf("ana: %+v", a)
	}
	if a.Key == nil || a.Key.Fingerprint != ana.Fingerprint {
		t.Errorf("ana's key: %+v", a.Key)
	}
	if snap.Contacts[1].Key != nil {
		t.Error("joão got a key")
	}
}

// A later row of a contact that differs from its first row in any detail
// of directory.ContactFields is refused, naming the column and both lines;
// nothing is written.
func TestImportRowsOfOneContactAgree(t *testing.T) {
	first := []string{"pt", "DNS.PT", "Ana Sousa", "ana@dns.pt", "+351211234567", "security", "pt", "Europe/Lisbon", "yes"}
	other := map[string]string{"name": "Ana C. Sousa", "phones": "+351217654321", "languages": "en", "timezone": "UTC", "24x7": "no"}
	for _, f := range directory.DetailFields() {
		if f.Column == "email" {
			continue // the email is what makes two rows one contact
		}
		t.Run(f.Column, func(t *testing.T) {
			v, ok := other[f.Column]
			if !ok {
				t.Fatalf("no other value for column %s in this test", f.Column)
			}
			second := append([]string(nil), first...)
			second[0], second[1], second[5] = "br", "NIC.br", "admin"
			second[slices.Index(CSVHeader, f.Column)] = v
			s := importStore(t)
			_, err := importCSV(t, s, importHeader+strings.Join(first, ",")+"\n"+strings.Join(second, ",")+"\n", nil)
			var ie *ImportError
			if !errors.As(err, &ie) || ie.Line != 3 {
				t.Fatalf("err = %v, want an ImportError for line 3", err)
			}
			want := "line 3: column " + f.Column + " for ana@dns.pt differs from line 2"
			if !strings.HasPrefix(err.Error(), want) {
				t.Errorf("err = %q, want %q…", err, want)
			}
			if snap, err := s.Snapshot(context.Background()); err != nil || len(snap.Contacts) != 0 || len(snap.Members) != 0 {
				t.Errorf("a refused import wrote %+v (%v)", snap, err)
			}
		})
	}
}

func TestImportRefusesKey(t *testing.T) {
	s := importStore(t)
	late, err := keys.Generate("Ana Sousa", "ana@dns.pt", keys.AlgoEd25519, importNow.Add(24*time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = importCSV(t, s, importHeader+"pt,DNS.PT,Ana Sousa,ana@dns.pt,+351211234567,security,,,no\n",
		NewKeyBundle(late.Public()))
	var ie *ImportError
	var ke *KeyError
	if !errors.As(err, &ie) || ie.Line != 2 || !errors.As(err, &ke) || ke.Email != "ana@dns.pt" {
		t.Fatalf("err = %v, want a KeyError for ana@dns.pt on line 2", err)
	}
}

func TestContactKey(t *testing.T) {
	pub := contactPublic(t, "Ana Sousa", "ana@dns.pt")
	k, noUID, err := ContactKey(pub, "ana@dns.pt", false, importNow)
	if err != nil || noUID {
		t.Fatalf("ContactKey: %v (noUID %v)", err, noUID)
	}
	if k.Fingerprint != pub.Fingerprint || k.Algorithm != pub.Algorithm || k.Expires != "" ||
		k.Created != pub.Created.UTC().Format(time.RFC3339) || !strings.Contains(k.Armored, "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Errorf("key %+v", k)
	}

	_, _, err = ContactKey(pub, "joao@dns.pt", false, importNow)
	var ke *KeyError
	if !errors.As(err, &ke) || !errors.Is(err, ErrNoUserID) {
		t.Fatalf("someone else's key: err = %v", err)
	}
	if want := "key " + pub.Fingerprint + ` has no user ID with joao@dns.pt (it has: "Ana Sousa <ana@dns.pt>")`; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if k, noUID, err := ContactKey(pub, "joao@dns.pt", true, importNow); err != nil || !noUID || k == nil {
		t.Errorf("with anyUID: %v, noUID %v", err, noUID)
	}

	// A key is checked at now: one made after it is refused.
	_, _, err = ContactKey(pub, "ana@dns.pt", false, importNow.Add(-48*time.Hour))
	if !errors.As(err, &ke) || errors.Is(err, ErrNoUserID) || !strings.HasPrefix(err.Error(), "key "+pub.Fingerprint+" for ana@dns.pt: ") {
		t.Errorf("a key checked before it was made: err = %v", err)
	}
}

func TestParseKeyBundle(t *testing.T) {
	armor := func(p *keys.Public) []byte {
		b, err := p.Armored()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ana, joao := contactPublic(t, "Ana Sousa", "Ana@DNS.pt"), contactPublic(t, "João", "joao@dns.pt")
	b, err := ParseKeyBundle(bytes.Join([][]byte{armor(ana), armor(joao), armor(ana)}, nil))
	if err != nil {
		t.Fatal(err)
	}
	a, errA := b.Email("ana@dns.pt")
	j, errJ := b.Email("joao@dns.pt")
	if b.Len() != 2 || errA != nil || errJ != nil || a.Fingerprint != ana.Fingerprint || j.Fingerprint != joao.Fingerprint || b.Fingerprint(strings.ToLower(ana.Fingerprint)) != a {
		t.Errorf("bundle %v", b)
	}
	if p, err := b.Email("nobody@dns.pt"); p != nil || err != nil {
		t.Errorf("nobody: %v %v", p, err)
	}
	other := contactPublic(t, "Ana again", "ana@dns.pt")
	b, err = ParseKeyBundle(bytes.Join([][]byte{armor(ana), armor(other)}, nil))
	if err != nil || b.Fingerprint(other.Fingerprint) == nil {
		t.Fatalf("two keys for one email, each found by fingerprint: %v", err)
	}
	_, err = b.Email("ana@dns.pt")
	var dup *DuplicateKeyError
	if !errors.As(err, &dup) || dup.Email != "ana@dns.pt" || dup.First != ana.Fingerprint || dup.Second != other.Fingerprint {
		t.Errorf("two keys for one email: err = %v", err)
	}
}

// A member-only row adds the member with its status and country; a key
// named by fingerprint is taken without a user ID for the email; a row
// that disagrees with a member's status is refused.
func TestImportMembersAndKeysByFingerprint(t *testing.T) {
	s := importStore(t)
	team := contactPublic(t, "Team", "team@elsewhere.example")
	h := importHeader[:len(importHeader)-1] + ",status,country,key\n"
	res, err := importCSV(t, s, h+
		"de,DENIC,,,,,,,,inactive,,\n"+
		"gp,Dot GP,,,,,,,,,FR,\n"+
		"pt,DNS.PT,NOC,noc@dns.pt,+351211234567,admin,,,no,,,"+strings.ToLower(team.Fingerprint)+"\n",
		NewKeyBundle(team))
	if err != nil {
		t.Fatal(err)
	}
	if res != (ImportResult{Members: 3, Contacts: 1, Keys: 1, KeysNoUID: 1}) {
		t.Errorf("result %+v", res)
	}
	snap, err := s.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, m := range snap.Members {
		got[m.TLD] = m.Status + " " + m.Country
	}
	if got["de"] != "inactive DE" || got["gp"] != "active FR" || got["pt"] != "active PT" {
		t.Errorf("members %v", got)
	}
	if len(snap.Contacts) != 1 || snap.Contacts[0].Key == nil || snap.Contacts[0].Key.Fingerprint != team.Fingerprint {
		t.Errorf("contacts %+v", snap.Contacts)
	}
	_, err = importCSV(t, s, h+"de,DENIC,,,,,,,,active,,\n", nil)
	var ie *ImportError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), `status "active" differs from "inactive"`) {
		t.Errorf("status conflict: %v", err)
	}
}

// ExportRows gives Import what a JSON export holds, each row named by
// its place in the document.
func TestExportRows(t *testing.T) {
	e := NewExport(testSnapshot())
	e.Members = append(e.Members, ExportMember{TLD: "es", Org: "Red.es", Status: "inactive", Country: "ES", Contacts: []ExportContact{}})
	rows := ExportRows(e)
	last := rows[len(rows)-1]
	if !last.MemberOnly() || last.Status != "inactive" || last.Where != "members["+strconv.Itoa(len(e.Members)-1)+"] (es)" {
		t.Errorf("member-only row %+v", last)
	}
	if rows[0].Where != "members[0].contacts[0] ("+rows[0].Email+")" || rows[0].MemberOnly() {
		t.Errorf("first row %+v", rows[0])
	}
}
