package smtpd

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// limitListener admits a connection only within the limits: at most max
// at a time on the listener, at most perIP from one IP address (0: no
// per-IP limit, as for LMTP; addresses in exempt have none either). A
// connection over a limit is answered 421 and closed at once: Accept
// never waits for a slot, so idle connections cannot keep others from
// being answered. Every connection admitted lasts at most session.
type limitListener struct {
	net.Listener
	max, perIP          int
	exempt              []netip.Prefix
	session             time.Duration
	writeGrace          time.Duration // how far past the session's end a last reply may be written
	busyLine, perIPLine string        // the 421 lines, CRLF included

	mu    sync.Mutex
	total int
	byIP  map[netip.Addr]int
}

func newLimitListener(l net.Listener, cfg *Config, perIP bool) *limitListener {
	ll := &limitListener{
		Listener:   l,
		max:        cfg.MaxConnections,
		exempt:     cfg.Unlimited,
		session:    cfg.SessionTimeout,
		writeGrace: cfg.WriteTimeout,
		byIP:       map[netip.Addr]int{},
		busyLine:   "421 4.3.2 " + cfg.Domain + " too busy, try again later\r\n",
		perIPLine:  "421 4.7.0 " + cfg.Domain + " too many connections from your address, try again later\r\n",
	}
	if perIP {
		ll.perIP = cfg.MaxConnectionsPerIP
	}
	return ll
}

// Accept returns the next connection within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip, refusal := l.admit(c.RemoteAddr())
		if refusal != "" {
			refuse(c, refusal)
			continue
		}
		return newSessionConn(c, time.Now().Add(l.session), l.writeGrace, func() { l.release(ip) }), nil
	}
}

// admit takes a slot for a connection from remote, or says which 421
// refuses it. ip is the address counted against the per-IP limit, if any.
func (l *limitListener) admit(remote net.Addr) (ip netip.Addr, refusal string) {
	if l.perIP > 0 {
		if tcp, ok := remote.(*net.TCPAddr); ok {
			ip = tcp.AddrPort().Addr().Unmap()
			for _, p := range l.exempt {
				if p.Contains(ip) {
					ip = netip.Addr{}
					break
				}
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.total >= l.max:
		return netip.Addr{}, l.busyLine
	case ip.IsValid() && l.byIP[ip] >= l.perIP:
		return netip.Addr{}, l.perIPLine
	}
	l.total++
	if ip.IsValid() {
		l.byIP[ip]++
	}
	return ip, ""
}

func (l *limitListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if ip.IsValid() {
		if l.byIP[ip]--; l.byIP[ip] <= 0 {
			delete(l.byIP, ip)
		}
	}
}

// refuse writes one 421 line to a connection that was never greeted and
// closes it. The line fits in the empty send buffer of a new connection,
// so the write does not wait on the peer; the deadline is a safeguard.
func refuse(c net.Conn, line string) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(line))
	c.Close()
}

// sessionConn is a connection that lasts at most until end, however
// often go-smtp re-arms its deadlines (it does before every command line
// it reads and every reply it writes, and a client can keep it busy with
// NOOP): every deadline is capped at end, and a write's at end plus a
// grace for the last reply. Close gives back its slot, once.
type sessionConn struct {
	net.Conn
	end, writeEnd time.Time
	closeOnce     sync.Once
	release       func()
}

func newSessionConn(c net.Conn, end time.Time, grace time.Duration, release func()) *sessionConn {
	sc := &sessionConn{Conn: c, end: end, writeEnd: end.Add(grace), release: release}
	c.SetReadDeadline(sc.end)
	c.SetWriteDeadline(sc.writeEnd)
	return sc
}

// capAt is t, but no later than end; the zero time (no deadline) is end.
func capAt(t, end time.Time) time.Time {
	if t.IsZero() || t.After(end) {
		return end
	}
	return t
}

func (c *sessionConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *sessionConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(capAt(t, c.end))
}

func (c *sessionConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(capAt(t, c.writeEnd))
}

func (c *sessionConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(c.release)
	return err
}
