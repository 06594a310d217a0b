package receive

import (
	"bytes"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/inbound"
	"github.com/ccdir/ccdir/pkg/outbox"
	"github.com/ccdir/ccdir/pkg/relay"
)

// Every message Receive is given leaves one row in the inbound log, with
// its envelope, signer and verdict, and nothing of its content.
func TestInboundLog(t *testing.T) {
	w := newWorld(t)
	secret := "DIRECTORY " + dirAddr + "\nWHOAMI\nNOTE secret-content-xyz\n"
	cmd := w.signed(dirAddr, "c1@dns.pt", secret)
	steps := []struct {
		from string
		to   []string
		msg  []byte
		want Entry
	}{
		{anaAddr, []string{dirAddr}, cmd,
			Entry{Sender: anaAddr, Recipient: dirAddr, Route: "commands", Signer: w.ana.Fingerprint(), Verdict: VerdictAccepted, Reason: "commands"}},
		{anaAddr, []string{dirAddr}, cmd,
			Entry{Sender: anaAddr, Recipient: dirAddr, Route: "commands", Verdict: VerdictRefused, Reason: inbound.RefusedReplay.String(),
				Text: "this signed message was already used; sign and send the commands again"}},
		{anaAddr, []string{dirAddr}, w.mail(anaAddr, dirAddr, "u1@dns.pt", secret),
			Entry{Sender: anaAddr, Recipient: dirAddr, Route: "commands", Verdict: VerdictRefused, Reason: inbound.RefusedUnsigned.String(),
				Text: "the message is not signed with OpenPGP (use PGP/MIME or clear-signed text)"}},
		{anaAddr, []string{dirAddr}, w.mail(anaAddr, dirAddr, "a1@dns.pt", secret, "Auto-Submitted: auto-replied"),
			Entry{Sender: anaAddr, Recipient: dirAddr, Route: "commands", Verdict: VerdictIgnored, Reason: ReasonLoop}},
		{anaAddr, []string{"postmaster@directory.example"}, cmd,
			Entry{Sender: anaAddr, Recipient: "postmaster@directory.example", Route: "not ours", Verdict: VerdictIgnored, Reason: ReasonRecipient,
				Text: "not an address of this directory"}},
		{"someone@example.org", []string{keyAddr}, w.mail("someone@example.org", keyAddr, "k1@example.org", "key?\n"),
			Entry{Sender: "someone@example.org", Recipient: keyAddr, Route: "sendkey", Verdict: VerdictAccepted, Reason: "sendkey"}},
		{"someone@example.org", []string{keyAddr}, w.mail("someone@example.org", keyAddr, "k2@example.org", "key?\n"),
			Entry{Sender: "someone@example.org", Recipient: keyAddr, Route: "sendkey", Verdict: VerdictIgnored, Reason: ReasonKeyLimit, Text: "rate limit"}},
		{"", []string{bounceAddr}, w.mail("MAILER-DAEMON@mx.example", bounceAddr, "b1@mx.example", "hello\n"),
			Entry{Sender: "", Recipient: bounceAddr, Route: "bounce", Verdict: VerdictIgnored, Reason: ReasonReport}},
	}
	for _, st := range steps {
		w.receive(st.from, st.to, st.msg)
	}
	got, err := InboundLog(w.ctx, w.store.DB(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(steps) {
		t.Fatalf("%d rows, want %d: %+v", len(got), len(steps), got)
	}
	for i, st := range steps {
		g := got[i]
		if !g.At.Equal(fixedNow) {
			t.Errorf("row %d: at %v, want %v", i, g.At, fixedNow)
		}
		g.At = time.Time{}
		if st.want.Text == "" && st.want.Verdict != VerdictAccepted {
			st.want.Text = g.Text // free wording; checked to be there
			if g.Text == "" {
				t.Errorf("row %d: no text", i)
			}
		}
		if g != st.want {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, g, st.want)
		}
	}
	var dump bytes.Buffer
	rows, err := w.store.DB().Query(`SELECT * FROM inbound_log`)
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			if s, ok := v.(string); ok {
				dump.WriteString(s + "\n")
			}
		}
	}
	rows.Close()
	if strings.Contains(dump.String(), "secret-content-xyz") || strings.Contains(dump.String(), "WHOAMI") {
		t.Errorf("the inbound log holds content of a mail:\n%s", dump.String())
	}
	if got, err := InboundLog(w.ctx, w.store.DB(), fixedNow.Add(time.Millisecond)); err != nil || len(got) != 0 {
		t.Errorf("InboundLog since later = %d rows, %v; want none", len(got), err)
	}
}

// A failure to write the inbound log loses no mail: the message is
// handled as it would be, and the failure is logged.
func TestInboundLogFailureLosesNothing(t *testing.T) {
	w := newWorld(t)
	// A home whose database has no inbound log: every write fails.
	s, err := directory.Create(w.ctx, filepath.Join(t.TempDir(), "directory.db"), directory.Info{Name: dirName, Address: dirAddr, ListAddress: listAddr,
		KeyFingerprint: w.dir.Fingerprint(), PublicKey: mustArmored(t, w)}, directory.Options{Signer: w.dir, Now: w.now,
		Migrations: slices.Concat(outbox.Migrations, inbound.Migrations, digest.Migrations, relay.Migrations)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w.rc.Store = s
	if err := w.receive("someone@example.org", []string{keyAddr}, w.mail("someone@example.org", keyAddr, "k1@example.org", "key?\n")); err != nil {
		t.Fatalf("key request: %v", err)
	}
	lines := w.lines()
	if len(lines) != 2 || lines[0] != "ccdir: sent the directory key to someone@example.org" ||
		!regexp.MustCompile(`^ccdir: inbound log: .*no such table: inbound_log`).MatchString(lines[1]) {
		t.Errorf("log = %q, want the key answer's line and the inbound log's failure", lines)
	}
	if n := len(w.queued(KindSendKey)); n != 1 {
		t.Errorf("%d key mails queued, want 1", n)
	}
}

func mustArmored(t *testing.T, w *world) string {
	t.Helper()
	b, err := w.dir.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A refusal is logged under the code of its inbound.Kind; only one of no
// kind is "other", and receive's own refusals keep their codes.
func TestRefusalReason(t *testing.T) {
	for _, k := range inbound.Kinds() {
		want := k.String()
		if k == inbound.RefusedOther {
			want = ReasonOther
		}
		if got := refusalReason(&inbound.Refusal{Kind: k, Reason: "x"}); got != want {
			t.Errorf("kind %v: reason %q, want %q", k, got, want)
		}
	}
	for ref, want := range map[*inbound.Refusal]string{errReplayed: ReasonReplay, errSigner: ReasonSignature, errMalformed: ReasonMalformed, errMixed: ReasonMixed} {
		if got := refusalReason(ref); got != want {
			t.Errorf("%q: reason %q, want %q", ref.Reason, got, want)
		}
	}
}
