package outbox

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

type smtpTransport struct {
	addr        string // host:port
	host        string
	user        string
	password    string
	implicitTLS bool
	startTLS    bool
	hostname    string
	timeout     time.Duration
	msgTimeout  time.Duration // TransportOptions.MessageTimeout
	tlsConfig   *tls.Config
	display     string
}

func newSMTP(u *url.URL, o TransportOptions) (*smtpTransport, error) {
	t := &smtpTransport{
		host:        u.Hostname(),
		implicitTLS: u.Scheme == "smtps",
		startTLS:    u.Scheme == "smtp",
		hostname:    o.Hostname,
		timeout:     o.Timeout,
		msgTimeout:  o.MessageTimeout,
		password:    o.Password,
	}
	if t.host == "" {
		return nil, fmt.Errorf("%w: %s: no host; valid forms: %s", ErrBadURL, u.Redacted(), URLForms)
	}
	if u.Path != "" && u.Path != "/" || u.Opaque != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: %s: an SMTP URL has no path", ErrBadURL, u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = "587"
		if t.implicitTLS {
			port = "465"
		}
	}
	t.addr = net.JoinHostPort(t.host, port)
	for k, v := range u.Query() {
		switch {
		case k == "starttls" && u.Scheme == "smtp" && len(v) == 1 && v[0] == "off":
			t.startTLS = false
		case k == "starttls" && u.Scheme == "smtp" && len(v) == 1 && v[0] == "on":
		default:
			return nil, fmt.Errorf("%w: %s: unknown parameter %s=%s (only smtp:// takes starttls=off)", ErrBadURL, u.Redacted(), k, strings.Join(v, ","))
		}
	}
	if u.User != nil {
		t.user = u.User.Username()
	}
	tlsOn := t.implicitTLS || t.startTLS
	switch {
	case t.user != "" && !tlsOn:
		return nil, fmt.Errorf("%w: %s: AUTH is only sent over TLS; drop the user name or starttls=off", ErrBadURL, u.Redacted())
	case t.user != "" && t.password == "":
		return nil, fmt.Errorf("%w: %s names user %q but no password was given (delivery.password_file)", ErrBadURL, u.Redacted(), t.user)
	case t.user == "" && t.password != "":
		return nil, fmt.Errorf("%w: %s: a password was given but the URL names no user (smtp://USER@host)", ErrBadURL, u.Redacted())
	}
	if strings.ContainsAny(o.Hostname, " \t\r\n") {
		return nil, fmt.Errorf("outbox: bad HELO hostname %q", o.Hostname)
	}
	if o.TLSConfig != nil {
		t.tlsConfig = o.TLSConfig.Clone()
	} else {
		t.tlsConfig = &tls.Config{}
	}
	if t.tlsConfig.ServerName == "" {
		t.tlsConfig.ServerName = t.host
	}
	if t.tlsConfig.MinVersion == 0 {
		t.tlsConfig.MinVersion = tls.VersionTLS12
	}
	d := url.URL{Scheme: u.Scheme, Host: t.addr}
	if t.user != "" {
		d.User = url.User(t.user)
	}
	if u.Scheme == "smtp" && !t.startTLS {
		d.RawQuery = "starttls=off"
	}
	t.display = d.String()
	return t, nil
}

func (t *smtpTransport) String() string { return t.display }

// NewSession connects, says EHLO, starts TLS and authenticates, within
// the message timeout: the session is opened for a message, and the
// time it took counts against that message's (the first Send's) window.
func (t *smtpTransport) NewSession(ctx context.Context) (Session, error) {
	s := &smtpSession{t: t, opened: time.Now()}
	ctx, cancel := context.WithDeadlineCause(ctx, s.opened.Add(t.msgTimeout), errMessageTimeout)
	defer cancel()
	if err := s.connect(ctx); err != nil {
		return nil, s.timedOut(ctx, err, t.msgTimeout)
	}
	return s, nil
}

// errMessageTimeout is the cause of a message context that ran out.
var errMessageTimeout = errors.New("message timeout")

// window is how long the delivery of a message of size bytes may take:
// the message timeout, and a second for every MessageTimeoutFloorRate
// bytes, so that a large message to a server that reads it steadily is
// not cut (a stalled write is cut by Timeout anyway).
func (t *smtpTransport) window(size int) time.Duration {
	return t.msgTimeout + time.Duration(size)*time.Second/MessageTimeoutFloorRate
}

