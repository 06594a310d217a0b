package digest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/internal/benchmem"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
)

// The digest benchmark: one `ccdir digest send` (Job.Send: record the
// digest, encrypt and queue one message per recipient, deliver them over
// SMTP with the default 8 connections to the loopback sink) to 1,000 and 10,000
// contacts of about 250 ccTLDs, each with an Ed25519/Cv25519 key of their
// own.
//
// Every recipient is a contact, and a digest lists every contact, so the
// body grows with the number of recipients: 1,000 contacts make a body of
// roughly 100 KB, 10,000 contacts roughly ten times that, and the total
// work grows as recipients × body. Two configurations are measured:
//
//	attach=none     digest.attach = none (Config.Attach = []string{}): the
//	                text body only; 1,000 and 10,000 recipients
//	attach=default  vcard, json, keys attached; 1,000 recipients only (at
//	                10,000 the key bundle alone is ~10 MB per message)
//
// Run each size in its own process (scripts/bench/digest.sh does), so that
// the process-wide peak RSS belongs to that size alone:
//
//	go test -run '^$' -bench 'DigestSend/recipients=10000/attach=none' -benchtime 1x ./pkg/digest
//
// Metrics: s/op and msgs/s (end to end), mail-MB/op (bytes delivered),
// alloc-MB/op (Go allocations during Send), peak-heap-MB (live Go heap,
// sampled every 2 ms during Send), peak-rss-MB (VmHWM during Send: the
// high-water mark is reset after the fixture is built, where the kernel
// allows it; otherwise it is the process-wide peak and says so in the log),
// body-KB (the text body of the digest), queue-s (recording the digest,
// signing, encrypting and queueing every message: until the last queue
// progress event) and deliver-s (the rest: SMTP delivery).
//
// Fixture generation (keys, the directory database) is not timed. The keys
// are cached under os.TempDir() as ccdir-bench-keys-N-v1.json.
//
// With CCDIR_BENCH_BODY_DIR set, the benchmark also writes the digest's
// text (as `ccdir digest preview` shows it) and the directory's public key
// to that folder, for scripts/bench/gpg-baseline.sh.
func BenchmarkDigestSend(b *testing.B) {
	for _, tc := range []struct {
		n      int
		attach []string
		name   string
	}{
		{1000, []string{}, "none"},
		{10000, []string{}, "none"},
		{1000, nil, "default"},
	} {
		b.Run(fmt.Sprintf("recipients=%d/attach=%s", tc.n, tc.name), func(b *testing.B) {
			benchSend(b, tc.n, tc.attach)
		})
	}
}

// benchKeyTime dates the recipients' keys, so that the cached keys are the
// same from run to run. The keys never expire.
var benchKeyTime = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

func benchSend(b *testing.B, n int, attach []string) {
	dir := b.TempDir()
	fx := newBenchFixture(b, n, filepath.Join(dir, "template.db"))
	benchMeasure(b, n, fx, attach, func(ctx context.Context, job *Job) (*Result, error) {
		return job.Send(ctx, SendOptions{})
	})
}

// BenchmarkDigestFanout is the speed target: one digest of a
// directory the size of TLD-OPS (250 ccTLDs, three security contacts
// each: 750 contacts with keys, a text body of about 290 KB) built,
// signed, encrypted and delivered to 1,000 and to 10,000 recipients, each
// with an Ed25519/Cv25519 key of their own, over SMTP (8 connections) to
// the loopback sink.
//
// BenchmarkDigestSend cannot show this: there every recipient is a
// contact and every contact is in the body, so 10,000 recipients means a
// body of 3.6 MB sent 10,000 times (tens of GB on the wire). Here the
// payload is fixed and only the recipients grow, as in the dependency
// notes' measurement of the crypto floor (§8).
//
// It runs Job's own code from content to delivery: the digest is rendered
// and its attachments built (content), every recipient's key is parsed and
// checked once (keyring), the entity is signed and sealed once and one copy
// made per recipient (queuer, through fanout.Queue in batches of
// queueBatch), queued, and
// delivered by Outbox.Deliver. Only recording the recipient list
// (Job.record, one row per contact) is left out, because the recipients
// are not the directory's contacts: the first 750 are, the rest are made
// alike (benchContact) with keys of their own.
func BenchmarkDigestFanout(b *testing.B) {
	for _, tc := range []struct {
		n      int
		attach []string
		name   string
	}{
		{1000, []string{}, "none"},
		{10000, []string{}, "none"},
		{1000, nil, "default"},
		{10000, nil, "default"},
	} {
		b.Run(fmt.Sprintf("recipients=%d/attach=%s", tc.n, tc.name), func(b *testing.B) {
			benchFanout(b, tc.n, tc.attach)
		})
	}
}

