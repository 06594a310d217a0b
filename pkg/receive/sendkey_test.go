package receive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/smtpd"
)

// keyRequest sends a plain mail from from to the -sendkey address.
func (w *world) keyRequest(from, id string, extra ...string) error {
	w.t.Helper()
	hdrFrom := from
	if hdrFrom == "" {
		hdrFrom = "MAILER-DAEMON@mx.example"
	}
	return w.receive(from, []string{keyAddr}, w.mail(hdrFrom, keyAddr, id, "send me the key\n", extra...))
}

// One answer per sender a day, however the address is spelt; other
// senders are answered meanwhile, until the hourly cap for all; a day
// later the sender is answered again.
func TestSendKeyRateLimits(t *testing.T) {
	w := newWorld(t)
	w.rc.Config.SendKeyPerHour = 3
	answered := `^ccdir: sent the directory key to %s$`
	limited := `^ccdir: key request from %s not answered: rate limit \((one answer to an address a day|3 answers an hour in all)\)$`
	for _, tc := range []struct{ from, log string }{
		{"someone@example.org", answered},
		{"someone@example.org", limited},
		{"SomeOne@Example.ORG", limited},
		{"Some One <someone@example.org>", limited},
		{"other@example.net", answered},
		{"third@example.com", answered},
		{"fourth@example.com", limited}, // three in the hour: the cap for all
	} {
		if err := w.keyRequest(tc.from, "r@example.org"); err != nil {
			t.Fatalf("key request from %s: %v", tc.from, err)
		}
		addr := strings.ToLower(tc.from)
		if i := strings.IndexByte(addr, '<'); i >= 0 {
			addr = strings.Trim(addr[i:], "<>")
		}
		expectLines(t, w.lines(), strings.Replace(tc.log, "%s", regexp.QuoteMeta(addr), 1))
		w.advance(time.Second)
	}
	rows := w.queued(KindSendKey)
	if len(rows) != 3 {
		t.Fatalf("%d key mails queued, want 3", len(rows))
	}
	for _, r := range rows {
		if r.From != dirAddr {
			t.Errorf("key mail from %s, want %s", r.From, dirAddr)
		}
	}
	w.advance(time.Hour)
	if err := w.keyRequest("someone@example.org", "r2@example.org"); err != nil {
		t.Fatal(err)
	}
	expectLines(t, w.lines(), `^ccdir: key request from someone@example\.org not answered: rate limit \(one answer to an address a day\)$`)
	w.advance(KeyAnswerWindow - time.Hour)
	if err := w.keyRequest("someone@example.org", "r3@example.org"); err != nil {
		t.Fatal(err)
	}
	expectLines(t, w.lines(), `^ccdir: sent the directory key to someone@example\.org$`)
}

// No answer to what must never be answered, as inbound.Loop decides for
// command mail, nor to a sender that is not a mailbox.
func TestSendKeyNotAnswered(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name, from string
		extra      []string
		log        string
	}{
		{"bounce", "", nil, `bounce \(empty envelope sender\)`},
		{"MAILER-DAEMON", "MAILER-DAEMON@mx.example", nil, `bounce \(MAILER-DAEMON\)`},
		{"mailer-daemon", "mailer-daemon@mx.example", nil, `bounce \(MAILER-DAEMON\)`},
		{"Auto-Submitted", "someone@example.org", []string{"Auto-Submitted: auto-replied"}, `automatic message`},
		{"Auto-Submitted with a comment", "someone@example.org", []string{"Auto-Submitted: auto-generated; owner-email=x@y"}, `automatic message`},
		{"Precedence bulk", "someone@example.org", []string{"Precedence: bulk"}, `bulk or list mail`},
		{"Precedence list", "someone@example.org", []string{"Precedence: List"}, `bulk or list mail`},
		{"Precedence junk", "someone@example.org", []string{"Precedence: junk"}, `bulk or list mail`},
		{"X-Loop", "someone@example.org", []string{"X-Loop: " + keyAddr}, `mail loop \(X-Loop\)`},
		{"X-Loop of the directory", "someone@example.org", []string{"X-Loop: CCDIR@directory.example"}, `mail loop \(X-Loop\)`},
		{"our own address", dirAddr, nil, `the directory's own address`},
		{"our own -sendkey address", keyAddr, nil, `the directory's own address`},
		{"our list address", listAddr, nil, `the directory's own address`},
		{"not a mailbox", "not an address", nil, `not a valid sender address`},
		{"no domain", "someone", nil, `not a valid sender address`},
		{"control characters", "some\x01one@example.org", nil, `not a valid sender address`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.keyRequest(tc.from, "n@example.org", tc.extra...); err != nil {
				t.Fatalf("Receive = %v, want nil (dropped)", err)
			}
			expectLines(t, w.lines(), `^ccdir: dropped key request from `+regexp.QuoteMeta(strconv.QuoteToGraphic(tc.from))+`: (mail from )?`+tc.log)
		})
	}
	// Our own address in From, whatever the envelope says.
	msg := w.mail("Test Directory <"+dirAddr+">", keyAddr, "own@example.org", "x\n")
	if err := w.receive("someone@example.org", []string{keyAddr}, msg); err != nil {
		t.Fatal(err)
	}
	expectLines(t, w.lines(), `^ccdir: dropped key request from "someone@example\.org": mail from the directory's own address: not answered$`)
	if rows := w.queued(KindSendKey); len(rows) != 0 {
		t.Errorf("%d key mails queued, want none", len(rows))
	}
}

