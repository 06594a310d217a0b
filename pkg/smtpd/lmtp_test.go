package smtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
)

// TestLMTPNeverRefuses: behind LMTP the MTA has accepted the message
// already, and a 5xx would make it bounce to a sender who may be forged.
// So a refusal is answered 250 with its reason, a recipient that is not
// ours is taken at RCPT (the handler drops it), a message over the limit
// is handed to the handler (one byte past the limit, for it to refuse)
// and answered 250, a SIZE over the limit is not refused at MAIL (no limit is
// advertised); a failure of ours stays 451. SMTP keeps its 5xx
// (TestSMTPAcceptAndRefuse, TestSMTPSizeLimit).
func TestLMTPNeverRefuses(t *testing.T) {
	const limit = 1 << 10
	var mu sync.Mutex
	var lens []int
	var tos [][]string
	h := func(_ context.Context, env Envelope, r io.Reader) error {
		// As inbound.Pipeline reads: at most the limit and one byte.
		b, err := io.ReadAll(io.LimitReader(r, limit+1))
		mu.Lock()
		lens, tos = append(lens, len(b)), append(tos, env.To)
		mu.Unlock()
		switch {
		case err != nil:
			return err
		case len(b) > limit:
			return &Reject{Code: 552, Enhanced: [3]int{5, 3, 4}, Message: "message too large"}
		case strings.Contains(string(b), "UNSIGNED"):
			return &Reject{Code: 550, Enhanced: [3]int{5, 7, 1}, Message: "not signed"}
		case strings.Contains(string(b), "OOPS"):
			return errors.New("database is locked")
		}
		return nil
	}
	s := New(Config{Addresses: []string{"ccdir@example.org"}, MaxMessageBytes: limit}, h)
	l, err := net.Listen("unix", t.TempDir()+"/lmtp.sock")
	if err != nil {
		t.Fatal(err)
	}
	go s.ServeLMTP(l)
	t.Cleanup(func() { s.Shutdown(context.Background()) })

	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("mta.example.org"); err != nil {
		t.Fatal(err)
	}
	if _, param := c.Extension("SIZE"); param != "" {
		t.Fatalf("LMTP advertises SIZE %s: a MAIL over it would be refused with 552, and bounced", param)
	}
	big := msg + strings.Repeat(strings.Repeat("x", 98)+"\r\n", 30)
	for _, tc := range []struct {
		name, body string
		size       int64
		to         []string
		code       int
		text       string
	}{
		{"accepted", msg, 0, []string{"ccdir@example.org"}, 250, "OK"},
		{"refused", msg + "UNSIGNED\r\n", 0, []string{"ccdir@example.org"}, 250, "refused, not bounced: not signed"},
		{"not ours", msg, 0, []string{"postmaster@example.org", "ccdir@example.org"}, 250, "OK"},
		{"too large", big, 0, []string{"ccdir@example.org"}, 250, "refused, not bounced: message too large"},
		{"SIZE over the limit", big, int64(len(big)), []string{"ccdir@example.org"}, 250, "refused, not bounced: message too large"},
		{"ours failing", msg + "OOPS\r\n", 0, []string{"ccdir@example.org"}, 451, "try again later"},
	} {
		var opts *smtp.MailOptions
		if tc.size > 0 {
			opts = &smtp.MailOptions{Size: tc.size}
		}
		if err := c.Mail("a@example.org", opts); err != nil {
			t.Fatalf("%s: MAIL: %v", tc.name, err)
		}
		for _, to := range tc.to {
			if err := c.Rcpt(to, nil); err != nil {
				t.Fatalf("%s: RCPT %s: %v", tc.name, to, err)
			}
		}
		w, err := c.Data()
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, tc.body)
		resp, err := w.CloseWithLMTPResponse()
		got := map[string]string{} // recipient: code and text
		for rcpt, r := range resp {
			got[rcpt] = "250 " + r.StatusText
		}
		var lerr smtp.LMTPDataError
		if errors.As(err, &lerr) {
			for rcpt, e := range lerr {
				got[rcpt] = fmt.Sprintf("%d %s", e.Code, e.Message)
			}
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(got) != len(tc.to) {
			t.Fatalf("%s: %d responses for %d recipients: %v", tc.name, len(got), len(tc.to), got)
		}
		for rcpt, r := range got {
			if !strings.HasPrefix(r, fmt.Sprint(tc.code)+" ") || !strings.Contains(r, tc.text) {
				t.Errorf("%s: %s: %s, want %d …%s…", tc.name, rcpt, r, tc.code, tc.text)
			}
		}
		if err := c.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(lens) != 6 || lens[3] != limit+1 || lens[4] != limit+1 {
		t.Fatalf("handler read %v bytes, want the limit and one for the large messages", lens)
	}
	if len(tos[2]) != 2 || tos[2][0] != "postmaster@example.org" {
		t.Fatalf("the recipient not ours reaches the handler (which drops it, logged): %v", tos[2])
	}
}