// benchDirectorySize is the payload directory of BenchmarkDigestFanout:
// three security contacts for each of the 250 ccTLDs.
const benchDirectorySize = 750

func benchFanout(b *testing.B, n int, attach []string) {
	dir := b.TempDir()
	fx := newBenchFixture(b, benchDirectorySize, filepath.Join(dir, "template.db"))
	tlds := benchTLDs()
	ks := benchKeys(b, n, tlds) // the first 750 are the directory's
	r := rand.New(rand.NewChaCha8([32]byte{'k', 'e', 'y', 's'}))
	contacts := make([]directory.Contact, n)
	for i := range contacts {
		contacts[i] = benchContact(i, tlds, r)
		contacts[i].Key = &ks[i]
	}
	benchMeasure(b, n, fx, attach, func(ctx context.Context, job *Job) (*Result, error) {
		cfg := job.defaults()
		snap, _, err := job.checked(ctx)
		if err != nil {
			return nil, err
		}
		now := job.now()
		kr := newKeyring(now)
		c, err := job.content(ctx, cfg, snap, nil, now, kr)
		if err != nil {
			return nil, err
		}
		kr.add(contacts)
		rcpts := make([]recipient, len(contacts))
		for i := range contacts {
			key, err := kr.recipient(&contacts[i])
			if err != nil {
				return nil, err
			}
			rcpts[i] = recipient{contact: contacts[i], key: key}
		}
		const id = 1
		q := &queuer{j: job, cfg: cfg, c: c, id: id, now: now, signed: map[string]*signedEntity{}, total: len(rcpts)}
		res := &Result{Digest: id, Serial: snap.Head.Serial, Recipients: len(rcpts)}
		if err := q.run(ctx, rcpts, res); err != nil {
			return nil, err
		}
		sum, err := job.Outbox.Deliver(ctx, job.Transport, outbox.Filter{Kind: Kind, Ref: strconv.Itoa(id)},
			job.Delivery)
		res.Sent, res.Deferred, res.Failed = sum.Sent, sum.Deferred, sum.Failed
		return res, err
	})
}

