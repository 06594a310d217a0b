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

// IPv6 clients are counted by /64 (a host is usually given a whole /64,
// so one per /128 would be no limit at all); IPv4 by address, mapped or
// not.
func TestPerAddressLimitIPv6ByNetwork(t *testing.T) {
	cfg := Config{Domain: "x", MaxConnections: 1000, MaxConnectionsPerIP: 2}
	ll := newLimitListener(nil, &cfg, true)
	admitted := func(addrs ...string) (n int) {
		for _, a := range addrs {
			if _, refusal := ll.admit(&net.TCPAddr{IP: net.ParseIP(a), Port: 1}); refusal == "" {
				n++
			}
		}
		return n
	}
	var oneNet []string
	for i := 1; i <= 20; i++ {
		oneNet = append(oneNet, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 15: byte(i)}).String())
	}
	if n := admitted(oneNet...); n != 2 {
		t.Errorf("%d of 20 connections from one IPv6 /64 admitted, want 2", n)
	}
	if n := admitted("2001:db8:1:3::1", "2001:db8:1:3::2"); n != 2 {
		t.Errorf("%d of 2 connections from the next /64 admitted, want 2", n)
	}
	if n := admitted("192.0.2.1", "::ffff:192.0.2.1", "192.0.2.1", "192.0.2.2"); n != 3 {
		t.Errorf("%d of 192.0.2.1, its mapped form, itself again and 192.0.2.2 admitted, want 3", n)
	}
}

// The MTA's connections (Unlimited) have slots of their own: a listener
// full of other clients still takes the MTA, and the MTA's connections
// do not take the others' slots.
func TestMTAHasItsOwnSlots(t *testing.T) {
	rc := &recorder{}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxConnections: 3, MaxConnectionsPerIP: 100,
		Unlimited: []netip.Prefix{netip.MustParsePrefix("127.0.0.4/32")}}, rc, false)
	for i := range 3 {
		if g := greeting(t, dialFrom(t, "127.0.0.5", addr)); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("connection %d from a client: %q", i, g)
		}
	}
	if g := greeting(t, dialFrom(t, "127.0.0.6", addr)); !strings.HasPrefix(g, "421 4.3.2 ") {
		t.Fatalf("fourth connection from a client: %q, want 421", g)
	}
	for i := range 3 {
		if g := greeting(t, dialFrom(t, "127.0.0.4", addr)); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("connection %d from the MTA while the listener is full of clients: %q", i, g)
		}
	}
	if g := greeting(t, dialFrom(t, "127.0.0.4", addr)); !strings.HasPrefix(g, "421 4.3.2 ") {
		t.Fatalf("fourth connection from the MTA: %q, want 421", g)
	}
}