// timedOut says, for an error that came after the message context ran
// out (window), that it did: a temporary failure with the connection
// lost, rather than the "use of closed network connection" it caused.
func (s *smtpSession) timedOut(ctx context.Context, err error, window time.Duration) error {
	if err == nil || !errors.Is(context.Cause(ctx), errMessageTimeout) {
		return err
	}
	msg := fmt.Sprintf("%s: not delivered within %v (the message timeout); the server answers too slowly", s.t.addr, window.Round(time.Millisecond))
	if s.dataEnded {
		msg = fmt.Sprintf("%s: no answer to the end of the data within %v (the message timeout); the message may have arrived", s.t.addr, window.Round(time.Millisecond))
	}
	return &DeliveryError{Temporary: true, Msg: msg, Err: errors.Join(err, ErrConnectionLost)}
}

type smtpSession struct {
	t *smtpTransport
	// opened is when NewSession began, until the first Send, whose
	// window starts then; zero after.
	opened time.Time
	// dataEnded says that the end of the message data was being sent or
	// answered: past it, a lost connection may have delivered it.
	dataEnded bool
	c         *smtp.Client
	conn      net.Conn // the TCP connection under c, for write deadlines
	// data is the connection c speaks through (TLS, or conn itself), for
	// BDAT, which go-smtp's client does not send; tls is the TLS
	// connection, if any.
	data     net.Conn
	tls      *tls.Conn
	chunking bool          // the server offers CHUNKING (RFC 3030)
	bw       *bufio.Writer // on data, for BDAT; made once per connection
}

func (s *smtpSession) connect(ctx context.Context) (err error) {
	t := s.t
	d := net.Dialer{Timeout: t.timeout}
	conn, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return &DeliveryError{Temporary: true, Msg: fmt.Sprintf("connect to %s: %v", t.addr, err), Err: err}
	}
	var c *smtp.Client
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	data := conn
	switch {
	case t.implicitTLS:
		s.tls = tls.Client(conn, t.tlsConfig)
		conn.SetDeadline(time.Now().Add(t.timeout))
		err := s.tls.HandshakeContext(ctx)
		conn.SetDeadline(time.Time{})
		if err != nil {
			return &DeliveryError{Temporary: true, Msg: fmt.Sprintf("%s: TLS: %v", t.addr, err), Err: err}
		}
		data = s.tls
		c = smtp.NewClient(data)
	case t.startTLS:
		// STARTTLS is done here rather than by go-smtp, so that the TLS
		// connection is at hand for BDAT; go-smtp then starts on it as
		// on a fresh connection (its greeting replayed) and says EHLO
		// again, as RFC 3207 requires.
		if s.tls, err = t.startTLSConn(ctx, conn); err != nil {
			return err
		}
		data = s.tls
		c = smtp.NewClient(&greetedConn{Conn: s.tls, greeting: strings.NewReader("220 " + t.host + " ESMTP\r\n")})
	default:
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout = t.timeout
	c.SubmissionTimeout = 2 * t.timeout
	if err := c.Hello(t.hostname); err != nil {
		return s.setupError("EHLO", err)
	}
	if t.implicitTLS || t.startTLS {
		if s.tls == nil || !s.tls.ConnectionState().HandshakeComplete {
			return &DeliveryError{Msg: fmt.Sprintf("%s: TLS is not established", t.addr)}
		}
	}
	if t.user != "" {
		if err := authenticate(c, s.tls, t.user, t.password); err != nil {
			return s.setupError("AUTH", err)
		}
	}
	s.chunking, _ = c.Extension("CHUNKING")
	s.c, s.conn, s.data = c, conn, data
	return nil
}

// startTLSConn greets the server, says EHLO, asks for STARTTLS and
// returns the TLS connection over conn, handshake done.
func (t *smtpTransport) startTLSConn(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	conn.SetDeadline(time.Now().Add(t.timeout))
	defer conn.SetDeadline(time.Time{})
	text := textproto.NewConn(conn)
	step := func(stage string, code int, cmd string) (string, error) {
		if cmd != "" {
			if err := text.PrintfLine("%s", cmd); err != nil {
				return "", &DeliveryError{Temporary: true, Msg: fmt.Sprintf("%s %s: %v", t.addr, stage, err), Err: err}
			}
		}
		_, msg, err := text.ReadResponse(code)
		if err != nil {
			de := toDeliveryError(replyError(err))
			de.Msg = fmt.Sprintf("%s %s: %s", t.addr, stage, de.Msg)
			return "", de
		}
		return msg, nil
	}
	if _, err := step("greeting", 220, ""); err != nil {
		return nil, err
	}
	hostname := t.hostname
	if hostname == "" {
		hostname = "localhost"
	}
	ehlo, err := step("EHLO", 250, "EHLO "+hostname)
	if err != nil {
		return nil, err
	}
	offered := false
	for _, line := range strings.Split(ehlo, "\n")[1:] {
		if strings.EqualFold(strings.TrimSpace(line), "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return nil, &DeliveryError{Msg: fmt.Sprintf("%s does not offer STARTTLS; use smtps:// or, for a local relay only, ?starttls=off", t.addr)}
	}
	if _, err := step("STARTTLS", 220, "STARTTLS"); err != nil {
		return nil, err
	}
	tc := tls.Client(conn, t.tlsConfig)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, &DeliveryError{Temporary: true, Msg: fmt.Sprintf("%s: TLS: %v", t.addr, err), Err: err}
	}
	return tc, nil
}

