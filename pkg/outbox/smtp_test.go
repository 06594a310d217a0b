package outbox

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
)

const (
	sinkUser = "ccdir"
	sinkPass = "correct horse battery staple"
)

func sinkTransport(t testing.TB, srv *smtptest.Server, password string) Transport {
	t.Helper()
	tr, err := NewTransport(srv.URL, TransportOptions{Password: password, TLSConfig: srv.TLSConfig, Hostname: "ccdir.test", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// deliverAll enqueues n messages and delivers them, checking that each
// arrives once, intact.
func deliverAll(t *testing.T, srv *smtptest.Server, tr Transport, n int) []smtptest.Message {
	t.Helper()
	ctx := context.Background()
	o := newOutbox(t, nil)
	want := map[string][]byte{}
	for i := range n {
		m := mail(KindDigest, "d1", rcpt("tls", i), 3000)
		want[m.To] = m.Data
		mustEnqueue(t, o, m)
	}
	sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{Connections: 3})
	if err != nil || sum != (Summary{Sent: n}) {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	got := srv.Messages()
	if len(got) != n {
		t.Fatalf("sink has %d messages, want %d", len(got), n)
	}
	for _, m := range got {
		if m.From != dir || len(m.To) != 1 || !bytes.Equal(m.Data, want[m.To[0]]) {
			t.Fatalf("sink got %q → %v, %d bytes, not what was queued", m.From, m.To, len(m.Data))
		}
		if srv.Count(m.To[0]) != 1 {
			t.Fatalf("%s got %d copies", m.To[0], srv.Count(m.To[0]))
		}
	}
	return got
}

func TestSMTPStartTLSAuth(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: true, User: sinkUser, Password: sinkPass, KeepData: true})
	tr := sinkTransport(t, srv, sinkPass)
	if s := tr.String(); s != "smtp://ccdir@"+srv.Addr || strings.Contains(s, sinkPass) {
		t.Errorf("String() = %q", s)
	}
	for _, m := range deliverAll(t, srv, tr, 12) {
		if !m.TLS || m.User != sinkUser {
			t.Fatalf("message received with TLS=%v user=%q", m.TLS, m.User)
		}
	}
	// One connection per session, reused: 3 sessions, each counted twice
	// by the server (before and after STARTTLS).
	if c := srv.Connections(); c > 6 {
		t.Errorf("%d server sessions for 12 messages over 3 connections", c)
	}
}

func TestSMTPS(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{ImplicitTLS: true, User: sinkUser, Password: sinkPass, KeepData: true})
	tr := sinkTransport(t, srv, sinkPass)
	for _, m := range deliverAll(t, srv, tr, 5) {
		if !m.TLS || m.User != sinkUser {
			t.Fatalf("message received with TLS=%v user=%q", m.TLS, m.User)
		}
	}
}

func TestSMTPStartTLSOff(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{KeepData: true})
	if !strings.HasSuffix(srv.URL, "?starttls=off") {
		t.Fatalf("URL = %s", srv.URL)
	}
	tr := sinkTransport(t, srv, "")
	for _, m := range deliverAll(t, srv, tr, 4) {
		if m.TLS || m.User != "" {
			t.Fatalf("message received with TLS=%v user=%q", m.TLS, m.User)
		}
	}
	if srv.AuthAttempts() != 0 {
		t.Error("AUTH was attempted")
	}
}

func TestSMTPWrongPassword(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: true, User: sinkUser, Password: sinkPass})
	tr := sinkTransport(t, srv, "wrong")
	o := newOutbox(t, nil)
	mustEnqueue(t, o, mail(KindDigest, "d1", rcpt("a", 1), 100))
	_, err := o.Deliver(context.Background(), tr, Filter{}, DeliverOptions{Connections: 1})
	var de *DeliveryError
	if !errors.Is(err, ErrNoSession) || !errors.As(err, &de) && !strings.Contains(err.Error(), "535") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("the password leaked into the error: %v", err)
	}
	if got := counts(t, o); got[Queued] != 1 {
		t.Fatalf("counts = %v", got)
	}
}

