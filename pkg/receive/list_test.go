package receive

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// pgpmimeSigned is a PGP/MIME signed mail by Ana to to whose signed part
// is inner (header and body, LF or CRLF).
func (w *world) pgpmimeSigned(to, id, inner string) []byte {
	w.t.Helper()
	part := strings.ReplaceAll(strings.ReplaceAll(inner, "\r\n", "\n"), "\n", "\r\n")
	var sig bytes.Buffer
	if err := w.ana.ArmoredDetachSign(&sig, strings.NewReader(part)); err != nil {
		w.t.Fatal(err)
	}
	m := "From: " + anaAddr + "\r\nTo: " + to + "\r\nSubject: x\r\nDate: " + w.now().Format(time.RFC1123Z) +
		"\r\nMessage-ID: <" + id + ">\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/signed; micalg=pgp-sha256; protocol=\"application/pgp-signature\"; boundary=S\r\n\r\n--S\r\n" +
		part + "\r\n--S\r\nContent-Type: application/pgp-signature\r\n\r\n" +
		strings.ReplaceAll(sig.String(), "\n", "\r\n") + "\r\n--S--\r\n"
	return []byte(m)
}

// copyOf opens the one copy of a list post delivered to Ana.
func (w *world) copyOf() string {
	w.t.Helper()
	got := w.delivered(anaAddr)
	if len(got) != 1 {
		w.t.Fatalf("%d copies to %s, want 1", len(got), anaAddr)
	}
	o, err := pgpmime.Open(bytes.NewReader(got[0]), w.ana, pgpmime.OpenOptions{Now: w.now()})
	if err != nil {
		w.t.Fatal(err)
	}
	return string(o.Entity)
}

// With list.keep_message_id, the copies' protected Message-ID is the
// post's signed (protected) one; the outer Message-ID, which anyone on
// the way may set, never goes into what the directory signs: without a
// signed one the copies carry the directory's own (issue 10 review).
func TestKeepMessageIDOnlySigned(t *testing.T) {
	const outer = "alert-earlier-copy@directory.example"
	t.Run("unsigned outer Message-ID", func(t *testing.T) {
		w := newWorld(t)
		w.rc.Relay.Config.KeepMessageID = true
		msg := w.signed(listAddr, outer, "DIRECTORY "+listAddr+"\nTLP:AMBER\n\nheads up\n")
		if err := w.receive(anaAddr, []string{listAddr}, msg); err != nil {
			t.Fatal(err)
		}
		inner := w.copyOf()
		if strings.Contains(inner, outer) {
			t.Errorf("the signed copy carries the unsigned outer Message-ID %q", outer)
		}
		if !strings.Contains(inner, "Message-Id: <alert-") && !strings.Contains(inner, "Message-ID: <alert-") {
			t.Errorf("the copy has no Message-ID of the directory's own:\n%.800s", inner)
		}
	})
	t.Run("signed protected Message-ID", func(t *testing.T) {
		w := newWorld(t)
		w.rc.Relay.Config.KeepMessageID = true
		const protected = "thread-1@dns.pt"
		msg := w.pgpmimeSigned(listAddr, outer, "Content-Type: text/plain; charset=utf-8\nMessage-ID: <"+protected+">\n\nDIRECTORY "+listAddr+"\n\nheads up\n")
		if err := w.receive(anaAddr, []string{listAddr}, msg); err != nil {
			t.Fatal(err)
		}
		inner := w.copyOf()
		if strings.Contains(inner, outer) || !strings.Contains(inner, "<"+protected+">") {
			t.Errorf("the copy should carry the signed Message-ID %q, not the outer %q:\n%.800s", protected, outer, inner)
		}
	})
}