// greetedConn replays a greeting before what the connection reads, for
// an SMTP client started on a connection whose greeting was read already.
type greetedConn struct {
	net.Conn
	greeting *strings.Reader
}

func (c *greetedConn) Read(p []byte) (int, error) {
	if c.greeting.Len() > 0 {
		return c.greeting.Read(p)
	}
	return c.Conn.Read(p)
}

// replyError turns a reply that textproto read (a *textproto.Error) into
// the *smtp.SMTPError that go-smtp would have returned for it, enhanced
// status code included.
func replyError(err error) error {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return err
	}
	se := &smtp.SMTPError{Code: te.Code, EnhancedCode: smtp.NoEnhancedCode, Message: te.Msg}
	if parts := strings.SplitN(te.Msg, " ", 2); len(parts) == 2 {
		var ec smtp.EnhancedCode
		if n, _ := fmt.Sscanf(parts[0], "%d.%d.%d", &ec[0], &ec[1], &ec[2]); n == 3 && ec[0] == te.Code/100 {
			se.EnhancedCode, se.Message = ec, parts[1]
		}
	}
	return se
}

// ErrNoTLS is returned instead of sending a password over a connection
// that is not encrypted.
var ErrNoTLS = errors.New("refusing to send AUTH over a connection without TLS")

// authenticate sends AUTH PLAIN, but only over tc, an established TLS
// connection: go-sasl itself does not refuse plaintext.
func authenticate(c *smtp.Client, tc *tls.Conn, user, password string) error {
	if tc == nil || !tc.ConnectionState().HandshakeComplete {
		return ErrNoTLS
	}
	if !c.SupportsAuth(sasl.Plain) {
		return errors.New("the server does not offer AUTH PLAIN")
	}
	return c.Auth(sasl.NewPlainClient("", user, password))
}

func (s *smtpSession) setupError(stage string, err error) error {
	if strings.Contains(err.Error(), "doesn't support STARTTLS") {
		return &DeliveryError{Msg: fmt.Sprintf("%s does not offer STARTTLS; use smtps:// or, for a local relay only, ?starttls=off", s.t.addr), Err: err}
	}
	de := toDeliveryError(err)
	de.Msg = fmt.Sprintf("%s %s: %s", s.t.addr, stage, de.Msg)
	return de
}

func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

// toDeliveryError classifies an error from the go-smtp client.
func toDeliveryError(err error) *DeliveryError {
	var de *DeliveryError
	if errors.As(err, &de) {
		c := *de
		return &c
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		de := &DeliveryError{Temporary: se.Temporary(), Code: se.Code, Msg: se.Message, Err: err}
		if ec := se.EnhancedCode; ec != smtp.EnhancedCodeNotSet && ec != smtp.NoEnhancedCode {
			de.Enhanced = fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
		}
		return de
	}
	if isConnError(err) {
		return &DeliveryError{Temporary: true, Msg: err.Error(), Err: err}
	}
	return &DeliveryError{Msg: err.Error(), Err: err}
}

func (s *smtpSession) drop() {
	if s.c != nil {
		s.c.Close()
	}
	s.c, s.conn, s.data, s.tls, s.bw = nil, nil, nil, nil, nil
}

// Close says QUIT and closes the connection.
func (s *smtpSession) Close() error {
	if s.c == nil {
		return nil
	}
	err := s.c.Quit()
	s.drop()
	if isConnError(err) {
		err = nil // the peer went away first; nothing is lost
	}
	return err
}

// Send runs one transaction on the session's connection, within the
// message's window (window; the first message's starts when NewSession
// began). A connection the server closed while idle is noticed
// before DATA and replaced once; a connection lost during or after DATA,
// or at the timeout, is reported as a temporary failure wrapping
// ErrConnectionLost (the message may or may not have arrived).
func (s *smtpSession) Send(ctx context.Context, m *Message) error {
	start := s.opened
	if start.IsZero() {
		start = time.Now()
	}
	s.opened = time.Time{}
	window := s.t.window(m.Len())
	ctx, cancel := context.WithDeadlineCause(ctx, start.Add(window), errMessageTimeout)
	defer cancel()
	s.dataEnded = false
	err := s.send(ctx, m)
	if terr := s.timedOut(ctx, err, window); terr != err {
		s.drop()
		return terr
	}
	return err
}

