// Package smtptest runs an in-process SMTP sink on 127.0.0.1 for tests and
// benchmarks: a go-smtp server with a recording backend, optional STARTTLS
// or implicit TLS with a throw-away self-signed certificate, optional AUTH
// PLAIN, and switches to refuse recipients or hang up in the middle of DATA.
//
// By default it keeps only the size and SHA-256 of each message, so that a
// benchmark with 10,000 messages stays small; set Options.KeepData to keep
// the bodies.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure the sink. The zero value accepts everything over plain
// SMTP without AUTH.
type Options struct {
	// TLS offers STARTTLS; ImplicitTLS speaks TLS from the first byte
	// (smtps). Either way the certificate is made up for this server and
	// trusted by Server.TLSConfig.
	TLS         bool
	ImplicitTLS bool
	// User and Password, when set, require AUTH PLAIN before MAIL.
	// AUTH is offered only over TLS unless InsecureAuth is set (which
	// lets tests check that clients refuse to send a password in clear).
	User, Password string
	InsecureAuth   bool
	// Fail, if set, is asked at each RCPT; a non-nil answer refuses the
	// recipient. attempt counts RCPT commands for rcpt, from 1.
	Fail func(rcpt string, attempt int) *smtp.SMTPError
	// Drop, if set, is asked at DATA (for the first recipient and its
	// attempt number); true makes the server read DropAfterBytes bytes of
	// the message and then close the connection without answering.
	Drop           func(rcpt string, attempt int) bool
	DropAfterBytes int
	// MaxMessageBytes is advertised as SIZE and enforced; 0 means none.
	MaxMessageBytes int64
	// KeepData keeps each message's bytes in Message.Data.
	KeepData bool
	// NoChunking hides CHUNKING from the EHLO answer, so that clients
	// send DATA rather than BDAT. Only without TLS.
	NoChunking bool
}

// Message is one accepted message.
type Message struct {
	From string
	To   []string
	Size int
	Sum  [sha256.Size]byte // SHA-256 of the data as received (CRLF, dots removed)
	Data []byte            // only with Options.KeepData
	TLS  bool              // received over TLS
	User string            // authenticated user, if any
}

// Server is a running sink. Its methods are safe for concurrent use.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	// URL is the delivery URL for this server: smtp://[user@]addr for
	// STARTTLS, smtp://addr?starttls=off without TLS, smtps://… for
	// implicit TLS.
	URL string
	// TLSConfig is a client configuration that trusts the server's
	// certificate (RootCAs); nil without TLS.
	TLSConfig *tls.Config
	// RootCAs holds the server's self-signed certificate.
	RootCAs *x509.CertPool

	o   Options
	srv *smtp.Server

	mu       sync.Mutex
	msgs     []Message
	count    map[string]int
	attempts map[string]int
	auths    int
	conns    int
	dropped  int
	live     map[*smtp.Conn]bool
}

// NewServer starts a sink on 127.0.0.1:0 and stops it when the test ends.
func NewServer(t testing.TB, o Options) *Server {
	t.Helper()
	s := &Server{o: o, count: map[string]int{}, attempts: map[string]int{}, live: map[*smtp.Conn]bool{}}
	srv := smtp.NewServer(backend{s})
	srv.Domain = "sink.test"
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	srv.MaxMessageBytes = o.MaxMessageBytes
	srv.AllowInsecureAuth = o.InsecureAuth
	srv.ErrorLog = log.New(io.Discard, "", 0)
	s.srv = srv

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("smtptest: %v", err)
	}
	s.Addr = l.Addr().String()
	if o.NoChunking {
		if o.TLS || o.ImplicitTLS {
			l.Close()
			t.Fatal("smtptest: NoChunking works without TLS only")
		}
		l = noChunkingListener{l}
	}
	if o.TLS || o.ImplicitTLS {
		cert, pool, err := selfSigned()
		if err != nil {
			l.Close()
			t.Fatalf("smtptest: certificate: %v", err)
		}
		server := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.RootCAs = pool
		s.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if o.ImplicitTLS {
			l = tls.NewListener(l, server)
		} else {
			srv.TLSConfig = server
		}
	}
	user := ""
	if o.User != "" {
		user = o.User + "@"
	}
	switch {
	case o.ImplicitTLS:
		s.URL = "smtps://" + user + s.Addr
	case o.TLS:
		s.URL = "smtp://" + user + s.Addr
	default:
		s.URL = "smtp://" + user + s.Addr + "?starttls=off"
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return s
}

// Close stops the server; it is also done when the test ends.
func (s *Server) Close() error { return s.srv.Close() }

