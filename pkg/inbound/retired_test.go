package inbound

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// ledgerKey is what cmd/ccdir gives directory.Options.KeyVerifier.
func ledgerKey(armored string, at time.Time) (string, directory.VerifyFunc, error) {
	p, err := keys.ParsePublicOneAt([]byte(armored), at)
	if err != nil {
		return "", nil, err
	}
	v, err := p.NewVerifier(at)
	if err != nil {
		return "", nil, err
	}
	return p.Fingerprint, v.Verify, nil
}

// After a rekey, mail encrypted to the directory's earlier key is
// decrypted during its overlap, and refused after it, or at once when the
// rekey revoked it, saying which key and why.
func TestRetiredKeyDecrypts(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	old := w.dir
	// Made before the rekey entry (the store's clock: a week before
	// corpusNow): a replay reads the new key as it stood then.
	next, err := keys.Successor(old, keys.KeySpec{Now: corpusNow.Add(-8 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	armored, err := next.Public().ArmoredWith(old.Public())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		return tx.Rekey(next, directory.RekeyPayload{OldFingerprint: old.Fingerprint(), NewFingerprint: next.Fingerprint(), PublicKey: string(armored)})
	}); err != nil {
		t.Fatal(err)
	}
	s, err := directory.Open(ctx, w.store.Path(), directory.Options{Signer: next, Now: func() time.Time { return corpusNow }, MaxSecurityContacts: 10,
		Migrations: Migrations, KeyVerifier: ledgerKey, SplitSignatures: keys.SplitSignatures})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	replaced := corpusNow.Add(-24 * time.Hour)
	at := corpusNow.Add(-time.Hour)
	// The old key as the ledger gives it, with an expiry of its own.
	reexpired := func(until time.Time) *keys.Public {
		p, err := keys.ParsePublicOne(keystest.Reexpire(t, old, replaced.Add(-time.Hour), until, time.Time{}))
		if err != nil || !p.Expires.Equal(until.Truncate(time.Second)) {
			t.Fatalf("reexpired: %v %v", p, err)
		}
		return p
	}
	expired, expiresLater := reexpired(corpusNow.Add(-time.Minute)), reexpired(corpusNow.Add(time.Hour))
	mail := func(label string) []byte {
		// w.encrypted encrypts to w.dir: the old key.
		return textMail(headers("ana@dns.pt", label), w.encrypted(w.ana, []byte(cmds), at, label))
	}
	for _, tc := range []struct {
		name    string
		retired RetiredKey
		want    string // "" accepted
	}{
		{"during the overlap", RetiredKey{Public: old.Public(), Secret: old, Replaced: replaced, Until: corpusNow.Add(time.Hour)}, ""},
		{"after the overlap", RetiredKey{Public: old.Public(), Secret: old, Replaced: replaced, Until: corpusNow.Add(-time.Minute)},
			"the message is encrypted to the directory's earlier key " + old.Fingerprint() + ", replaced on 2025-05-31; mail to it was accepted until 2025-06-01: encrypt to the directory's key " + next.Fingerprint()},
		{"revoked", RetiredKey{Public: old.Public(), Secret: old, Replaced: replaced, Until: corpusNow.Add(time.Hour), Revoked: true, Reason: "stolen"},
			"the message is encrypted to the directory's earlier key " + old.Fingerprint() + ", revoked on 2025-05-31 (stolen), which no longer opens mail to the directory"},
		{"past its own expiry", RetiredKey{Public: expired, Secret: old, Replaced: replaced, Until: corpusNow.Add(time.Hour)},
			"the message is encrypted to the directory's earlier key " + old.Fingerprint() + ", replaced on 2025-05-31, which expired on 2025-06-01 and no longer opens mail to the directory: encrypt to the directory's key " + next.Fingerprint()},
		{"before its own expiry", RetiredKey{Public: expiresLater, Secret: old, Replaced: replaced, Until: corpusNow.Add(time.Hour)}, ""},
		{"no secret key", RetiredKey{Public: old.Public(), Replaced: replaced, Until: corpusNow.Add(time.Hour)},
			"whose secret key is not at hand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Pipeline{Store: s, Secret: next, Config: w.p.Config, Now: w.p.Now, Retired: []RetiredKey{tc.retired}}
			data := mail(strings.ReplaceAll(tc.name, " ", "-"))
			acc, err := p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
			if tc.want == "" {
				if err != nil || !acc.Encrypted || acc.Contact.Email != "ana@dns.pt" {
					t.Fatalf("Process: %v %+v", err, acc)
				}
				return
			}
			var ref *Refusal
			if !errors.As(err, &ref) || !strings.Contains(ref.Reason, tc.want) {
				t.Fatalf("Process: %v, want a refusal %q", err, tc.want)
			}
		})
	}
	// Without the earlier key, the plain refusal.
	p := &Pipeline{Store: s, Secret: next, Config: w.p.Config, Now: w.p.Now}
	data := mail("unknown")
	_, err = p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
	var ref *Refusal
	if !errors.As(err, &ref) || !strings.Contains(ref.Reason, "not encrypted to the directory's key") {
		t.Fatalf("Process without the earlier key: %v", err)
	}
}
