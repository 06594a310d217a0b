package liveness

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

const dirAddress = "ccdir@directory.example"

// fixture is a directory with a moving clock:
//
//	pt: ana (security), bob (admin)
//	br: carol (security), no admin
//	de (inactive): erin (security), who gets nothing
type fixture struct {
	t       *testing.T
	ctx     context.Context
	store   *directory.Store
	dir     *keys.Secret
	ob      *outbox.Outbox
	secrets map[string]*keys.Secret
	old     []*keys.Secret // replaced keys
	tokenSK []byte
	// decided is the record of decisions of the pending changes (Auth).
	decided *Decisions

	mu    sync.Mutex
	clock time.Time
}

var start = time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)

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

// auth is how the fixture's pending changes are authenticated.
func (f *fixture) auth() Auth { return Auth{Secret: f.tokenSK, Decisions: f.decided} }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), clock: start, secrets: map[string]*keys.Secret{}, tokenSK: outbox.NewKey()}
	f.decided = &Decisions{Path: filepath.Join(t.TempDir(), "pending-decided"), Secret: f.tokenSK,
		Warn: func(format string, args ...any) { t.Errorf("record of decisions: "+format, args...) }}
	f.dir = keystest.NewSecret(t, "Test Directory", dirAddress)
	f.dir.SetClock(f.now)
	armored, err := f.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	info := directory.Info{Name: "Test Directory", Address: dirAddress, KeyFingerprint: f.dir.Fingerprint(), PublicKey: string(armored)}
	s, err := directory.Create(f.ctx, filepath.Join(t.TempDir(), "directory.db"), info,
		directory.Options{Signer: f.dir, Now: f.now, Migrations: slices.Concat(outbox.Migrations, Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f.store = s
	if f.ob, err = outbox.Open(f.ctx, s.DB()); err != nil {
		t.Fatal(err)
	}
	f.ob.Key, f.ob.Now = outbox.NewKey(), f.now
	type spec struct{ name, email, tld, role string }
	specs := []spec{
		{"Ana Silva", "ana@dns.pt", "pt", directory.RoleSecurity},
		{"Bob Costa", "bob@dns.pt", "pt", directory.RoleAdmin},
		{"Carol Souza", "carol@registro.br", "br", directory.RoleSecurity},
		{"Erin Weber", "erin@denic.de", "de", directory.RoleSecurity},
	}
	_, err = s.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		for _, m := range []directory.Member{{TLD: "pt", Org: "DNS.PT"}, {TLD: "br", Org: "NIC.br"}, {TLD: "de", Org: "DENIC", Status: directory.StatusInactive}} {
			if _, err := tx.AddMember(m); err != nil {
				return err
			}
		}
		for _, sp := range specs {
			sec := keystest.NewSecret(t, sp.name, sp.email)
			f.secrets[sp.email] = sec
			if _, err := tx.AddContact(directory.Contact{Email: sp.email, Name: sp.name, Phones: []directory.Phone{{Number: "+351213141516"}},
				Roles: []directory.Role{{TLD: sp.tld, Role: sp.role}}, Key: dirKey(t, sec.Public())}); err != nil {
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

func (f *fixture) sender(cfg Config) *Sender {
	return &Sender{Store: f.store, Secret: f.dir, Outbox: f.ob, TokenSecret: f.tokenSK, Config: cfg, Now: f.now}
}

func (f *fixture) send(cfg Config) *Result {
	f.t.Helper()
	res, err := f.sender(cfg).Send(f.ctx)
	if err != nil {
		f.t.Fatalf("Send: %v", err)
	}
	return res
}

// texts returns the decrypted texts of the messages of kind to rcpt, oldest first.
func (f *fixture) texts(kind, rcpt string) []string {
	f.t.Helper()
	rows, err := f.store.DB().QueryContext(f.ctx, `SELECT body FROM outbox WHERE kind = ? AND rcpt = ? ORDER BY id`, kind, rcpt)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			f.t.Fatal(err)
		}
		var o *pgpmime.Opened
		for _, sec := range append([]*keys.Secret{f.secrets[rcpt]}, f.old...) {
			if o, err = pgpmime.Open(bytes.NewReader(body), sec, pgpmime.OpenOptions{Keyring: []*keys.Public{f.dir.Public()}, Now: f.now()}); err == nil {
				break
			}
		}
		if err != nil {
			f.t.Fatalf("open: %v", err)
		}
		if !o.Encrypted || !o.Signed || o.SignatureErr != nil || o.Signer != f.dir.Fingerprint() {
			f.t.Fatalf("not encrypted and signed by the directory")
		}
		in, err := pgpmime.ParseInner(o.Entity)
		if err != nil {
			f.t.Fatal(err)
		}
		out = append(out, strings.ReplaceAll(string(in.Parts[0].Body), "\r\n", "\n"))
	}
	return out
}

var pongLine = regexp.MustCompile(`(?m)^PONG ([A-Za-z0-9_-]+)$`)

// token is the token of the last challenge or reminder to rcpt.
func (f *fixture) token(rcpt string) string {
	f.t.Helper()
	ts := f.texts(KindPing, rcpt)
	if len(ts) == 0 {
		f.t.Fatalf("no challenge to %s", rcpt)
	}
	m := pongLine.FindStringSubmatch(ts[len(ts)-1])
	if m == nil {
		f.t.Fatalf("no PONG line in:\n%s", ts[len(ts)-1])
	}
	return m[1]
}

func (f *fixture) pong(email, token string) (*Answer, error) {
	f.t.Helper()
	tx, err := f.store.DB().BeginTx(f.ctx, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback()
	a, err := Pong(f.ctx, tx, email, f.secrets[email].Fingerprint(), token, f.now())
	if err == nil {
		if err := tx.Commit(); err != nil {
			f.t.Fatal(err)
		}
	}
	return a, err
}

func (f *fixture) count(kind string) int {
	f.t.Helper()
	var n int
	if err := f.store.DB().QueryRowContext(f.ctx, `SELECT count(*) FROM outbox WHERE kind = ?`, kind).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) statuses() map[string]Status {
	f.t.Helper()
	snap, err := f.store.Snapshot(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	ss, err := Statuses(f.ctx, f.store.DB(), snap, Config{}, f.now(), nil)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]Status{}
	for _, s := range ss {
		out[s.Email] = s
	}
	return out
}

// Every reachable contact is challenged once; a rerun the same day (and
// every day until the token expires) sends nothing; the inactive ccTLD's
// contact gets nothing.
func TestSendChallengesOnce(t *testing.T) {
	f := newFixture(t)
	res := f.send(Config{})
	if want := []string{"ana@dns.pt", "bob@dns.pt", "carol@registro.br"}; !slices.Equal(res.Challenged, want) {
		t.Fatalf("challenged %v, want %v", res.Challenged, want)
	}
	if n := f.count(KindPing); n != 3 {
		t.Fatalf("%d pings queued, want 3", n)
	}
	text := f.texts(KindPing, "ana@dns.pt")[0]
	for _, w := range []string{"DIRECTORY " + dirAddress + "\nPONG ", "pt (security)", "until 2026-11-16 10:00 UTC", f.secrets["ana@dns.pt"].Fingerprint()} {
		if !strings.Contains(text, w) {
			t.Errorf("challenge lacks %q:\n%s", w, text)
		}
	}
	for range 6 {
		f.advance(24 * time.Hour)
		res = f.send(Config{})
		if len(res.Challenged)+len(res.Reminded)+len(res.Escalated) != 0 {
			t.Fatalf("rerun sent %+v", res)
		}
	}
	if n := f.count(KindPing); n != 3 {
		t.Fatalf("%d pings queued after reruns, want 3", n)
	}
	for _, s := range f.statuses() {
		if s.Verdict != VerdictPending || !s.PendingSince.Equal(start) {
			t.Errorf("%s: %+v, want pending since the start", s.Email, s)
		}
	}
}

// The database holds the token's SHA-256, never the token; the token is
// made of letters, digits, '-' and '_'.
func TestTokenNotInDatabase(t *testing.T) {
	f := newFixture(t)
	f.send(Config{})
	tok := f.token("ana@dns.pt")
	if len(tok) != TokenLen || !ValidToken(tok) {
		t.Fatalf("token %q", tok)
	}
	rows, err := f.store.DB().QueryContext(f.ctx, `SELECT email, fingerprint, nonce, token_hash, sent, expires FROM pings`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		var cols [6]string
		if err := rows.Scan(&cols[0], &cols[1], &cols[2], &cols[3], &cols[4], &cols[5]); err != nil {
			t.Fatal(err)
		}
		for _, c := range cols {
			if strings.Contains(c, tok) {
				t.Fatalf("the pings table holds the token: %q", c)
			}
		}
		found = found || cols[3] == hashToken(tok)
	}
	if !found {
		t.Fatal("no row holds the token's hash")
	}
}

// A PONG with the token sets last confirmed; a wrong, another contact's,
// a reused or an expired token is refused and changes nothing.
func TestPong(t *testing.T) {
	f := newFixture(t)
	f.send(Config{})
	ana, bob := f.token("ana@dns.pt"), f.token("bob@dns.pt")
	f.advance(time.Hour)

	check := func(email, token string, want error) {
		t.Helper()
		before := f.statuses()
		_, err := f.pong(email, token)
		if !errors.Is(err, want) {
			t.Fatalf("PONG %s by %s: %v, want %v", token, email, err, want)
		}
		if after := f.statuses(); !equalStatuses(before, after) {
			t.Fatalf("a refused PONG changed the statuses: %v → %v", before, after)
		}
	}
	check("ana@dns.pt", strings.Repeat("x", TokenLen), ErrTokenUnknown)
	check("ana@dns.pt", bob, ErrTokenNotYours)

	a, err := f.pong("ana@dns.pt", ana)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Sent.Equal(start) || !a.Answered.Equal(f.now()) {
		t.Fatalf("answer %+v", a)
	}
	st := f.statuses()["ana@dns.pt"]
	if st.Verdict != VerdictOK || !st.LastConfirmed.Equal(f.now()) || !st.PendingSince.IsZero() {
		t.Fatalf("ana after PONG: %+v", st)
	}
	f.advance(time.Hour)
	check("ana@dns.pt", ana, ErrTokenUsed)

	f.advance(DefaultValid)
	check("bob@dns.pt", bob, ErrTokenExpired)

	// The contacts' last confirmed, for SHOW, CALL and the digests.
	snap, err := f.store.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf, err := Confirmed(f.ctx, f.store.DB(), snap.Contacts)
	if err != nil {
		t.Fatal(err)
	}
	if len(conf) != 1 || !conf["ana@dns.pt"].Equal(start.Add(time.Hour)) {
		t.Fatalf("confirmed %v", conf)
	}
}

func equalStatuses(a, b map[string]Status) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w := b[k]
		if v.Verdict != w.Verdict || !v.LastConfirmed.Equal(w.LastConfirmed) || !v.PendingSince.Equal(w.PendingSince) {
			return false
		}
	}
	return true
}

// After ping.remind without an answer, one reminder with the same token;
// at expiry the admins hear of it once, the contact is stale, and a new
// challenge goes out; the new token works, and ana is ok again.
func TestRemindAndEscalate(t *testing.T) {
	f := newFixture(t)
	f.send(Config{})
	tok := f.token("ana@dns.pt")
	if _, err := f.pong("bob@dns.pt", f.token("bob@dns.pt")); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultRemind)
	res := f.send(Config{})
	if want := []string{"ana@dns.pt", "carol@registro.br"}; !slices.Equal(res.Reminded, want) || len(res.Challenged) != 0 {
		t.Fatalf("after %v: %+v", DefaultRemind, res)
	}
	if got := f.token("ana@dns.pt"); got != tok {
		t.Fatalf("the reminder's token %q is not the challenge's %q", got, tok)
	}
	if ts := f.texts(KindPing, "ana@dns.pt"); !strings.Contains(ts[1], "REMINDER") {
		t.Fatalf("reminder:\n%s", ts[1])
	}
	f.advance(24 * time.Hour)
	if res := f.send(Config{}); len(res.Reminded) != 0 {
		t.Fatalf("a second reminder: %+v", res)
	}

	f.advance(DefaultValid - DefaultRemind - 24*time.Hour)
	res = f.send(Config{})
	if len(res.Escalated) != 2 {
		t.Fatalf("escalated %+v", res.Escalated)
	}
	if e := res.Escalated[0]; e.Email != "ana@dns.pt" || !slices.Equal(e.Notified, []string{"bob@dns.pt"}) {
		t.Fatalf("escalation of ana: %+v", e)
	}
	if e := res.Escalated[0]; !slices.Equal(e.Notes, []string{"no operator address configured"}) {
		t.Fatalf("escalation of ana, notes: %q", e.Notes)
	}
	if e := res.Escalated[1]; e.Email != "carol@registro.br" || len(e.Notified) != 0 || len(e.Notes) != 2 {
		t.Fatalf("escalation of carol (br has no admin): %+v", e)
	}
	notice := f.texts(KindStale, "bob@dns.pt")
	if len(notice) != 1 || !strings.Contains(notice[0], "Ana Silva <ana@dns.pt>, contact of pt (security), has not answered") {
		t.Fatalf("notice to bob: %q", notice)
	}
	if want := []string{"ana@dns.pt", "carol@registro.br"}; !slices.Equal(res.Challenged, want) {
		t.Fatalf("new challenges %v, want %v", res.Challenged, want)
	}
	st := f.statuses()
	if st["ana@dns.pt"].Verdict != VerdictStale || !st["ana@dns.pt"].StaleSince.Equal(start.Add(DefaultValid)) || st["bob@dns.pt"].Verdict != VerdictOK {
		t.Fatalf("statuses %+v", st)
	}
	if !st["ana@dns.pt"].Attention() {
		t.Fatal("a stale contact needs no attention?")
	}
	// The old token is dead; the new one works.
	if _, err := f.pong("ana@dns.pt", tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("old token: %v", err)
	}
	newTok := f.token("ana@dns.pt")
	if newTok == tok {
		t.Fatal("the new challenge has the old token")
	}

	// Once per silence: the next expiry tells the admins nothing.
	f.advance(DefaultValid)
	res = f.send(Config{})
	if len(res.Escalated) != 0 || f.count(KindStale) != 1 {
		t.Fatalf("escalated again: %+v", res.Escalated)
	}
	newTok = f.token("ana@dns.pt")
	if _, err := f.pong("ana@dns.pt", newTok); err != nil {
		t.Fatal(err)
	}
	if v := f.statuses()["ana@dns.pt"].Verdict; v != VerdictOK {
		t.Fatalf("ana after answering: %s", v)
	}
}

// With an operator address and key, the operator is told of every
// silence too, encrypted to the operator's key.
func TestEscalateToOperator(t *testing.T) {
	f := newFixture(t)
	ops := keystest.NewSecret(t, "Ops", "ops@secretariat.example")
	f.secrets["ops@secretariat.example"] = ops
	op := &directory.Contact{Email: "ops@secretariat.example", Name: "operator", Key: dirKey(t, ops.Public())}
	s := f.sender(Config{})
	s.Operator = op
	if _, err := s.Send(f.ctx); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultValid)
	res, err := s.Send(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e := res.Escalated[0]; e.Email != "ana@dns.pt" || !slices.Equal(e.Notified, []string{"bob@dns.pt", "ops@secretariat.example"}) || len(e.Notes) != 0 {
		t.Fatalf("escalation of ana: %+v", e)
	}
	texts := f.texts(KindStale, "ops@secretariat.example")
	if len(texts) != 3 { // ana, bob, carol
		t.Fatalf("%d notices to the operator", len(texts))
	}
	if !strings.Contains(texts[0], "Ana Silva <ana@dns.pt>, contact of pt (security), has not answered") || !strings.Contains(texts[0], "as the directory's operator") {
		t.Fatalf("notice to the operator:\n%s", texts[0])
	}
}

// ping.escalate false: nobody is told; the contact still turns stale.
func TestNoEscalate(t *testing.T) {
	f := newFixture(t)
	f.send(Config{NoEscalate: true})
	f.advance(DefaultValid)
	res := f.send(Config{NoEscalate: true})
	if len(res.Escalated) != 0 || f.count(KindStale) != 0 {
		t.Fatalf("escalated: %+v", res.Escalated)
	}
	if v := f.statuses()["ana@dns.pt"].Verdict; v != VerdictStale {
		t.Fatalf("ana: %s", v)
	}
}

// After ping.interval, a confirmed contact is challenged again; a new key
// is not confirmed by an answer to the old one.
func TestIntervalAndNewKey(t *testing.T) {
	f := newFixture(t)
	f.send(Config{})
	if _, err := f.pong("ana@dns.pt", f.token("ana@dns.pt")); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultInterval - time.Hour)
	for _, c := range f.send(Config{}).Challenged {
		if c == "ana@dns.pt" {
			t.Fatal("ana challenged before ping.interval")
		}
	}
	f.advance(time.Hour)
	if res := f.send(Config{}); !slices.Contains(res.Challenged, "ana@dns.pt") {
		t.Fatalf("ana not challenged after ping.interval: %+v", res)
	}
	if _, err := f.pong("ana@dns.pt", f.token("ana@dns.pt")); err != nil {
		t.Fatal(err)
	}

	sec := keystest.NewSecret(t, "Ana Silva new", "ana@dns.pt")
	if _, err := f.store.Update(f.ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.SetKey("ana@dns.pt", dirKey(t, sec.Public()))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if st := f.statuses()["ana@dns.pt"]; st.Verdict != VerdictPending || !st.LastConfirmed.IsZero() {
		t.Fatalf("ana with a new key: %+v", st)
	}
	f.old = append(f.old, f.secrets["ana@dns.pt"])
	f.secrets["ana@dns.pt"] = sec
	if res := f.send(Config{}); !slices.Equal(res.Challenged, []string{"ana@dns.pt"}) {
		t.Fatalf("after the new key: %+v", res)
	}
	if !strings.Contains(f.texts(KindPing, "ana@dns.pt")[2], sec.Fingerprint()) {
		t.Fatal("the challenge does not name the new key")
	}
}

// ping send reads the directory through Store.Checked: tampered tables
// are refused, nothing queued.
func TestSendRefusesTampered(t *testing.T) {
	f := newFixture(t)
	if _, err := f.store.DB().ExecContext(f.ctx, `UPDATE contacts SET name = 'Mallory' WHERE email = 'ana@dns.pt'`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sender(Config{}).Send(f.ctx); !errors.Is(err, directory.ErrTampered) {
		t.Fatalf("Send on tampered tables: %v", err)
	}
	if n := f.count(KindPing); n != 0 {
		t.Fatalf("%d queued", n)
	}
}

// A challenge is queued in the transaction that records it: when queueing
// fails, no ping is recorded, and the next run sends each challenge once.
func TestQueueAndRecordTogether(t *testing.T) {
	f := newFixture(t)
	key := f.ob.Key
	f.ob.Key = nil // EnqueueTx fails
	if _, err := f.sender(Config{}).Send(f.ctx); !errors.Is(err, outbox.ErrNoKey) {
		t.Fatalf("Send without an outbox key: %v", err)
	}
	var n int
	if err := f.store.DB().QueryRowContext(f.ctx, `SELECT count(*) FROM pings`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d pings recorded (%v), want 0", n, err)
	}
	f.ob.Key = key
	if res := f.send(Config{}); len(res.Challenged) != 3 {
		t.Fatalf("after the failure: %+v", res)
	}
	if res := f.send(Config{}); len(res.Challenged) != 0 || f.count(KindPing) != 3 {
		t.Fatalf("rerun: %+v, %d queued", res, f.count(KindPing))
	}
}

func TestValidToken(t *testing.T) {
	for s, want := range map[string]bool{
		strings.Repeat("a", MinTokenLen):   true,
		strings.Repeat("a", MinTokenLen-1): false,
		strings.Repeat("a", MaxTokenLen+1): false,
		"abc-DEF_0123456789xyz":            true,
		"abc+DEF/0123456789xyz":            false,
		"abcdefghijklmnopqrs\u00e9":        false,
		"abcdefghijklmnop qrs":             false,
	} {
		if got := ValidToken(s); got != want {
			t.Errorf("ValidToken(%q) = %v", s, got)
		}
	}
}