// Messages returns a copy of the accepted messages, in order of arrival.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Received is the number of accepted messages.
func (s *Server) Received() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Count is the number of accepted messages addressed to rcpt.
func (s *Server) Count(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[rcpt]
}

// Counts returns the number of accepted messages per recipient.
func (s *Server) Counts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.count))
	for k, v := range s.count {
		out[k] = v
	}
	return out
}

// Attempts is the number of RCPT commands seen for rcpt.
func (s *Server) Attempts(rcpt string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts[rcpt]
}

// AuthAttempts is the number of AUTH exchanges started.
func (s *Server) AuthAttempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// Connections is the number of SMTP sessions opened (a STARTTLS counts
// twice: before and after).
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// Dropped is the number of connections closed in the middle of DATA.
func (s *Server) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

type backend struct{ s *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.s.mu.Lock()
	b.s.conns++
	b.s.live[c] = true
	b.s.mu.Unlock()
	return &session{s: b.s, c: c}, nil
}

// HangUp closes every open connection, as a server does with idle
// clients; the listener stays open.
func (s *Server) HangUp() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.live {
		c.Conn().Close()
		delete(s.live, c)
	}
}

type session struct {
	s      *Server
	c      *smtp.Conn
	user   string
	from   string
	inTx   bool
	to     []string
	tryNum int // attempt number of the first recipient
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = (*session)(nil)
)

func (se *session) AuthMechanisms() []string {
	if se.s.o.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	se.s.mu.Lock()
	se.s.auths++
	se.s.mu.Unlock()
	if se.s.o.User == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if (identity != "" && identity != user) || user != se.s.o.User || pass != se.s.o.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		se.user = user
		return nil
	}), nil
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.o.User != "" && se.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if se.inTx {
		// Like real MTAs (go-smtp itself tolerates it): a client must
		// RSET after a failed transaction.
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "Nested MAIL command"}
	}
	se.from, se.to, se.inTx = from, nil, true
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.s.mu.Lock()
	se.s.attempts[to]++
	n := se.s.attempts[to]
	se.s.mu.Unlock()
	if f := se.s.o.Fail; f != nil {
		if err := f(to, n); err != nil {
			return err
		}
	}
	if len(se.to) == 0 {
		se.tryNum = n
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	if len(se.to) == 0 {
		return &smtp.SMTPError{Code: 503, EnhancedCode: smtp.EnhancedCode{5, 5, 1}, Message: "No recipients"}
	}
	o := se.s.o
	if o.Drop != nil && o.Drop(se.to[0], se.tryNum) {
		io.CopyN(io.Discard, r, int64(o.DropAfterBytes))
		se.c.Conn().Close()
		se.s.mu.Lock()
		se.s.dropped++
		se.s.mu.Unlock()
		return errors.New("connection dropped by smtptest")
	}
	m := Message{From: se.from, To: se.to, User: se.user}
	_, m.TLS = se.c.TLSConnectionState()
	h := sha256.New()
	var w io.Writer = h
	var buf bytes.Buffer
	if o.KeepData {
		w = io.MultiWriter(h, &buf)
	}
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(w, r, *bp)
	copyBufs.Put(bp)
	if err != nil {
		return err // ErrDataTooLarge answers 552
	}
	m.Size = int(n)
	h.Sum(m.Sum[:0])
	if o.KeepData {
		m.Data = buf.Bytes()
	}
	se.s.mu.Lock()
	se.s.msgs = append(se.s.msgs, m)
	for _, rc := range se.to {
		se.s.count[rc]++
	}
	se.s.mu.Unlock()
	se.from, se.to, se.inTx = "", nil, false
	return nil
}

func (se *session) Reset() { se.from, se.to, se.inTx = "", nil, false }

func (se *session) Logout() error {
	se.s.mu.Lock()
	delete(se.s.live, se.c)
	se.s.mu.Unlock()
	return nil
}

// selfSigned makes a P-256 certificate for 127.0.0.1 and localhost, valid
// for a day, and a pool that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("parse: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}

// noChunkingListener's connections drop the CHUNKING line that go-smtp's
// server always writes in its EHLO answer (never the last line: SIZE
// follows), written in one piece.
type noChunkingListener struct{ net.Listener }

func (l noChunkingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return noChunkingConn{c}, nil
}

type noChunkingConn struct{ net.Conn }

func (c noChunkingConn) Write(p []byte) (int, error) {
	q := bytes.ReplaceAll(p, []byte("250-CHUNKING\r\n"), nil)
	if _, err := c.Conn.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// copyBufs are the buffers messages are read through, reused so that a
// sink taking thousands of messages does not make garbage for each.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}
