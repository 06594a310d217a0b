package relay_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/pgpmime"
	"github.com/ccdir/ccdir/pkg/relay"
)

func groupHex(fpr string) string {
	var parts []string
	for i := 0; i < len(fpr); i += 4 {
		parts = append(parts, fpr[i:min(i+4, len(fpr))])
	}
	return strings.Join(parts, " ")
}

// A post signed and encrypted with gpg reaches the three other members
// (ed25519 and rsa3072 made by gpg, one made by sq) and its author; gpg and sq
// decrypt and verify every copy; the author block names Ana; the
// attachment is byte-identical; the original header is gone.
func TestGPGPostReachesEveryMember(t *testing.T) {
	w := newWorld(t)
	attachment := make([]byte, 3000)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range attachment {
		attachment[i] = byte(rng.UintN(256))
	}
	text := "TLP:GREEN\n\nA phishing campaign abuses look-alike names under .pt.\nIndicators attached.\n\n-- \nAna\n"
	inner := "To: TLD-OPS <" + listAddr + ">\nSubject: Phishing wave\n" +
		"Content-Type: multipart/mixed; boundary=\"inner-b\"\n\n" +
		"--inner-b\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" + text +
		"--inner-b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename=\"iocs.bin\"\nContent-Transfer-Encoding: base64\n\n" +
		b64Lines(attachment) + "--inner-b--\n"
	res := w.post(w.gpgPost(w.ana, w.ana.email, inner))
	if res.Refused != "" || res.Alert == "" || res.TLP != relay.TLPGreen || res.Author != w.ana.email || res.Queued != 4 || len(res.Skipped) != 0 {
		t.Fatalf("result %+v", res)
	}
	copies := w.copies(relay.Kind, res.Alert)
	if len(copies) != 4 {
		t.Fatalf("%d copies queued, want 4", len(copies))
	}
	for _, p := range []*person{w.ana, w.eva, w.joost, w.sven} {
		t.Run(p.email, func(t *testing.T) {
			msg := copies[p.email]
			if msg == nil {
				t.Fatal("no copy")
			}
			for _, leak := range []string{"192.0.2.77", "Leaky Mailer", "secret-origin-4711", "Received:", "Phishing"} {
				if bytes.Contains(msg, []byte(leak)) {
					t.Errorf("the outer message shows %q", leak)
				}
			}
			o := w.open(p, msg, true)
			h := o.header
			for k, want := range map[string]string{
				"Subject":    relay.OuterSubject,
				"List-Id":    "ccTLD Test Directory <list.ccdir.test>",
				"List-Post":  "<mailto:" + listAddr + ">",
				"List-Help":  "<mailto:" + dirAddr + "?subject=help>",
				"Precedence": "list",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("%s: %q, want %q", k, got, want)
				}
			}
			if h.Get("Auto-Submitted") != "" {
				t.Error("a list copy must not be Auto-Submitted")
			}
			want := "[TLD-OPS] [TLP:GREEN] Phishing wave [alert " + res.Alert + "]"
			if o.inner.Protected.Subject != want {
				t.Errorf("protected Subject %q, want %q", o.inner.Protected.Subject, want)
			}
			if o.inner.Protected.MessageID != "" {
				t.Errorf("original Message-ID kept: %q", o.inner.Protected.MessageID)
			}
			for _, s := range []string{
				"From:      Ana Sousa <ana@dns.pt>, .pt",
				"Key:       " + groupHex(w.ana.fpr) + " (ed25519)",
				"Signature: good, made ",
				"encrypted to the directory",
				"alert " + res.Alert + " -- TLP:GREEN",
				"ACK " + res.Alert,
			} {
				if !strings.Contains(o.text, s) {
					t.Errorf("author block lacks %q:\n%s", s, o.text)
				}
			}
			// The line end before the MIME boundary belongs to the boundary.
			if !strings.HasSuffix(o.text, "\r\n\r\n"+crlf(strings.TrimSuffix(text, "\n"))) {
				t.Errorf("original text changed:\n%q", o.text)
			}
			if len(o.inner.Parts) != 2 || !bytes.Equal(o.inner.Parts[1].Body, attachment) || o.inner.Parts[1].Filename != "iocs.bin" {
				t.Errorf("attachment not byte-identical (%d parts)", len(o.inner.Parts))
			}
		})
	}

	// Handled twice, a post is a replay the second time: refused,
	// nothing more queued.
	a, err := w.process(listAddr, w.gpgPost(w.ana, w.ana.email, strings.Replace(inner, "Indicators", "More indicators", 1)))
	if err != nil {
		t.Fatal(err)
	}
	a2 := *a
	if _, err := w.r.Handle(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	n := len(w.copies(relay.Kind, ""))
	if _, err := w.r.Handle(context.Background(), &a2); !errors.Is(err, inbound.ErrReplay) {
		t.Fatalf("replay: %v, want ErrReplay", err)
	}
	if m := len(w.copies(relay.Kind, "")); m != n {
		t.Fatalf("a replay queued %d copies", m-n)
	}
}

