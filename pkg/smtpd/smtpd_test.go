package smtpd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// recorder is a Handler that keeps what it was given and answers as told.
type recorder struct {
	mu      sync.Mutex
	got     []Envelope
	bodies  []string
	answer  func(body string) error
	hold    chan struct{} // if set, Handle waits for it
	started chan struct{} // if set, told when a message is in Handle
	// holdOver makes hold and started concern only the messages longer
	// than it.
	holdOver int
}

func (rc *recorder) handle(ctx context.Context, env Envelope, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if len(b) > rc.holdOver {
		if rc.started != nil {
			rc.started <- struct{}{}
		}
		if rc.hold != nil {
			<-rc.hold
		}
	}
	rc.mu.Lock()
	rc.got = append(rc.got, env)
	rc.bodies = append(rc.bodies, string(b))
	rc.mu.Unlock()
	if rc.answer != nil {
		return rc.answer(string(b))
	}
	return nil
}

func start(t *testing.T, cfg Config, rc *recorder, lmtp bool) (*Server, string) {
	t.Helper()
	s := New(cfg, rc.handle)
	var l net.Listener
	var err error
	if lmtp {
		l, err = net.Listen("unix", filepath.Join(t.TempDir(), "lmtp.sock"))
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		if lmtp {
			done <- s.ServeLMTP(l)
		} else {
			done <- s.ServeSMTP(l)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s, l.Addr().String()
}

const msg = "From: a@example.org\r\nTo: ccdir@example.org\r\nSubject: x\r\n\r\nHELP\r\n"

func send(t *testing.T, addr, from string, to []string, body string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.SendMail(from, to, strings.NewReader(body))
}

func code(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestSMTPAcceptAndRefuse(t *testing.T) {
	rc := &recorder{answer: func(body string) error {
		switch {
		case strings.Contains(body, "FORGED"):
			return &Reject{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "signed by a key that is not registered\r\nX-Injected: 1"}
		case strings.Contains(body, "OOPS"):
			return errors.New("database is locked at /secret/path")
		}
		return nil
	}}
	_, addr := start(t, Config{Addresses: []string{"CCDIR@example.org"}}, rc, false)

	if err := send(t, addr, "a@example.org", []string{"ccdir@EXAMPLE.org"}, msg); err != nil {
		t.Fatalf("accepted mail: %v", err)
	}
	if err := send(t, addr, "a@example.org", []string{"other@example.org"}, msg); code(err) != 550 {
		t.Fatalf("unknown recipient: %v, want 550", err)
	}
	err := send(t, addr, "a@example.org", []string{"ccdir@example.org"}, msg+"FORGED\r\n")
	if code(err) != 550 || !strings.Contains(err.Error(), "not registered") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("refused mail: %v", err)
	}
	err = send(t, addr, "a@example.org", []string{"ccdir@example.org"}, msg+"OOPS\r\n")
	if code(err) != 451 || strings.Contains(err.Error(), "secret") {
		t.Fatalf("internal error: %v, want a bare 451", err)
	}
	if err := send(t, addr, "", []string{"ccdir@example.org"}, msg); err != nil {
		t.Fatalf("bounce (empty sender) must be taken, the handler drops it: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 4 || rc.got[0].From != "a@example.org" || rc.got[0].To[0] != "ccdir@example.org" || rc.got[3].From != "" {
		t.Fatalf("handled %+v", rc.got)
	}
	if rc.got[0].RemoteAddr == "" || !strings.HasPrefix(rc.got[0].RemoteAddr, "127.0.0.1:") {
		t.Fatalf("remote address %q", rc.got[0].RemoteAddr)
	}
	if rc.bodies[0] != msg {
		t.Fatalf("body %q", rc.bodies[0])
	}
}

func TestSMTPSizeLimit(t *testing.T) {
	rc := &recorder{}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxMessageBytes: 1 << 10}, rc, false)
	big := msg + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 30)
	if err := send(t, addr, "a@example.org", []string{"ccdir@example.org"}, big); code(err) != 552 {
		t.Fatalf("oversized mail: %v, want 552", err)
	}
	if err := send(t, addr, "a@example.org", []string{"ccdir@example.org"}, msg); err != nil {
		t.Fatalf("a small mail after the big one: %v", err)
	}
}

