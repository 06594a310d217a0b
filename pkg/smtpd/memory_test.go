package smtpd

import (
	"bufio"
	"errors"
	"fmt"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Messages in flight from many addresses (so that no per-address limit
// applies) hold no more than the memory budget: those it has no room for
// are answered 452 4.3.1, and once the budget is free again mail is
// taken. A declared SIZE that does not fit is refused at MAIL.
func TestMemoryBudget(t *testing.T) {
	const clients = 8
	rc := &recorder{hold: make(chan struct{}), started: make(chan struct{}, clients)}
	_, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxMessageBytes: 1 << 20, MemoryBudget: 4 << 20}, rc, false)
	big := msg + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 9000) // 900 kB

	// One at a time, so that what the budget takes does not depend on
	// how far each message had grown when the next one came.
	inFlight, refused, results := admitEach(t, rc, clients, func(i int) error {
		c := smtp.NewClient(dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i), addr))
		return c.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(big))
	})
	// Each message reserves up to the size limit as it grows: 3 fit in
	// the budget less its reserve, the others are told to come back later.
	if inFlight != 3 || refused != clients-3 {
		t.Fatalf("%d messages of 900 kB in flight and %d refused with a budget of 4 MiB, want 3 and %d", inFlight, refused, clients-3)
	}

	// The budget is full: a declared SIZE that does not fit is refused
	// before the data is sent.
	c := smtp.NewClient(dialFrom(t, "127.0.0.20", addr))
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("a@example.org", &smtp.MailOptions{Size: 1 << 20}); code(err) != 452 {
		t.Fatalf("MAIL SIZE=%d with the budget in use: %v, want 452", 1<<20, err)
	}

	close(rc.hold)
	for range inFlight {
		if err := <-results; err != nil {
			t.Fatalf("a message within the budget: %v", err)
		}
	}
	if err := c.Reset(); err != nil {
		t.Fatal(err)
	}
	if err := c.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(big)); err != nil {
		t.Fatalf("once the budget is free: %v", err)
	}
}

// syncBuffer is a log's output, read while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (sb *syncBuffer) Write(p []byte) (int, error) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.b.Write(p)
}

func (sb *syncBuffer) String() string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.b.String()
}

// budgetUsed is what the messages in flight hold of the budget.
func budgetUsed(s *Server) int64 { return s.memory.size - s.memory.free() }

// A handler that panics is answered 451 4.3.0 (try again later), gives
// back what its message held of the budget, and is logged with its
// stack but none of the message.
func TestHandlerPanic(t *testing.T) {
	for _, lmtp := range []bool{false, true} {
		t.Run(fmt.Sprint("lmtp=", lmtp), func(t *testing.T) {
			logged := &syncBuffer{}
			rc := &recorder{answer: func(body string) error { panic("cannot parse " + body) }}
			s, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxMessageBytes: 1 << 20, MemoryBudget: 4 << 20,
				ErrorLog: log.New(logged, "", 0)}, rc, lmtp)
			body := msg + "SECRET-BODY\r\n" + strings.Repeat(strings.Repeat("y", 98)+"\r\n", 5000)
			for i := range 3 {
				c := smtp.NewClient(dialFrom(t, "", addr))
				if lmtp {
					c = smtp.NewClientLMTP(dialFrom(t, "", addr))
				}
				err := c.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(body))
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) {
					t.Fatalf("message %d to a panicking handler: %v, want 451 4.3.0", i, err)
				}
				if used := budgetUsed(s); used != 0 {
					t.Fatalf("after panic %d, %d bytes of the budget are still held", i, used)
				}
			}
			out := logged.String()
			if !strings.Contains(out, "panic") || !strings.Contains(out, "smtpd.(*session).handle") {
				t.Errorf("the panic is not logged with its stack:\n%s", out)
			}
			if strings.Contains(out, "SECRET-BODY") {
				t.Errorf("the log shows the message:\n%s", out)
			}
		})
	}
}

