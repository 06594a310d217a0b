package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/packet"
	openpgp "github.com/ProtonMail/go-crypto/openpgp/v2"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/relay"
)

// The inbound corpus was made against a directory of fixed keys and a
// fixed clock (pkg/inbound/world_test.go); it is rebuilt here the same way.
var corpusNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func corpusKey(t *testing.T, name, email string, created time.Time, lifetime time.Duration) []byte {
	t.Helper()
	cfg := &packet.Config{
		Rand:            rand.NewChaCha8(sha256.Sum256([]byte("ccdir inbound test\x00key " + email))),
		Time:            func() time.Time { return created },
		Algorithm:       packet.PubKeyAlgoEdDSA,
		Curve:           packet.Curve25519,
		DefaultHash:     crypto.SHA256,
		KeyLifetimeSecs: uint32(lifetime / time.Second),
	}
	e, err := openpgp.NewEntity(name, "", email, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := e.Serialize(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Hostile and broken mail from the inbound corpus, sent to the list
// address, is never relayed: inbound refuses or drops it, or (signed for
// the command address) the relay refuses it. Nothing is queued as a list
// copy.
func TestCorpusNeverRelayed(t *testing.T) {
	ctx := context.Background()
	dir := keystest.NewSecret(t, dirName, dirAddr)
	pubArmored, err := dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	info := directory.Info{Name: dirName, Address: dirAddr, ListAddress: listAddr, KeyFingerprint: dir.Fingerprint(), PublicKey: string(pubArmored)}
	store, err := directory.Create(ctx, filepath.Join(t.TempDir(), "ccdir.db"), info,
		directory.Options{Signer: dir, Now: func() time.Time { return corpusNow.Add(-7 * 24 * time.Hour) }, MaxSecurityContacts: 10, Migrations: slices.Concat(outbox.Migrations, inbound.Migrations, relay.Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	created := time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC)
	_, err = store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		for _, m := range []directory.Member{{TLD: "pt", Org: "Associacao DNS.PT"}, {TLD: "de", Org: "DENIC eG"}, {TLD: "cn", Org: "CNNIC", Status: directory.StatusInactive}} {
			if _, err := tx.AddMember(m); err != nil {
				return err
			}
		}
		for _, c := range []struct {
			name, email, tld, role, phone string
			created                       time.Time
			life                          time.Duration
		}{
			{"Ana Sousa", "ana@dns.pt", "pt", directory.RoleSecurity, "+351211234567", created, 0},
			{"Bruno Costa", "bruno@dns.pt", "pt", directory.RoleAdmin, "+351217654321", created, 0},
			{"Eva Schmidt", "eva@nic.de", "de", directory.RoleSecurity, "+4969123456789", corpusNow.Add(-30 * 24 * time.Hour), 29 * 24 * time.Hour},
			{"Li Wei", "li@cnnic.cn", "cn", directory.RoleSecurity, "+861058813000", created, 0},
		} {
			pub, err := keys.ParsePublicOne(corpusKey(t, c.name, c.email, c.created, c.life))
			if err != nil {
				return err
			}
			a, err := pub.Armored()
			if err != nil {
				return err
			}
			k := &directory.Key{Fingerprint: pub.Fingerprint, Algorithm: pub.Algorithm, Created: pub.Created.UTC().Format(time.RFC3339), Armored: string(a)}
			if !pub.Expires.IsZero() {
				k.Expires = pub.Expires.UTC().Format(time.RFC3339)
			}
			if _, err := tx.AddContact(directory.Contact{Email: c.email, Name: c.name, Phones: []directory.Phone{{Number: c.phone}},
				Roles: []directory.Role{{TLD: c.tld, Role: c.role}}, Key: k}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ob, err := outbox.Open(ctx, store.DB())
	if err != nil {
		t.Fatal(err)
	}
	ob.Key = outbox.NewKey()
	clock := func() time.Time { return corpusNow }
	p := &inbound.Pipeline{Store: store, Secret: dir, Now: clock, Config: inbound.Config{Addresses: []string{dirAddr, listAddr}}}
	r := &relay.Relay{Store: store, Secret: dir, Outbox: ob, Now: clock}

	files, err := filepath.Glob("../inbound/testdata/corpus/*.eml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files (%v)", err)
	}
	relayed := 0
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".eml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := textproto.NewReader(bufio.NewReader(bytes.NewReader(data))).ReadMIMEHeader()
			if n := h.Get("X-Corpus-Pad-To"); n != "" {
				for len(data) < 12<<20 {
					data = append(data, strings.Repeat("x", 76)+"\r\n"...)
				}
			}
			from := strings.Trim(h.Get("Return-Path"), "<> ")
			env := inbound.Envelope{From: from, To: []string{listAddr}}
			handle := func() (*relay.Result, error) {
				a, err := p.Process(ctx, env, bytes.NewReader(data))
				if err != nil {
					return nil, err
				}
				return r.Handle(ctx, a)
			}
			res, err := handle()
			if h.Get("X-Corpus-Setup") == "seen" && err == nil {
				res, err = handle() // the replay
			}
			var ref *inbound.Refusal
			switch {
			case errors.As(err, &ref), errors.Is(err, inbound.ErrReplay):
				if h.Get("X-Corpus-Expect") == "accept" {
					t.Logf("refused by inbound: %v", err)
				}
			case err != nil:
				t.Fatalf("error: %v", err)
			case res.Alert != "":
				relayed++
				t.Errorf("relayed as alert %s: %+v", res.Alert, res)
			default:
				t.Logf("not relayed: %s", res.Refused)
			}
		})
	}
	var n int
	if err := store.DB().QueryRow(`SELECT count(*) FROM outbox WHERE kind = ?`, relay.Kind).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d list copies queued (%v)", n, err)
	}
}
