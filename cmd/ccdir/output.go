package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// printable is the one way a string that may come from elsewhere (an SMTP
// server's reply, a mail's sender or subject, a key's user ID, an error
// that quotes one) reaches the operator's terminal as text: every rune
// that is not graphic (control characters such as ESC, BEL or a line
// break, DEL, C1 controls, format characters such as bidi overrides and
// zero-width ones) and every byte that is not UTF-8 is shown as its Go
// escape (\x1b, \a, \n, \u202e, \u009b, \xff), so that it can neither drive
// the terminal nor fake a line or a column. Everything else is left as it
// is. Table cells, the arguments of printf and warnf, error messages and
// the log lines of serve and process all pass through it; JSON output
// stays JSON, escaped by jsonPrintable.
func printable(s string) string {
	i := strings.IndexFunc(s, notPrintable)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for rest := s[i:]; rest != ""; {
		r, n := utf8.DecodeRuneInString(rest)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, rest[0])
		case notPrintable(r):
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(rest[:n])
		}
		rest = rest[n:]
	}
	return b.String()
}

// notPrintable: a rune printable escapes (U+FFFD, which also stands for
// bytes that are not UTF-8, among them).
func notPrintable(r rune) bool {
	return r == utf8.RuneError || (!unicode.IsGraphic(r) && r != ' ')
}

// printableArgs applies printable to the strings among args (and to
// errors, Stringers and byte slices, as %s and %v would show them).
func printableArgs(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case string:
			out[i] = printable(v)
		case []byte:
			out[i] = printable(string(v))
		case error:
			out[i] = printable(v.Error())
		case fmt.Stringer:
			out[i] = printable(v.String())
		default:
			out[i] = a
		}
	}
	return out
}

// jsonPrintable escapes, in JSON that encoding/json wrote, every rune it
// leaves raw that printable would escape (DEL, C1 controls, format
// characters) as \uXXXX: the same JSON values, nothing that drives a
// terminal. Outside strings JSON has only ASCII punctuation, spaces and
// line breaks, which stay.
func jsonPrintable(b []byte) []byte {
	i := bytes.IndexFunc(b, func(r rune) bool { return r != '\n' && notPrintable(r) && r != utf8.RuneError })
	if i < 0 {
		return b
	}
	out := append([]byte(nil), b[:i]...)
	for rest := b[i:]; len(rest) > 0; {
		r, n := utf8.DecodeRune(rest)
		if r != '\n' && r != utf8.RuneError && notPrintable(r) {
			if r > 0xFFFF {
				r1, r2 := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else {
			out = append(out, rest[:n]...)
		}
		rest = rest[n:]
	}
	return out
}

// printableLines is a writer for a log.Logger (one Write per line): each
// line is written through printable, its final line break kept.
type printableLines struct{ w io.Writer }

func (p printableLines) Write(b []byte) (int, error) {
	line, nl := bytes.CutSuffix(b, []byte("\n"))
	out := printable(string(line))
	if nl {
		out += "\n"
	}
	if _, err := io.WriteString(p.w, out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it
// and renames it into place, so readers see the old file or the new one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	t, err := newAtomicFile(path, perm)
	if err != nil {
		return err
	}
	if _, err := t.Write(data); err != nil {
		t.Abort()
		return err
	}
	return t.Commit()
}

// fileWrite is one file for writeFilesAtomic: its path, what it is to
// hold, and its mode.
type fileWrite struct {
	path string
	data []byte
	perm os.FileMode
}

// writeFilesAtomic writes files as one change, as far as renames allow:
// each is written in full to a temporary file beside it first (a failure
// there changes nothing), then they are renamed into place in order; if
// a rename fails, the files renamed before it get back what they held,
// or are removed if they did not exist. Readers see each file old or
// new, never half written.
func writeFilesAtomic(files ...fileWrite) error {
	type staged struct {
		t       *atomicFile
		old     []byte
		oldPerm os.FileMode
		existed bool
	}
	var all []staged
	abort := func() {
		for _, s := range all {
			s.t.Abort()
		}
	}
	for _, f := range files {
		s := staged{}
		if st, err := os.Stat(f.path); err == nil {
			if s.old, err = os.ReadFile(f.path); err != nil {
				abort()
				return err
			}
			s.oldPerm, s.existed = st.Mode().Perm(), true
		} else if !errors.Is(err, fs.ErrNotExist) {
			abort()
			return err
		}
		t, err := newAtomicFile(f.path, f.perm)
		if err != nil {
			abort()
			return err
		}
		s.t = t
		all = append(all, s)
		if _, err := t.Write(f.data); err != nil {
			abort()
			return err
		}
		if err := t.finish(); err != nil {
			abort()
			return err
		}
	}
	for i, s := range all {
		if err := s.t.rename(); err != nil {
			for _, r := range all[i+1:] {
				r.t.Abort()
			}
			// File i too: its rename may have happened before the
			// failure (of the directory's sync).
			for _, r := range all[:i+1] {
				if r.existed {
					writeFileAtomic(r.t.path, r.old, r.oldPerm)
				} else {
					os.Remove(r.t.path)
				}
			}
			return err
		}
	}
	return nil
}

// atomicFile is a temporary file that becomes path on Commit.
type atomicFile struct {
	*os.File
	path string
}

func newAtomicFile(path string, perm os.FileMode) (*atomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &atomicFile{File: f, path: path}, nil
}

// finish syncs and closes the temporary file without renaming it yet.
func (t *atomicFile) finish() error {
	if err := t.File.Sync(); err != nil {
		t.Abort()
		return err
	}
	if err := t.File.Close(); err != nil {
		os.Remove(t.Name())
		return err
	}
	return nil
}

// testOnlyRename, when set by the tests, is called before each rename
// of an atomicFile into place; an error it returns fails that rename.
var testOnlyRename func(path string) error

func (t *atomicFile) rename() error {
	if testOnlyRename != nil {
		if err := testOnlyRename(t.path); err != nil {
			os.Remove(t.Name())
			return err
		}
	}
	if err := os.Rename(t.Name(), t.path); err != nil {
		os.Remove(t.Name())
		return err
	}
	return syncDir(filepath.Dir(t.path))
}

// syncDir makes a new name in dir survive a power loss.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Commit syncs, closes and renames the file into place.
func (t *atomicFile) Commit() error {
	if err := t.finish(); err != nil {
		return err
	}
	return t.rename()
}

// Abort removes the temporary file.
func (t *atomicFile) Abort() {
	t.File.Close()
	os.Remove(t.Name())
}

// table writes aligned columns.
type table struct {
	rows [][]string
}

func (t *table) add(cols ...string) { t.rows = append(t.rows, cols) }

func (t *table) write(w io.Writer) error {
	if len(t.rows) == 0 {
		return nil
	}
	rows := make([][]string, len(t.rows))
	for i, r := range t.rows {
		rows[i] = make([]string, len(r))
		for j, c := range r {
			rows[i][j] = printable(c)
		}
	}
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			if n := len([]rune(c)); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	var b bytes.Buffer
	for _, r := range rows {
		for i, c := range r {
			if i == len(r)-1 {
				b.WriteString(c)
				break
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))+2))
		}
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