func TestSMTPNoAuthWithoutTLS(t *testing.T) {
	// A server that offers AUTH in clear and no STARTTLS.
	srv := smtptest.NewServer(t, smtptest.Options{User: sinkUser, Password: sinkPass, InsecureAuth: true})
	addr := srv.Addr

	// A user without TLS is refused at configuration time.
	_, err := NewTransport("smtp://ccdir@"+addr+"?starttls=off", TransportOptions{Password: sinkPass})
	if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), "TLS") {
		t.Fatalf("NewTransport = %v", err)
	}

	// STARTTLS is required by default: the session is not opened, and no
	// password is sent.
	tr, err := NewTransport("smtp://ccdir@"+addr, TransportOptions{Password: sinkPass, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	o := newOutbox(t, nil)
	mustEnqueue(t, o, mail(KindDigest, "d1", rcpt("a", 1), 100))
	_, err = o.Deliver(context.Background(), tr, Filter{}, DeliverOptions{})
	if !errors.Is(err, ErrNoSession) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Deliver = %v; want a STARTTLS error", err)
	}

	// And the AUTH step itself checks TLS, whatever the server offers.
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("ccdir.test"); err != nil {
		t.Fatal(err)
	}
	if !c.SupportsAuth("PLAIN") {
		t.Fatal("the test server does not offer AUTH in clear")
	}
	if err := authenticate(c, nil, sinkUser, sinkPass); !errors.Is(err, ErrNoTLS) {
		t.Fatalf("authenticate = %v, want ErrNoTLS", err)
	}
	if n := srv.AuthAttempts(); n != 0 {
		t.Fatalf("%d AUTH attempts reached the server", n)
	}
	if srv.Received() != 0 {
		t.Fatal("a message was sent")
	}
}

// TestSMTPFaults: recipients refused with 451 then accepted, refused with
// 550, and the connection dropped in the middle of DATA; after the reruns
// every deliverable recipient has exactly one copy and the failures are
// reported with the server's answer.
func TestSMTPFaults(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.NewServer(t, smtptest.Options{
		TLS: true, User: sinkUser, Password: sinkPass,
		Fail: func(to string, attempt int) *smtp.SMTPError {
			switch {
			case strings.HasPrefix(to, "temp") && attempt == 1:
				return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 1}, Message: "Greylisted, try again later"}
			case strings.HasPrefix(to, "perm"):
				return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user here"}
			}
			return nil
		},
		Drop:           func(to string, attempt int) bool { return strings.HasPrefix(to, "drop") && attempt == 1 },
		DropAfterBytes: 8 << 10,
	})
	tr := sinkTransport(t, srv, sinkPass)
	c := newClock()
	o := newOutbox(t, c)
	var msgs []Message
	kinds := map[string]int{"ok": 20, "temp": 5, "perm": 3, "drop": 4}
	for prefix, n := range kinds {
		for i := range n {
			msgs = append(msgs, mail(KindDigest, "d1", rcpt(prefix, i), 25<<10))
		}
	}
	mustEnqueue(t, o, msgs...)
	opts := DeliverOptions{Connections: 4, Now: c.Now}
	var reported []string
	opts.OnResult = func(r Row, err error) {
		if r.Status == Failed {
			reported = append(reported, r.To+": "+r.LastError)
		}
	}

	sum, err := o.Deliver(ctx, tr, Filter{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Summary{Sent: 20, Deferred: 9, Failed: 3}); sum != want {
		t.Fatalf("first run: %+v, want %+v", sum, want)
	}
	if srv.Dropped() != 4 {
		t.Fatalf("server dropped %d connections, want 4", srv.Dropped())
	}
	if len(reported) != 3 || !strings.Contains(reported[0], "550 5.1.1 No such user here") {
		t.Fatalf("reported failures: %q", reported)
	}
	deferred, _ := o.List(ctx, Filter{Status: []Status{Deferred}})
	for _, r := range deferred {
		if strings.HasPrefix(r.To, "temp") && r.LastError != "451 4.7.1 Greylisted, try again later" {
			t.Errorf("%s deferred with %q", r.To, r.LastError)
		}
	}

	// Not due yet: a rerun at once sends nothing.
	if sum, err := o.Deliver(ctx, tr, Filter{}, opts); err != nil || sum != (Summary{}) {
		t.Fatalf("early rerun: %+v, %v", sum, err)
	}
	c.Add(Backoff(1) + time.Second)
	sum, err = o.Deliver(ctx, tr, Filter{}, opts)
	if err != nil || sum != (Summary{Sent: 9}) {
		t.Fatalf("second run: %+v, %v", sum, err)
	}
	c.Add(time.Hour)
	if sum, err := o.Deliver(ctx, tr, Filter{}, opts); err != nil || sum != (Summary{}) {
		t.Fatalf("third run: %+v, %v", sum, err)
	}

	for prefix, n := range kinds {
		for i := range n {
			to := rcpt(prefix, i)
			want := 1
			if prefix == "perm" {
				want = 0
			}
			if got := srv.Count(to); got != want {
				t.Errorf("%s has %d copies, want %d", to, got, want)
			}
		}
	}
	got := counts(t, o)
	if got[Sent] != 29 || got[Failed] != 3 || got[Queued]+got[Deferred] != 0 {
		t.Errorf("counts = %v", got)
	}
}

