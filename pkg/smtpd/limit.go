package smtpd

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// limitListener admits a connection only within the limits: at most max
// at a time on the listener, at most perIP from one source (0: no
// per-source limit, as for LMTP). Connections from the exempt prefixes
// (the MTA) have no per-source limit and max slots of their own, so a
// listener full of other clients still takes the mail the MTA relays. A
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

	mu          sync.Mutex
	total, mtas int // connections admitted: from others, from the exempt prefixes
	bySource    map[netip.Prefix]int
}

func newLimitListener(l net.Listener, cfg *Config, perIP bool) *limitListener {
	ll := &limitListener{
		Listener:   l,
		max:        cfg.MaxConnections,
		exempt:     cfg.Unlimited,
		session:    cfg.SessionTimeout,
		writeGrace: cfg.WriteTimeout,
		bySource:   map[netip.Prefix]int{},
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
		slot, refusal := l.admit(c.RemoteAddr())
		if refusal != "" {
			refuse(c, refusal)
			continue
		}
		return newSessionConn(c, time.Now().Add(l.session), l.writeGrace, func() { l.release(slot) }), nil
	}
}

// IPv6PrefixLength is the network an IPv6 client is counted by, for the
// per-address limits: a host is usually given a whole /64, and counting
// each of its addresses apart would be no limit.
const IPv6PrefixLength = 64

// source is the network a client at remote is counted by: its IPv4
// address (unmapped), or its IPv6 /64; exempt says it is in one of the
// prefixes that have no per-source limit. An address that is not TCP
// (a unix socket) has no source.
func source(remote net.Addr, exemptPrefixes []netip.Prefix) (src netip.Prefix, exempt bool) {
	tcp, ok := remote.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}, false
	}
	ip := tcp.AddrPort().Addr().Unmap()
	for _, p := range exemptPrefixes {
		if p.Contains(ip) {
			return netip.Prefix{}, true
		}
	}
	bits := ip.BitLen()
	if ip.Is6() {
		bits = IPv6PrefixLength
	}
	src, _ = ip.Prefix(bits)
	return src, false
}

// slot is what a connection admitted holds: a place among the exempt
// connections or among the others, and its source's count (if valid).
type slot struct {
	exempt bool
	src    netip.Prefix
}

// admit takes a slot for a connection from remote, or says which 421
// refuses it.
func (l *limitListener) admit(remote net.Addr) (slot, string) {
	src, exempt := source(remote, l.exempt)
	if l.perIP == 0 {
		// No per-source limit (LMTP): every connection is counted in
		// the one total.
		src, exempt = netip.Prefix{}, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case exempt && l.mtas >= l.max, !exempt && l.total >= l.max:
		return slot{}, l.busyLine
	case src.IsValid() && l.bySource[src] >= l.perIP:
		return slot{}, l.perIPLine
	}
	if exempt {
		l.mtas++
	} else {
		l.total++
	}
	if src.IsValid() {
		l.bySource[src]++
	}
	return slot{exempt: exempt, src: src}, ""
}

func (l *limitListener) release(s slot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s.exempt {
		l.mtas--
	} else {
		l.total--
	}
	if s.src.IsValid() {
		if l.bySource[s.src]--; l.bySource[s.src] <= 0 {
			delete(l.bySource, s.src)
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
