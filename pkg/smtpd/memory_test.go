package smtpd

import (
	"errors"
	"fmt"
	"strings"
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

	results := make(chan error, clients)
	for i := range clients {
		go func() {
			c := smtp.NewClient(dialFrom(t, fmt.Sprintf("127.0.0.%d", 2+i), addr))
			results <- c.SendMail("a@example.org", []string{"ccdir@example.org"}, strings.NewReader(big))
		}()
	}
	// Each message reserves up to the size limit as it grows: 3 fit in
	// the budget, the others are told to come back later.
	inFlight, refused := 0, 0
	timeout := time.After(20 * time.Second)
	for inFlight+refused < clients {
		select {
		case <-rc.started:
			inFlight++
		case err := <-results:
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 452 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 1}) {
				t.Fatalf("a message over the budget: %v, want 452 4.3.1", err)
			}
			refused++
		case <-timeout:
			t.Fatalf("%d messages in the handler, %d refused, of %d", inFlight, refused, clients)
		}
	}
	if inFlight > 3 {
		t.Fatalf("%d messages of 900 kB in flight with a budget of 4 MiB", inFlight)
	}
	if inFlight == 0 {
		t.Fatal("no message was taken")
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
