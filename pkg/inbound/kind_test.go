package inbound

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Every kind of refusal is decided, here and in the package's table
// (kinds): whether its signer is told. A new kind added without a
// decision in both places fails this test.
func TestRefusalKindsDecided(t *testing.T) {
	want := map[Kind]bool{
		RefusedOther:       false,
		RefusedSize:        false,
		RefusedRecipient:   false,
		RefusedHeader:      false,
		RefusedLoop:        false,
		RefusedMIME:        false,
		RefusedUnsigned:    false,
		RefusedCrypto:      false,
		RefusedSignature:   false,
		RefusedKeyUnusable: false,
		RefusedForgotten:   false,
		RefusedReplay:      false,
		RefusedFuture:      true,
		RefusedStale:       true,
		RefusedContent:     true,
		RefusedUnbound:     true,
		RefusedWeakHash:    true,
		RefusedPost:        true,
		RefusedPostLimit:   true,
		RefusedCommands:    true,
	}
	all := Kinds()
	if len(all) != len(want) {
		t.Errorf("%d kinds, %d decided in this test", len(all), len(want))
	}
	names := map[string]bool{}
	for _, k := range all {
		tell, ok := want[k]
		if !ok {
			t.Errorf("kind %v: no decision in this test", k)
			continue
		}
		if k.Tellable() != tell {
			t.Errorf("%v.Tellable() = %v, want %v", k, k.Tellable(), tell)
		}
		name := k.String()
		if name == "" || strings.HasPrefix(name, "Kind(") || names[name] {
			t.Errorf("kind %d: name %q missing or not unique", int(k), name)
		}
		names[name] = true
		if !tell && k.Silent() == "" {
			t.Errorf("%v is not told, and the table does not say why (for the log)", k)
		}
		if tell && k.Silent() != "" {
			t.Errorf("%v is told, yet the table says why not: %q", k, k.Silent())
		}
	}
	if got := Kind(len(all)).String(); !strings.HasPrefix(got, "Kind(") {
		t.Errorf("Kind past the table named %q", got)
	}
	if Kind(len(all)).Tellable() || Kind(-1).Tellable() {
		t.Error("a kind outside the table is told")
	}
}

// A refusal is told only with a signer, and only for a kind that is.
func TestRefusalTellable(t *testing.T) {
	s := &Signer{}
	for _, tc := range []struct {
		r    *Refusal
		want bool
	}{
		{&Refusal{Kind: RefusedUnbound, Signer: s}, true},
		{&Refusal{Kind: RefusedUnbound}, false},
		{&Refusal{Kind: RefusedSignature, Signer: s}, false},
		{&Refusal{Kind: RefusedStale, Signer: s, Temporary: true}, false},
		{&Refusal{Kind: RefusedStale, Signer: s, Drop: true}, false},
	} {
		if got := tc.r.Tellable(); got != tc.want {
			t.Errorf("%+v: Tellable() = %v, want %v", tc.r, got, tc.want)
		}
	}
}