func (s *smtpSession) send(ctx context.Context, m *Message) error {
	if err := CheckAddress(m.From); err != nil {
		return &DeliveryError{Msg: "sender: " + err.Error()}
	}
	if err := CheckAddress(m.To); err != nil {
		return &DeliveryError{Msg: "recipient: " + err.Error()}
	}
	fresh := false
	if s.c == nil {
		if err := s.connect(ctx); err != nil {
			return lost(err)
		}
		fresh = true
	}
	dataStarted, err := s.transaction(ctx, m)
	if err != nil && !dataStarted && !fresh && (isConnError(err) || smtpCode(err) == 421) {
		s.drop()
		if err := s.connect(ctx); err != nil {
			return lost(err)
		}
		dataStarted, err = s.transaction(ctx, m)
	}
	if err == nil {
		return nil
	}
	de := toDeliveryError(err)
	if !isConnError(err) && smtpCode(err) != 421 {
		// The connection lives (the server refused, or go-smtp refused
		// before sending): end the transaction so that the next MAIL is
		// not "nested".
		if rerr := s.c.Reset(); rerr != nil {
			s.drop()
			de.Err = errors.Join(de.Err, ErrConnectionLost)
		}
		return de
	}
	s.drop()
	de.Temporary = true
	de.Err = errors.Join(de.Err, ErrConnectionLost)
	if dataStarted {
		de.Msg = "during DATA: " + de.Msg
	}
	return de
}

func lost(err error) error {
	de := toDeliveryError(err)
	de.Temporary = true
	de.Err = errors.Join(de.Err, ErrConnectionLost)
	return de
}

// dataChunk is how much message data is written under one write deadline.
const dataChunk = 64 << 10

func (s *smtpSession) transaction(ctx context.Context, m *Message) (dataStarted bool, err error) {
	c := s.c
	conn := s.conn
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	opts := &smtp.MailOptions{Size: int64(m.Len())}
	if !isASCII(m.From) || !isASCII(m.To) {
		opts.UTF8 = true
	}
	if err := c.Mail(m.From, opts); err != nil {
		return false, err
	}
	if err := c.Rcpt(m.To, nil); err != nil {
		return false, err
	}
	if s.chunking {
		return true, s.bdat(m)
	}
	w, err := c.Data()
	if err != nil {
		return false, err
	}
	// go-smtp sets no deadline on data writes; without one a stalled
	// server would hold the session forever. The parts go through one
	// writer, which dot-stuffs and ends lines across their boundaries.
	for _, p := range m.Parts() {
		for len(p) > 0 {
			n := min(len(p), dataChunk)
			conn.SetWriteDeadline(time.Now().Add(s.t.timeout))
			if _, err := w.Write(p[:n]); err != nil {
				return true, err
			}
			p = p[n:]
		}
	}
	conn.SetWriteDeadline(time.Now().Add(s.t.timeout))
	s.dataEnded = true
	err = w.Close() // writes the final dot and reads the answer
	conn.SetWriteDeadline(time.Time{})
	return true, err
}

// bdat sends m as one BDAT LAST chunk (RFC 3030): the bytes as they are,
// with no dot-stuffing on either side, and reads the answer. go-smtp's
// client does not send BDAT; between commands its connection is idle
// (nothing is pipelined), so the chunk is written on the connection it
// speaks through and the answer read from it before go-smtp goes on.
func (s *smtpSession) bdat(m *Message) error {
	conn := s.conn
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(s.data, dataChunk)
	}
	w := s.bw
	fmt.Fprintf(w, "BDAT %d LAST\r\n", m.Len())
	for _, p := range m.Parts() {
		for len(p) > 0 {
			n := min(len(p), dataChunk)
			conn.SetWriteDeadline(time.Now().Add(s.t.timeout))
			if _, err := w.Write(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
	}
	conn.SetWriteDeadline(time.Now().Add(s.t.timeout))
	err := w.Flush()
	conn.SetWriteDeadline(time.Time{})
	if err != nil {
		return err
	}
	s.dataEnded = true
	conn.SetReadDeadline(time.Now().Add(2 * s.t.timeout))
	defer conn.SetReadDeadline(time.Time{})
	_, _, err = textproto.NewReader(bufio.NewReaderSize(s.data, 512)).ReadResponse(250)
	var te *textproto.Error
	if err != nil && !errors.As(err, &te) {
		// Not a reply (a garbled one, or none): where the next one
		// starts is unknown, so the connection cannot be used again.
		return lost(err)
	}
	return replyError(err)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}
