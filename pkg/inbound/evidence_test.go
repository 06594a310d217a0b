package inbound

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
)

// TestVerifyEvidenceWholeMail: evidence kept whole by an older ccdir (the
// mail as received) re-verifies with the signer's registered key, and not
// with another, and gives the replay id Process recorded; a mail
// encrypted to the directory key is opened with the directory's secret
// key, and without it is ErrEvidenceSealed (directory.ErrUnchecked).
func TestVerifyEvidenceWholeMail(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	mallory, err := w.mallory.pub(t).Armored()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range corpusFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		meta := readMeta(t, data)
		if meta.expect != "accept" || meta.setup != "" || meta.padTo > 0 {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".eml"), func(t *testing.T) {
			acc, err := w.p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			n++
			at := acc.SignedAt.Add(1)
			sealed := VerifyEvidence(data, acc.Contact.Key.Armored, at)
			switch {
			case acc.Encrypted && (!errors.Is(sealed, ErrEvidenceSealed) || !errors.Is(sealed, directory.ErrUnchecked)):
				t.Fatalf("encrypted whole mail without the directory key: %v, want ErrEvidenceSealed (unchecked)", sealed)
			case !acc.Encrypted && sealed != nil:
				t.Fatalf("whole mail with the signer's key: %v", sealed)
			}
			// With the directory key, an encrypted mail is opened and
			// checked like the others.
			chk := EvidenceCheck{Secret: func() (*keys.Secret, error) { return w.dir, nil }}
			if err := chk.Verify(data, acc.Contact.Key.Armored, at); err != nil {
				t.Fatalf("whole mail with the signer's key and the directory key: %v", err)
			}
			id, err := chk.ID(data, acc.Key.Fingerprint, acc.Contact.Key.Armored, at)
			if err != nil || id != acc.Seen {
				t.Fatalf("ID of the whole mail = %q, %v; want the replay id %q", id, err, acc.Seen)
			}
			err = chk.Verify(data, string(mallory), at)
			if err == nil {
				t.Fatal("whole mail verified with another key")
			}
		})
	}
	if n < 5 {
		t.Fatalf("only %d accepted corpus mails", n)
	}
}

// TestEvidence: the evidence of every accepted form is the signed data
// and the signature only (no header, no unsigned part), and re-verifies
// with the signer's key and no other, also for encrypted mail, without
// the directory key; changed, it does not.
func TestEvidence(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	mallory, err := w.mallory.pub(t).Armored()
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]bool{}
	for _, path := range corpusFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		meta := readMeta(t, data)
		if meta.expect != "accept" || meta.setup != "" || meta.padTo > 0 {
			continue
		}
		t.Run(strings.TrimSuffix(filepath.Base(path), ".eml"), func(t *testing.T) {
			acc, err := w.p.Process(ctx, envelopeOf(data), bytes.NewReader(data))
			if err != nil {
				t.Fatalf("Process: %v", err)
			}
			forms[acc.Form] = true
			ev := acc.Evidence
			form, _, content, err := parseEvidence(ev)
			if err != nil || form != acc.Form {
				t.Fatalf("evidence: form %q, %v", form, err)
			}
			if bytes.Contains(ev, []byte("Message-ID:")) || bytes.Contains(ev, []byte("Return-Path:")) {
				t.Errorf("evidence keeps the outer header:\n%s", ev)
			}
			if len(ev) > len(data)+1024 {
				t.Errorf("evidence of %d bytes for a mail of %d", len(ev), len(data))
			}
			if id, err := EvidenceSeen(ev, acc.Key.Fingerprint); err != nil || id != acc.Seen {
				t.Fatalf("EvidenceSeen = %q, %v; want the replay id %q", id, err, acc.Seen)
			}
			at := acc.SignedAt.Add(1)
			if err := VerifyEvidence(ev, acc.Contact.Key.Armored, at); err != nil {
				t.Fatalf("evidence with the signer's key: %v", err)
			}
			if err := VerifyEvidence(ev, string(mallory), at); err == nil {
				t.Fatal("evidence verified with another key")
			}
			if len(content) > 0 {
				bad := bytes.Clone(ev)
				i := bytes.LastIndex(bad, []byte("DIRECTORY"))
				if i < 0 {
					i = len(bad) - 1
				}
				bad[i] ^= 0x20
				if err := VerifyEvidence(bad, acc.Contact.Key.Armored, at); err == nil {
					t.Fatal("changed evidence verified")
				}
			}
		})
	}
	for _, f := range []string{FormPGPMIMEEncrypted, FormPGPMIMESigned, FormInlineClear, FormInlineEncrypted} {
		if !forms[f] {
			t.Errorf("no accepted corpus mail of form %s", f)
		}
	}
}

// TestEvidenceLeavesUnsignedParts: an attachment anyone on the path adds
// beside the signed text is not kept (it was, with the whole mail).
func TestEvidenceLeavesUnsignedParts(t *testing.T) {
	w := newWorld(t)
	text := clearsigned(t, w.ana, "DIRECTORY "+dirAddr+"\nSET NAME Ana\n", corpusNow.Add(-time.Minute), "bloat")
	const b = "mixed-bloat"
	junk := strings.Repeat(strings.Repeat("A", 76)+"\r\n", 40000) // about 3 MB
	mail := []byte(headers("ana@dns.pt", "bloat") + `Content-Type: multipart/mixed; boundary="` + b + `"` + "\r\n\r\n" +
		"--" + b + "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n" +
		"--" + b + "\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + junk +
		"--" + b + "--\r\n")
	acc, err := w.p.Process(context.Background(), Envelope{From: "ana@dns.pt", To: []string{dirAddr}}, bytes.NewReader(mail))
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if n := len(acc.Evidence); n > 2048 {
		t.Fatalf("evidence of %d bytes for a mail of %d: it keeps the unsigned attachment", n, len(mail))
	}
	if err := VerifyEvidence(acc.Evidence, acc.Contact.Key.Armored, acc.SignedAt); err != nil {
		t.Fatal(err)
	}
}
