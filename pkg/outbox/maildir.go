package outbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type maildirTransport struct {
	dir string
}

func newMaildir(p string) (*maildirTransport, error) {
	p, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	return &maildirTransport{dir: p}, nil
}

func (t *maildirTransport) String() string { return "maildir:" + t.dir }

// MaildirName is the file name a message gets in a maildir: derived from
// (kind, ref, to) only, so delivering the same message again finds the
// first copy instead of adding a second.
func MaildirName(kind, ref, to string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + ref + "\x00" + to))
	return hex.EncodeToString(h[:16]) + ".ccdir"
}

// NewSession creates the maildir (tmp, new, cur; mode 0700) if needed.
func (t *maildirTransport) NewSession(ctx context.Context) (Session, error) {
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(t.dir, sub), 0o700); err != nil {
			return nil, &DeliveryError{Msg: err.Error(), Err: err}
		}
	}
	s := &maildirSession{t: t}
	if err := s.listCur(); err != nil {
		return nil, &DeliveryError{Msg: err.Error(), Err: err}
	}
	return s, nil
}

type maildirSession struct {
	t        *maildirTransport
	cur      map[string]bool // ccdir names in cur/, flags cut
	curMtime time.Time       // cur/'s mtime when it was listed
	listed   time.Time
}

// listCur notes which ccdir messages a mail reader has moved to cur/,
// where they get a ":2,FLAGS" suffix.
func (s *maildirSession) listCur() error {
	dir := filepath.Join(s.t.dir, "cur")
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	s.listed = time.Now()
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	s.cur = make(map[string]bool, len(entries))
	for _, e := range entries {
		name, _, _ := strings.Cut(e.Name(), ":")
		if strings.HasSuffix(name, ".ccdir") {
			s.cur[name] = true
		}
	}
	s.curMtime = fi.ModTime()
	return nil
}

// inCur reports whether name is in cur/, listing it again when it changed
// since (or too close to) the last listing.
func (s *maildirSession) inCur(name string) (bool, error) {
	fi, err := os.Stat(filepath.Join(s.t.dir, "cur"))
	if err != nil {
		return false, err
	}
	if !fi.ModTime().Equal(s.curMtime) || fi.ModTime().After(s.listed.Add(-2*time.Second)) {
		if err := s.listCur(); err != nil {
			return false, err
		}
	}
	return s.cur[name], nil
}

func (s *maildirSession) Close() error { return nil }

// Send writes tmp/NAME.RANDOM, syncs it, and links it to new/NAME; a name
// already in new/ (or in cur/, where mail readers move what they have
// seen) means the message was delivered before. Line endings become LF,
// as maildir readers expect; a Return-Path header with the envelope
// sender comes first.
func (s *maildirSession) Send(ctx context.Context, m *Message) error {
	name := MaildirName(m.Kind, m.Ref, m.To)
	dst := filepath.Join(s.t.dir, "new", name)
	// new/ first: a reader may move the file to cur/ between the checks.
	if exists(dst) {
		return nil
	}
	if seen, err := s.inCur(name); err != nil {
		return &DeliveryError{Temporary: true, Msg: err.Error(), Err: err}
	} else if seen {
		return nil
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(s.t.dir, "tmp", name+"."+hex.EncodeToString(rnd[:]))
	// Return-Path: the envelope sender, as a local delivery agent adds it.
	rp := strings.NewReader("Return-Path: <" + m.From + ">\n")
	if err := writeSync(tmp, io.MultiReader(rp, lfReader(m))); err != nil {
		os.Remove(tmp)
		return &DeliveryError{Temporary: true, Msg: err.Error(), Err: err}
	}
	defer os.Remove(tmp)
	// A hard link never replaces an existing file, so two racing
	// deliveries of one message leave one copy.
	err := os.Link(tmp, dst)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		if err2 := os.Rename(tmp, dst); err2 != nil { // a file system without links
			return &DeliveryError{Temporary: true, Msg: err.Error(), Err: err}
		}
	}
	if d, err := os.Open(filepath.Join(s.t.dir, "new")); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func writeSync(name string, r io.Reader) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", name, err)
	}
	return f.Close()
}
