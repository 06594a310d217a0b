package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// BenchmarkServeShow measures signed and encrypted SHOW pt command mails
// end to end through the real `ccdir serve` on 127.0.0.1 (run in this
// process): SMTP in → decrypt, verify, replay and freshness checks →
// answer → reply signed, encrypted and queued in the outbox (then
// delivered to the home's maildir in the background, as serve does). Each
// iteration is one command mail; CCDIR_BENCH_SERVE_CLIENTS clients
// (default 8) send them concurrently, one SMTP connection each, reused
// for their transactions.
//
// The mails are made before the timer starts, with go-crypto through
// pkg/pgpmime (PGP/MIME, signed and encrypted in one OpenPGP message, as
// members' clients send them), by 400 contacts of 100 ccTLDs, each mail
// unique (so the replay check passes) and signed now.
//
// Metrics: cmds/s (sustained, first MAIL to last end of DATA), p50-ms and
// p99-ms of one SMTP transaction (MAIL to the reply to DATA, which comes
// after the reply is queued), the peak live Go heap over the first 1,000
// mails and over the last 1,000 (heap-1k-MB, heap-last1k-MB), and the
// RSS after 1,000 and at the end (rss-1k-MB, rss-end-MB): flat memory
// means the last two match the first two. scripts/bench/commands.sh runs
// it with -benchtime 5000x.
func BenchmarkServeShow(b *testing.B) {
	clients := 8
	if v := os.Getenv("CCDIR_BENCH_SERVE_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			b.Fatalf("CCDIR_BENCH_SERVE_CLIENTS=%q: want 1 to 64", v)
		}
		clients = n
	}
	fx := serveFixture(b)
	// Replies go out over SMTP to an in-process sink on loopback, as a
	// production serve hands them to its MTA; CCDIR_BENCH_SERVE_DELIVERY=maildir
	// keeps the default maildir (a file and two fsyncs per reply).
	switch d := os.Getenv("CCDIR_BENCH_SERVE_DELIVERY"); d {
	case "", "sink":
		b.Setenv("CCDIR_DELIVERY_URL", smtptest.NewServer(b, smtptest.Options{}).URL)
	case "maildir":
	default:
		b.Fatalf("CCDIR_BENCH_SERVE_DELIVERY=%q: want sink or maildir", d)
	}
	// 400 contacts would reach the default 20 replies per hour after
	// 8,000 mails: lift the cap, its check still runs.
	b.Setenv("CCDIR_COMMANDS_REPLIES_PER_HOUR", "10000")

	home := filepath.Join(b.TempDir(), "home")
	initHome(b, home)
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--home", home, "import", fx.csv, "--keys", fx.bundle},
		strings.NewReader(""), io.Discard, &stderr); code != 0 {
		b.Fatalf("import: %s", stderr.String())
	}
	dirKey := readDirKey(b, home)
	msgs := makeShowMails(b, fx, dirKey, b.N)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, stop := context.WithCancel(context.Background())
	log := &serveLog{}
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"--home", home, "serve", "--smtp", addr}, strings.NewReader(""), io.Discard, log)
	}()
	stopped := false
	shutdown := func() {
		if !stopped {
			stopped = true
			stop()
			if code := <-served; code != 0 {
				b.Errorf("serve exited %d: %s", code, log.errors())
			}
		}
	}
	defer shutdown()
	waitListening(b, addr, served, log)

	mem := startMemSampler()
	lat := make([]time.Duration, b.N)
	var next, done atomic.Int64
	var mark1k sync.Once
	var failures atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range min(clients, b.N) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := smtp.Dial(addr)
			if err != nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			defer c.Close()
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N {
					c.Quit()
					return
				}
				m := msgs[i]
				t0 := time.Now()
				err := sendTransaction(c, m.from, fx.dirAddr, m.data)
				lat[i] = time.Since(t0)
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("mail %d from %s: %w", i, m.from, err))
					var se *smtp.SMTPError
					if !errors.As(err, &se) {
						return // the connection is broken
					}
				}
				if done.Add(1) == 1000 {
					mark1k.Do(mem.mark)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	peak1k, rss1k, peakLast, rssEnd := mem.stop(b.N)
	shutdown()
	if n := failures.Load(); n > 0 {
		b.Fatalf("%d of %d mails failed; first: %v\n%s", n, b.N, firstErr.Load(), log.errors())
	}
	if got := log.queued.Load(); got != int64(b.N) {
		b.Fatalf("%d replies queued for %d mails\n%s", got, b.N, log.errors())
	}

	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "cmds/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	if b.N >= 2000 {
		b.ReportMetric(peak1k/(1<<20), "heap-1k-MB")
		b.ReportMetric(peakLast/(1<<20), "heap-last1k-MB")
		b.ReportMetric(rss1k/(1<<20), "rss-1k-MB")
		b.ReportMetric(rssEnd/(1<<20), "rss-end-MB")
	}
}

