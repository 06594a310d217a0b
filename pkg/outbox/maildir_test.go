package outbox

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestMaildir(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "mail")
	tr, err := NewTransport("maildir:"+root, TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.String() != "maildir:"+root {
		t.Errorf("String() = %q", tr.String())
	}
	o := newOutbox(t, nil)
	var msgs []Message
	for i := range 5 {
		msgs = append(msgs, mail(KindDigest, "d1", rcpt("m", i), 1000))
	}
	mustEnqueue(t, o, msgs...)
	if sum, err := o.Deliver(ctx, tr, Filter{}, DeliverOptions{}); err != nil || sum.Sent != 5 {
		t.Fatalf("Deliver = %+v, %v", sum, err)
	}
	for _, sub := range []string{"", "tmp", "new", "cur"} {
		fi, err := os.Stat(filepath.Join(root, sub))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("%s: %v %v", sub, fi.Mode(), err)
		}
	}
	newDir := filepath.Join(root, "new")
	for _, m := range msgs {
		name := MaildirName(m.Kind, m.Ref, m.To)
		if b := readMaildir(t, root, m); !bytes.Equal(b, bytes.ReplaceAll(m.Data, []byte("\r\n"), []byte("\n"))) {
			t.Fatalf("%s differs from the message with LF line endings", name)
		}
		if fi, _ := os.Stat(filepath.Join(newDir, name)); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", name, fi.Mode())
		}
	}
	if MaildirName("digest", "d1", "a@b.example") != MaildirName("digest", "d1", "a@b.example") ||
		MaildirName("digest", "d1", "a@b.example") == MaildirName("digest", "d2", "a@b.example") {
		t.Error("names are not stable per (kind, ref, to)")
	}
	if got := MaildirName("digest", "d1", "a@b.example"); got != "c10a987d45d4e68edf29ff872e149b6f.ccdir" {
		t.Errorf("MaildirName changed: %s", got)
	}

	// A crash after delivery and before the outbox recorded it: the same
	// message is delivered again, even after a reader moved it to cur/.
	s, err := tr.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, &msgs[0]); err != nil {
		t.Fatal(err)
	}
	name1 := MaildirName(msgs[1].Kind, msgs[1].Ref, msgs[1].To)
	if err := os.Rename(filepath.Join(newDir, name1), filepath.Join(root, "cur", name1+":2,S")); err != nil {
		t.Fatal(err)
	}
	for _, fresh := range []bool{false, true} {
		if fresh {
			s, _ = tr.NewSession(ctx)
		}
		if err := s.Send(ctx, &msgs[1]); err != nil {
			t.Fatal(err)
		}
	}
	files := 0
	for _, sub := range []string{"new", "cur", "tmp"} {
		entries, _ := os.ReadDir(filepath.Join(root, sub))
		if sub == "tmp" && len(entries) != 0 {
			t.Errorf("tmp/ keeps %d files", len(entries))
		}
		files += len(entries)
	}
	if files != 5 {
		t.Fatalf("%d files after redelivery, want 5", files)
	}
}
