package digest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// TestCheckErased: a digest after a contact erase carries the erased
// entries without their payload and the contact.erase entry covering
// them; Check and the README's check.py pass it (a version 2 entry by the
// digest it keeps), and refuse an erased entry nothing covers, an erased
// entry without its digest, one relabelled a version 1 tombstone or with
// its time changed, and an erasure of another contact's or a member's
// entry (review r3 findings 2 and 3).
func TestCheckErased(t *testing.T) {
	ctx := context.Background()
	tr, err := outbox.NewTransport("maildir:"+t.TempDir(), outbox.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j := newJobStore(t, 2, tr) // 1 genesis, 2 pt, 3 and 4 the contacts
	if _, err := j.Send(ctx, digest.SendOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	head1, err := j.Store.Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, fn := range []func(tx *directory.Tx) error{
		func(tx *directory.Tx) error { // 5
			_, err := tx.UpdateContact("c000@dns.pt", func(c *directory.Contact) error { c.Name = "Contact Zero"; return nil })
			return err
		},
		func(tx *directory.Tx) error { _, err := tx.Erase("c000@dns.pt", "GDPR art. 17 request 1"); return err }, // 6
	} {
		if _, err := j.Store.Update(ctx, directory.Operator, fn); err != nil {
			t.Fatal(err)
		}
	}
	data, sig, err := j.DigestJSON(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "c000@dns.pt") || strings.Contains(string(data), "Contact Zero") {
		t.Fatal("the digest after the erasure names the erased contact")
	}
	ex, err := export.ParseJSON(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if e := ex.Chain.Entries[0]; e.Seq != 5 || e.Payload != "" || e.Version != 3 || e.Subject != "contact:3" || e.PayloadDigest == "" || e.Salt != "" {
		t.Fatalf("the erased entry as the digest carries it: %+v", e)
	}
	opts := digest.CheckOptions{Pin: j.Secret.Fingerprint(), Last: &head1, Now: jobNow}
	if _, err := digest.Check(data, sig, opts); err != nil {
		t.Fatalf("check of the digest after the erasure: %v", err)
	}
	// Review r3 finding 2: an erased version 2 entry relabelled as a
	// version 1 tombstone, or with its time changed.
	tombstone, tsig := edit(t, data, j.Secret, func(e *export.Export) {
		e.Chain.Entries[0].Version, e.Chain.Entries[0].PayloadDigest, e.Chain.Entries[0].Subject = 1, "", ""
	})
	retimed, rsig := edit(t, data, j.Secret, func(e *export.Export) { e.Chain.Entries[0].Time = "2020-01-01T00:00:00Z" })
	// Review r3 finding 3: an erasure recording an entry as about a
	// contact it does not erase, or erasing a member's entry.
	other, osig := edit(t, data, j.Secret, func(e *export.Export) {
		e.Chain.Entries[1].Payload = strings.Replace(e.Chain.Entries[1].Payload, `"seq":5,"op":"contact.update","contact":3`, `"seq":5,"op":"contact.update","contact":4`, 1)
	})
	member, msig := edit(t, data, j.Secret, func(e *export.Export) {
		e.Chain.Entries[1].Payload = strings.Replace(e.Chain.Entries[1].Payload, `"seq":3,"op":"contact.add"`, `"seq":3,"op":"member.add"`, 1)
	})
	for _, d := range [][]byte{other, member} {
		if string(d) == string(data) {
			t.Fatal("the erase payload was not edited")
		}
	}
	// Review r4 finding 2: the erased entry's subject made the other
	// contact's (its hash binds it).
	subject, ssig := edit(t, data, j.Secret, func(e *export.Export) { e.Chain.Entries[0].Subject = "contact:4" })
	uncovered, usig := edit(t, data, j.Secret, func(e *export.Export) {
		e.Chain.Entries[1].Payload = strings.Replace(e.Chain.Entries[1].Payload, `"redacts":[3,5]`, `"redacts":[3]`, 1)
	})
	noDigest, nsig := edit(t, data, j.Secret, func(e *export.Export) { e.Chain.Entries[0].PayloadDigest = "" })
	for _, c := range []struct {
		name      string
		data, sig []byte
		want      string
	}{
		{"uncovered", uncovered, usig, "entry 5 was erased, but no contact.erase entry after it covers it"},
		{"no digest", noDigest, nsig, "entry 5 does not hash to its hash"},
		{"tombstone", tombstone, tsig, "entry 5 was erased, but not as the contact.erase covering it says: the contact.erase erased entry 5 of version 3, not 1"},
		{"subject", subject, ssig, `entry 5 was erased, but not as the contact.erase covering it says: entry 5 is about "contact:4" (its hash says so), not contact 3`},
		{"retimed", retimed, rsig, "entry 5's time, actor, operation, previous hash or evidence digest is not what the contact.erase erased"},
		{"other", other, osig, "entry 5 was erased, but no contact.erase entry after it covers it"},
		{"member", member, msig, "entry 5 was erased, but no contact.erase entry after it covers it"},
	} {
		if _, err := digest.Check(c.data, c.sig, opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}

	py, script := readmeCheckPy(t)
	dir := t.TempDir()
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"erased", data, "ok serial 6 "},
		{"tombstone", tombstone, "FAILED: entry 5 was erased, but no contact.erase after it covers it"},
		{"subject", subject, "FAILED: entry 5 was erased, but no contact.erase after it covers it"},
		{"retimed", retimed, "FAILED: entry 5 was erased, but no contact.erase after it covers it"},
		{"other", other, "FAILED: entry 6 erases another's entry 5"},
		{"member", member, "FAILED: entry 6 erases another's entry 3"},
		{"uncovered", uncovered, "FAILED: entry 5 was erased, but no contact.erase after it covers it"},
		{"no digest", noDigest, "FAILED: entry 5 does not hash to its hash"},
	} {
		file := filepath.Join(dir, c.name+".json")
		if err := os.WriteFile(file, c.data, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(py, script, file, strconv.FormatInt(head1.Serial, 10), head1.Hash, j.Secret.Fingerprint()).CombinedOutput()
		if strings.HasPrefix(c.want, "ok") != (err == nil) || !strings.Contains(string(out), c.want) {
			t.Errorf("check.py %s: %v: %s, want %q", c.name, err, out, c.want)
		}
	}
}
