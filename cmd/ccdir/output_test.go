package main

import (
	"bytes"
	"encoding/json"
	"log"
	"testing"
)

// TestPrintable: what printable, jsonPrintable and the log writer make of
// text that would drive a terminal.
func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text, ação, рф, 中文", "plain text, ação, рф, 中文"},
		{"550 gone\x1b]0;owned\a\x1b[2J", `550 gone\x1b]0;owned\a\x1b[2J`},
		{"a\nb\tc\rd", `a\nb\tc\rd`},
		{"del\x7f c1\u009b31m", `del\x7f c1\u009b31m`},
		{"bidi \u202etxt.exe zero\u200bwidth \ufeff", `bidi \u202etxt.exe zero\u200bwidth \ufeff`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"tag \U000e0041", `tag \U000e0041`},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}

	// JSON: the same values, nothing raw.
	in := map[string]string{"x": "a\x1b[2J\a\x7f\u009b\u202e\U000e0041\n\"é"}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(in); err != nil {
		t.Fatal(err)
	}
	out := jsonPrintable(b.Bytes())
	if i := bytes.IndexFunc(out, func(r rune) bool { return r != '\n' && notPrintable(r) }); i >= 0 {
		t.Errorf("jsonPrintable left %q raw in %s", out[i:], out)
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["x"] != in["x"] {
		t.Errorf("jsonPrintable: %s decodes to %q (%v), want %q", out, back["x"], err, in["x"])
	}

	// The log of serve and process: one line per message, escaped.
	b.Reset()
	l := log.New(printableLines{&b}, "ccdir: ", 0)
	l.Printf("refused mail: %s", "subject \x1b[31mred\nccdir: forged line")
	l.Printf("next")
	if got, want := b.String(), "ccdir: refused mail: subject \\x1b[31mred\\nccdir: forged line\nccdir: next\n"; got != want {
		t.Errorf("log = %q, want %q", got, want)
	}
}
