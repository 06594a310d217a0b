package inbound

import (
	"errors"
	"strings"
	"testing"
)

// What a reader sees besides the first text, with the part limits of the
// message applied inside attached messages too.
func TestShownTexts(t *testing.T) {
	cfg := Config{}.withDefaults()
	parse := func(t *testing.T, s string) *node {
		t.Helper()
		n, err := (&walker{maxDepth: cfg.MaxDepth, maxParts: cfg.MaxParts}).parseEntity([]byte(strings.ReplaceAll(s, "\n", "\r\n")), 0)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	root := parse(t, "Content-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: text/plain\n\nfirst\n"+
		"--M\nContent-Type: multipart/alternative; boundary=A\n\n--A\nContent-Type: text/plain\n\nplain\n--A\n"+
		"Content-Type: text/html; charset=iso-8859-1\n\n<html><head><title>T</title></head><body><p>caf\xe9 <b>TLP:</b>&#82;ED</p><div>x</div></body></html>\n--A--\n"+
		"--M\nContent-Type: message/rfc822\n\nSubject: =?utf-8?q?fwd_TLP=3AAMBER?=\n\ninner text\n"+
		"--M\nContent-Type: image/png; name=\"TLP:RED.png\"\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n--M--\n")
	got, err := shownTexts(root, firstText(root), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range got {
		b.WriteString(s.Where + ": " + strings.TrimSpace(s.Text) + "\n")
	}
	want := "text part 2: plain\n" +
		"the HTML of part 3: T\ncafé TLP:RED\nx\n" +
		"the Subject of the attached message (part 4): fwd TLP:AMBER\n" +
		"text part 1 of the attached message (part 4): inner text\n" +
		"the file name of part 5: TLP:RED.png\n"
	if b.String() != want {
		t.Errorf("shown:\n%s\nwant:\n%s", b.String(), want)
	}

	// Attached messages count against the part limit.
	var many strings.Builder
	many.WriteString("Content-Type: multipart/mixed; boundary=M\n\n--M\nContent-Type: text/plain\n\nfirst\n--M\nContent-Type: message/rfc822\n\n" +
		"Content-Type: multipart/mixed; boundary=I\n\n")
	for range cfg.MaxParts + 1 {
		many.WriteString("--I\nContent-Type: text/plain\n\nx\n")
	}
	many.WriteString("--I--\n--M--\n")
	root = parse(t, many.String())
	if _, err := shownTexts(root, firstText(root), cfg); !errors.Is(err, errTooMany) {
		t.Errorf("an attached message of %d parts: %v, want errTooMany", cfg.MaxParts+1, err)
	}
}
