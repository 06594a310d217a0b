package mailcmd

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/pkg/liveness"
)

var pongLine = regexp.MustCompile(`(?m)^PONG ([A-Za-z0-9_-]+)$`)

// challenge runs ping send and returns the token of the challenge to email.
func (f *fixture) challenge(email string) string {
	f.t.Helper()
	s := &liveness.Sender{Store: f.store, Secret: f.dir, Outbox: f.ob, TokenSecret: f.ob.Key, Now: f.now}
	if _, err := s.Send(f.ctx); err != nil {
		f.t.Fatal(err)
	}
	bs := f.bodies(liveness.KindPing, email)
	if len(bs) == 0 {
		f.t.Fatalf("no challenge to %s", email)
	}
	m := pongLine.FindStringSubmatch(f.open(bs[len(bs)-1], f.members[email].secret).text)
	if m == nil {
		f.t.Fatal("no PONG line in the challenge")
	}
	return m[1]
}

// A PONG with the sender's own token is confirmed in the reply and makes
// no ledger entry; the same token again, or another contact's, is
// refused in the reply.
func TestPong(t *testing.T) {
	f := newFixture(t)
	alice := f.challenge("alice@dns.pt")
	bob := f.challenge("bob@dns.pt")
	serial := f.serial()
	f.advance(time.Minute)

	res := f.handle(f.accepted("alice@dns.pt", "PONG "+alice+"\n"))
	if !res.Replied || res.Failed || len(res.Entries) != 0 || f.serial() != serial {
		t.Fatalf("result %+v, serial %d → %d", res, serial, f.serial())
	}
	mustContain(t, f.reply("alice@dns.pt").text, "> PONG "+alice, "confirmed: your answer to the check of 2026-11-02", "last confirmed 2026-11-02 10:01 UTC")

	for _, tc := range []struct{ text, want string }{
		{"PONG " + alice, "FAILED: not confirmed: this token was used already, at 2026-11-02 10:01 UTC"},
		{"PONG " + bob, "FAILED: not confirmed: this token was not sent to you"},
		{"PONG " + strings.Repeat("A", liveness.TokenLen), "FAILED: not confirmed: no check has this token"},
	} {
		res := f.handle(f.accepted("alice@dns.pt", tc.text+"\n"))
		if !res.Replied || !res.Failed {
			t.Fatalf("%s: %+v", tc.text, res)
		}
		mustContain(t, f.reply("alice@dns.pt").text, tc.want)
	}
	// Bob's token still works for bob.
	res = f.handle(f.accepted("bob@dns.pt", "PONG "+bob+"\n"))
	if res.Failed {
		t.Fatalf("bob: %+v", res)
	}
}

func TestPongParse(t *testing.T) {
	for _, line := range []string{"PONG", "PONG abc", "PONG " + strings.Repeat("a", 20) + " x", "PONG " + strings.Repeat("a", 20) + "+"} {
		if _, errs := Parse(line); len(errs) != 1 || !strings.Contains(errs[0].Msg, "PONG takes the token") {
			t.Errorf("Parse(%q): %v", line, errs)
		}
	}
	tok := "aB3-_" + strings.Repeat("z", 27)
	s, errs := Parse("pong " + tok)
	if len(errs) != 0 || len(s.Commands) != 1 || s.Commands[0].Token != tok || s.Commands[0].String() != "PONG "+tok {
		t.Fatalf("Parse: %+v %v", s, errs)
	}
}
