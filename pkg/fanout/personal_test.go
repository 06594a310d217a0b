package fanout

import (
	"bytes"
	"errors"
	"net/mail"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// TestPersonal: a personal message opens with its contact's key only,
// is signed by the directory inside the encryption, and shows only
// neutral outer headers.
func TestPersonal(t *testing.T) {
	w := newQueueWorld(t, 2)
	p := &Personal{Kind: "reply", Ref: "r1", Envelope: "dir@ccdir.example",
		From: mail.Address{Name: "Directory", Address: "dir@ccdir.example"}, To: mail.Address{Name: "R 0", Address: rcptAddr(0)},
		Subject: "Re: the secret subject", OuterSubject: "Encrypted message", Date: queueNow, MessageID: "reply-1@ccdir.example",
		Parts: []pgpmime.Part{{ContentType: "text/plain", Body: []byte("only for you\r\n")}},
		Extra: []pgpmime.Field{{Key: "Auto-Submitted", Value: "auto-replied"}}}
	m, err := p.Message(w.dir, w.secrets[0].Public())
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind != "reply" || m.Ref != "r1" || m.From != "dir@ccdir.example" || m.To != rcptAddr(0) || m.Blob != 0 {
		t.Errorf("message %+v", m)
	}
	head, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	for _, want := range []string{"Subject: Encrypted message", "Auto-Submitted: auto-replied", "Message-Id: <reply-1@ccdir.example>"} {
		if !strings.Contains(head, want) {
			t.Errorf("outer header lacks %q:\n%s", want, head)
		}
	}
	if strings.Contains(string(m.Data), "secret subject") || strings.Contains(string(m.Data), "only for you") {
		t.Error("the real subject or text is visible outside the encryption")
	}
	o, err := pgpmime.Open(bytes.NewReader(m.Data), w.secrets[0], pgpmime.OpenOptions{Now: queueNow, Keyring: []*keys.Public{w.dir.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Encrypted || !o.Signed || o.Signer != w.dir.Fingerprint() || o.SignatureErr != nil {
		t.Errorf("encrypted %v signed %v by %q (%v)", o.Encrypted, o.Signed, o.Signer, o.SignatureErr)
	}
	if !strings.Contains(string(o.Entity), "Subject: Re: the secret subject") || !strings.Contains(string(o.Entity), "only for you") {
		t.Errorf("entity %q", o.Entity)
	}
	if _, err := pgpmime.Open(bytes.NewReader(m.Data), w.secrets[1], pgpmime.OpenOptions{Now: queueNow}); !errors.Is(err, pgpmime.ErrDecrypt) {
		t.Errorf("opens with another's key (err %v)", err)
	}
}
