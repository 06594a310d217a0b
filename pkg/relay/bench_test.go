package relay_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"

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
	benchAuthor   *keys.Secret // member 0's secret key, for posting
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
			if i == 0 {
				benchAuthor = sec
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
// members (250 ccTLDs, four contacts each, Ed25519 keys), from the post as
// it arrives (a PGP/MIME mail signed by a member and encrypted to the
// directory key, read by the inbound pipeline: decrypted, verified,
// checked against the directory and the replay table) to every copy
// queued and delivered over SMTP (the default 8 connections) to go-smtp's sink on
// 127.0.0.1. Making the post (the author's work) is not timed.
func BenchmarkRelay1000(b *testing.B) {
	const n = 1000
	ctx := context.Background()
	ks, _ := benchMembers(b, n)
	dir := keystest.NewSecret(b, dirName, dirAddr)
	pubArmored, err := dir.Public().Armored()
	if err != nil {
		b.Fatal(err)
	}
	info := directory.Info{Name: dirName, Address: dirAddr, ListAddress: listAddr, KeyFingerprint: dir.Fingerprint(), PublicKey: string(pubArmored)}
	store, err := directory.Create(ctx, filepath.Join(b.TempDir(), "ccdir.db"), info, directory.Options{Signer: dir, MaxSecurityContacts: 10, Migrations: slices.Concat(outbox.Migrations, inbound.Migrations, relay.Migrations)})
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
	ob.Key = outbox.NewKey()
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
	p := &inbound.Pipeline{Store: store, Secret: dir, Config: inbound.Config{Addresses: []string{dirAddr, listAddr}}}
	var queueTime, deliverTime time.Duration
	var bytesOut int64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		post := benchPost(b, dir, i, att)
		b.StartTimer()
		start := time.Now()
		a, err := p.Process(ctx, inbound.Envelope{From: benchEmail(0), To: []string{listAddr}}, bytes.NewReader(post))
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.Handle(ctx, a)
		if err != nil {
			b.Fatal(err)
		}
		queued := time.Now()
		sum, err := ob.Deliver(ctx, tr, outbox.Filter{Kind: relay.Kind, Ref: res.Alert}, outbox.DeliverOptions{})
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

// benchPost is post number i from member 0 to the list, as their mail
// client would send it: the text and the attachment, signed and encrypted
// to the directory key in one OpenPGP message (RFC 3156 §6.2), in a
// PGP/MIME mail.
func benchPost(b *testing.B, dir *keys.Secret, i int, att []byte) []byte {
	from := mail.Address{Name: "Member 0", Address: benchEmail(0)}
	to := mail.Address{Address: listAddr}
	now := time.Now().Add(-time.Second)
	text := fmt.Sprintf("TLP:AMBER\n\nA DDoS on the DNS of many ccTLDs (report %d). Indicators attached.\n", i)
	inner, err := pgpmime.BuildInner(pgpmime.Protected{From: from, To: []mail.Address{to}, Subject: "DDoS", Date: now,
		MessageID: fmt.Sprintf("bench-%d-%d@nic-0.example", i, now.UnixNano())},
		[]pgpmime.Part{{ContentType: "text/plain", Body: []byte(text)},
			{ContentType: "application/octet-stream", Filename: "pcap.bin", Body: att}})
	if err != nil {
		b.Fatal(err)
	}
	var asc, msg bytes.Buffer
	if err := pgpmime.SignEncrypt(&asc, inner, benchAuthor, dir.Public()); err != nil {
		b.Fatal(err)
	}
	if err := pgpmime.BuildEncrypted(&msg, pgpmime.Outer{From: from, To: to, Subject: "...", Date: now,
		MessageID: fmt.Sprintf("outer-%d-%d@nic-0.example", i, now.UnixNano())}, asc.Bytes()); err != nil {
		b.Fatal(err)
	}
	return msg.Bytes()
}