// sendTransaction sends one message on an open connection: MAIL, RCPT,
// DATA, and waits for the reply to the end of DATA.
func sendTransaction(c *smtp.Client, from, to string, data []byte) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(to, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Close()
}

// serveLog counts the replies serve queued and keeps the other log lines
// (errors, refusals), at most 64 of them.
type serveLog struct {
	mu      sync.Mutex
	partial []byte
	other   []string
	queued  atomic.Int64
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		switch {
		case strings.Contains(line, "command mail from") && strings.HasSuffix(line, "reply queued"):
			l.queued.Add(1)
		case strings.Contains(line, ": command mail from"), strings.Contains(line, "delivered to "),
			strings.Contains(line, "SMTP on "), strings.Contains(line, "stopping: "):
		case len(l.other) < 64:
			l.other = append(l.other, line)
		}
	}
	return len(p), nil
}

func (l *serveLog) errors() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.other, "\n")
}

// waitListening waits until serve accepts connections on addr.
func waitListening(b *testing.B, addr string, served chan int, log *serveLog) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			bufio.NewReader(c).ReadString('\n') // the greeting
			c.Close()
			return
		}
		select {
		case code := <-served:
			b.Fatalf("serve exited %d: %s", code, log.errors())
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("serve does not listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// memSampler samples the live Go heap every 2 ms, and keeps its peak
// over the first 1,000 mails (until mark) and the samples after them, to
// find the peak over the last 1,000.
type memSampler struct {
	mu           sync.Mutex
	peak         uint64 // since start or the last reset
	peak1k, rss1 uint64
	marked       bool
	lastWindow   []uint64 // samples after the mark, with their time
	times        []time.Time
	markAt       time.Time
	stopc, donec chan struct{}
}

func startMemSampler() *memSampler {
	m := &memSampler{stopc: make(chan struct{}), donec: make(chan struct{})}
	go func() {
		defer close(m.donec)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			v := s[0].Value.Uint64()
			m.mu.Lock()
			m.peak = max(m.peak, v)
			if m.marked {
				m.lastWindow = append(m.lastWindow, v)
				m.times = append(m.times, time.Now())
			}
			m.mu.Unlock()
			select {
			case <-m.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// mark ends the first window (1,000 mails done).
func (m *memSampler) mark() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peak1k, m.rss1 = m.peak, rss()
	m.marked, m.markAt = true, time.Now()
}

// stop returns the peak heap of the first 1,000 mails and the RSS then,
// the peak heap over the last fifth of the run after the mark (about the
// last 1,000 mails of 5,000) and the RSS at the end.
func (m *memSampler) stop(n int) (peak1k, rss1k, peakLast, rssEnd float64) {
	close(m.stopc)
	<-m.donec
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.marked {
		return float64(m.peak), float64(rss()), float64(m.peak), float64(rss())
	}
	// The last 1,000 of n mails took about 1000/(n-1000) of the time
	// after the mark, the rate being steady.
	end := time.Now()
	from := end.Add(-time.Duration(float64(end.Sub(m.markAt)) * 1000 / float64(max(n-1000, 1000))))
	var last uint64
	for i, t := range m.times {
		if !t.Before(from) {
			last = max(last, m.lastWindow[i])
		}
	}
	return float64(m.peak1k), float64(m.rss1), float64(last), float64(rss())
}

// rss returns this process's resident set size (VmRSS), 0 if unknown.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// benchFixture are the contacts of the serve benchmark: an import file,
// their public keys, and their secret keys to sign command mails with.
type benchFixture struct {
	csv, bundle string
	dirAddr     string
	secrets     []*keys.Secret
	emails      []string
}

var (
	benchFixtureOnce sync.Once
	benchFixtureVal  *benchFixture
	benchFixtureErr  error
)

// serveFixture makes (once per process) 400 contacts of 100 ccTLDs, pt
// first: 3 security contacts and 1 admin each, with Ed25519 keys.
func serveFixture(b *testing.B) *benchFixture {
	benchFixtureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ccdir-bench-serve-")
		if err != nil {
			benchFixtureErr = err
			return
		}
		fx := &benchFixture{csv: filepath.Join(dir, "contacts.csv"), bundle: filepath.Join(dir, "keys.asc"), dirAddr: "ccdir@bench.example"}
		tlds := []string{"pt"}
		for _, t := range directory.CCTLDs() {
			if t.Kind != "idn" && t.Code != "pt" && len(tlds) < 100 {
				tlds = append(tlds, t.Code)
			}
		}
		var csv, bundle bytes.Buffer
		csv.WriteString("tld,org,name,email,phones,role,languages,timezone,24x7\n")
		rng := rand.NewChaCha8([32]byte{2})
		created := time.Now().Add(-time.Hour)
		for i := range 4 * len(tlds) {
			t := tlds[i%len(tlds)]
			role := "security"
			if i/len(tlds) == 3 {
				role = "admin"
			}
			email := fmt.Sprintf("contact%04d@%s.example", i, t)
			fmt.Fprintf(&csv, "%s,Registry of %s,Contact %d,%s,+351 21 %03d %04d,%s,en;pt,Europe/Lisbon,yes\n",
				t, t, i, email, i%1000, i, role)
			sec, err := keys.Generate(fmt.Sprintf("Contact %d", i), email, keys.AlgoEd25519, created, rng)
			if err != nil {
				benchFixtureErr = err
				return
			}
			pub, err := sec.Public().Armored()
			if err != nil {
				benchFixtureErr = err
				return
			}
			bundle.Write(pub)
			fx.secrets = append(fx.secrets, sec)
			fx.emails = append(fx.emails, email)
		}
		if err := os.WriteFile(fx.csv, csv.Bytes(), 0o600); err != nil {
			benchFixtureErr = err
			return
		}
		if err := os.WriteFile(fx.bundle, bundle.Bytes(), 0o600); err != nil {
			benchFixtureErr = err
			return
		}
		benchFixtureVal = fx
	})
	if benchFixtureErr != nil {
		b.Fatal(benchFixtureErr)
	}
	return benchFixtureVal
}

// readDirKey reads the directory's public key from a home.
func readDirKey(b *testing.B, home string) *keys.Public {
	sec, err := keys.ReadSecretFile(filepath.Join(home, keysDir, secretName), nil)
	if err != nil {
		b.Fatal(err)
	}
	return sec.Public()
}

type benchMail struct {
	from string
	data []byte
}

// benchSeq makes every mail of the process unique, across benchmark runs.
var benchSeq atomic.Int64

// makeShowMails makes n PGP/MIME mails "DIRECTORY addr / SHOW pt", each
// signed by one of the fixture's contacts (in turn) and encrypted to the
// directory key, each with a unique line and Message-ID.
func makeShowMails(b *testing.B, fx *benchFixture, dirKey *keys.Public, n int) []benchMail {
	out := make([]benchMail, n)
	now := time.Now()
	for i := range out {
		seq := benchSeq.Add(1)
		k := i % len(fx.secrets)
		from := mail.Address{Name: fmt.Sprintf("Contact %d", k), Address: fx.emails[k]}
		id := fmt.Sprintf("bench-%d-%d@%s", os.Getpid(), seq, fx.emails[k][strings.IndexByte(fx.emails[k], '@')+1:])
		inner, err := pgpmime.BuildInner(pgpmime.Protected{
			From: from, To: []mail.Address{{Address: fx.dirAddr}}, Subject: "show", Date: now,
		}, []pgpmime.Part{{ContentType: "text/plain", Body: []byte(
			"DIRECTORY " + fx.dirAddr + "\nSHOW pt\n\nrequest " + strconv.FormatInt(seq, 10) + "\n")}})
		if err != nil {
			b.Fatal(err)
		}
		var armored bytes.Buffer
		if err := pgpmime.SignEncrypt(&armored, inner, fx.secrets[k], dirKey); err != nil {
			b.Fatal(err)
		}
		var msg bytes.Buffer
		err = pgpmime.BuildEncrypted(&msg, pgpmime.Outer{
			From: from, To: mail.Address{Address: fx.dirAddr}, Subject: "ccTLD directory", Date: now, MessageID: id,
		}, armored.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		out[i] = benchMail{from: fx.emails[k], data: msg.Bytes()}
	}
	runtime.GC()
	return out
}