// A request whose header cannot be read is refused (550 5.6.0), read to
// its end, and logged.
func TestSendKeyMalformed(t *testing.T) {
	w := newWorld(t)
	big := "X-Long: " + strings.Repeat("a", maxKeyRequestHeader) + "\r\n\r\nbody\r\n"
	for name, msg := range map[string]string{
		"no colon":  "this is not a header\r\n\r\nbody\r\n",
		"too large": big,
	} {
		t.Run(name, func(t *testing.T) {
			err := w.receive("someone@example.org", []string{keyAddr}, []byte(msg))
			var st smtpd.Status
			if !errors.As(err, &st) {
				t.Fatalf("Receive = %v, want a refusal", err)
			}
			if code, enh, text := st.SMTPStatus(); code != 550 || enh != [3]int{5, 6, 0} || text != "malformed message" {
				t.Errorf("SMTPStatus = %d %v %q, want 550 5.6.0 malformed message", code, enh, text)
			}
			if ExitCode(err) != 0 {
				t.Errorf("ExitCode = %d, want 0", ExitCode(err))
			}
			expectLines(t, w.lines(), `^ccdir: refused key request from "someone@example\.org": malformed message$`)
		})
	}
}

// The answer, parsed back with go-message: its header names the
// requester and the request, says it is automatic, and the body is a
// multipart/signed entity whose signature the directory key verifies,
// with the fingerprint and the directory's public key in it.
func TestSendKeyAnswer(t *testing.T) {
	w := newWorld(t)
	if err := w.keyRequest("Some One <SomeOne@Example.org>", "req.1@example.org"); err != nil {
		t.Fatal(err)
	}
	w.lines()
	got := w.delivered("someone@example.org")
	if len(got) != 1 {
		t.Fatalf("%d key mails delivered, want 1", len(got))
	}
	raw := got[0]
	ent, err := message.Read(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	h := mail.Header{Header: ent.Header}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != dirName || from[0].Address != dirAddr {
		t.Errorf("From = %v, %v", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Name != "" || to[0].Address != "someone@example.org" {
		t.Errorf("To = %v, %v", to, err)
	}
	if s, err := h.Subject(); err != nil || s != "OpenPGP key of the directory" {
		t.Errorf("Subject = %q, %v", s, err)
	}
	if d, err := h.Date(); err != nil || !d.Equal(fixedNow) {
		t.Errorf("Date = %v, %v; want %v", d, err, fixedNow)
	}
	if id, err := h.MessageID(); err != nil || !strings.HasPrefix(id, "sendkey-") || !strings.HasSuffix(id, "@directory.example") {
		t.Errorf("Message-ID = %q, %v", id, err)
	}
	if ids, err := h.MsgIDList("In-Reply-To"); err != nil || len(ids) != 1 || ids[0] != "req.1@example.org" {
		t.Errorf("In-Reply-To = %q, %v", ids, err)
	}
	if v := h.Get("Auto-Submitted"); v != "auto-replied" {
		t.Errorf("Auto-Submitted = %q", v)
	}
	if v := h.Get("MIME-Version"); v != "1.0" {
		t.Errorf("MIME-Version = %q", v)
	}
	if mt, _, err := h.ContentType(); err != nil || mt != "multipart/signed" {
		t.Errorf("Content-Type = %q, %v", mt, err)
	}
	if n := len(h.Values("MIME-Version")); n != 1 {
		t.Errorf("MIME-Version appears %d times in the header", n)
	}

	v, err := pgpmime.Verify(raw, []*keys.Public{w.dir.Public()}, w.now())
	if err != nil {
		t.Fatalf("Verify with the directory key: %v", err)
	}
	if v.Fingerprint != w.dir.Fingerprint() {
		t.Errorf("signed by %s, want the directory key %s", v.Fingerprint, w.dir.Fingerprint())
	}
	if _, err := pgpmime.Verify(raw, []*keys.Public{w.ana.Public()}, w.now()); err == nil {
		t.Errorf("Verify with another key succeeded")
	}
	in, err := pgpmime.ParseInner(v.Signed)
	if err != nil {
		t.Fatal(err)
	}
	if in.Protected.Subject != "OpenPGP key of "+dirName || len(in.Protected.To) != 1 || in.Protected.To[0].Address != "someone@example.org" {
		t.Errorf("protected headers = %+v", in.Protected)
	}
	if len(in.Parts) != 2 {
		t.Fatalf("%d parts, want the text and the key", len(in.Parts))
	}
	if text := string(in.Parts[0].Body); !strings.Contains(text, "Fingerprint: "+keys.GroupFingerprint(w.dir.Fingerprint())) {
		t.Errorf("text without the grouped fingerprint:\n%s", text)
	}
	key := in.Parts[1]
	if key.ContentType != "application/pgp-keys" || key.Filename != "directory-key.asc" {
		t.Errorf("second part %s %s", key.ContentType, key.Filename)
	}
	pub, err := keys.ParsePublicOne(key.Body)
	if err != nil || pub.Fingerprint != w.dir.Fingerprint() {
		t.Errorf("attached key: %v, %v", pub, err)
	}
}

// In-Reply-To only for a Message-ID that inbound.MessageID finds
// plausible.
func TestSendKeyInReplyTo(t *testing.T) {
	for _, tc := range []struct {
		id, want string
	}{
		{"ok.1@example.org", "<ok.1@example.org>"},
		{"no-at-sign", ""},
		{"a b@example.org", ""},
		{strings.Repeat("a", 250) + "@example.org", ""},
	} {
		w := newWorld(t)
		if err := w.keyRequest("someone@example.org", tc.id); err != nil {
			t.Fatal(err)
		}
		got := w.delivered("someone@example.org")
		if len(got) != 1 {
			t.Fatalf("%d key mails, want 1", len(got))
		}
		ent, err := message.Read(bytes.NewReader(got[0]))
		if err != nil {
			t.Fatal(err)
		}
		if v := ent.Header.Get("In-Reply-To"); v != tc.want {
			t.Errorf("request id %q: In-Reply-To = %q, want %q", tc.id, v, tc.want)
		}
	}
}

// DeliverLoop delivers what Receive queued without waiting for its
// minute, and stops when its context ends.
func TestDeliverLoop(t *testing.T) {
	w := newWorld(t)
	s := newSink()
	ctx, cancel := context.WithCancel(w.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.rc.DeliverLoop(ctx, s, outbox.DeliverOptions{Now: w.now})
	}()
	if err := w.keyRequest("someone@example.org", "d@example.org"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.sent:
	case <-time.After(20 * time.Second):
		t.Fatal("the key mail was not delivered")
	}
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("DeliverLoop did not stop")
	}
	if got := s.messages("someone@example.org"); len(got) != 1 {
		t.Errorf("%d messages delivered, want 1", len(got))
	}
	lines := strings.Join(w.lines(), "\n")
	if !strings.Contains(lines, "ccdir: delivered to test sink: 1 sent, 0 deferred, 0 failed") {
		t.Errorf("log:\n%s", lines)
	}
}

// An attacker who floods the -sendkey address with forged senders makes
// it send at most one answer per address a day, at most
// DefaultSendKeyPerDomain an hour to one domain (subdomains included),
// and at most DefaultSendKeyPerHour an hour to strangers in all; a
// registered contact is still answered, and so is a colleague at a
// contact's domain, while the flood goes on.
func TestSendKeyFloodForgedSenders(t *testing.T) {
	w := newWorld(t)
	ask := func(from string) bool {
		t.Helper()
		before := len(w.queued(KindSendKey))
		if err := w.keyRequest(from, "flood@attacker.example"); err != nil {
			t.Fatalf("key request from %s: %v", from, err)
		}
		return len(w.queued(KindSendKey)) > before
	}
	// One victim domain: forged senders there, and at its subdomains.
	victim := 0
	for i := range 20 {
		from := fmt.Sprintf("user%d@victim.example", i)
		if i%2 == 1 {
			from = fmt.Sprintf("user%d@mx%d.victim.example", i, i)
		}
		if ask(from) {
			victim++
		}
	}
	if victim != DefaultSendKeyPerDomain {
		t.Fatalf("%d answers to victim.example in an hour, want %d", victim, DefaultSendKeyPerDomain)
	}
	// Many domains: up to the cap for all.
	answered := victim
	for i := range 2 * DefaultSendKeyPerHour {
		if ask(fmt.Sprintf("forged%d@domain%d.example", i, i)) {
			answered++
		}
	}
	if answered != DefaultSendKeyPerHour {
		t.Fatalf("%d answers to forged senders in an hour, want %d", answered, DefaultSendKeyPerHour)
	}
	if !ask(anaAddr) {
		t.Fatalf("the registered contact %s was not answered during the flood:\n%s", anaAddr, w.logs)
	}
	if !ask("new-colleague@dns.pt") {
		t.Fatalf("a colleague at a contact's domain was not answered during the flood:\n%s", w.logs)
	}
	// Never more than one answer to an address a day, contact or not.
	w.advance(2 * time.Hour)
	for _, from := range []string{anaAddr, "new-colleague@dns.pt", "user0@victim.example", "forged0@domain0.example"} {
		if ask(from) {
			t.Errorf("%s answered twice within a day", from)
		}
	}
	w.advance(23 * time.Hour)
	if !ask(anaAddr) || !ask("user0@victim.example") {
		t.Errorf("not answered again a day later")
	}
}

// A key request from a sender with a non-ASCII domain is answered at the
// domain's A-label, and counts as that address for the limits; a sender
// that NormalizeEmail refuses (a non-ASCII local part) is dropped with a
// log line. Neither is a failure of ours that the MTA would retry for
// days (issue 10 review).
func TestSendKeyNonASCIISender(t *testing.T) {
	w := newWorld(t)
	if err := w.keyRequest("boss@VÌctim.example", "r1@x.example"); err != nil {
		t.Fatalf("key request from a non-ASCII domain: Receive = %v, want nil", err)
	}
	const alabel = "boss@xn--vctim-tsa.example"
	if got := w.delivered(alabel); len(got) != 1 {
		t.Errorf("%d answers to %s, want 1; log: %v", len(got), alabel, w.lines())
	}
	w.lines()
	if err := w.keyRequest("boss@vìctim.example", "r2@x.example"); err != nil {
		t.Fatal(err)
	}
	if l := strings.Join(w.lines(), "\n"); !strings.Contains(l, "not answered: rate limit") || !strings.Contains(l, alabel) {
		t.Errorf("a second request from the same mailbox, spelt in Unicode: log %q, want the per-address limit on %s", l, alabel)
	}
	if err := w.keyRequest("jürgen@example.de", "r3@x.example"); err != nil {
		t.Fatalf("key request from a non-ASCII local part: Receive = %v, want nil (dropped)", err)
	}
	if l := strings.Join(w.lines(), "\n"); !strings.Contains(l, "dropped key request from") {
		t.Errorf("log %q, want the request dropped", l)
	}
}
