package relay_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/relay"
)

var (
	benchKeysOnce sync.Once
	benchKeyList  []directory.Key
	benchPubs     []*keys.Public
)

// benchMembers returns n Ed25519/Cv25519 keys, generated once per process
// from a seeded ChaCha8 (the same on every run).
func benchMembers(b *testing.B, n int) ([]directory.Key, []*keys.Public) {
	benchKeysOnce.Do(func() {
		rng := rand.NewChaCha8([32]byte{'r', 'e', 'l', 'a', 'y'})
		for i := range n {
			sec, err := keys.Generate(fmt.Sprintf("Member %d", i), benchEmail(i), keys.AlgoEd25519, keystest.SecretTime, rng)
			if err != nil {
				b.Fatal(err)
			}
			pub := sec.Public()
			armored, err := pub.Armored()
			if err != nil {
				b.Fatal(err)
			}
			benchKeyList = append(benchKeyList, directory.Key{Fingerprint: pub.Fingerprint, Algorithm: pub.Algorithm,
				Created: pub.Created.UTC().Format(time.RFC3339), Armored: string(armored)})
			benchPubs = append(benchPubs, pub)
		}
	})
	return benchKeyList, benchPubs
}

func benchTLDs() []string {
	var out []string
	for _, t := range directory.CCTLDs() {
		if !t.IsIDN() && !t.Dormant && len(out) < 250 {
			out = append(out, t.Code)
		}
	}
	return out
}

func benchEmail(i int) string { return fmt.Sprintf("security%05d@nic-%d.example", i, i%250) }

// BenchmarkRelay1000: one alert with a 100 KB attachment to 1,000
// members (250 ccTLDs, four contacts each, Ed25519 keys), from Handle to
// every copy queued and delivered over SMTP (4 connections) to the
// loopback sink. The inbound checks of the post are not timed.
func BenchmarkRelay1000(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	ks, pubs := benchMembers(b, n)
	dir := keystest.NewSecret(b, dirName, dirAddr)
	pubArmored, err := dir.Public().Armored()
	if err != nil {
		b.Fatal(err)
	}
	info := directory.Info{Name: dirName, Address: dirAddr, ListAddress: listAddr, KeyFingerprint: dir.Fingerprint(), PublicKey: string(pubArmored)}
	store, err := directory.Create(ctx, filepath.Join(b.TempDir(), "ccdir.db"), info, directory.Options{Signer: dir, MaxSecurityContacts: 10})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	tlds := benchTLDs()
	_, err = store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		for _, t := range tlds {
			if _, err := tx.AddMember(directory.Member{TLD: t, Org: "Registry of ." + t}); err != nil {
				return err
			}
		}
		for i := range n {
			k := ks[i]
			if _, err := tx.AddContact(directory.Contact{Email: benchEmail(i), Name: fmt.Sprintf("Member %d", i),
				Phones: []directory.Phone{{Number: fmt.Sprintf("+35121%07d", 1000000+i)}},
				Roles:  []directory.Role{{TLD: tlds[i%len(tlds)], Role: directory.RoleSecurity}}, Key: &k}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ob, err := outbox.Open(ctx, store.DB())
	if err != nil {
		b.Fatal(err)
	}
	if err := inbound.InitSchema(ctx, store.DB()); err != nil {
		b.Fatal(err)
	}
	srv := smtptest.NewServer(b, smtptest.Options{})
	tr, err := outbox.NewTransport(srv.URL, outbox.TransportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := &relay.Relay{Store: store, Secret: dir, Outbox: ob, Config: relay.Config{Tag: "[TLD-OPS]"}}
	att := make([]byte, 100<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range att {
		att[i] = byte(rng.UintN(256))
	}
	var queueTime, deliverTime time.Duration
	var bytesOut int64
	b.ResetTimer()
	for i := range b.N {
		seen := sha256.Sum256(fmt.Appendf(nil, "bench post %d %d", i, time.Now().UnixNano()))
		a := &inbound.Accepted{
			Contact: directory.Contact{Email: benchEmail(0)}, Key: pubs[0], SignedAt: time.Now().Add(-time.Minute),
			Text:        "DIRECTORY " + listAddr + "\nTLP:AMBER\n\nA DDoS on the DNS of many ccTLDs. Indicators attached.\n",
			Attachments: []pgpmime.Part{{ContentType: "application/octet-stream", Filename: "pcap.bin", Body: att}},
			Encrypted:   true, Form: inbound.FormInlineEncrypted, Subject: "DDoS", Seen: hex.EncodeToString(seen[:]), To: listAddr,
		}
		start := time.Now()
		res, err := r.Handle(ctx, a)
		if err != nil {
			b.Fatal(err)
		}
		queued := time.Now()
		sum, err := ob.Deliver(ctx, tr, outbox.Filter{Kind: relay.Kind, Ref: res.Alert}, outbox.DeliverOptions{Connections: 4})
		if err != nil {
			b.Fatal(err)
		}
		queueTime += queued.Sub(start)
		deliverTime += time.Since(queued)
		if res.Queued != n || sum.Sent != n {
			b.Fatalf("queued %d, sent %d, skipped %v", res.Queued, sum.Sent, res.Skipped)
		}
	}
	b.StopTimer()
	for _, m := range srv.Messages() {
		bytesOut += int64(m.Size)
	}
	b.ReportMetric(queueTime.Seconds()/float64(b.N), "queue-s/op")
	b.ReportMetric(deliverTime.Seconds()/float64(b.N), "deliver-s/op")
	b.ReportMetric(float64(bytesOut)/float64(b.N)/1e6, "mail-MB/op")
}
