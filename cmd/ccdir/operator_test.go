package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/pgpmime"
)

// Mail to the operator is signed by the directory key and encrypted to
// the operator's key alone, to operator.address, with neutral outer
// headers; an operator key not usable at the time gets nothing (a keys.Unusable error).
func TestOperatorMessage(t *testing.T) {
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	dir, err := keys.Generate("TLD-OPS", "ccdir@tldops.example", keys.AlgoEd25519, now.Add(-time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	dir.SetClock(func() time.Time { return now })
	opSec, err := keys.Generate("Ops", "ops@secretariat.example", keys.AlgoEd25519, now.Add(-time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := export.KeyOf(opSec.Public())
	if err != nil {
		t.Fatal(err)
	}
	op := &operatorIdentity{Address: "ops@secretariat.example", Key: k}
	info := directory.Info{Name: "TLD-OPS", Address: "ccdir@tldops.example"}
	m, err := op.message(dir, info, "", operatorMail{Kind: "report", Ref: "r1", Subject: "TLD-OPS: report", Body: "2 failed deliveries\n", MessageID: "report-1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if m.To != op.Address || m.From != info.Address || m.Kind != "report" {
		t.Errorf("message %+v", m)
	}
	head, _, _ := strings.Cut(string(m.Data), "\r\n\r\n")
	if !strings.Contains(head, "Subject: Encrypted message") || strings.Contains(string(m.Data), "failed deliveries") {
		t.Errorf("outer header or body shows the report:\n%s", head)
	}
	o, err := pgpmime.Open(bytes.NewReader(m.Data), opSec, pgpmime.OpenOptions{Now: now, Keyring: []*keys.Public{dir.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if !o.Encrypted || !o.Signed || o.Signer != dir.Fingerprint() || o.SignatureErr != nil {
		t.Errorf("encrypted %v signed %v by %q (%v)", o.Encrypted, o.Signed, o.Signer, o.SignatureErr)
	}
	if !strings.Contains(string(o.Entity), "Subject: TLD-OPS: report") || !strings.Contains(string(o.Entity), "2 failed deliveries") {
		t.Errorf("entity %q", o.Entity)
	}
	if _, err := pgpmime.Open(bytes.NewReader(m.Data), dir, pgpmime.OpenOptions{Now: now}); !errors.Is(err, pgpmime.ErrDecrypt) {
		t.Errorf("the directory key opens the operator's mail (err %v)", err)
	}
	// A key not usable at the time (here: not valid yet): nothing is built.
	if _, err := op.message(dir, info, "", operatorMail{Kind: "report", Subject: "s", Body: "b", MessageID: "x"}, now.Add(-2*time.Hour)); !keys.Unusable(err) {
		t.Errorf("an unusable operator key: %v", err)
	}
}