func TestSMTPRetryForExceeded(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.NewServer(t, smtptest.Options{
		Fail: func(to string, _ int) *smtp.SMTPError {
			if strings.HasPrefix(to, "busy") {
				return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 2, 2}, Message: "Mailbox full"}
			}
			return nil
		},
	})
	tr := sinkTransport(t, srv, "")
	c := newClock()
	o := newOutbox(t, c)
	mustEnqueue(t, o, mail(KindAlert, "a1", rcpt("busy", 1), 100), mail(KindAlert, "a1", rcpt("ok", 1), 100))
	opts := DeliverOptions{Now: c.Now, RetryFor: 2 * time.Hour}
	var last Row
	for i := range 20 {
		sum, err := o.Deliver(ctx, tr, Filter{}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Failed == 1 {
			rows, _ := o.List(ctx, Filter{Status: []Status{Failed}})
			last = rows[0]
			break
		}
		if i == 19 {
			t.Fatal("never gave up")
		}
		c.Add(Backoff(i+1) + time.Second)
	}
	// Waits of 1+2+4+8+16+32+60 min pass two hours at the 8th attempt.
	if last.To != rcpt("busy", 1) || last.Attempts != 8 || !strings.Contains(last.LastError, "gave up after 8 attempts") ||
		!strings.Contains(last.LastError, "452 4.2.2 Mailbox full") {
		t.Fatalf("failed row = %+v", last)
	}
	if srv.Count(rcpt("ok", 1)) != 1 {
		t.Fatal("the other message was not delivered once")
	}
	// Retry starts a new window.
	if n, err := o.Retry(ctx, nil); err != nil || n != 1 {
		t.Fatalf("Retry = %d, %v", n, err)
	}
	if sum, err := o.Deliver(ctx, tr, Filter{}, opts); err != nil || sum != (Summary{Deferred: 1}) {
		t.Fatalf("after Retry: %+v, %v", sum, err)
	}
}

// TestSMTPReconnect: a server that hangs up on idle connections; the
// session notices before DATA, reconnects once, and sends.
func TestSMTPReconnect(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.NewServer(t, smtptest.Options{TLS: true, User: sinkUser, Password: sinkPass})
	tr := sinkTransport(t, srv, sinkPass)
	s, err := tr.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		if err := s.Send(ctx, &Message{Kind: KindReply, Ref: "r", From: dir, To: rcpt("a", i), Data: mail(KindReply, "r", rcpt("a", i), 100).Data}); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		srv.HangUp()
	}
	if srv.Received() != 3 {
		t.Fatalf("received %d", srv.Received())
	}
}

