package outbox

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/ccdir/ccdir/directory"
)

// openDB opens a database the way package directory does: WAL, foreign
// keys, BEGIN IMMEDIATE, one connection.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	return openDBAt(t, filepath.Join(t.TempDir(), "ccdir.db"))
}

// openDBAt is openDB on the file at path; the database is closed when the
// test ends.
func openDBAt(t testing.TB, path string) *sql.DB {
	t.Helper()
	v := url.Values{}
	v.Set("_busy_timeout", "5000")
	v.Set("_foreign_keys", "on")
	v.Set("_journal_mode", "WAL")
	v.Set("_synchronous", "FULL")
	v.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", (&url.URL{Scheme: "file", Path: path, RawQuery: v.Encode()}).String())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// openOutbox applies Migrations to db, as directory.Open does, and opens
// the outbox in it.
func openOutbox(ctx context.Context, db *sql.DB) (*Outbox, error) {
	if err := directory.Migrate(ctx, db, Migrations); err != nil {
		return nil, err
	}
	o, err := Open(ctx, db)
	if err != nil {
		return nil, err
	}
	o.Key = testKey
	return o, nil
}

// testKey is the outbox key of the tests.
var testKey = NewKey()

func newOutbox(t testing.TB, c *clock) *Outbox {
	t.Helper()
	o, err := openOutbox(context.Background(), openDB(t))
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		o.Now = c.Now
	}
	return o
}

// clock is a fake clock that moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const dir = "directory@ccdir.example"

// mail builds a CRLF message of about size bytes for to, with a body line
// that starts with a dot (SMTP must stuff it).
func mail(kind, ref, to string, size int) Message {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\nTo: <%s>\r\nSubject: digest %s\r\nMessage-ID: <%s.%s@ccdir.example>\r\n\r\n", dir, to, ref, ref, to)
	b.WriteString(".a line that starts with a dot\r\n")
	line := bytes.Repeat([]byte("0123456789"), 7)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%05d %s\r\n", i, line)
	}
	return Message{Kind: kind, Ref: ref, From: dir, To: to, Data: b.Bytes()}
}

func rcpt(prefix string, i int) string { return fmt.Sprintf("%s%03d@nic.example", prefix, i) }

func mustEnqueue(t testing.TB, o *Outbox, msgs ...Message) {
	t.Helper()
	n, err := o.Enqueue(context.Background(), msgs...)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(msgs) {
		t.Fatalf("enqueued %d of %d", n, len(msgs))
	}
}

func counts(t testing.TB, o *Outbox) map[Status]int {
	t.Helper()
	c, err := o.Counts(context.Background(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sharedMail builds n messages of kind and ref that share one part of
// about size bytes, each with its own head and tail. Every boundary
// between parts splits a CRLF (the head ends with CR, the shared part
// starts with LF and ends with CR, the tail starts with LF), and the
// shared part's first line starts with a dot: transports must carry line
// state from one part to the next.
func sharedMail(kind, ref, prefix string, n, size int) (shared []byte, msgs []Message) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n.a shared line that starts with a dot\r\n")
	line := bytes.Repeat([]byte("abcdefghij"), 7)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "%05d %s %s\r\n", i, ref, line)
	}
	b.WriteString("the shared part ends in the middle of a line ending\r")
	shared = b.Bytes()
	for i := range n {
		to := rcpt(prefix, i)
		head := fmt.Sprintf("From: <%s>\r\nTo: <%s>\r\nSubject: post %s\r\nMessage-ID: <%s.%s@ccdir.example>\r\n\r\nDear %s,\r",
			dir, to, ref, ref, to, to)
		tail := fmt.Sprintf("\n-- \r\nsent to %s\r\n", to)
		msgs = append(msgs, Message{Kind: kind, Ref: ref, From: dir, To: to, Data: []byte(head), Tail: []byte(tail)})
	}
	return shared, msgs
}

// putShared stores shared and makes msgs refer to it.
func putShared(t testing.TB, o *Outbox, shared []byte, msgs []Message) int64 {
	t.Helper()
	id, err := o.PutBlob(context.Background(), shared)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		msgs[i].Blob = id
	}
	return id
}

// wire is m on the wire, with shared as its shared part.
func wire(m Message, shared []byte) []byte {
	m.Shared = shared
	return bytes.Join(m.Parts(), nil)
}

// toLF turns CRLF into LF, as maildir and sendmail should.
func toLF(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// dbInt runs a query that returns one integer.
func dbInt(t testing.TB, o *Outbox, query string, args ...any) int {
	t.Helper()
	var n int
	if err := o.db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func blobRows(t testing.TB, o *Outbox) int {
	t.Helper()
	return dbInt(t, o, `SELECT count(*) FROM outbox_blob`)
}

// readMaildir reads m as the maildir transport delivered it into root,
// checks that it starts with the Return-Path line of its envelope
// sender, and returns what follows.
func readMaildir(t testing.TB, root string, m Message) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "new", MaildirName(m.Kind, m.Ref, m.To)))
	if err != nil {
		t.Fatal(err)
	}
	rp := "Return-Path: <" + m.From + ">\n"
	if !bytes.HasPrefix(b, []byte(rp)) {
		t.Fatalf("maildir message to %s does not start with %q: %.80q", m.To, rp, b)
	}
	return b[len(rp):]
}
