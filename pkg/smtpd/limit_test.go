package smtpd

import (
	"bufio"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// dialFrom connects to addr from the local address src (any of 127/8
// reaches the loopback interface on Linux).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := d.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// greeting reads the first line the server sends, waiting at most 5 s:
// "" if none came (the server keeps the client waiting).
func greeting(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && line == "" {
		return ""
	}
	return strings.TrimSpace(line)
}

// One client holding 64 idle connections (as many as the listener takes)
// does not keep another from being answered: past its per-address limit
// it gets 421 at once, and a client from another address is served.
func TestIdleConnectionsDoNotLockOut(t *testing.T) {
	rc := &recorder{}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}}, rc, false)
	greeted := 0
	for range DefaultMaxConnections {
		c := dialFrom(t, "127.0.0.1", addr)
		switch g := greeting(t, c); {
		case strings.HasPrefix(g, "220 "):
			greeted++
		case strings.HasPrefix(g, "421 4.7.0 ") && strings.Contains(g, "too many connections from your address"):
		default:
			t.Fatalf("connection %d: %q, want 220, or 421 at once", greeted, g)
		}
	}
	if greeted != DefaultMaxConnectionsPerIP {
		t.Fatalf("%d connections from one address greeted, want %d", greeted, DefaultMaxConnectionsPerIP)
	}
	c := dialFrom(t, "127.0.0.2", addr)
	cl := smtp.NewClient(c)
	if err := cl.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("a client from another address, while one address holds %d idle connections: %v", greeted, err)
	}
}

// Over the listener's cap, a new connection gets 421 at once instead of
// waiting for a slot, and a slot given back is taken again.
func TestConnectionCapRefusesAtOnce(t *testing.T) {
	rc := &recorder{}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxConnections: 4, MaxConnectionsPerIP: 100}, rc, false)
	var idle []net.Conn
	for i := range 4 {
		c := dialFrom(t, "127.0.0.1", addr)
		if g := greeting(t, c); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("connection %d: %q", i, g)
		}
		idle = append(idle, c)
	}
	if g := greeting(t, dialFrom(t, "127.0.0.3", addr)); !strings.HasPrefix(g, "421 4.3.2 ") {
		t.Fatalf("fifth connection: %q, want 421 at once", g)
	}
	idle[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g := greeting(t, dialFrom(t, "127.0.0.3", addr))
		if strings.HasPrefix(g, "220 ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after one connection closed: %q, want 220", g)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// go-smtp re-arms its read deadline before every command and answers
// NOOP itself, so a client sending NOOP now and then would keep its
// connection forever: the session timeout ends it anyway.
func TestSessionTimeoutEndsBusyIdleClient(t *testing.T) {
	rc := &recorder{}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, SessionTimeout: 300 * time.Millisecond, ReadTimeout: time.Minute}, rc, false)
	c := dialFrom(t, "127.0.0.1", addr)
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220 ") {
		t.Fatalf("greeting %q, %v", line, err)
	}
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("NOOP\r\n")); err != nil {
			return // closed by the server
		}
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "250 ") {
			return // closed, or told 421 before closing
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("a client sending NOOP kept its connection past the session timeout")
}

// The per-address limit does not apply to LMTP, nor to the Unlimited
// addresses (the MTA relaying to ccdir over SMTP).
func TestPerAddressLimitExemptions(t *testing.T) {
	rc := &recorder{}
	_, lmtpAddr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxConnectionsPerIP: 2}, rc, true)
	for i := range 10 {
		if g := greeting(t, dialFrom(t, "", lmtpAddr)); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("LMTP connection %d: %q", i, g)
		}
	}
	_, smtpAddr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxConnectionsPerIP: 2,
		Unlimited: []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}}, rc, false)
	for i := range 10 {
		if g := greeting(t, dialFrom(t, "127.0.0.4", smtpAddr)); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("SMTP connection %d from the MTA: %q", i, g)
		}
	}
	for i := range 2 {
		if g := greeting(t, dialFrom(t, "127.0.0.5", smtpAddr)); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("SMTP connection %d from another address: %q", i, g)
		}
	}
	if g := greeting(t, dialFrom(t, "127.0.0.5", smtpAddr)); !strings.HasPrefix(g, "421 4.7.0 ") {
		t.Fatalf("third SMTP connection from another address: %q, want 421", g)
	}
}
