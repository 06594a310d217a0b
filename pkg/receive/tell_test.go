package receive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/fanout"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// answers delivers the outbox and opens each answer to a refused mail
// Ana got: the inner entity, its text decoded.
func (w *world) answers() []string {
	w.t.Helper()
	var out []string
	for _, m := range w.delivered(anaAddr) {
		o, err := pgpmime.Open(bytes.NewReader(m), w.ana, pgpmime.OpenOptions{Now: w.now(), Keyring: []*keys.Public{w.dir.Public()}})
		if err != nil {
			w.t.Fatal(err)
		}
		if !o.Encrypted || !o.Signed || o.Signer != w.dir.Fingerprint() || o.SignatureErr != nil {
			w.t.Errorf("answer: encrypted %v, signed %v by %s (%v)", o.Encrypted, o.Signed, o.Signer, o.SignatureErr)
		}
		dec, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(o.Entity)))
		out = append(out, strings.ReplaceAll(string(dec), "\r\n", "\n"))
	}
	return out
}

// A registered member whose mail is refused for something it can fix
// (here: no binding line) is told, encrypted, at the registered address
// (not the envelope sender's): the SMTP reply and exit code stay those of
// a refusal, and the log line says who was told. A stranger, an unsigned
// mail and a replay are not told, and their log lines say why.
func TestRefusalsTold(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		name, to, text, subject, says string
	}{
		{"command mail without binding", dirAddr, "WHOAMI\n", "Refused: your mail", "was refused, and none of its commands ran:\nthe signed content does not name this directory: the signed text must contain the line DIRECTORY " + dirAddr},
		{"command mail bound to the list", dirAddr, "DIRECTORY " + listAddr + "\nWHOAMI\n", "Refused: your mail", "DIRECTORY " + dirAddr},
		{"list post without binding", listAddr, "TLP:AMBER\n\nA resolver is down.\n", "Not relayed: your post", "Your post to " + listAddr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := w.receive("forged@elsewhere.example", []string{tc.to}, w.signed(tc.to, "n-"+tc.name+"@dns.pt", tc.text))
			var ref *inbound.Refusal
			if !errors.As(err, &ref) || ExitCode(err) != 0 {
				t.Fatalf("Receive = %v, want a refusal", err)
			}
			if code, _, text := ref.SMTPStatus(); code != 550 || !strings.Contains(text, "does not name this directory") {
				t.Errorf("SMTP status %d %q", code, text)
			}
			expectLines(t, w.lines(), `^ccdir: refused mail from "forged@elsewhere\.example": the signed content does not name this directory: .*; told ana@dns\.pt$`)
			if ref.Told != anaAddr {
				t.Errorf("Told = %q", ref.Told)
			}
			got := w.answers()
			if len(got) != 1 {
				t.Fatalf("%d answers, want 1", len(got))
			}
			if !strings.Contains(got[0], "Subject: "+tc.subject+"\n") || !strings.Contains(got[0], tc.says) {
				t.Errorf("answer does not say %q under %q:\n%s", tc.says, tc.subject, got[0])
			}
			if n := len(w.delivered("forged@elsewhere.example")); n != 0 {
				t.Errorf("%d messages to the envelope sender", n)
			}
		})
	}

	// Not told: nothing queued, the log says why.
	stranger, err := keys.Generate("Mallory", "mallory@evil.example", keys.AlgoEd25519, fixedNow.Add(-time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger.SetClock(w.now)
	var sb bytes.Buffer
	cw, err := clearsign.Encode(&sb, stranger.Entity().PrivateKey, stranger.SignConfig())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(cw, "WHOAMI\n")
	if err := cw.Close(); err != nil {
		t.Fatal(err)
	}
	accepted := w.signed(dirAddr, "ok@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n")
	if err := w.receive(anaAddr, []string{dirAddr}, accepted); err != nil {
		t.Fatal(err)
	}
	w.lines()
	w.delivered(anaAddr) // the reply
	for _, tc := range []struct {
		name string
		msg  []byte
		log  string
	}{
		{"unsigned", w.mail(anaAddr, dirAddr, "u@dns.pt", "WHOAMI\n"), `not signed with OpenPGP.*; not told: not signed$`},
		{"replay", accepted, `already used.*; not told: a replay$`},
		{"unknown signer", w.mail(anaAddr, dirAddr, "m@dns.pt", sb.String()), `cannot be accepted.*; not told: no good signature by a registered key$`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := w.receive(anaAddr, []string{dirAddr}, tc.msg); err == nil {
				t.Fatal("taken")
			}
			expectLines(t, w.lines(), tc.log)
			if n := len(w.answers()); n != 0 {
				t.Errorf("%d answers", n)
			}
		})
	}
}

