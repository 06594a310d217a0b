package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

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

func (t *atomicFile) rename() error {
	if err := os.Rename(t.Name(), t.path); err != nil {
		os.Remove(t.Name())
		return err
	}
	return nil
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
	widths := make([]int, len(t.rows[0]))
	for _, r := range t.rows {
		for i, c := range r {
			if n := len([]rune(c)); i < len(widths) && n > widths[i] {
				widths[i] = n
			}
		}
	}
	var b bytes.Buffer
	for _, r := range t.rows {
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
