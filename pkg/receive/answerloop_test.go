package receive

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/pkg/fanout"
)

// TestRefusalAnswerLoop: an answer to refused mail is Auto-Submitted and
// goes out from a tagged bounce address; fed back to the directory it is
// dropped, unanswered. Mail that would be told otherwise (a member's,
// without its binding line) gets no answer when it is automatic
// (Auto-Submitted) or comes from the bounce address, tagged or not, or
// the -sendkey address.
func TestRefusalAnswerLoop(t *testing.T) {
	w := newWorld(t)
	w.ob.Bounce = bounceAddr
	if err := w.receive(anaAddr, []string{dirAddr}, w.signed(dirAddr, "loop0@dns.pt", "WHOAMI\n")); err == nil {
		t.Fatal("a mail without its binding line was accepted")
	}
	w.lines()
	rows := w.queued(fanout.KindRefused)
	if len(rows) != 1 || !strings.HasPrefix(rows[0].From, "ccdir-bounces+") || !strings.HasSuffix(rows[0].From, "@directory.example") {
		t.Fatalf("answers %+v, want one from a tagged bounce address", rows)
	}
	envFrom := rows[0].From
	got := w.delivered(anaAddr)
	if len(got) != 1 {
		t.Fatalf("%d answers delivered", len(got))
	}
	answer := got[0]
	m, err := mail.ReadMessage(bytes.NewReader(answer))
	if err != nil {
		t.Fatal(err)
	}
	if v := m.Header.Get("Auto-Submitted"); v == "" || strings.EqualFold(v, "no") {
		t.Errorf("the answer's Auto-Submitted is %q", v)
	}

	// The answer, back at the directory (a forward, a misconfigured
	// alias): dropped, nothing queued.
	if err := w.receive(envFrom, []string{dirAddr}, answer); err != nil {
		t.Fatalf("the answer fed back: %v, want it dropped", err)
	}
	expectLines(t, w.lines(), `^ccdir: dropped mail from .*: not answered$`)

	for _, tc := range []struct{ name, from, extra string }{
		{"auto-replied", anaAddr, "Auto-Submitted: auto-replied"},
		{"auto-generated", anaAddr, "Auto-Submitted: auto-generated"},
		{"from the tagged bounce address", envFrom, ""},
		{"from the bounce address", bounceAddr, ""},
		{"from the sendkey address", keyAddr, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			if tc.extra != "" {
				extra = append(extra, tc.extra)
			}
			msg := w.signed(dirAddr, "loop-"+strings.ReplaceAll(tc.name, " ", "-")+"@dns.pt", "WHOAMI\n", extra...)
			if err := w.receive(tc.from, []string{dirAddr}, msg); err != nil {
				t.Fatalf("Receive = %v, want the mail dropped", err)
			}
			expectLines(t, w.lines(), `^ccdir: dropped mail from .*: not answered$`)
			if n := len(w.queued(fanout.KindRefused)); n != 1 {
				t.Fatalf("%d answers queued, want still the first one only", n)
			}
		})
	}
	// Nor is a key request from the tagged bounce address answered.
	if err := w.receive(envFrom, []string{keyAddr}, w.mail(envFrom, keyAddr, "loop-key@dns.pt", "key?\n")); err != nil {
		t.Fatal(err)
	}
	expectLines(t, w.lines(), `^ccdir: dropped key request from "ccdir-bounces\+.*": mail from the directory's own address: not answered$`)
	if n := len(w.queued("")); n != 1 {
		t.Fatalf("%d messages queued, want the first answer only", n)
	}
}