// The pipeline names the Signer of a refused mail only when the
// signature verified against the registered key and is not a replay;
// each refusal gets its kind.
func TestRefusalSigner(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	unbound := "SHOW pt\n"
	clear := func(m *member, text string, at time.Time, label string) []byte {
		return textMail(headers(m.email, label), clearsigned(t, m, text, at, label))
	}
	inner := textEntity(unbound, "Subject: outage of .pt", "To: <"+listAddr+">")
	signedUnbound := signedMail(headers(w.ana.email, "pgpmime"), inner, detached(t, w.ana, inner, corpusNow, "pgpmime"))
	future := corpusNow.Add(time.Hour)
	innerFuture := textEntity(cmds)
	for _, tc := range []struct {
		name    string
		msg     []byte
		kind    Kind
		signer  *member
		subject string
		tell    string // in TellText()
	}{
		{"unbound", clear(w.ana, unbound, corpusNow, "unbound"), RefusedUnbound, w.ana, "", "DIRECTORY " + dirAddr},
		{"unbound, signed subject", signedUnbound, RefusedUnbound, w.ana, "outage of .pt", "DIRECTORY " + dirAddr},
		{"bound to another directory", clear(w.ana, "DIRECTORY ccdir@elsewhere.example\nSHOW pt\n", corpusNow, "other"), RefusedUnbound, w.ana, "", "does not name this directory"},
		{"stale", clear(w.ana, cmds, corpusNow.Add(-100*time.Hour), "stale"), RefusedStale, w.ana, "", "older than 72h"},
		{"future, detached", signedMail(headers(w.ana.email, "future"), innerFuture, detached(t, w.ana, innerFuture, future, "future")),
			RefusedFuture, w.ana, "", "ahead of the directory's clock"},
		{"future, clear-signed", clear(w.ana, cmds, future, "future-clear"), RefusedFuture, w.ana, "", "ahead of the directory's clock"},
		{"unknown signer", clear(w.mallory, cmds, corpusNow, "mallory"), RefusedSignature, nil, "", ""},
		{"unknown signer in the future", clear(w.mallory, cmds, future, "mallory-future"), RefusedSignature, nil, "", ""},
		{"unsigned", textMail(headers(w.ana.email, "unsigned"), cmds), RefusedUnsigned, nil, "", ""},
		{"expired key", clear(w.eva, "DIRECTORY "+dirAddr+"\nWHOAMI\n", corpusNow.Add(-48*time.Hour), "eva"), RefusedKeyUnusable, w.eva, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.p.Process(ctx, Envelope{From: "x@example.org", To: []string{dirAddr}}, bytes.NewReader(tc.msg))
			var ref *Refusal
			if !errors.As(err, &ref) {
				t.Fatalf("Process = %v, want a refusal", err)
			}
			if ref.Kind != tc.kind {
				t.Errorf("kind %v (%s), want %v", ref.Kind, ref.Reason, tc.kind)
			}
			switch {
			case tc.signer == nil && ref.Signer != nil:
				t.Fatalf("signer %s named", ref.Signer.Contact.Email)
			case tc.signer == nil:
				if ref.Tellable() || ref.NotTold() == "" {
					t.Errorf("told (%q)", ref.NotTold())
				}
				return
			case ref.Signer == nil:
				t.Fatalf("no signer (%s)", ref.NotTold())
			}
			s := ref.Signer
			if s.Contact.Email != tc.signer.email || s.Key.Fingerprint != tc.signer.pub(t).Fingerprint || s.To != dirAddr || s.Seen == "" || s.Subject != tc.subject {
				t.Errorf("signer %+v", s)
			}
			if ref.Tellable() != tc.kind.Tellable() {
				t.Errorf("Tellable = %v", ref.Tellable())
			}
			if tc.tell != "" && !strings.Contains(ref.TellText(), tc.tell) {
				t.Errorf("told %q, want %q in it", ref.TellText(), tc.tell)
			}
			if strings.Contains(ref.Reason, "ahead of") {
				t.Errorf("the peer learns of the clock: %q", ref.Reason)
			}
		})
	}

	// A replay is never told, even when it is refused for another reason
	// first (a mail used already, now too old).
	msg := clear(w.ana, cmds, corpusNow.Add(-time.Hour), "used")
	acc, err := w.p.Process(ctx, Envelope{From: w.ana.email, To: []string{dirAddr}}, bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := w.store.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.MarkSeen(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	later := &Pipeline{Store: w.p.Store, Secret: w.p.Secret, Config: w.p.Config, Now: func() time.Time { return corpusNow.Add(99 * time.Hour) }}
	_, err = later.Process(ctx, Envelope{From: w.ana.email, To: []string{dirAddr}}, bytes.NewReader(msg))
	var ref *Refusal
	if !errors.As(err, &ref) || ref.Kind != RefusedStale || ref.Signer != nil || ref.Tellable() || ref.NotTold() != RefusedReplay.Silent() {
		t.Fatalf("stale replay: %v %+v", err, ref)
	}
}
