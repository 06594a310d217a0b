package outbox

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Transport hands messages to the next hop.
type Transport interface {
	// NewSession opens one delivery channel (an SMTP connection, say).
	// Deliver opens one per parallel connection and reuses it.
	NewSession(ctx context.Context) (Session, error)
	// String says where the transport delivers, without secrets.
	String() string
}

// Session delivers messages one at a time. It is used by one goroutine.
type Session interface {
	// Send delivers m to m.To. Failures should be *DeliveryError. An error
	// matching ErrConnectionLost means the session is dead: the caller
	// closes it and opens a new one.
	Send(ctx context.Context, m *Message) error
	Close() error
}

// ErrConnectionLost is wrapped by a Send error after which the session
// cannot be used again.
var ErrConnectionLost = errors.New("connection lost")

// DeliveryError is a failure to deliver one message.
type DeliveryError struct {
	Temporary bool   // retry later (4xx, network error, timeout, EX_TEMPFAIL)
	Code      int    // SMTP reply code, 0 if none
	Enhanced  string // enhanced status code such as "5.1.1", if any
	Msg       string // the server's answer or a description
	Err       error  // underlying error, if any
}

func (e *DeliveryError) Error() string {
	var b strings.Builder
	if e.Code != 0 {
		fmt.Fprintf(&b, "%d ", e.Code)
		if e.Enhanced != "" {
			b.WriteString(e.Enhanced + " ")
		}
	}
	b.WriteString(e.Msg)
	if e.Msg == "" && e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return strings.TrimSpace(b.String())
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// IsTemporary reports whether err is worth retrying later: a temporary
// *DeliveryError, a network error or a timeout. Other errors are permanent.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	var de *DeliveryError
	if errors.As(err, &de) {
		return de.Temporary
	}
	return isConnError(err) || errors.Is(err, context.DeadlineExceeded)
}

// isConnError reports whether err comes from the network rather than from
// the peer's answer or from us.
func isConnError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, ErrConnectionLost)
}

// TransportOptions configure NewTransport. The zero value works.
type TransportOptions struct {
	// Password for SMTP AUTH (from delivery.password_file). Never logged,
	// never part of String.
	Password string
	// Hostname is the name given in EHLO; default "localhost".
	Hostname string
	// Timeout bounds connecting, each SMTP command, each write of message
	// data, and a whole sendmail run; default DefaultTimeout.
	Timeout time.Duration
	// MessageTimeout bounds the delivery of one message over SMTP, from
	// connecting (when the session needs a connection, in NewSession or
	// Send) to the answer to its data, however slowly the server answers
	// within Timeout, plus a second for every MessageTimeoutFloorRate
	// bytes of the message; past it the connection is dropped and the
	// message stays queued (a temporary failure). Default
	// DefaultMessageTimeout.
	MessageTimeout time.Duration
	// TLSConfig is cloned for SMTP TLS; ServerName defaults to the URL's
	// host. Tests pass a RootCAs pool here.
	TLSConfig *tls.Config
}

// Defaults of TransportOptions.
const (
	DefaultTimeout        = 2 * time.Minute
	DefaultMessageTimeout = 10 * time.Minute
	// MessageTimeoutFloorRate is the slowest rate, in bytes a second,
	// at which a message's data is given time past MessageTimeout.
	MessageTimeoutFloorRate = 64 << 10
)

// ErrBadURL is wrapped by NewTransport errors about the URL.
var ErrBadURL = errors.New("bad delivery url")

// URLForms lists the forms of a delivery URL NewTransport takes, for
// error messages and the configuration reference.
const URLForms = "smtp://[user@]host[:587][?starttls=off], smtps://[user@]host[:465], sendmail:/path/to/sendmail, maildir:/path"

// NewTransport returns the transport for a delivery URL:
//
//	smtp://[user@]host[:587]     SMTP submission; STARTTLS required, then
//	                             AUTH PLAIN if a user is named
//	smtp://host:25?starttls=off  plain SMTP, no AUTH (a local relay)
//	smtps://[user@]host[:465]    SMTP over implicit TLS
//	sendmail:/usr/sbin/sendmail  runs PATH -i -f FROM -- TO
//	maildir:/path                writes into a maildir, created if missing
//
// Passwords inside the URL are refused; they come only from o.Password.
func NewTransport(rawURL string, o TransportOptions) (Transport, error) {
	if o.Hostname == "" {
		o.Hostname = "localhost"
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MessageTimeout <= 0 {
		o.MessageTimeout = DefaultMessageTimeout
	}
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "smtp", "smtps":
		return newSMTP(u, o)
	case "sendmail":
		p, err := localPath(u)
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("%w: %s: the sendmail path must be absolute", ErrBadURL, rawURL)
		}
		return &sendmailTransport{path: p, timeout: o.Timeout}, nil
	case "maildir":
		p, err := localPath(u)
		if err != nil {
			return nil, err
		}
		return newMaildir(p)
	}
	panic("outbox: parseURL let scheme " + u.Scheme + " through")
}

// CheckURL checks the form of a delivery URL as NewTransport will, without
// making the transport: a URL that parses, has no password and names one
// of the schemes of URLForms. Its errors wrap ErrBadURL and never quote a
// password: a URL that does not parse is not quoted at all.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

func parseURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		// url's errors quote the input, which may hold a password.
		return nil, fmt.Errorf("%w: cannot parse it; valid forms: %s", ErrBadURL, URLForms)
	}
	if _, has := u.User.Password(); has {
		return nil, fmt.Errorf("%w: %s contains a password; put it in delivery.password_file instead", ErrBadURL, u.Redacted())
	}
	switch u.Scheme {
	case "smtp", "smtps":
		// A password with '#', '?' or '/' in it ends the authority early
		// and may still parse: what follows it is not to be quoted.
		if u.Fragment != "" || strings.Contains(rawURL, "#") || strings.Contains(u.RawQuery, "@") {
			return nil, fmt.Errorf("%w: cannot parse it (a password in it?); valid forms: %s", ErrBadURL, URLForms)
		}
		return u, nil
	case "sendmail", "maildir":
		return u, nil
	case "":
		return nil, fmt.Errorf("%w: %q has no scheme; valid forms: %s", ErrBadURL, u.Redacted(), URLForms)
	default:
		return nil, fmt.Errorf("%w: unknown scheme %q; valid forms: %s", ErrBadURL, u.Scheme, URLForms)
	}
}

// localPath is the path of a sendmail: or maildir: URL, which may be
// written scheme:/abs, scheme:rel or scheme:///abs.
func localPath(u *url.URL) (string, error) {
	if u.User != nil || u.Host != "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%w: %s: expected %s:/path", ErrBadURL, u.Redacted(), u.Scheme)
	}
	p := u.Path
	if u.Opaque != "" {
		var err error
		if p, err = url.PathUnescape(u.Opaque); err != nil {
			return "", fmt.Errorf("%w: %s: %v", ErrBadURL, u.Redacted(), err)
		}
	}
	if p == "" {
		return "", fmt.Errorf("%w: %s: no path", ErrBadURL, u.Redacted())
	}
	return filepath.Clean(p), nil
}
