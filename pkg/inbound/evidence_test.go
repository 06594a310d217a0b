package inbound

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerifyEvidenceWholeMail: evidence kept whole by an older ccdir (the
// mail as received) re-verifies with the signer's registered key, and not
// with another; a mail encrypted to the directory key cannot be opened
// without the secret key and passes on its actor alone.
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
			if err := VerifyEvidence(data, acc.Contact.Key.Armored, at); err != nil {
				t.Fatalf("whole mail with the signer's key: %v", err)
			}
			err = VerifyEvidence(data, string(mallory), at)
			if acc.Encrypted {
				if err != nil {
					t.Fatalf("encrypted whole mail: %v, want it passed (not openable)", err)
				}
				return
			}
			if err == nil {
				t.Fatal("whole mail verified with another key")
			}
		})
	}
	if n < 5 {
		t.Fatalf("only %d accepted corpus mails", n)
	}
}
