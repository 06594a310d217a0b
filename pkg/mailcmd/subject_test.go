package mailcmd

import (
	"strings"
	"testing"
)

// The directory-signed reply never carries the outer Subject of the
// command mail, which anyone on the way may set (issue 10, #18): it takes
// the Subject of the signed content (protected headers), or a fixed text.
func TestReplySubjectFromSignedContent(t *testing.T) {
	f := newFixture(t)
	a := f.accepted("bob@dns.pt", "DIRECTORY "+dirAddress+"\nWHOAMI\n")
	a.Subject, a.SubjectSigned = "URGENT wire money", false
	f.handle(a)
	r := f.reply("bob@dns.pt")
	if strings.Contains(r.inner.Protected.Subject, "URGENT") || strings.Contains(r.outer, "URGENT") || strings.Contains(r.text, "URGENT") {
		t.Fatalf("the unsigned Subject reached the reply: %q\n%s\n%s", r.inner.Protected.Subject, r.outer, r.text)
	}
	if r.inner.Protected.Subject != "Re: your commands" {
		t.Errorf("protected subject %q, want the fixed text", r.inner.Protected.Subject)
	}

	// A signed Subject is the member's own words: the reply answers it.
	a = f.accepted("bob@dns.pt", "DIRECTORY "+dirAddress+"\nWHOAMI\n")
	a.Subject, a.SubjectSigned = "my entry", true
	f.handle(a)
	if s := f.reply("bob@dns.pt").inner.Protected.Subject; s != "Re: my entry" {
		t.Errorf("protected subject %q, want Re: my entry", s)
	}
}
