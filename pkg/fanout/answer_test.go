package fanout

import (
	"bytes"
	"context"
	"io"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// TestAnswer: the answer to a refused mail goes to the signer's key
// alone, says what was refused and why, echoes only a signed Subject, is
// queued once per mail, and at most PerHour times an hour per contact.
func TestAnswer(t *testing.T) {
	ctx := context.Background()
	w := newQueueWorld(t, 1)
	armored, err := w.secrets[0].Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	key := &directory.Key{Fingerprint: w.secrets[0].Fingerprint(), Armored: string(armored)}
	ks := NewKeys()
	answer := func(seen, subject string) *Answer {
		return &Answer{Kind: KindRefused, PerHour: 2, Seen: seen, Envelope: "dir@ccdir.example",
			From: mail.Address{Name: "Directory", Address: "list@ccdir.example"}, To: mail.Address{Address: rcptAddr(0)}, Key: key,
			What: "post", Outcome: "was not relayed to anyone", Title: "Not relayed", Subject: subject,
			SignedAt: queueNow.Add(-time.Minute), Why: "the signed text must contain the line DIRECTORY list@ccdir.example.", Now: queueNow}
	}
	queue := func(a *Answer) string {
		t.Helper()
		tx, err := w.store.DB().BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		why, err := a.Queue(ctx, tx, w.ob, w.dir, ks)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		return why
	}
	if why := queue(answer("seen-1", "")); why != "" {
		t.Fatalf("not queued: %s", why)
	}
	if why := queue(answer("seen-1", "")); why != "answered already" {
		t.Errorf("the same mail again: %q", why)
	}
	if why := queue(answer("seen-2", "outage of .pt")); why != "" {
		t.Fatalf("second mail not queued: %s", why)
	}
	if why := queue(answer("seen-3", "")); !strings.HasPrefix(why, "rate limit") {
		t.Errorf("third mail in the hour: %q, want the rate limit", why)
	}
	dir := filepath.Join(t.TempDir(), "maildir")
	tr, err := outbox.NewTransport("maildir:"+dir, outbox.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ob.Deliver(ctx, tr, outbox.Filter{Kind: KindRefused}, outbox.DeliverOptions{}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "new", "*"))
	if len(files) != 2 {
		t.Fatalf("%d answers delivered, want 2", len(files))
	}
	var msgs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	subjects := map[string]bool{}
	for _, m := range msgs {
		if strings.Contains(string(m), "DIRECTORY list@") {
			t.Error("the answer is readable outside the encryption")
		}
		o, err := pgpmime.Open(bytes.NewReader(m), w.secrets[0], pgpmime.OpenOptions{Now: queueNow, Keyring: []*keys.Public{w.dir.Public()}})
		if err != nil {
			t.Fatal(err)
		}
		if !o.Encrypted || !o.Signed || o.Signer != w.dir.Fingerprint() || o.SignatureErr != nil {
			t.Errorf("encrypted %v signed %v by %q (%v)", o.Encrypted, o.Signed, o.Signer, o.SignatureErr)
		}
		dec, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(o.Entity)))
		e := string(dec)
		for _, want := range []string{"Your post to list@ccdir.example, signed " + queueNow.Add(-time.Minute).UTC().Format("2006-01-02 15:04:05 UTC") + ", was not relayed to anyone:",
			"the line DIRECTORY list@ccdir.example.\r\n", "Nothing of it was kept."} {
			if !strings.Contains(e, want) {
				t.Errorf("answer lacks %q:\n%s", want, e)
			}
		}
		for _, s := range []string{"Not relayed: your post", "Not relayed: outage of .pt"} {
			if strings.Contains(e, "Subject: "+s+"\r\n") {
				subjects[s] = true
			}
		}
	}
	if len(subjects) != 2 {
		t.Errorf("subjects %v", subjects)
	}

	// Without a usable key nothing is queued, and the reason says why.
	revoked := answer("seen-4", "")
	revoked.To.Address, revoked.Key = rcptAddr(1), &directory.Key{Fingerprint: "00", Armored: "garbage"}
	if why := queue(revoked); why == "" {
		t.Error("queued to a key that cannot be read")
	}
}

// IsAnswerID knows the Message-IDs of answers (Ref@domain) of the given
// domains, and nothing else.
func TestIsAnswerID(t *testing.T) {
	ref := (&Answer{Seen: "abc"}).Ref()
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{ref + "@directory.example", true},
		{strings.ToUpper(ref) + "@DIRECTORY.EXAMPLE", true},
		{ref + "@elsewhere.example", false},
		{ref + "0@directory.example", false},
		{"refused-" + strings.Repeat("g", 24) + "@directory.example", false},
		{"reply-" + strings.TrimPrefix(ref, "refused-") + "@directory.example", false},
		{ref, false},
		{"", false},
	} {
		if got := IsAnswerID(tc.id, "", "directory.example"); got != tc.want {
			t.Errorf("IsAnswerID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}