func TestLMTPPerRecipient(t *testing.T) {
	rc := &recorder{answer: func(body string) error {
		if strings.Contains(body, "BAD") {
			return &Reject{Code: 554, Enhanced: [3]int{5, 7, 0}, Message: "unsigned"}
		}
		return nil
	}}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org", "alerts@example.org"}}, rc, true)
	conn, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mta.example.org"); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{msg, msg + "BAD\r\n"} {
		if err := c.Mail("a@example.org", nil); err != nil {
			t.Fatal(err)
		}
		for _, to := range []string{"ccdir@example.org", "alerts@example.org"} {
			if err := c.Rcpt(to, nil); err != nil {
				t.Fatal(err)
			}
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
		resp, err := w.CloseWithLMTPResponse()
		var lerr smtp.LMTPDataError
		switch {
		case strings.Contains(body, "BAD"):
			// Refused, yet 250 for each (LMTP never answers 5xx:
			// TestLMTPNeverRefuses).
			if errors.As(err, &lerr) || len(resp) != 2 || !strings.Contains(resp["alerts@example.org"].StatusText, "unsigned") {
				t.Fatalf("refused message: %v, %+v", err, resp)
			}
		case err != nil || len(resp) != 2:
			t.Fatalf("accepted message: %v, %d responses", err, len(resp))
		}
		if err := c.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 2 || len(rc.got[0].To) != 2 {
		t.Fatalf("handled %+v: one call per message, with both recipients", rc.got)
	}
}

func TestShutdownFinishesMessagesInFlight(t *testing.T) {
	rc := &recorder{hold: make(chan struct{}), started: make(chan struct{}, 1)}
	s := New(Config{Addresses: []string{"ccdir@example.org"}}, rc.handle)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.ServeSMTP(l) }()
	sent := make(chan error, 1)
	go func() { sent <- send(t, l.Addr().String(), "a@example.org", []string{"ccdir@example.org"}, msg) }()
	select { // wait until the message is in the handler
	case <-rc.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the message never reached the handler")
	}
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// New connections are refused while the message in flight finishes.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections during shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(rc.hold)
	if err := <-sent; err != nil {
		t.Fatalf("the message in flight: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if len(rc.got) != 1 {
		t.Fatalf("handled %d messages", len(rc.got))
	}
}

func TestSTARTTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	rc := &recorder{}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}, rc, false)
	c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if err := c.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if state, ok := c.TLSConnectionState(); !ok || !state.HandshakeComplete {
		t.Fatal("the session is not encrypted")
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 1 {
		t.Fatalf("handled %d messages", len(rc.got))
	}
}

// selfSigned makes a certificate for localhost and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Reject is a refusal as a handler returns it (package receive has its
// own: inbound.Refusal and receive.Deferred).
type Reject struct {
	Code     int
	Enhanced [3]int
	Message  string
}

func (r *Reject) Error() string {
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, r.Enhanced[0], r.Enhanced[1], r.Enhanced[2], r.Message)
}

// SMTPStatus implements Status.
func (r *Reject) SMTPStatus() (int, [3]int, string) { return r.Code, r.Enhanced, r.Message }

// With RequireTLS, MAIL before STARTTLS is refused (530 5.7.0); after
// STARTTLS with a real TLS client the mail goes through; LMTP on a unix
// socket is not concerned.
func TestRequireTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	rc := &recorder{}
	cfg := Config{Addresses: []string{"ccdir@example.org"}, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, RequireTLS: true}
	_, addr := start(t, cfg, rc, false)

	err := send(t, addr, "a@example.org", []string{"ccdir@example.org"}, msg)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 530 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 0}) {
		t.Fatalf("MAIL without STARTTLS: %v, want 530 5.7.0", err)
	}

	c, err := smtp.DialStartTLS(addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	defer c.Close()
	if err := c.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("MAIL after STARTTLS: %v", err)
	}
	if state, ok := c.TLSConnectionState(); !ok || !state.HandshakeComplete {
		t.Fatal("the session is not encrypted")
	}

	_, sock := start(t, cfg, rc, true)
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	lc := smtp.NewClientLMTP(conn)
	defer lc.Close()
	if err := lc.Hello("mta.example.org"); err != nil {
		t.Fatal(err)
	}
	if err := lc.Mail("a@example.org", nil); err != nil {
		t.Fatalf("LMTP on a unix socket: %v", err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.got) != 1 {
		t.Fatalf("handled %d messages, want the one sent over TLS", len(rc.got))
	}
}