// TestSMTPResetAfterFailure: the sink answers "503 nested MAIL" like a real
// MTA when a client skips RSET after a refused recipient.
func TestSMTPResetAfterFailure(t *testing.T) {
	ctx := context.Background()
	srv := smtptest.NewServer(t, smtptest.Options{Fail: func(to string, _ int) *smtp.SMTPError {
		if strings.HasPrefix(to, "perm") {
			return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
		}
		return nil
	}})
	tr := sinkTransport(t, srv, "")
	s, err := tr.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i, to := range []string{"perm1@x.example", "ok1@x.example", "perm2@x.example", "ok2@x.example"} {
		m := mail(KindReply, "r", to, 100)
		err := s.Send(ctx, &m)
		if strings.HasPrefix(to, "perm") {
			var de *DeliveryError
			if !errors.As(err, &de) || de.Temporary || de.Code != 550 || de.Enhanced != "5.1.1" || errors.Is(err, ErrConnectionLost) {
				t.Fatalf("send %d: %v", i, err)
			}
		} else if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if srv.Connections() != 1 {
		t.Errorf("%d connections, want 1", srv.Connections())
	}
}

// TestSMTPWriteDeadline: a server that stops reading in the middle of
// DATA must not hold the client longer than the timeout.
func TestSMTPWriteDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Speak just enough SMTP to reach DATA, then stop reading.
		fmt.Fprint(c, "220 stall.test ESMTP\r\n")
		buf := make([]byte, 4096)
		for _, answer := range []string{"250-stall.test\r\n250 SIZE\r\n", "250 ok\r\n", "250 ok\r\n", "354 go ahead\r\n"} {
			if _, err := c.Read(buf); err != nil {
				return
			}
			fmt.Fprint(c, answer)
		}
		time.Sleep(10 * time.Second)
	}()
	tr, err := NewTransport("smtp://"+l.Addr().String()+"?starttls=off", TransportOptions{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := mail(KindDigest, "d", "a@x.example", 16<<20) // more than the socket buffers hold
	start := time.Now()
	err = s.Send(context.Background(), &m)
	if !IsTemporary(err) || !errors.Is(err, ErrConnectionLost) {
		t.Fatalf("Send = %v; want a temporary lost connection", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Send took %v", d)
	}
}

func TestSMTPUntrustedCertificate(t *testing.T) {
	srv := smtptest.NewServer(t, smtptest.Options{TLS: true, User: sinkUser, Password: sinkPass})
	tr, err := NewTransport(srv.URL, TransportOptions{Password: sinkPass, Timeout: 5 * time.Second}) // system roots only
	if err != nil {
		t.Fatal(err)
	}
	o := newOutbox(t, nil)
	mustEnqueue(t, o, mail(KindDigest, "d1", rcpt("a", 1), 100))
	_, err = o.Deliver(context.Background(), tr, Filter{}, DeliverOptions{Connections: 2})
	if !errors.Is(err, ErrNoSession) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Deliver = %v; want a certificate error", err)
	}
	if srv.AuthAttempts() != 0 || srv.Received() != 0 {
		t.Fatal("AUTH or a message went over an unverified connection")
	}
}

// TestChunking: a session sends BDAT when the server offers CHUNKING (as
// go-smtp's server does, over STARTTLS too) and DATA when it does not.
func TestChunking(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    smtptest.Options
		want bool
	}{
		{"plain", smtptest.Options{}, true},
		{"starttls", smtptest.Options{TLS: true}, true},
		{"smtps", smtptest.Options{ImplicitTLS: true}, true},
		{"no-chunking", smtptest.Options{NoChunking: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := smtptest.NewServer(t, tc.o)
			sess, err := sinkTransport(t, srv, "").NewSession(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			if got := sess.(*smtpSession).chunking; got != tc.want {
				t.Errorf("chunking = %v, want %v", got, tc.want)
			}
			m := &Message{From: "directory@cctld-dir.example", To: "ana@dns.pt", Data: []byte("Subject: x\r\n\r\n.\r\nhello\r\n")}
			if err := sess.Send(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			if got := srv.Messages(); len(got) != 1 || got[0].Sum != sha256.Sum256(m.Data) {
				t.Fatalf("the sink did not get the message intact: %+v", got)
			}
		})
	}
}

// TestReplyError: a reply read by textproto becomes go-smtp's error, with
// its enhanced status code, so that it is classified alike.
func TestReplyError(t *testing.T) {
	err := replyError(&textproto.Error{Code: 552, Msg: "5.3.4 Message too big"})
	de := toDeliveryError(err)
	if de.Temporary || de.Code != 552 || de.Enhanced != "5.3.4" || de.Msg != "Message too big" {
		t.Errorf("552: %+v", de)
	}
	de = toDeliveryError(replyError(&textproto.Error{Code: 451, Msg: "try again later"}))
	if !de.Temporary || de.Code != 451 || de.Enhanced != "" || de.Msg != "try again later" {
		t.Errorf("451: %+v", de)
	}
	if replyError(nil) != nil {
		t.Error("replyError(nil) != nil")
	}
}

// An smtps server that accepts the connection and says nothing does not
// hold a session longer than the timeout: the TLS handshake has one too.
func TestImplicitTLSHandshakeTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // silent until the test ends
		}
	}()
	tr, err := NewTransport("smtps://"+l.Addr().String(), TransportOptions{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = tr.NewSession(context.Background())
	if err == nil || !IsTemporary(err) {
		t.Fatalf("NewSession against a silent server: %v, want a temporary error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("NewSession took %v against a 300 ms timeout", d)
	}
}

// A reply to BDAT that is not an SMTP reply leaves the connection in an
// unknown state: the session reports it lost (temporary) and is not used
// again, rather than sending RSET into the middle of the garbage.
func TestBDATGarbledReply(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		text := textproto.NewConn(c)
		text.PrintfLine("220 fake ESMTP")
		for {
			line, err := text.ReadLine()
			if err != nil {
				return
			}
			switch cmd := strings.ToUpper(strings.Fields(line)[0]); cmd {
			case "EHLO":
				text.PrintfLine("250-fake\r\n250-CHUNKING\r\n250 SIZE")
			case "BDAT":
				var n int
				fmt.Sscanf(line, "BDAT %d", &n)
				io.CopyN(io.Discard, text.R, int64(n))
				text.PrintfLine("this is not a reply")
			default:
				text.PrintfLine("250 ok")
			}
		}
	}()
	tr, err := NewTransport("smtp://"+l.Addr().String()+"?starttls=off", TransportOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := tr.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	err = sess.Send(context.Background(), &Message{From: "directory@cctld-dir.example", To: "ana@dns.pt", Data: []byte("Subject: x\r\n\r\nhello\r\n")})
	if !errors.Is(err, ErrConnectionLost) || !IsTemporary(err) {
		t.Fatalf("Send = %v, want a temporary error wrapping ErrConnectionLost", err)
	}
}

// slowServer is an SMTP server on 127.0.0.1 that greets and answers
// EHLO at once, then answers every command of a transaction, each within
// any per-command timeout, but only after delay.
func slowServer(t *testing.T, delay time.Duration) (addr string, accepted func() int) {
	t.Helper()
	return slowServerWith(t, 0, delay, delay)
}

// slowServerWith is slowServer that greets after greet and answers the
// end of the data after dot.
func slowServerWith(t *testing.T, greet, delay, dot time.Duration) (addr string, accepted func() int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var mu sync.Mutex
	n := 0
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				answer := func(s string) bool {
					time.Sleep(delay)
					_, err := fmt.Fprint(c, s)
					return err == nil
				}
				time.Sleep(greet)
				fmt.Fprint(c, "220 slow.test ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.ToUpper(strings.TrimSpace(line))
					switch {
					case strings.HasPrefix(cmd, "EHLO"):
						fmt.Fprint(c, "250-slow.test\r\n250 SIZE 100000000\r\n")
					case cmd == "DATA":
						if !answer("354 go ahead\r\n") {
							return
						}
						for {
							l, err := r.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
						}
						mu.Lock()
						n++
						mu.Unlock()
						time.Sleep(dot - delay)
						answer("250 ok\r\n")
					case cmd == "QUIT":
						answer("221 bye\r\n")
						return
					default:
						answer("250 ok\r\n")
					}
				}
			}()
		}
	}()
	return l.Addr().String(), func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// A relay that answers every command slowly, each within the per-command