// A flood of refused mails signed by a member (or replayed by someone
// who caught them) gets at most Config.RepliesPerHour answers in an hour,
// and each mail one answer at most.
func TestRefusalAnswersLimited(t *testing.T) {
	w := newWorld(t)
	w.rc.Config.RepliesPerHour = 3
	msgs := make([][]byte, 20)
	for i := range msgs {
		msgs[i] = w.signed(dirAddr, fmt.Sprintf("f%d@dns.pt", i), fmt.Sprintf("WHOAMI\nSHOW pt %d\n", i))
	}
	for _, m := range append(msgs, msgs...) {
		w.receive(anaAddr, []string{dirAddr}, m)
	}
	lines := w.lines()
	if n := len(w.queued(fanout.KindRefused)); n != 3 {
		t.Errorf("%d answers queued, want 3", n)
	}
	told, limited, again := 0, 0, 0
	for _, l := range lines {
		switch {
		case strings.HasSuffix(l, "; told ana@dns.pt"):
			told++
		case strings.Contains(l, "; not told: rate limit"):
			limited++
		case strings.Contains(l, "; not told: answered already"):
			again++
		}
	}
	if told != 3 || told+limited+again != 40 {
		t.Errorf("%d told, %d over the limit, %d answered already, of %d lines", told, limited, again, len(lines))
	}
	// An hour later, one more.
	w.advance(61 * time.Minute)
	w.receive(anaAddr, []string{dirAddr}, w.signed(dirAddr, "later@dns.pt", "WHOAMI\n"))
	if n := len(w.queued(fanout.KindRefused)); n != 4 {
		t.Errorf("%d answers queued after an hour, want 4", n)
	}
}

// A member's auto-responder that signs everything (a ticket system) and
// sets neither Auto-Submitted nor Precedence answers each answer to its
// refused mail with another refused mail: only the first is answered.
// One that names an answer of ours in In-Reply-To or References is
// refused and logged, not answered; one naming a reply of ours, or an
// answer-like id of another domain, still is.
func TestRefusalAnswerResponder(t *testing.T) {
	w := newWorld(t)
	parent := "<digest-1@directory.example>" // what the responder first answers
	for i := range 20 {
		w.advance(time.Minute)
		msg := w.signed(dirAddr, fmt.Sprintf("auto%d@dns.pt", i), fmt.Sprintf("Thank you for your mail (ticket %d).\n", i),
			"In-Reply-To: "+parent, "References: <x@dns.pt> "+parent)
		var ref *inbound.Refusal
		if err := w.receive(anaAddr, []string{dirAddr}, msg); !errors.As(err, &ref) {
			t.Fatalf("round %d: Receive = %v, want a refusal", i, err)
		}
		rows := w.queued(fanout.KindRefused)
		if len(rows) == 0 {
			t.Fatalf("round %d: no answer", i)
		}
		parent = "<" + rows[len(rows)-1].Ref + "@directory.example>"
	}
	if n := len(w.queued(fanout.KindRefused)); n != 1 {
		t.Fatalf("%d answers to the auto-responder, want 1", n)
	}
	lines := w.lines()
	expectLines(t, lines[:1], `; told ana@dns\.pt$`)
	expectLines(t, lines[1:2], `^ccdir: refused mail from "ana@dns\.pt": the signed content does not name this directory: .*; not told: it answers the directory's answer <refused-[0-9a-f]{24}@directory\.example> \(an auto-responder\)$`)
	if n := len(lines); n != 20 {
		t.Fatalf("%d log lines, want 20", n)
	}
	answer := parent
	for _, tc := range []struct {
		name, header string
		told         bool
	}{
		{"References only", "References: <a@dns.pt> " + answer, false},
		{"upper case domain", "In-Reply-To: " + strings.ToUpper(answer), false},
		{"a reply of ours", "In-Reply-To: <reply-0123456789abcdef01234567@directory.example>", true},
		{"another domain", "In-Reply-To: " + strings.Replace(answer, "directory.example", "elsewhere.example", 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w.advance(2 * time.Hour) // past the answers' rate limit
			before := len(w.queued(fanout.KindRefused))
			w.receive(anaAddr, []string{dirAddr}, w.signed(dirAddr, "h-"+strings.ReplaceAll(tc.name, " ", "-")+"@dns.pt", "WHOAMI\n", tc.header))
			if got := len(w.queued(fanout.KindRefused)) - before; got != map[bool]int{true: 1}[tc.told] {
				t.Errorf("%d answers, want told %v; log %q", got, tc.told, w.lines())
			}
			w.lines()
		})
	}
}
