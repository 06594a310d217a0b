// Package smtpd is ccdir's mail server: a go-smtp backend that accepts
// mail for the directory's own addresses over SMTP (RFC 5321) or LMTP
// (RFC 2033) and hands each message to one Handler — in ccdir, package
// receive's Receiver, which routes it and says what to answer.
//
// Limits are always set: message size (advertised as SIZE), recipients per
// message, line length, read and write timeouts, concurrent connections
// per listener and per client address, and the length of a session
// (however busy the client keeps it), and the bytes of all the messages
// in flight (a memory budget; 452 4.3.1 when it has no room). A
// connection over a limit is answered 421 and closed at once, never kept
// waiting. On SMTP a refused message is rejected at the end of DATA with
// one 5xx line saying why, so no bounce (backscatter) is ever created by
// ccdir; a temporary failure answers 451 so the sender retries.
//
// LMTP is spoken by the MTA that has already accepted the message (RFC
// 2033 §1): a 5xx there would make the MTA bounce it to its envelope
// sender, who may be forged. So on LMTP nothing is ever refused with a
// 5xx: a message the Handler refuses is answered 250 with the reason (the
// Handler logs it), a recipient that is none of Config.Addresses is taken
// at RCPT and handed to the Handler (which drops it, logged), and the size
// limit is ccdir's, not the protocol's (SIZE is advertised without a limit,
// so no MAIL is refused for its SIZE; past MaxMessageBytes the Handler sees one byte
// more than the limit and refuses the message). Temporary failures stay
// 4xx: the MTA keeps the message and retries.
package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Defaults of Config.
const (
	DefaultMaxConnections      = 64
	DefaultMaxConnectionsPerIP = 8
	DefaultSessionTimeout      = 10 * time.Minute
	DefaultMemoryBudget        = 32 << 20 // three messages of the default largest size (10 MiB)
)

// Envelope is what the client said before DATA.
type Envelope struct {
	From       string   // MAIL FROM; "" for a bounce
	To         []string // RCPT TO, each one of Config.Addresses
	RemoteAddr string
}

// Handler handles one message. It must read r (up to the size limit) and
// return nil to accept it, an error with an SMTPStatus method to refuse it
// with that reply, or any other error for a temporary failure (451).
type Handler func(ctx context.Context, env Envelope, r io.Reader) error

// Status is implemented by errors that carry their SMTP reply.
type Status interface {
	SMTPStatus() (code int, enhanced [3]int, message string)
}

// Config configures a Server. Zero values mean the documented defaults.
type Config struct {
	Domain          string        // the name in the greeting; default "localhost"
	Addresses       []string      // the recipient addresses accepted (lowercase); others get 550
	Tagged          []string      // addresses also accepted with a +tag (LOCAL+TAG@DOMAIN: the bounce address), in messages of their own (errApart)
	MaxMessageBytes int64         // default 10 MiB
	MaxRecipients   int           // default 10
	MaxLineLength   int           // default 2000
	ReadTimeout     time.Duration // per command, and for the whole DATA; default 2 min
	WriteTimeout    time.Duration // per reply; default 1 min
	// MaxConnections caps the connections open at a time on one
	// listener (DefaultMaxConnections); MaxConnectionsPerIP caps those
	// from one IPv4 address or IPv6 /64 (IPv6PrefixLength) on an SMTP
	// listener (DefaultMaxConnectionsPerIP), except from the Unlimited
	// prefixes (the MTA that relays to ccdir), which have
	// MaxConnections slots of their own on SMTP. LMTP has no per-address
	// limit.
	MaxConnections      int
	MaxConnectionsPerIP int
	Unlimited           []netip.Prefix
	// SessionTimeout is the longest a connection lasts, whatever it
	// does (DefaultSessionTimeout).
	SessionTimeout time.Duration
	TLSConfig      *tls.Config // enables STARTTLS (SMTP only)
	// MemoryBudget caps the bytes of the messages in flight, over all
	// listeners (DefaultMemoryBudget; at least MaxMessageBytes and a
	// reserve of 1 MiB for small messages). A message takes the bytes
	// that have arrived; one source (an IPv4 address or IPv6 /64 on
	// SMTP, not Unlimited) a quarter of the budget at most, or one
	// message of MaxMessageBytes if that is more. A message it has no
	// room for is answered 452 4.3.1: at MAIL if its declared SIZE does
	// not fit now, else as soon as it outgrows the room.
	MemoryBudget int64
	// RequireTLS refuses MAIL before STARTTLS (530 5.7.0) on SMTP; it
	// needs TLSConfig. LMTP is not concerned.
	RequireTLS bool
	ErrorLog   *log.Logger // default: discard
}

// Server serves one Handler on any number of SMTP and LMTP listeners.
type Server struct {
	cfg     Config
	handler Handler
	ctx     context.Context
	cancel  context.CancelFunc

	memory *budget

	mu      sync.Mutex
	servers []*smtp.Server
}