// timeout, cannot hold a delivery run for as long as it likes: each
// message has a deadline, after which it stays queued (deferred) and the
// connection is dropped.
func TestSMTPMessageTimeout(t *testing.T) {
	ctx := context.Background()
	addr, accepted := slowServer(t, 250*time.Millisecond)
	tr, err := NewTransport("smtp://"+addr+"?starttls=off", TransportOptions{Timeout: 10 * time.Second, MessageTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	o := newOutbox(t, nil)
	for i := range 3 {
		mustEnqueue(t, o, mail(KindDigest, "d1", rcpt("slow", i), 1000))
	}
	// MAIL, RCPT, DATA and the end of data take 4 × 250 ms at least:
	// more than the message timeout.
	sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{Connections: 1})
	if err != nil && !errors.Is(err, ErrNoSession) {
		t.Fatal(err)
	}
	if sum.Sent != 0 || accepted() != 0 {
		t.Fatalf("Deliver = %+v, %d accepted; want none sent in time", sum, accepted())
	}
	rows, err := o.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Status == Failed || r.Status == Sent {
			t.Fatalf("message %d: %s (%s), want it still queued or deferred", r.ID, r.Status, r.LastError)
		}
		if r.Status == Deferred && !strings.Contains(r.LastError, "message timeout") {
			t.Fatalf("message %d deferred with %q, want the message timeout named", r.ID, r.LastError)
		}
	}
	if sum.Deferred == 0 {
		t.Fatalf("Deliver = %+v, want the messages deferred", sum)
	}
}