// A TLP:RED post (encrypted) reaches only the contacts its TO: line names
// (and its author); without a TO: line it reaches nobody and the author
// is told.
func TestRedOnlyToNamed(t *testing.T) {
	w := newWorld(t)
	res := w.post(w.gpgText(w.ana, "Resolver outage",
		"DIRECTORY "+listAddr+"\nTLP:RED\nTO: de, joost@sidn.nl\n\nDo not share: our resolvers are under attack.\n"))
	if res.TLP != relay.TLPRed || res.Refused != "" {
		t.Fatalf("result %+v", res)
	}
	copies := w.copies(relay.Kind, res.Alert)
	got := make([]string, 0, len(copies))
	for k := range copies {
		got = append(got, k)
	}
	slices.Sort(got)
	if want := []string{w.ana.email, w.eva.email, w.joost.email}; !slices.Equal(got, want) {
		t.Fatalf("copies to %v, want %v", got, want)
	}
	o := w.open(w.eva, copies[w.eva.email], false)
	if !strings.Contains(o.inner.Protected.Subject, "[TLP:RED]") || !strings.Contains(o.text, "TLP:RED: for the named recipients only") ||
		!strings.Contains(o.text, "only the contacts the author named: de, joost@sidn.nl") {
		t.Errorf("copy does not show TLP:RED and its recipients:\n%s\n%s", o.inner.Protected.Subject, o.text)
	}

	before := len(w.copies(relay.Kind, ""))
	res = w.post(w.gpgText(w.ana, "outage", "DIRECTORY "+listAddr+"\nTLP:RED\n\nNo TO: line here.\n"))
	if res.Alert != "" || !strings.Contains(res.Refused, "TLP:RED") || !res.Replied {
		t.Fatalf("RED without TO: %+v", res)
	}
	if n := len(w.copies(relay.Kind, "")); n != before {
		t.Fatalf("%d copies queued for a refused post", n-before)
	}
	replies := w.copies(relay.KindReply, "")
	if len(replies) != 1 || replies[w.ana.email] == nil {
		t.Fatalf("replies %v", replies)
	}
	// The reply is signed and encrypted to Ana (§6.2); gpg reads it.
	o2 := w.openReply(w.ana, replies[w.ana.email])
	if !strings.Contains(o2, "TO: pt, de, someone@example.org") {
		t.Errorf("reply does not say how:\n%s", o2)
	}

	// A TO: line that names nobody known is refused too.
	res = w.post(w.gpgText(w.ana, "x", "DIRECTORY "+listAddr+"\nTLP:RED\nTO: fr\n\ntext\n"))
	if res.Alert != "" || !strings.Contains(res.Refused, `"fr"`) {
		t.Fatalf("TO: fr: %+v", res)
	}
}