// TestTaggedRecipients: the bounce address is taken with any +tag (a
// report comes back to the tagged envelope sender), the other addresses
// only as they are; a tag of another address, or an empty one, is 550.
func TestTaggedRecipients(t *testing.T) {
	rc := &recorder{}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org", "ccdir-bounces@example.org"},
		Tagged: []string{"CCDIR-bounces@example.org"}}, rc, false)
	msg := "From: MAILER-DAEMON@example.net\r\nSubject: bounce\r\n\r\nfailed\r\n"
	for _, to := range []string{"ccdir-bounces+17-abc@example.org", "CCDIR-BOUNCES+x@EXAMPLE.ORG", "ccdir-bounces@example.org"} {
		if err := send(t, addr, "", []string{to}, msg); err != nil {
			t.Errorf("RCPT %s: %v", to, err)
		}
	}
	for _, to := range []string{"ccdir+17-abc@example.org", "ccdir-bounces+@example.org", "ccdir-bounces+x@other.example", "ccdir-bouncesx@example.org"} {
		if err := send(t, addr, "", []string{to}, msg); code(err) != 550 {
			t.Errorf("RCPT %s: %v, want 550", to, err)
		}
	}
}

// TestTaggedApart: a message goes to the Tagged (bounce) address or to
// the others, never both: a RCPT of the other kind than the first is
// answered 452 4.5.3, so the client sends that copy in a transaction of
// its own, and the message goes on for the recipients taken.
func TestTaggedApart(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		rc := &recorder{}
		_, addr := start(t, Config{Addresses: []string{"ccdir@example.org", "ccdir-sendkey@example.org", "ccdir-bounces@example.org"},
			Tagged: []string{"ccdir-bounces@example.org"}}, rc, lmtp)
		for i, tc := range []struct{ first, second string }{
			{"ccdir-bounces+1-ab@example.org", "ccdir@example.org"},
			{"ccdir-bounces@example.org", "ccdir-sendkey@example.org"},
			{"ccdir@example.org", "ccdir-bounces+2-cd@example.org"},
		} {
			var c *smtp.Client
			var err error
			if lmtp {
				conn, derr := net.Dial("unix", addr)
				if derr != nil {
					t.Fatal(derr)
				}
				c = smtp.NewClientLMTP(conn)
			} else if c, err = smtp.Dial(addr); err != nil {
				t.Fatal(err)
			}
			if lmtp {
				err = c.Hello("localhost")
			}
			if err == nil {
				err = c.Mail("", nil)
			}
			if err == nil {
				err = c.Rcpt(tc.first, nil)
			}
			if err != nil {
				t.Fatalf("lmtp %v, case %d: %v", lmtp, i, err)
			}
			err = c.Rcpt(tc.second, nil)
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 5, 3}) {
				t.Fatalf("lmtp %v, RCPT %s after %s: %v, want 452 4.5.3", lmtp, tc.second, tc.first, err)
			}
			w, err := c.Data()
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, msg)
			if err := w.Close(); err != nil {
				t.Fatalf("lmtp %v: DATA for the first recipient: %v", lmtp, err)
			}
			c.Quit()
			rc.mu.Lock()
			got := rc.got[len(rc.got)-1].To
			rc.mu.Unlock()
			if len(got) != 1 || got[0] != tc.first {
				t.Fatalf("lmtp %v: handled for %v, want only %s", lmtp, got, tc.first)
			}
		}
	}
}