// A message holds of the budget only the bytes that have arrived: four
// connections from one address that declare SIZE=10 MiB and then send
// nothing hold nothing, and mail from elsewhere, large or small, is
// taken meanwhile.
func TestSilentMessagesHoldNoBudget(t *testing.T) {
	rc := &recorder{}
	s, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}}, rc, false)
	for i := range 4 {
		c := dialFrom(t, "127.0.0.9", addr)
		r := bufio.NewReader(c)
		fmt.Fprintf(c, "EHLO x\r\nMAIL FROM:<a@example.org> SIZE=%d\r\nRCPT TO:<ccdir@example.org>\r\nDATA\r\n", 10<<20)
		for _, want := range []string{"220 ", "250 ", "250 ", "250 ", "354 "} {
			line, err := r.ReadString('\n')
			for err == nil && len(line) > 3 && line[3] == '-' {
				line, err = r.ReadString('\n')
			}
			if err != nil || !strings.HasPrefix(line, want) {
				t.Fatalf("silent client %d: %q, %v; want %s", i, line, err, want)
			}
		}
	}
	if used := budgetUsed(s); used != 0 {
		t.Errorf("four messages that sent no byte hold %d bytes of the budget", used)
	}
	if err := send(t, addr, "b@example.org", []string{"ccdir@example.org"}, msg); err != nil {
		t.Errorf("a command mail from another address: %v", err)
	}
	big := msg + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 50000) // 5 MB
	c := smtp.NewClient(dialFrom(t, "127.0.0.10", addr))
	if err := c.SendMail("b@example.org", []string{"ccdir@example.org"}, strings.NewReader(big)); err != nil {
		t.Errorf("a 5 MB message from another address: %v", err)
	}
}

// One source holds at most its share of the budget, and large messages
// from many sources cannot take the reserve kept for small ones: while
// they hold all they may, a command mail from another address is taken.
func TestBudgetSharesAndReserve(t *testing.T) {
	const sources, perSource = 5, 3
	rc := &recorder{hold: make(chan struct{}), started: make(chan struct{}, sources*perSource), holdOver: 1000}
	// Budget 8 MiB: a source's share is 2 MiB (two 900 kB messages),
	// the large messages' part 7 MiB (seven of them).
	s, addr := start(t, Config{Addresses: []string{"ccdir@example.org"}, MaxMessageBytes: 1 << 20, MemoryBudget: 8 << 20,
		MaxConnectionsPerIP: 100}, rc, false)
	big := msg + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 9000) // 900 kB
	inFlight, _, results := admitEach(t, rc, sources*perSource, func(n int) error {
		c := smtp.NewClient(dialFrom(t, fmt.Sprintf("127.0.0.%d", 30+n/perSource), addr))
		return c.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(big))
	})
	// The large messages' part is 7 MiB: eight 900 kB messages fit in it
	// byte for byte, seven when each holds a rounded-up reservation.
	if inFlight < 7 || inFlight > 8 {
		t.Errorf("%d messages of 900 kB in flight, want 7 or 8 (the budget less its reserve)", inFlight)
	}
	if used := budgetUsed(s); used > 7<<20 {
		t.Errorf("large messages hold %d bytes, more than the budget less its reserve", used)
	}
	if err := send(t, addr, "b@example.org", []string{"ccdir@example.org"}, msg); err != nil {
		t.Errorf("a command mail while large ones hold all they may: %v", err)
	}
	close(rc.hold)
	for range inFlight {
		if err := <-results; err != nil {
			t.Errorf("a message in flight: %v", err)
		}
	}
	bySource := map[string]int{}
	for _, env := range rc.got {
		host, _, _ := net.SplitHostPort(env.RemoteAddr)
		bySource[host]++
	}
	for host, n := range bySource {
		if host != "127.0.0.1" && n > 2 {
			t.Errorf("%d messages of 900 kB from %s in flight at once, more than its share (2 MiB)", n, host)
		}
	}
}

// admitEach starts n messages one after the other (send(i) sends the
// i-th), each only once the one before is in the handler (held there by
// rc) or refused with 452 4.3.1, so that what the memory budget admits
// does not depend on the scheduler. It returns how many are in the
// handler, how many were refused, and the channel on which the admitted
// ones report once rc lets them go.
func admitEach(t *testing.T, rc *recorder, n int, send func(i int) error) (inFlight, refused int, results chan error) {
	t.Helper()
	results = make(chan error, n)
	for i := range n {
		go func() { results <- send(i) }()
		select {
		case <-rc.started:
			inFlight++
		case err := <-results:
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) {
				t.Fatalf("message %d, over the budget: %v, want 452 4.3.1", i, err)
			}
			refused++
		case <-time.After(20 * time.Second):
			t.Fatalf("message %d neither in the handler nor refused after 20 s (%d in the handler, %d refused)", i, inFlight, refused)
		}
	}
	return inFlight, refused, results
}
