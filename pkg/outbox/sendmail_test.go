package outbox

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func fakeSendmail(t *testing.T, timeout time.Duration) (Transport, string) {
	t.Helper()
	script, err := filepath.Abs("testdata/fake-sendmail.sh")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	t.Setenv("FAKE_SENDMAIL_DIR", out)
	tr, err := NewTransport("sendmail:"+script, TransportOptions{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	if tr.String() != "sendmail:"+script {
		t.Errorf("String() = %q", tr.String())
	}
	return tr, out
}

func TestSendmail(t *testing.T) {
	ctx := context.Background()
	tr, out := fakeSendmail(t, 10*time.Second)
	o := newOutbox(t, nil)
	m := mail(KindDigest, "d1", "-x@nic.example", 2000)
	m.To = "sec@nic.example"
	mustEnqueue(t, o, m)
	sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{})
	if err != nil || sum != (Summary{Sent: 1}) {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	args, _ := os.ReadFile(filepath.Join(out, "1.args"))
	if want := "-i\n-f\n" + dir + "\n--\nsec@nic.example\n"; string(args) != want {
		t.Errorf("args = %q, want %q", args, want)
	}
	stdin, _ := os.ReadFile(filepath.Join(out, "1.stdin"))
	if want := bytes.ReplaceAll(m.Data, []byte("\r\n"), []byte("\n")); !bytes.Equal(stdin, want) {
		t.Errorf("stdin differs from the message with LF line endings")
	}
}

func TestSendmailExitCodes(t *testing.T) {
	for _, tc := range []struct {
		exit, stderr string
		temporary    bool
		msg          string
	}{
		{"75", "queue full", true, "exited with status 75: queue full"},
		{"1", "user unknown\nsecond line", false, "exited with status 1: user unknown"},
		{"67", "", false, "exited with status 67"},
	} {
		t.Run(tc.exit, func(t *testing.T) {
			tr, _ := fakeSendmail(t, 10*time.Second)
			t.Setenv("FAKE_SENDMAIL_EXIT", tc.exit)
			t.Setenv("FAKE_SENDMAIL_STDERR", tc.stderr)
			s, err := tr.NewSession(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			m := mail(KindReply, "r", "a@nic.example", 100)
			err = s.Send(context.Background(), &m)
			var de *DeliveryError
			if !errors.As(err, &de) || de.Temporary != tc.temporary || !strings.HasSuffix(de.Msg, tc.msg) {
				t.Fatalf("Send = %#v", err)
			}
			if IsTemporary(err) != tc.temporary {
				t.Fatalf("IsTemporary = %v", IsTemporary(err))
			}
		})
	}
}

func TestSendmailTimeout(t *testing.T) {
	tr, _ := fakeSendmail(t, 200*time.Millisecond)
	t.Setenv("FAKE_SENDMAIL_SLEEP", "5")
	s, err := tr.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := mail(KindReply, "r", "a@nic.example", 100)
	start := time.Now()
	err = s.Send(context.Background(), &m)
	if !IsTemporary(err) || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("Send = %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("Send took %v", d)
	}
}

func TestSendmailRefusesOptionLikeAddresses(t *testing.T) {
	tr, out := fakeSendmail(t, 10*time.Second)
	s, err := tr.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{"-oQ/tmp/x@a.example", "a@b.example -X/tmp/log", "a@b.example\n-t", ""} {
		m := mail(KindReply, "r", "a@nic.example", 100)
		m.To = to
		if err := s.Send(context.Background(), &m); err == nil || IsTemporary(err) {
			t.Errorf("Send to %q = %v; want a permanent refusal", to, err)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("sendmail ran %d times", len(entries)/2)
	}
	if _, err := NewTransport("sendmail:sendmail", TransportOptions{}); !errors.Is(err, ErrBadURL) {
		t.Errorf("relative sendmail path: %v", err)
	}
	tr, _ = NewTransport("sendmail:/nonexistent/sendmail", TransportOptions{})
	if _, err := tr.NewSession(context.Background()); err == nil {
		t.Error("NewSession with a missing program succeeded")
	}
}