// The first message of a session has one message timeout, connecting
// included, not one for NewSession and another for Send: a server slow
// to greet and slow to answer, each part within the timeout, does not
// get both.
func TestSMTPFirstMessageOneWindow(t *testing.T) {
	addr, accepted := slowServerWith(t, 800*time.Millisecond, 100*time.Millisecond, 100*time.Millisecond)
	tr, err := NewTransport("smtp://"+addr+"?starttls=off", TransportOptions{Timeout: 10 * time.Second, MessageTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := mail(KindDigest, "d1", rcpt("slow", 0), 1000)
	err = s.Send(context.Background(), &m)
	if err == nil || !errors.Is(err, ErrConnectionLost) || !strings.Contains(err.Error(), "message timeout") {
		t.Fatalf("Send after 800 ms of connecting and 400 ms of transaction, message timeout 1 s: %v, want the message timeout", err)
	}
	if accepted() != 0 {
		t.Fatal("the message was taken past its timeout")
	}
}

// The message timeout grows with the message (one second per
// MessageTimeoutFloorRate bytes): a large message to a server that
// reads it steadily, slower than the timeout alone allows, is delivered.
func TestSMTPMessageTimeoutGrowsWithSize(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(steadyBackend{})
	srv.Domain, srv.MaxMessageBytes = "steady.test", 50<<20
	go srv.Serve(l)
	defer srv.Close()
	tr, err := NewTransport("smtp://"+l.Addr().String()+"?starttls=off", TransportOptions{Timeout: 10 * time.Second, MessageTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := mail(KindDigest, "d1", rcpt("steady", 0), 256<<10)
	start := time.Now()
	if err := s.Send(context.Background(), &m); err != nil {
		t.Fatalf("256 KiB read at 100 kB/s, message timeout 1 s: after %v: %v", time.Since(start).Round(100*time.Millisecond), err)
	}
}

// steadyBackend reads message data at about 100 kB/s.
type steadyBackend struct{}

func (steadyBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return steadySession{}, nil }

type steadySession struct{}

func (steadySession) Reset()                               {}
func (steadySession) Logout() error                        { return nil }
func (steadySession) Mail(string, *smtp.MailOptions) error { return nil }
func (steadySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (steadySession) Data(r io.Reader) error {
	buf := make([]byte, 10<<10)
	for {
		if _, err := r.Read(buf); err != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// When the message timeout runs out after the end of the data, before
// the answer, the error says the message may have arrived.
func TestSMTPMessageTimeoutAfterData(t *testing.T) {
	addr, _ := slowServerWith(t, 0, 10*time.Millisecond, 3*time.Second)
	tr, err := NewTransport("smtp://"+addr+"?starttls=off", TransportOptions{Timeout: 10 * time.Second, MessageTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	m := mail(KindDigest, "d1", rcpt("slow", 0), 1000)
	err = s.Send(context.Background(), &m)
	if err == nil || !errors.Is(err, ErrConnectionLost) || !IsTemporary(err) || !strings.Contains(err.Error(), "may have arrived") {
		t.Fatalf("Send with no answer to the end of the data: %v, want a temporary error saying the message may have arrived", err)
	}
}
