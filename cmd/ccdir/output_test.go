package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log"
	"os"
	"path/filepath"
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

// TestWriteFilesAtomic: files written together are all new, or all as
// they were when one of them cannot be put in place: one that existed
// holds its old bytes (and mode), one that did not is gone, and no
// temporary file is left.
func TestWriteFilesAtomic(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	if err := os.WriteFile(a, []byte("old a"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c, []byte("old c"), 0o600); err != nil {
		t.Fatal(err)
	}
	files := []fileWrite{{a, []byte("new a"), 0o644}, {b, []byte("new b"), 0o644}, {c, []byte("new c"), 0o600}}
	failed := errors.New("rename failed")
	testOnlyRename = func(path string) error {
		if path == c {
			return failed
		}
		return nil
	}
	t.Cleanup(func() { testOnlyRename = nil })
	if err := writeFilesAtomic(files...); !errors.Is(err, failed) {
		t.Fatalf("writeFilesAtomic = %v, want the rename's failure", err)
	}
	if got, err := os.ReadFile(a); err != nil || string(got) != "old a" {
		t.Errorf("a = %q, %v; want its old bytes", got, err)
	}
	if st, err := os.Stat(a); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("a's mode: %v, %v; want 0640", st.Mode(), err)
	}
	if _, err := os.Stat(b); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("b, which did not exist, is there: %v", err)
	}
	if got, err := os.ReadFile(c); err != nil || string(got) != "old c" {
		t.Errorf("c = %q, %v; want its old bytes", got, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("%d entries left in the folder, want a and c: %v", len(ents), ents)
	}

	testOnlyRename = nil
	if err := writeFilesAtomic(files...); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if got, err := os.ReadFile(f.path); err != nil || !bytes.Equal(got, f.data) {
			t.Errorf("%s = %q, %v; want %q", f.path, got, err, f.data)
		}
	}
}

func TestEvidenceText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\nb\n"},
		{"a\nb", "a\nb\n"},
		{"x\x1b[2Jy\r\n\u202ez", "x\\x1b[2Jy\n\\u202ez\n"},
		{"bare\rcr\n", "bare\\rcr\n"},
	} {
		if got := evidenceText([]byte(c.in)); got != c.want {
			t.Errorf("evidenceText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