// New returns a Server for cfg and h.
func New(cfg Config, h Handler) *Server {
	if cfg.Domain == "" {
		cfg.Domain = "localhost"
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = 10 << 20
	}
	if cfg.MaxRecipients == 0 {
		cfg.MaxRecipients = 10
	}
	if cfg.MaxLineLength == 0 {
		cfg.MaxLineLength = 2000
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 2 * time.Minute
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = time.Minute
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	if cfg.MaxConnectionsPerIP <= 0 {
		cfg.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.MemoryBudget <= 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	cfg.MemoryBudget = max(cfg.MemoryBudget, cfg.MaxMessageBytes+1+budgetReserve)
	if cfg.ErrorLog == nil {
		cfg.ErrorLog = log.New(io.Discard, "", 0)
	}
	for i, a := range cfg.Addresses {
		cfg.Addresses[i] = strings.ToLower(a)
	}
	cfg.Tagged = slices.Clone(cfg.Tagged)
	for i, a := range cfg.Tagged {
		cfg.Tagged[i] = strings.ToLower(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, handler: h, ctx: ctx, cancel: cancel, memory: newBudget(cfg.MemoryBudget, cfg.MaxMessageBytes)}
}

// ServeSMTP serves SMTP on l until Shutdown.
func (s *Server) ServeSMTP(l net.Listener) error { return s.serve(l, false) }

// ServeLMTP serves LMTP on l (usually a unix socket) until Shutdown.
func (s *Server) ServeLMTP(l net.Listener) error { return s.serve(l, true) }

func (s *Server) serve(l net.Listener, lmtp bool) error {
	srv := smtp.NewServer(&backend{s: s, lmtp: lmtp})
	srv.Domain = s.cfg.Domain
	srv.LMTP = lmtp
	if !lmtp {
		srv.MaxMessageBytes = s.cfg.MaxMessageBytes // LMTP: handle caps the data (lmtpCap)
	}
	srv.MaxRecipients = s.cfg.MaxRecipients
	srv.MaxLineLength = s.cfg.MaxLineLength
	srv.ReadTimeout = s.cfg.ReadTimeout
	srv.WriteTimeout = s.cfg.WriteTimeout
	srv.ErrorLog = s.cfg.ErrorLog
	if !lmtp {
		srv.TLSConfig = s.cfg.TLSConfig
	}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return smtp.ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	err := srv.Serve(newLimitListener(l, &s.cfg, !lmtp))
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// messages in flight to be handled.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	s.cancel()
	return errors.Join(errs...)
}

type backend struct {
	s    *Server
	lmtp bool
}

// NewSession is called at each EHLO that starts a session: the first,
// and the first after STARTTLS (go-smtp then ends the old session).
func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	remote := ""
	if conn := c.Conn(); conn != nil {
		remote = conn.RemoteAddr().String()
	}
	_, isTLS := c.TLSConnectionState()
	ss := &session{s: b.s, lmtp: b.lmtp, env: Envelope{RemoteAddr: remote}, needTLS: b.s.cfg.RequireTLS && !b.lmtp && !isTLS}
	if conn := c.Conn(); conn != nil && !b.lmtp {
		ss.src, _ = source(conn.RemoteAddr(), b.s.cfg.Unlimited)
	}
	return ss, nil
}

// errNeedTLS answers MAIL before STARTTLS where TLS is required (RFC 3207).
var errNeedTLS = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}

type session struct {
	s       *Server
	lmtp    bool // an LMTP session: never a 5xx (see the package comment)
	needTLS bool // MAIL is refused: TLS is required and not in use
	env     Envelope
	src     netip.Prefix // the source its messages count against (budget), if any
	rcpts   []string     // as the client spelled them, for LMTP's per-recipient replies
	tagged  bool         // the recipients are Tagged addresses (the first one was)
	hasMail bool
	size    int64 // the SIZE declared at MAIL, 0 if none
}

var _ smtp.LMTPSession = (*session)(nil)

func (ss *session) Reset() {
	ss.env.From, ss.env.To, ss.rcpts, ss.hasMail, ss.size = "", nil, nil, false, 0
}

func (ss *session) Logout() error { return nil }

func (ss *session) Mail(from string, opts *smtp.MailOptions) error {
	if ss.needTLS {
		return errNeedTLS
	}
	var size int64
	if opts != nil {
		size = opts.Size // go-smtp refuses one over MaxMessageBytes on SMTP
	}
	if ss.lmtp {
		// LMTP advertises SIZE without a limit: a MAIL is never
		// refused for it (past the limit the message is refused,
		// with 250, at the end of DATA): it holds at most the limit.
		size = min(size, ss.s.cfg.MaxMessageBytes+1)
	}
	if size > 0 && !ss.s.memory.fits(ss.src, size) {
		return errNoMemory
	}
	ss.env.From, ss.env.To, ss.rcpts, ss.hasMail, ss.size = from, nil, nil, true, size
	return nil
}

// errApart answers a RCPT for a Tagged address in a message for others,
// or the other way round: Tagged addresses take mail of their own, and
// 452 4.5.3 has the client send that copy in another transaction (RFC
// 5321 §4.5.3.1.10), so a report is never read as mail for people nor
// the other way round.
var errApart = &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
	Message: "this address takes mail of its own: send it this message in another transaction"}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	addr := strings.ToLower(strings.TrimSpace(to))
	for _, a := range slices.Concat(ss.s.cfg.Addresses, ss.s.cfg.Tagged) {
		if addr == a || ss.s.tagged(addr, a) {
			tagged := slices.ContainsFunc(ss.s.cfg.Tagged, func(t string) bool { return addr == t || ss.s.tagged(addr, t) })
			if len(ss.env.To) == 0 {
				ss.tagged = tagged
			} else if tagged != ss.tagged {
				return errApart
			}
			ss.rcpts = append(ss.rcpts, to)
			for _, seen := range ss.env.To {
				if seen == addr {
					return nil
				}
			}
			ss.env.To = append(ss.env.To, addr)
			return nil
		}
	}
	if ss.lmtp {
		// The MTA routed it here and has accepted it: a 550 would make
		// it bounce. The Handler drops it (not ours) with a log row.
		if !ss.tagged || len(ss.env.To) == 0 {
			ss.tagged = false
			ss.rcpts = append(ss.rcpts, to)
			if !slices.Contains(ss.env.To, addr) {
				ss.env.To = append(ss.env.To, addr)
			}
			return nil
		}
		return errApart
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox here"}
}