// benchMeasure times send (a digest to n recipients, on a fresh copy of
// fx's database each time) and reports the benchmark's metrics.
func benchMeasure(b *testing.B, n int, fx *benchFixture, attach []string, send func(context.Context, *Job) (*Result, error)) {
	ctx := context.Background()
	dir := b.TempDir()
	srv := smtptest.NewServer(b, smtptest.Options{})
	tr, err := outbox.NewTransport(srv.URL, outbox.TransportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if out := os.Getenv("CCDIR_BENCH_BODY_DIR"); out != "" {
		fx.writeBody(b, ctx, out, attach)
	}

	var (
		elapsed    time.Duration
		peakHeapB  uint64
		peakRSS    int64
		rssReset   bool
		allocBytes uint64
		mailBytes  int64
		iter       int
		queueTime  time.Duration // record + first signed entity + encrypt and queue all
		firstBatch time.Duration // record + content + first batch of 128
	)
	for b.Loop() {
		b.StopTimer()
		path := filepath.Join(dir, fmt.Sprintf("run%d.db", iter))
		iter++
		benchCopyFile(b, fx.template, path)
		store, err := directory.Open(ctx, path, directory.Options{Signer: fx.dirKey, Migrations: slices.Concat(outbox.Migrations, Migrations, liveness.Migrations)})
		if err != nil {
			b.Fatal(err)
		}
		ob, err := outbox.Open(ctx, store.DB())
		if err != nil {
			b.Fatal(err)
		}
		ob.Key = outbox.NewKey()
		job := &Job{
			Store: store, Secret: fx.dirKey, Outbox: ob, Transport: tr,
			Config:   Config{Attach: attach},
			Delivery: outbox.DeliverOptions{Connections: benchConnections()},
		}
		var mu sync.Mutex
		var firstQ, lastQ time.Time
		job.Progress = func(p Progress) {
			if p.Phase != "queue" {
				return
			}
			mu.Lock()
			if firstQ.IsZero() {
				firstQ = time.Now()
			}
			lastQ = time.Now()
			mu.Unlock()
		}
		before := srv.Received()
		runtime.GC()
		debug.FreeOSMemory()
		reset := benchmem.ResetHWM()
		var ms0, ms1 runtime.MemStats
		runtime.ReadMemStats(&ms0)
		var res *Result
		b.StartTimer()

		start := time.Now()
		ph := benchmem.PeakHeap(func() {
			res, err = send(ctx, job)
		})
		elapsed += time.Since(start)

		b.StopTimer()
		queueTime += lastQ.Sub(start)
		firstBatch += firstQ.Sub(start)
		runtime.ReadMemStats(&ms1)
		if err != nil {
			b.Fatalf("Send: %v", err)
		}
		if res.Sent != n || res.Queued != n || res.Failed != 0 || res.Deferred != 0 || len(res.Skipped) != 0 {
			b.Fatalf("Send = %+v, want %d sent", res, n)
		}
		if got := srv.Received() - before; got != n {
			b.Fatalf("the sink received %d messages, want %d", got, n)
		}
		rss := max(0, benchmem.VmHWM())
		if rss > peakRSS {
			peakRSS = rss
		}
		rssReset = reset
		peakHeapB = max(peakHeapB, ph)
		allocBytes += ms1.TotalAlloc - ms0.TotalAlloc
		if err := store.Close(); err != nil {
			b.Fatal(err)
		}
		os.Remove(path)
		os.Remove(path + "-wal")
		os.Remove(path + "-shm")
		b.StartTimer()
	}
	for _, m := range srv.Messages() {
		mailBytes += int64(m.Size)
	}
	runs := float64(iter)
	b.ReportMetric(elapsed.Seconds()/runs, "s/op")
	b.ReportMetric(float64(n)*runs/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(mailBytes)/runs/1e6, "mail-MB/op")
	b.ReportMetric(float64(allocBytes)/runs/1e6, "alloc-MB/op")
	b.ReportMetric(float64(peakHeapB)/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(peakRSS)/(1<<10), "peak-rss-MB")
	b.ReportMetric(float64(fx.bodyBytes)/1e3, "body-KB")
	b.ReportMetric(queueTime.Seconds()/runs, "queue-s")
	b.ReportMetric((elapsed-queueTime).Seconds()/runs, "deliver-s")
	if !rssReset {
		b.Logf("could not reset VmHWM: peak-rss-MB is the process-wide peak, fixture included")
	}
	b.Logf("phases: record+content+first batch %.2f s, record+queue %.2f s, deliver %.2f s",
		firstBatch.Seconds()/runs, queueTime.Seconds()/runs, (elapsed-queueTime).Seconds()/runs)
	b.Logf("%d recipients: %.2f s, %.0f msgs/s, %.1f KB/message, body %.1f KB, peak RSS %.0f MB, peak heap %.0f MB, fixture RSS %.0f MB",
		n, elapsed.Seconds()/runs, float64(n)*runs/elapsed.Seconds(), float64(mailBytes)/runs/float64(n)/1e3,
		float64(fx.bodyBytes)/1e3, float64(peakRSS)/(1<<10), float64(peakHeapB)/(1<<20), float64(fx.rssKB)/(1<<10))
}

// benchFixture is a directory database with n contacts, closed, to be
// copied for each run.
type benchFixture struct {
	n         int
	template  string
	dirKey    *keys.Secret
	bodyBytes int   // size of the text body (the operator's preview)
	rssKB     int64 // VmHWM after building the fixture
}

// benchTLDs are the first 250 delegated ASCII ccTLDs.
func benchTLDs() []directory.CCTLD {
	var out []directory.CCTLD
	for _, t := range directory.CCTLDs() {
		if !t.IsIDN() && !t.Dormant && len(out) < 250 {
			out = append(out, t)
		}
	}
	return out
}

var (
	benchFirstNames = []string{"Ana", "João", "Maria", "Pedro", "Sofia", "Li", "Wei", "Fatima", "Omar", "Olga",
		"Dmitry", "Yuki", "Hiroshi", "Carlos", "Lucía", "Jan", "Eva", "Kwame", "Amina", "Priya", "Rahul",
		"Søren", "Zoë", "Émile", "Chidi", "Nguyễn", "Ahmed", "Layla", "Tomás", "Ingrid"}
	benchLastNames = []string{"Sousa", "Gonçalves", "Silva", "Costa", "Wang", "Zhang", "Al-Farouq", "Ivanova",
		"Petrov", "Tanaka", "Sato", "García", "Fernández", "de Vries", "Novák", "Mensah", "Okafor", "Sharma",
		"Patel", "Jørgensen", "Müller", "Dubois", "Haddad", "Nakamura", "Kowalski", "Andersson", "O'Brien"}
	benchTeamNames = []string{"Security Team", "CERT", "NOC", "Incident Response", "Operations"}
	benchTimeZones = []string{"Europe/Lisbon", "Europe/Berlin", "America/Sao_Paulo", "Asia/Tokyo", "Asia/Shanghai",
		"Africa/Nairobi", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC", "Europe/Moscow"}
	benchLanguageSets = [][]string{{"en"}, {"en", "pt"}, {"en", "fr"}, {"es", "en"}, {"zh", "en"}, {"ar", "fr", "en"},
		{"ru", "en"}, {"ja", "en"}, {"de", "en"}}
)

// benchContact is the i-th contact of the fixture, without its key.
func benchContact(i int, tlds []directory.CCTLD, r *rand.Rand) directory.Contact {
	t := tlds[i%len(tlds)]
	role := directory.RoleSecurity
	if i/len(tlds) >= directory.DefaultMaxSecurityContacts {
		role = directory.RoleAdmin
	}
	var name string
	if i%5 == 4 {
		name = fmt.Sprintf("%s %s", strings.ToUpper(t.Code), benchTeamNames[r.IntN(len(benchTeamNames))])
	} else {
		name = benchFirstNames[r.IntN(len(benchFirstNames))] + " " + benchLastNames[r.IntN(len(benchLastNames))]
	}
	phones := []directory.Phone{{Number: fmt.Sprintf("+35121%07d", 1000000+i), Emergency: role == directory.RoleSecurity}}
	if i%3 == 0 {
		phones = append(phones, directory.Phone{Number: fmt.Sprintf("+35191%07d", 1000000+i)})
	}
	return directory.Contact{
		Email:     fmt.Sprintf("%s%05d@nic.%s", []string{"security", "cert", "noc", "admin"}[i%4], i, t.Code),
		Name:      name,
		Phones:    phones,
		Roles:     []directory.Role{{TLD: t.Code, Role: role}},
		Languages: benchLanguageSets[r.IntN(len(benchLanguageSets))],
		TimeZone:  benchTimeZones[r.IntN(len(benchTimeZones))],
		Always:    i%2 == 0,
	}
}

// benchKeys returns n contact keys as the directory stores them, from the
// cache file under os.TempDir() or generated (Ed25519/Cv25519, from a
// seeded ChaCha8, so the same every time) and cached.
func benchKeys(b *testing.B, n int, tlds []directory.CCTLD) []directory.Key {
	cache := filepath.Join(os.TempDir(), fmt.Sprintf("ccdir-bench-keys-%d-v1.json", n))
	if data, err := os.ReadFile(cache); err == nil {
		var ks []directory.Key
		if json.Unmarshal(data, &ks) == nil && len(ks) == n {
			return ks
		}
	}
	start := time.Now()
	ks := make([]directory.Key, n)
	r := rand.New(rand.NewChaCha8([32]byte{'k', 'e', 'y', 's'}))
	rng := rand.NewChaCha8([32]byte{'c', 'c', 'd', 'i', 'r'})
	for i := range ks {
		c := benchContact(i, tlds, r)
		sec, err := keys.Generate(c.Name, c.Email, keys.AlgoEd25519, benchKeyTime, rng)
		if err != nil {
			b.Fatal(err)
		}
		pub := sec.Public()
		armored, err := pub.Armored()
		if err != nil {
			b.Fatal(err)
		}
		ks[i] = directory.Key{
			Fingerprint: pub.Fingerprint,
			Algorithm:   pub.Algorithm,
			Created:     pub.Created.UTC().Format(time.RFC3339),
			Armored:     string(armored),
		}
	}
	b.Logf("generated %d keys in %v", n, time.Since(start).Round(time.Millisecond))
	data, err := json.Marshal(ks)
	if err != nil {
		b.Fatal(err)
	}
	tmp := cache + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, data, 0o600); err == nil {
		os.Rename(tmp, cache)
	}
	return ks
}

// newBenchFixture builds the directory: 250 ccTLDs, n contacts with their
// keys (three security contacts per ccTLD, the rest admins), in a closed
// database file at path.
func newBenchFixture(b *testing.B, n int, path string) *benchFixture {
	b.Helper()
	ctx := context.Background()
	start := time.Now()
	tlds := benchTLDs()
	ks := benchKeys(b, n, tlds)
	dirKey, err := keys.Generate("ccTLD Security Contact Directory", "directory@ccdir.example", keys.AlgoEd25519,
		benchKeyTime, rand.NewChaCha8([32]byte{'d', 'i', 'r'}))
	if err != nil {
		b.Fatal(err)
	}
	dirPub, err := dirKey.Public().Armored()
	if err != nil {
		b.Fatal(err)
	}
	store, err := directory.Create(ctx, path, directory.Info{
		Name:           "ccTLD Security Contact Directory",
		Address:        "directory@ccdir.example",
		ListAddress:    "contacts@ccdir.example",
		KeyFingerprint: dirKey.Fingerprint(),
		PublicKey:      string(dirPub),
	}, directory.Options{Signer: dirKey, Migrations: slices.Concat(outbox.Migrations, Migrations, liveness.Migrations)})
	if err != nil {
		b.Fatal(err)
	}
	_, err = store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		for _, t := range tlds {
			if _, err := tx.AddMember(directory.Member{TLD: t.Code, Org: t.Name + " Network Information Centre", Country: t.Country}); err != nil {
				return fmt.Errorf("member %s: %w", t.Code, err)
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewChaCha8([32]byte{'k', 'e', 'y', 's'}))
	const perTx = 1000
	for lo := 0; lo < n; lo += perTx {
		_, err := store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
			for i := lo; i < min(lo+perTx, n); i++ {
				c := benchContact(i, tlds, r)
				c.Key = &ks[i]
				if _, err := tx.AddContact(c); err != nil {
					return fmt.Errorf("contact %s: %w", c.Email, err)
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	fx := &benchFixture{n: n, template: path, dirKey: dirKey}
	job := &Job{Store: store, Secret: dirKey}
	var body benchCountWriter
	if err := job.PreviewText(ctx, &body); err != nil {
		b.Fatal(err)
	}
	fx.bodyBytes = int(body)
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	fx.rssKB = max(0, benchmem.VmHWM())
	b.Logf("fixture: %d ccTLDs, %d contacts, body %d bytes, built in %v", len(tlds), n, fx.bodyBytes, time.Since(start).Round(time.Millisecond))
	return fx
}

// writeBody writes the digest text and the directory's secret key
// (unprotected, a throw-away bench key) to dir for the gpg baseline:
// body-N.txt and dirkey-secret.asc.
func (fx *benchFixture) writeBody(b *testing.B, ctx context.Context, dir string, attach []string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(b.TempDir(), "preview.db")
	benchCopyFile(b, fx.template, path)
	store, err := directory.Open(ctx, path, directory.Options{Signer: fx.dirKey, Migrations: slices.Concat(outbox.Migrations, Migrations, liveness.Migrations)})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	var text bytes.Buffer
	job := &Job{Store: store, Secret: fx.dirKey, Config: Config{Attach: attach}}
	if err := job.PreviewText(ctx, &text); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("body-%d.txt", fx.n)), text.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	secPath := filepath.Join(dir, "dirkey-secret.asc")
	os.Remove(secPath)
	if err := fx.dirKey.WriteFile(secPath, nil); err != nil {
		b.Fatal(err)
	}
}

type benchCountWriter int

func (w *benchCountWriter) Write(p []byte) (int, error) {
	*w += benchCountWriter(len(p))
	return len(p), nil
}

func benchCopyFile(b *testing.B, from, to string) {
	in, err := os.Open(from)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
}

// benchConnections is delivery.connections for the benchmarks:
// CCDIR_BENCH_CONNECTIONS, else 0 (the default, outbox.DefaultConnections).
func benchConnections() int {
	n, _ := strconv.Atoi(os.Getenv("CCDIR_BENCH_CONNECTIONS"))
	return max(n, 0)
}
