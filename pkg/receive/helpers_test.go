package receive

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/liveness"
	"github.com/ccdir/ccdir/pkg/mailcmd"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/relay"
)

const (
	dirName    = "Test Directory"
	dirAddr    = "ccdir@directory.example"
	listAddr   = "alerts@directory.example"
	keyAddr    = "ccdir-sendkey@directory.example"
	bounceAddr = "ccdir-bounces@directory.example"
	anaAddr    = "ana@dns.pt"
)

// fixedNow is Monday 2026-11-02 10:00 UTC.
var fixedNow = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

// world is a directory in a temp folder with a fixed clock, deterministic
// keys, one ccTLD (pt) and one contact (ana), and a Receiver wired as
// ccdir serve wires it; its log goes to logs.
type world struct {
	t     *testing.T
	ctx   context.Context
	dir   *keys.Secret
	ana   *keys.Secret
	store *directory.Store
	ob    *outbox.Outbox
	rc    *Receiver
	logs  *bytes.Buffer

	mu    sync.Mutex
	clock time.Time
}

func (w *world) now() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clock
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.clock = w.clock.Add(d)
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, ctx: context.Background(), clock: fixedNow, logs: &bytes.Buffer{}}
	w.dir = keystest.NewSecret(t, dirName, dirAddr)
	w.dir.SetClock(w.now)
	armored, err := w.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	info := directory.Info{Name: dirName, Address: dirAddr, ListAddress: listAddr,
		KeyFingerprint: w.dir.Fingerprint(), PublicKey: string(armored)}
	s, err := directory.Create(w.ctx, filepath.Join(t.TempDir(), "directory.db"), info, directory.Options{Signer: w.dir, Now: w.now,
		Migrations: slices.Concat(outbox.Migrations, inbound.Migrations, digest.Migrations, relay.Migrations, liveness.Migrations, Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w.store = s
	if info, err = s.Info(w.ctx); err != nil {
		t.Fatal(err)
	}
	if w.ob, err = outbox.Open(w.ctx, s.DB()); err != nil {
		t.Fatal(err)
	}
	w.ob.Key = outbox.NewKey()
	w.ob.Now = w.now

	w.ana = keystest.NewSecret(t, "Ana Silva", anaAddr)
	w.ana.SetClock(w.now)
	anaPub, err := w.ana.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	p := w.ana.Public()
	key := &directory.Key{Fingerprint: p.Fingerprint, Algorithm: p.Algorithm,
		Created: p.Created.UTC().Format(time.RFC3339), Armored: string(anaPub)}
	if !p.Expires.IsZero() {
		key.Expires = p.Expires.UTC().Format(time.RFC3339)
	}
	if _, err := s.Update(w.ctx, directory.Operator, func(tx *directory.Tx) error {
		if _, err := tx.AddMember(directory.Member{TLD: "pt", Org: "DNS.PT"}); err != nil {
			return err
		}
		_, err := tx.AddContact(directory.Contact{Email: anaAddr, Name: "Ana Silva",
			Phones: []directory.Phone{{Number: "+351213141516"}}, Roles: []directory.Role{{TLD: "pt", Role: "security"}},
			Key: key})
		return err
	}); err != nil {
		t.Fatal(err)
	}

	w.rc = &Receiver{
		Config: Config{Directory: info},
		Store:  s, Secret: w.dir, Outbox: w.ob, Now: w.now,
		Log:      log.New(w.logs, "ccdir: ", 0),
		Pipeline: &inbound.Pipeline{Store: s, Secret: w.dir, Now: w.now, Config: inbound.Config{Addresses: []string{dirAddr, listAddr}}},
		Commands: &mailcmd.Handler{Store: s, Secret: w.dir, Outbox: w.ob, Now: w.now, Config: mailcmd.Config{Address: dirAddr}},
		Relay:    &relay.Relay{Store: s, Secret: w.dir, Outbox: w.ob, Now: w.now, Config: relay.Config{ListAddress: listAddr}},
	}
	return w
}

// signed is a mail from ana to to whose text is clear-signed by her key
// now; id is its Message-ID, extra header fields as for mail.
func (w *world) signed(to, id, text string, extra ...string) []byte {
	w.t.Helper()
	var b bytes.Buffer
	cw, err := clearsign.Encode(&b, w.ana.Entity().PrivateKey, w.ana.SignConfig())
	if err != nil {
		w.t.Fatal(err)
	}
	io.WriteString(cw, text)
	if err := cw.Close(); err != nil {
		w.t.Fatal(err)
	}
	return w.mail(anaAddr, to, id, b.String(), extra...)
}

// mail is a plain text mail with the given header fields (extra are
// whole "Key: value" lines), CRLF line endings.
func (w *world) mail(from, to, id, body string, extra ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\nTo: %s\nSubject: test\nDate: %s\nMessage-ID: <%s>\n", from, to, w.now().Format(time.RFC1123Z), id)
	for _, x := range extra {
		b.WriteString(x + "\n")
	}
	b.WriteString("MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body)
	return []byte(strings.ReplaceAll(strings.ReplaceAll(b.String(), "\r\n", "\n"), "\n", "\r\n"))
}

// receive hands msg to the Receiver and checks that it read msg to its
// end.
func (w *world) receive(from string, to []string, msg []byte) error {
	w.t.Helper()
	r := bytes.NewReader(msg)
	err := w.rc.Receive(w.ctx, Envelope{From: from, To: to}, r)
	if r.Len() != 0 {
		w.t.Errorf("Receive left %d bytes of the message unread", r.Len())
	}
	return err
}

// lines returns the log lines written since the last call.
func (w *world) lines() []string {
	s := strings.TrimSuffix(w.logs.String(), "\n")
	w.logs.Reset()
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// queued returns the outbox rows of kind.
func (w *world) queued(kind string) []outbox.Row {
	w.t.Helper()
	rows, err := w.ob.List(w.ctx, outbox.Filter{Kind: kind})
	if err != nil {
		w.t.Fatal(err)
	}
	return rows
}

// sink is a Transport that keeps what it is given, by recipient.
type sink struct {
	mu   sync.Mutex
	got  map[string][][]byte
	sent chan struct{} // one token per message
}

func newSink() *sink { return &sink{got: map[string][][]byte{}, sent: make(chan struct{}, 100)} }

func (s *sink) String() string { return "test sink" }

func (s *sink) NewSession(context.Context) (outbox.Session, error) { return s, nil }

func (s *sink) Send(_ context.Context, m *outbox.Message) error {
	s.mu.Lock()
	s.got[m.To] = append(s.got[m.To], bytes.Join(m.Parts(), nil))
	s.mu.Unlock()
	s.sent <- struct{}{}
	return nil
}

func (s *sink) Close() error { return nil }

func (s *sink) messages(to string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[to]
}

// delivered delivers the outbox to a new sink and returns the messages
// for to.
func (w *world) delivered(to string) [][]byte {
	w.t.Helper()
	s := newSink()
	if _, err := w.ob.Deliver(w.ctx, s, outbox.Filter{}, outbox.DeliverOptions{Now: w.now}); err != nil {
		w.t.Fatal(err)
	}
	return s.messages(to)
}