// A post without a label gets the default, AMBER, shown on every copy.
func TestDefaultTLP(t *testing.T) {
	w := newWorld(t)
	res := w.post(w.clearPost(w.eva, w.eva.email, "DDoS on .de", "DIRECTORY "+listAddr+"\n\nHeads up.\n"))
	if res.TLP != relay.TLPAmber || res.Queued != 4 {
		t.Fatalf("result %+v", res)
	}
	o := w.open(w.sven, w.copies(relay.Kind, res.Alert)[w.sven.email], false)
	// A clear-signed post has no signed Subject: the outer one (which
	// anyone on the way may change) does not reach the signed copies.
	if o.inner.Protected.Subject != "[TLD-OPS] [TLP:AMBER] [alert "+res.Alert+"]" ||
		!strings.Contains(o.text, "TLP:AMBER: share only within your organisation and its clients") ||
		!strings.Contains(o.text, "no label given") {
		t.Errorf("default label not shown:\n%s\n%s", o.inner.Protected.Subject, o.text)
	}
}

// A forged From with Eva's valid signature is Eva's post.
func TestForgedFromAttributedToSigner(t *testing.T) {
	w := newWorld(t)
	res := w.post(w.clearPost(w.eva, w.ana.email, "From Ana, honest", "DIRECTORY "+listAddr+"\nTLP:GREEN\n\nTrust me.\n"))
	if res.Author != w.eva.email {
		t.Fatalf("attributed to %s", res.Author)
	}
	o := w.open(w.joost, w.copies(relay.Kind, res.Alert)[w.joost.email], false)
	if !strings.Contains(o.text, "From:      Eva Schmidt <eva@nic.de>, .de") || strings.Contains(o.text, "Ana Sousa") {
		t.Errorf("author block:\n%s", o.text)
	}
	if o.inner.Protected.From.Name != "Eva Schmidt via "+dirName || o.inner.Protected.From.Address != listAddr {
		t.Errorf("protected From %v", o.inner.Protected.From)
	}
}

// A command mail (bound to the directory address) sent to the list is
// refused by inbound already: its signed content must name the address it
// was sent to. Nothing is relayed.
func TestCommandMailNotRelayed(t *testing.T) {
	w := newWorld(t)
	_, err := w.process(listAddr, w.clearPost(w.ana, w.ana.email, "commands", "DIRECTORY "+dirAddr+"\nWHOAMI\n"))
	if err == nil || !strings.Contains(err.Error(), "does not name this directory") {
		t.Fatalf("a command mail sent to the list: %v", err)
	}
	if n := len(w.copies(relay.Kind, "")); n != 0 {
		t.Fatalf("%d copies", n)
	}
}

// A post whose DIRECTORY line comes after a quoted line is not bound to
// the list: the command block, which inbound's binding check and the mail
// commands read alike, ends at the quote. Inbound refuses it; nothing is
// relayed. The same line before the quote binds it.
func TestPostDirectoryAfterQuoteRefused(t *testing.T) {
	w := newWorld(t)
	_, err := w.process(listAddr, w.clearPost(w.ana, w.ana.email, "re: alert",
		"TLP:GREEN\n> [TLP:GREEN] an earlier alert\nDIRECTORY "+listAddr+"\n\nOur resolvers are fine.\n"))
	if err == nil || !strings.Contains(err.Error(), "does not name this directory") {
		t.Fatalf("a post with its DIRECTORY line after a quote: %v", err)
	}
	if n := len(w.copies(relay.Kind, "")); n != 0 {
		t.Fatalf("%d copies", n)
	}
	res := w.post(w.clearPost(w.ana, w.ana.email, "re: alert",
		"TLP:GREEN\nDIRECTORY "+listAddr+"\n> [TLP:GREEN] an earlier alert\n\nOur resolvers are fine.\n"))
	if res.Alert == "" || res.Refused != "" {
		t.Fatalf("bound before the quote: %+v", res)
	}
}

