package relay_test

import (
	"bytes"
	"io"
	"net/mail"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/relay"
)

// The directory-signed answer to a post that was not relayed never
// carries the post's unsigned outer Subject (issue 10, #18): a clear-
// signed post has no signed Subject, so the answer says a fixed text.
func TestNotRelayedReplyOmitsUnsignedSubject(t *testing.T) {
	w := newWorld(t)
	res := w.post(w.clearPost(w.ana, w.ana.email, "URGENT wire money",
		"DIRECTORY "+listAddr+"\nTLP:RED\nTO: de\n\nDo not share.\n"))
	if res.Alert != "" || !res.Replied {
		t.Fatalf("result %+v, want refused and answered", res)
	}
	msg := w.copies(relay.KindReply, "")[w.ana.email]
	if msg == nil {
		t.Fatal("no answer to the author")
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	i := bytes.Index(body, []byte("-----BEGIN PGP MESSAGE-----"))
	j := bytes.Index(body, []byte("-----END PGP MESSAGE-----"))
	path := w.g.WriteFile("reply.asc", body[i:j+len("-----END PGP MESSAGE-----")])
	stdout, stderr, err := w.g.Run("--status-fd", "2", "--pinentry-mode", "loopback", "--passphrase", "", "--decrypt", path)
	if err != nil || !strings.Contains(string(stderr), "VALIDSIG "+w.dir.Fingerprint()) {
		t.Fatalf("gpg: %v\n%s", err, stderr)
	}
	in, err := pgpmime.ParseInner(stdout)
	if err != nil {
		t.Fatal(err)
	}
	if s := in.Protected.Subject; strings.Contains(s, "URGENT") || s != "Not relayed: your post" {
		t.Errorf("protected Subject %q, want the fixed text", s)
	}
	if strings.Contains(m.Header.Get("Subject"), "URGENT") || strings.Contains(string(in.Parts[0].Body), "URGENT") {
		t.Errorf("the unsigned Subject reached the answer")
	}
}
