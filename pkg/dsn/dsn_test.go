package dsn

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseFile(t *testing.T, name string) (*Report, error) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(bytes.NewReader(b))
}

// TestSamples: real-looking reports of each form, what is a failure and
// what is not (delays, success reports, auto-replies), and that the copy
// of the returned message never counts as the report.
func TestSamples(t *testing.T) {
	type want struct {
		form   string
		failed []string // Final recipient, then Status, then a piece of the diagnostic
	}
	for _, tc := range []struct {
		file string
		want *want // nil: ErrNotReport
		// all: the recipients reported, failed or not
		all int
	}{
		{"postfix.eml", &want{FormRFC3464, []string{"sec@nic.example", "5.1.1", "User unknown in virtual mailbox table"}}, 1},
		{"postfix-delayed.eml", &want{FormRFC3464, nil}, 1},
		{"delivered.eml", &want{FormRFC3464, nil}, 1},
		{"exim-report.eml", &want{FormRFC3464, []string{"abuse@nic.example", "5.0.0", "mailbox unavailable"}}, 1},
		{"exim-plain.eml", &want{FormExim, []string{"abuse@nic.example", "5.1.1", "mailbox unavailable"}}, 1},
		{"exim-delayed.eml", nil, 0},
		{"qmail.eml", &want{FormQmail, []string{"admin@nic.example", "5.1.1", "no mailbox here"}}, 1},
		{"vacation.eml", nil, 0},
		{"forged.eml", &want{FormRFC3464, []string{"victim@nic.example", "5.1.1", "forged"}}, 1},
		{"no-boundary.eml", nil, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rep, err := parseFile(t, tc.file)
			if tc.want == nil {
				if !errors.Is(err, ErrNotReport) {
					t.Fatalf("Parse = %+v, %v; want ErrNotReport", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rep.Form != tc.want.form || len(rep.Recipients) != tc.all {
				t.Fatalf("Parse = %+v; want form %s with %d recipients", rep, tc.want.form, tc.all)
			}
			failed := rep.Failed()
			if tc.want.failed == nil {
				if len(failed) != 0 {
					t.Fatalf("failed %+v, want none", failed)
				}
				return
			}
			if len(failed) != 1 {
				t.Fatalf("failed %+v, want one", failed)
			}
			f := failed[0]
			if f.Final != tc.want.failed[0] || f.Status != tc.want.failed[1] || !strings.Contains(f.Diagnostic, tc.want.failed[2]) {
				t.Fatalf("failed %+v, want %q", f, tc.want.failed)
			}
			if r := f.Reason(); !strings.Contains(r, f.Status) || strings.ContainsAny(r, "\r\n") {
				t.Errorf("Reason() = %q", r)
			}
		})
	}
}

func TestPostfixFields(t *testing.T) {
	rep, err := parseFile(t, "postfix.eml")
	if err != nil {
		t.Fatal(err)
	}
	if rep.ReportingMTA != "mx.tldops.example" {
		t.Errorf("Reporting-MTA %q", rep.ReportingMTA)
	}
	r := rep.Recipients[0]
	if r.Original != "sec@nic.example" || r.RemoteMTA != "mx.nic.example" || r.Action != ActionFailed {
		t.Errorf("recipient %+v", r)
	}
	if want := "smtp; 550 5.1.1 <sec@nic.example>: Recipient address rejected: User unknown in virtual mailbox table"; r.Diagnostic != want {
		t.Errorf("Diagnostic-Code %q, want %q (unfolded)", r.Diagnostic, want)
	}
	rep, err = parseFile(t, "delivered.eml")
	if err != nil || rep.EnvelopeID != "17-0123456789abcdef0123" {
		t.Errorf("Original-Envelope-Id: %+v, %v", rep, err)
	}
}

// report builds a multipart/report around a delivery-status body.
func report(status string, crlf bool) []byte {
	s := "From: MAILER-DAEMON@mx.example\nSubject: Undelivered\nMIME-Version: 1.0\n" +
		"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n" +
		"--B\nContent-Type: text/plain\n\nIt failed.\n\n--B\nContent-Type: message/delivery-status\n\n" +
		status + "\n--B--\n"
	if crlf {
		s = strings.ReplaceAll(s, "\n", "\r\n")
	}
	return []byte(s)
}

const oneFailed = "Reporting-MTA: dns; mx.example\n\nFinal-Recipient: rfc822; a@nic.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 no\n"

// TestHostile: nothing makes Parse read without bound, recurse without
// bound or fail to end; what it cannot read is not a report.
func TestHostile(t *testing.T) {
	// Deep nesting: the report is below MaxDepth levels of multipart.
	var deep strings.Builder
	deep.WriteString("From: x@example\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b0\"\n\n")
	const levels = 200
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&deep, "--b%d\nContent-Type: multipart/mixed; boundary=\"b%d\"\n\n", i-1, i)
	}
	fmt.Fprintf(&deep, "--b%d\nContent-Type: message/delivery-status\n\n%s\n", levels, oneFailed)
	for i := levels; i >= 0; i-- {
		fmt.Fprintf(&deep, "--b%d--\n", i)
	}
	// Many parts: the report is after MaxParts others.
	var many strings.Builder
	many.WriteString("From: x@example\nMIME-Version: 1.0\nContent-Type: multipart/report; boundary=\"m\"\n\n")
	for range 1000 {
		many.WriteString("--m\nContent-Type: text/plain\n\nfiller\n")
	}
	fmt.Fprintf(&many, "--m\nContent-Type: message/delivery-status\n\n%s\n--m--\n", oneFailed)
	// Many recipients.
	var rcpts strings.Builder
	rcpts.WriteString("Reporting-MTA: dns; mx.example\n")
	for i := range 10000 {
		fmt.Fprintf(&rcpts, "\nFinal-Recipient: rfc822; r%d@nic.example\nAction: failed\nStatus: 5.1.1\n", i)
	}
	// A huge part before the report, and a huge field inside it.
	huge := report("Final-Recipient: rfc822; a@nic.example\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; "+strings.Repeat("x", 10<<20)+"\n", false)
	hugeText := []byte("From: x@example\nContent-Type: text/plain\n\n" + strings.Repeat("This is the mail system at host evil.\n", 1<<18))
	b64 := "From: MAILER-DAEMON@mx.example\nMIME-Version: 1.0\nContent-Type: multipart/report; boundary=\"B\"\n\n" +
		"--B\nContent-Type: message/delivery-status\nContent-Transfer-Encoding: base64\n\n" +
		base64.StdEncoding.EncodeToString([]byte(oneFailed)) + "\n--B--\n"

	for _, tc := range []struct {
		name   string
		in     []byte
		failed int // -1: ErrNotReport
	}{
		{"deep nesting", []byte(deep.String()), -1},
		{"many parts", []byte(many.String()), -1},
		{"many recipients", report(rcpts.String(), false), MaxRecipients},
		{"huge field", huge, 1}, // cut at MaxPartBytes, then at maxField
		{"huge text", hugeText, -1},
		{"crlf", report(oneFailed, true), 1},
		{"base64", []byte(b64), 1},
		{"empty", nil, -1},
		{"header only", []byte("From: x@example\n"), -1},
		{"binary", bytes.Repeat([]byte{0, 0xff, '\n', ':'}, 1000), -1},
		{"bad status", report("Final-Recipient: rfc822; a@nic.example\nAction: bogus\nStatus: 9.9.9\n", false), 0},
		{"no action, 5xx status", report("Final-Recipient: rfc822; a@nic.example\nStatus: 5.2.2 (mailbox full)\n", false), 1},
		{"controls", report("Final-Recipient: rfc822; a@nic.example\nAction: failed\nDiagnostic-Code: smtp; 550 \x1b[31mred\x00\n", false), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			rep, err := Parse(bytes.NewReader(tc.in))
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Parse took %v", d)
			}
			if tc.failed < 0 {
				if !errors.Is(err, ErrNotReport) && (err != nil || len(rep.Failed()) != 0) {
					t.Fatalf("Parse = %+v, %v; want no failure", rep, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if n := len(rep.Failed()); n != tc.failed {
				t.Fatalf("%d failed, want %d", n, tc.failed)
			}
			for _, r := range rep.Recipients {
				if strings.ContainsAny(r.Diagnostic, "\x00\x1b\r\n") || len(r.Diagnostic) > maxField {
					t.Fatalf("diagnostic %q not cleaned", r.Diagnostic)
				}
			}
		})
	}
}

// FuzzParse: Parse never panics, ends, and whatever it reports is one
// line of bounded fields.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.eml")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(report(oneFailed, true))
	f.Fuzz(func(t *testing.T, b []byte) {
		rep, err := Parse(bytes.NewReader(b))
		if err != nil {
			return
		}
		if len(rep.Recipients) > MaxRecipients {
			t.Fatalf("%d recipients", len(rep.Recipients))
		}
		for _, r := range rep.Recipients {
			for _, s := range []string{r.Final, r.Original, r.Action, r.Status, r.Diagnostic, r.RemoteMTA} {
				if len(s) > maxField || strings.ContainsAny(s, "\r\n\x00") {
					t.Fatalf("field %q", s)
				}
			}
		}
	})
}