// The relay reads the binding inbound found; it does not read the post a
// second time. A post accepted for the command address (its DIRECTORY
// line names it) and handed to the relay is refused, and the reply names
// the line.
func TestRelayUsesInboundBinding(t *testing.T) {
	w := newWorld(t)
	a, err := w.process(dirAddr, w.clearPost(w.ana, w.ana.email, "x", "DIRECTORY "+dirAddr+"\nTLP:GREEN\n\ntext\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Binding != inbound.BindingDirectoryLine || !slices.Equal(a.Block.Directories, []string{dirAddr}) {
		t.Fatalf("binding %q, block %+v", a.Binding, a.Block)
	}
	res, err := w.r.Handle(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res.Alert != "" || !strings.Contains(res.Refused, `signed for "`+dirAddr+`" (its DIRECTORY line), not for the list`) {
		t.Fatalf("result %+v", res)
	}
	if n := len(w.copies(relay.Kind, "")); n != 0 {
		t.Fatalf("%d copies", n)
	}
}

// A recipient whose key cannot be used does not stop the others; the
// result and the author's copy name it.
func TestUnusableKeySkipped(t *testing.T) {
	w := newWorld(t)
	kim := &person{name: "Kim Lee", email: "kim@nic.at", tld: "at"}
	kim.fpr = w.g.GenKey(kim.uid(), "ed25519", "sign", "never") // no encryption key
	w.update(func(tx *directory.Tx) error {
		_, err := tx.AddMember(directory.Member{TLD: "at", Org: "nic.at"})
		return err
	})
	w.addContact(kim, "+4315056416", w.g.ExportPublic(kim.fpr))
	res := w.post(w.clearPost(w.ana, w.ana.email, "x", "DIRECTORY "+listAddr+"\n\ntext\n"))
	if res.Queued != 4 || len(res.Skipped) != 1 || res.Skipped[0].Email != kim.email {
		t.Fatalf("result %+v", res)
	}
	copies := w.copies(relay.Kind, res.Alert)
	author := w.open(w.ana, copies[w.ana.email], false)
	if !strings.Contains(author.text, "Note for the author: 1 recipient gets no copy") || !strings.Contains(author.text, "kim@nic.at (.at)") {
		t.Errorf("author copy:\n%s", author.text)
	}
	other := w.open(w.eva, copies[w.eva.email], false)
	if strings.Contains(other.text, "kim@nic.at") {
		t.Errorf("the note reached a recipient:\n%s", other.text)
	}
	list, err := relay.Alerts(context.Background(), w.store.DB(), relay.Filter{ID: res.Alert})
	if err != nil || list[0].Skipped != 1 {
		t.Fatalf("alerts: %+v %v", list, err)
	}
}

// openReply decrypts a reply signed and encrypted in one message with
// gpg, checks the directory's signature and returns its text.
func (w *world) openReply(p *person, msg []byte) string {
	w.t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(msg))
	if err != nil {
		w.t.Fatal(err)
	}
	body, _ := io.ReadAll(m.Body)
	i := bytes.Index(body, []byte("-----BEGIN PGP MESSAGE-----"))
	j := bytes.Index(body, []byte("-----END PGP MESSAGE-----"))
	path := w.g.WriteFile("reply.asc", body[i:j+len("-----END PGP MESSAGE-----")])
	stdout, stderr, err := w.g.Run("--status-fd", "2", "--pinentry-mode", "loopback", "--passphrase", "", "--decrypt", path)
	if err != nil || !strings.Contains(string(stderr), "VALIDSIG "+w.dir.Fingerprint()) {
		w.t.Fatalf("gpg: %v\n%s", err, stderr)
	}
	in, err := pgpmime.ParseInner(stdout)
	if err != nil {
		w.t.Fatal(err)
	}
	return string(in.Parts[0].Body)
}

// ACK round trip: two of three ccTLDs acknowledge; ACKS (for the author
// only) and Alerts (the operator's view) show exactly that.
func TestAckRoundTrip(t *testing.T) {
	w := newWorld(t)
	res := w.post(w.clearPost(w.ana, w.ana.email, "Please confirm", "DIRECTORY "+listAddr+"\nTLP:AMBER+STRICT\n\nConfirm you got this.\n"))
	id := res.Alert
	for _, p := range []*person{w.eva, w.joost} {
		r := w.command(p, "ACK "+strings.ToLower(id))
		if len(r.Results) != 1 || r.Results[0].Err != nil || !strings.Contains(r.Results[0].Text, "acknowledged") {
			t.Fatalf("ACK by %s: %+v %v", p.email, r.Results, r.ParseErrors)
		}
	}
	again := w.command(w.joost, "ACK #"+id)
	if again.Results[0].Err != nil || !strings.Contains(again.Results[0].Text, "already") {
		t.Fatalf("second ACK: %+v", again.Results)
	}
	if r := w.command(w.sven, "ACK AAAAAAAA"); r.Results[0].Err == nil {
		t.Fatal("ACK of an unknown alert succeeded")
	}
	if r := w.command(w.sven, "ACKS "+id); r.Results[0].Err == nil || !strings.Contains(r.Results[0].Err.Error(), "only the author") {
		t.Fatalf("ACKS by a recipient: %+v", r.Results)
	}
	r := w.command(w.ana, "ACKS "+id)
	if len(r.Results) != 1 || r.Results[0].Err != nil {
		t.Fatalf("ACKS: %+v", r.Results)
	}
	text := r.Results[0].Text
	for _, s := range []string{"2 of 3 ccTLDs acknowledged", ".de         acknowledged by eva@nic.de", ".nl         acknowledged by joost@sidn.nl", "not acknowledged:\n  .se         not yet"} {
		if !strings.Contains(text, s) {
			t.Errorf("ACKS lacks %q:\n%s", s, text)
		}
	}
	if strings.Contains(text, ".pt") {
		t.Errorf("the author's own ccTLD is listed:\n%s", text)
	}

	list, err := relay.Alerts(context.Background(), w.store.DB(), relay.Filter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("alerts: %v %v", list, err)
	}
	a := list[0]
	if a.ID != id || a.Author != w.ana.email || a.TLP != relay.TLPAmberStrict || a.Recipients != 4 || a.Acked != 2 || a.AckedTLDs != 2 || len(a.TLDs) != 3 || a.Waiting != 4 {
		t.Fatalf("alert %+v", a)
	}
	var acked []string
	for _, tl := range a.TLDs {
		if tl.Acked {
			acked = append(acked, tl.TLD)
		}
	}
	if !slices.Equal(acked, []string{"de", "nl"}) {
		t.Fatalf("acknowledged %v", acked)
	}
	// The tables hold no content.
	var n int
	if err := w.store.DB().QueryRow(`SELECT count(*) FROM alerts WHERE archive IS NOT NULL`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("archived %d (%v)", n, err)
	}
}

// A post is never relayed under a weaker label than one it shows: a label
// past the first lines, in a quoted line, or in the unsigned Subject of a
// clear-signed post that is more restrictive than the label that would
// apply refuses the post, and the author is told (encrypted) where the
// label is and how to send it again. Nothing is relayed.
func TestShownLabelNeverDowngraded(t *testing.T) {
	w := newWorld(t)
	status := strings.Repeat("status line\n", 10)
	for _, tc := range []struct {
		name, subject, text, shownAt string
		form                         func(subject, text string) []byte // nil: clear-signed
	}{
		{"label after the first lines", "outage",
			"DIRECTORY " + listAddr + "\n" + status + "TLP:RED\n\nbody\n", "line 12 of the text", nil},
		{"encrypted, label after the first lines", "outage",
			"DIRECTORY " + listAddr + "\nTO: de\n" + status + "TLP:RED\n\nbody\n", "line 13 of the text",
			func(subject, text string) []byte { return w.gpgText(w.ana, subject, text) }},
		{"PGP/MIME signed, no protected headers, unsigned subject", "[TLP:RED] resolver outage",
			"DIRECTORY " + listAddr + "\nTLP:AMBER\nTO: de\n\nbody\n", "the unsigned Subject",
			func(subject, text string) []byte {
				return w.signedPost(w.ana, subject, "Content-Type: text/plain; charset=utf-8\n\n"+text)
			}},
		{"directory line and label late", "outage",
			"TLP:GREEN\n" + status + "DIRECTORY " + listAddr + "\n\nTLP:AMBER+STRICT details\n", "line 14 of the text", nil},
		{"quoted label", "re: outage",
			"DIRECTORY " + listAddr + "\nTLP:GREEN\n\n> [TLD-OPS] [TLP:RED] an earlier alert\n", "line 4 of the text", nil},
		{"unsigned subject", "TLP:RED resolver outage",
			"DIRECTORY " + listAddr + "\nTO: de\n\nbody\n", "the unsigned Subject", nil},
	} {
		before := w.queuedCount(relay.Kind)
		msg := w.clearPost(w.ana, w.ana.email, tc.subject, tc.text)
		if tc.form != nil {
			msg = tc.form(tc.subject, tc.text)
		}
		res := w.post(msg)
		if res.Alert != "" || !res.Replied || !strings.Contains(res.Refused, "(in "+tc.shownAt+")") ||
			!strings.Contains(res.Refused, "never relayed under a weaker label") {
			t.Errorf("%s: %+v", tc.name, res)
			continue
		}
		if n := w.queuedCount(relay.Kind); n != before {
			t.Errorf("%s: %d copies queued for a refused post", tc.name, n-before)
		}
	}
	// The author's reply says why, encrypted to the author's key.
	o := w.openReply(w.ana, w.copies(relay.KindReply, "")[w.ana.email])
	if !strings.Contains(o, "more restrictive than TLP:") {
		t.Errorf("reply:\n%s", o)
	}
	// A less restrictive label later in the text changes nothing.
	res := w.post(w.clearPost(w.ana, w.ana.email, "TLP:GREEN outage",
		"DIRECTORY "+listAddr+"\nTLP:AMBER\n\n> [TLP:GREEN] an earlier alert\nTLP:CLEAR is fine for the summary\n"))
	if res.Alert == "" || res.TLP != relay.TLPAmber || res.Refused != "" {
		t.Fatalf("weaker labels shown: %+v", res)
	}
}

// A TLP:RED post that reached the list unencrypted (its text crossed SMTP
// in clear) is relayed to nobody, whatever its form (inline clear-signed,
// PGP/MIME signed, the label in the signed Subject or the text), and its
// author gets an encrypted reply saying so; the same post encrypted is
// relayed.
func TestRedUnencryptedRefused(t *testing.T) {
	w := newWorld(t)
	text := "DIRECTORY " + listAddr + "\nTLP:RED\nTO: de\n\nOur resolvers are under attack.\n"
	for _, tc := range []struct {
		name string
		msg  []byte
		form string
	}{
		{"clear-signed", w.clearPost(w.ana, w.ana.email, "outage", text), inbound.FormInlineClear},
		{"inline signed", w.inlineSigned(w.ana, "outage", text), inbound.FormInlineSigned},
		{"PGP/MIME signed", w.signedPost(w.ana, "outage", "Content-Type: text/plain; charset=utf-8\n\n"+text), inbound.FormPGPMIMESigned},
		{"PGP/MIME signed, label in the signed Subject", w.signedPost(w.ana, "outage",
			"Subject: TLP:RED outage\nContent-Type: text/plain; charset=utf-8\n\nDIRECTORY "+listAddr+"\nTO: de\n\nbody\n"), inbound.FormPGPMIMESigned},
	} {
		before := w.queuedCount(relay.Kind)
		a, err := w.process(listAddr, tc.msg)
		if err != nil {
			t.Fatalf("%s: inbound: %v", tc.name, err)
		}
		if a.Form != tc.form || a.Encrypted {
			t.Fatalf("%s: form %s, encrypted %v", tc.name, a.Form, a.Encrypted)
		}
		res, err := w.r.Handle(context.Background(), a)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if res.Alert != "" || !res.Replied || res.TLP != relay.TLPRed || !strings.Contains(res.Refused, "unencrypted") {
			t.Errorf("%s: %+v", tc.name, res)
		}
		if n := w.queuedCount(relay.Kind); n != before {
			t.Errorf("%s: %d copies queued", tc.name, n-before)
		}
	}
	replies := w.copies(relay.KindReply, "")
	if len(replies) != 1 || replies[w.ana.email] == nil {
		t.Fatalf("replies %v", replies)
	}
	o := w.openReply(w.ana, replies[w.ana.email])
	if !strings.Contains(o, "crossed the network in clear") || !strings.Contains(o, keys.GroupFingerprint(w.dir.Fingerprint())) {
		t.Errorf("reply does not say why and how:\n%s", o)
	}
	if n, err := relay.Alerts(context.Background(), w.store.DB(), relay.Filter{}); err != nil || len(n) != 0 {
		t.Fatalf("alerts recorded: %v %v", n, err)
	}

	// Encrypted, the same post is relayed (PGP/MIME or inline); a weaker
	// label needs no encryption.
	for _, msg := range [][]byte{w.gpgText(w.ana, "outage", text), w.inlineEncrypted(w.ana, "outage", text+"Sent inline.\n")} {
		a, err := w.process(listAddr, msg)
		if err != nil || !a.Encrypted {
			t.Fatalf("inbound: %v %+v", err, a)
		}
		res, err := w.r.Handle(context.Background(), a)
		if err != nil || res.Alert == "" || res.TLP != relay.TLPRed || res.Refused != "" {
			t.Fatalf("encrypted (%s) RED post: %+v %v", a.Form, res, err)
		}
	}
	res := w.post(w.signedPost(w.ana, "outage", "Content-Type: text/plain; charset=utf-8\n\nDIRECTORY "+listAddr+"\nTLP:AMBER+STRICT\n\nbody\n"))
	if res.Alert == "" || res.TLP != relay.TLPAmberStrict {
		t.Fatalf("signed AMBER+STRICT post: %+v", res)
	}
}

// One author's posts are rate limited (Config.PostsPerMinute and
// PostsPerHour, counted from the alerts the relay recorded): 30 posts in
// a minute relay the first DefaultPostsPerMinute, the others reach nobody,
// and the author gets one encrypted answer for all of them in the hour;
// another author is not held back; a minute later the author posts again,
// up to DefaultPostsPerHour in the hour, and an hour later again.
func TestPostsRateLimited(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	clock := time.Now().UTC()
	w.r.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	w.ob.Now = w.r.Now
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	seq := 0 // every post says something else: no two signatures alike
	post := func(p *person, n int) (relayed, refused int) {
		t.Helper()
		for i := range n {
			seq++
			res := w.post(w.clearPost(p, p.email, "update", fmt.Sprintf("DIRECTORY %s\nTLP:GREEN\n\nUpdate %d.\n", listAddr, seq)))
			switch {
			case res.Alert != "":
				relayed++
			case strings.Contains(res.Refused, "posts by one author"):
				refused++
			default:
				t.Fatalf("post %d: %+v", i, res)
			}
		}
		return relayed, refused
	}
	limitReplies := func() int { return w.queuedCount(relay.KindLimit) }

	if relayed, refused := post(w.ana, 30); relayed != relay.DefaultPostsPerMinute || refused != 30-relay.DefaultPostsPerMinute {
		t.Fatalf("30 posts in a minute: %d relayed, %d refused", relayed, refused)
	}
	if n := limitReplies(); n != 1 {
		t.Fatalf("%d answers to the refused posts, want 1", n)
	}
	o := w.openReply(w.ana, w.copies(relay.KindLimit, "")[w.ana.email])
	if !strings.Contains(o, fmt.Sprintf("at most %d posts by one author a minute", relay.DefaultPostsPerMinute)) || !strings.Contains(o, "Nothing of it was kept") {
		t.Errorf("answer:\n%s", o)
	}
	if relayed, _ := post(w.eva, 1); relayed != 1 {
		t.Fatal("another author's post was held back")
	}
	// A minute on, more: up to the hourly cap.
	total := relay.DefaultPostsPerMinute
	for total < relay.DefaultPostsPerHour {
		advance(time.Minute)
		n := min(relay.DefaultPostsPerMinute, relay.DefaultPostsPerHour-total)
		if relayed, refused := post(w.ana, n); relayed != n || refused != 0 {
			t.Fatalf("after %d posts: %d relayed, %d refused", total, relayed, refused)
		}
		total += n
	}
	advance(time.Minute)
	if relayed, refused := post(w.ana, 3); relayed != 0 || refused != 3 {
		t.Fatalf("over the hourly cap: %d relayed, %d refused", relayed, refused)
	}
	if n := limitReplies(); n != 1 {
		t.Fatalf("%d answers within the hour, want 1", n)
	}
	advance(time.Hour)
	if relayed, _ := post(w.ana, 1); relayed != 1 {
		t.Fatal("not relayed an hour later")
	}
}

// A label a reader sees anywhere in the post counts, not only in its first
// text part: a second inline text part, a text attachment, a forwarded
// message (its Subject and its text), the HTML alternative (its text, tags
// removed). A post that shows a label more restrictive than the one that
// would apply is refused and its author told, as for a label late in the
// text; the same post with the label at the top is relayed (issue 10
// review).
func TestShownLabelOutsideFirstText(t *testing.T) {
	n := 0 // each post is signed anew
	top := func(label string) string {
		n++
		return "Content-Type: text/plain; charset=utf-8\n\nDIRECTORY " + listAddr + "\n" + label + "TO: de\n\nsee below (" + strconv.Itoa(n) + ")\n"
	}
	for _, tc := range []struct {
		name, shownAt string
		inner         func(label string) string
	}{
		{"second inline text part", "line 1 of text part 2", func(label string) string {
			return "Content-Type: multipart/mixed; boundary=M\n\n--M\n" + top(label) +
				"--M\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: inline\n\nTLP:RED do not share: the attacker is inside registrar X\n--M--\n"
		}},
		{"text attachment", `line 1 of attachment 2 ("report.txt")`, func(label string) string {
			return "Content-Type: multipart/mixed; boundary=M\n\n--M\n" + top(label) +
				"--M\nContent-Type: text/plain; charset=utf-8\nContent-Disposition: attachment; filename=\"report.txt\"\nContent-Transfer-Encoding: quoted-printable\n\n" +
				"TLP=3ARED details\n--M--\n"
		}},
		{"forwarded message, its Subject", "the Subject of the attached message (part 2)", func(label string) string {
			return "Content-Type: multipart/mixed; boundary=M\n\n--M\n" + top(label) +
				"--M\nContent-Type: message/rfc822\nContent-Disposition: inline\n\nFrom: eva@nic.de\nSubject: [TLP:RED] registrar X compromised\n\nonly for .pt and .de\n--M--\n"
		}},
		{"forwarded message, its text", "line 2 of text part 1 of the attached message (part 2)", func(label string) string {
			return "Content-Type: multipart/mixed; boundary=M\n\n--M\n" + top(label) +
				"--M\nContent-Type: message/rfc822\n\nFrom: eva@nic.de\nSubject: registrar X\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=F\n\n" +
				"--F\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nhello\nTLP=3ARED: only for .pt and .de\n--F--\n--M--\n"
		}},
		{"HTML alternative", "line 2 of the HTML of part 2", func(label string) string {
			return "Content-Type: multipart/alternative; boundary=A\n\n--A\n" + top(label) +
				"--A\nContent-Type: text/html; charset=utf-8\n\n<p>DIRECTORY " + listAddr + "</p><h1><b>TLP:</b>&#82;ED</h1><script>TLP:CLEAR</script><p>incident</p>\n--A--\n"
		}},
	} {
		w := newWorld(t)
		before := w.queuedCount(relay.Kind)
		res := w.post(w.signedPost(w.ana, "incident", tc.inner("")))
		if res.Alert != "" || !res.Replied || !strings.Contains(res.Refused, "TLP:RED (in "+tc.shownAt+")") {
			t.Errorf("%s: %+v", tc.name, res)
		}
		if n := w.queuedCount(relay.Kind); n != before {
			t.Errorf("%s: %d copies queued for a refused post", tc.name, n-before)
		}
		// Labelled TLP:RED at the top, the post goes (it was sent in clear:
		// refused for that, not for the label).
		res = w.post(w.signedPost(w.ana, "incident", tc.inner("TLP:RED\n")))
		if res.Alert != "" || !strings.Contains(res.Refused, "reached the list unencrypted") {
			t.Errorf("%s, labelled at the top: %+v", tc.name, res)
		}
		res = w.post(w.signedPost(w.ana, "incident", strings.NewReplacer("&#82;ED", "GREEN", "RED", "GREEN").Replace(tc.inner(""))))
		if res.Alert == "" || res.TLP != relay.TLPAmber {
			t.Errorf("%s, a weaker label there: %+v", tc.name, res)
		}
	}
}