// tagged reports whether addr is LOCAL+TAG@DOMAIN of a, one of
// Config.Tagged.
func (s *Server) tagged(addr, a string) bool {
	if !slices.Contains(s.cfg.Tagged, a) {
		return false
	}
	local, domain, _ := strings.Cut(a, "@")
	return strings.HasPrefix(addr, local+"+") && strings.HasSuffix(addr, "@"+domain) && len(addr) > len(a)+1
}

func (ss *session) Data(r io.Reader) error {
	return ss.handle(r)
}

// LMTPData answers each recipient with the one result of the message:
// ccdir handles a message once, whatever its directory addresses. A
// refusal (5xx) is answered 250 with its reason (lmtpTaken): the MTA has
// accepted the message already and would bounce it.
func (ss *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	err := lmtpTaken(ss.handle(&lmtpCap{r: r, n: ss.s.cfg.MaxMessageBytes + 1}))
	for _, to := range ss.rcpts {
		status.SetStatus(to, err)
	}
	return nil
}

// lmtpTaken turns a permanent answer into 250, keeping its reason in the
// text (the MTA's log shows it: "status=sent (250 2.0.0 <rcpt> refused,
// not bounced: ...)"); temporary answers are kept.
func lmtpTaken(err error) error {
	var se *smtp.SMTPError
	if err == nil || !errors.As(err, &se) || se.Code < 500 {
		return err
	}
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: oneLine("refused, not bounced: " + se.Message)}
}

// lmtpCap is the size limit of an LMTP message: the Handler reads n
// bytes (one more than MaxMessageBytes, so that the pipeline refuses the
// message as too large itself, with its log row), then
// smtp.ErrDataTooLarge; go-smtp drains the rest.
type lmtpCap struct {
	r io.Reader
	n int64
}

func (c *lmtpCap) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, smtp.ErrDataTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func (ss *session) handle(r io.Reader) (err error) {
	env := ss.env
	env.To = append([]string(nil), ss.env.To...)
	br := &budgetReader{r: r, b: ss.s.memory, src: ss.src}
	defer br.release()
	defer func() {
		// go-smtp would recover too, but answer 421 and drop the
		// connection, and log the panic's value, which may quote the
		// message.
		if p := recover(); p != nil {
			ss.s.cfg.ErrorLog.Printf("smtpd: panic handling a message from %s: %s\n%s", env.RemoteAddr, panicText(p), debug.Stack())
			err = errPanic
		}
	}()
	err = ss.s.handler(ss.s.ctx, env, br)
	if br.spent {
		return errNoMemory // go-smtp drains the data
	}
	// Drain what the handler did not read, so the reply comes after the
	// end of DATA; go-smtp reports a size overflow on the way.
	if _, derr := io.Copy(io.Discard, r); derr != nil && err == nil {
		err = derr
	}
	return reply(err)
}

// errPanic answers a message whose handler panicked: ours is the
// failure, so the sender tries again later.
var errPanic = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}

// panicText is what the log says of a panic: a runtime error's text
// (an index out of range, a nil map), else only the value's type, since
// a value made by the handler may quote the message.
func panicText(p any) string {
	if re, ok := p.(runtime.Error); ok {
		return re.Error()
	}
	return fmt.Sprintf("a value of type %T", p)
}

// reply turns a handler's result into the SMTP answer.
func reply(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, smtp.ErrDataTooLarge) {
		return smtp.ErrDataTooLarge
	}
	var st Status
	if errors.As(err, &st) {
		code, enh, msg := st.SMTPStatus()
		return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode(enh), Message: oneLine(msg)}
	}
	// Anything else is ours, not the sender's: try again later, and say
	// nothing of the internals.
	return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "temporary failure, try again later"}
}

// oneLine keeps an SMTP reply text to one printable line.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r > 0x7e {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimSpace(s)
}
