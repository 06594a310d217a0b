package digest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/export"
	"github.com/ccdir/ccdir/pkg/outbox"
)

// chainFixture is a directory with two digests' directory.json: the
// first (from genesis, sent and recorded) and the one after a change.
type chainFixture struct {
	j            *digest.Job
	pin          string
	first, next  []byte
	firstSig     []byte
	nextSig      []byte
	head1, head2 directory.Head
}

func newChainFixture(t *testing.T) *chainFixture {
	t.Helper()
	ctx := context.Background()
	tr, err := outbox.NewTransport("maildir:"+t.TempDir(), outbox.TransportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j := newJobStore(t, 2, tr)
	f := &chainFixture{j: j, pin: j.Secret.Fingerprint()}
	if f.first, f.firstSig, err = j.DigestJSON(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Send(ctx, digest.SendOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if f.head1, err = j.Store.Head(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = j.Store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		if _, err := tx.AddMember(directory.Member{TLD: "br", Org: "NIC.br", Country: "BR"}); err != nil {
			return err
		}
		_, err := tx.AddMember(directory.Member{TLD: "se", Org: "IIS", Country: "SE"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Store.Update(ctx, directory.Operator, func(tx *directory.Tx) error {
		_, err := tx.AddMember(directory.Member{TLD: "cn", Org: "CNNIC", Country: "CN"})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.head2, err = j.Store.Head(ctx); err != nil {
		t.Fatal(err)
	}
	if f.next, f.nextSig, err = j.DigestJSON(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// edit changes a directory.json as fn says and signs it again with
// signer: what an operator holding the directory key (or one who took
// it) could send.
func edit(t *testing.T, data []byte, signer *keys.Secret, fn func(*export.Export)) ([]byte, []byte) {
	t.Helper()
	e, err := export.ParseJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	fn(e)
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var sig bytes.Buffer
	if err := signer.ArmoredDetachSign(&sig, bytes.NewReader(out)); err != nil {
		t.Fatal(err)
	}
	return out, sig.Bytes()
}

func TestCheckGood(t *testing.T) {
	f := newChainFixture(t)
	got, err := digest.Check(f.first, f.firstSig, digest.CheckOptions{Pin: keys.GroupFingerprint(f.pin), Now: jobNow})
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != f.head1.Serial || got.Head != f.head1.Hash || got.Extends != (directory.Head{Hash: directory.GenesisPrevHash}) || got.Entries != int(f.head1.Serial) {
		t.Errorf("first digest: %+v, want serial %s from genesis", got, f.head1)
	}
	got, err = digest.Check(f.next, f.nextSig, digest.CheckOptions{Pin: f.pin, Last: &f.head1, Now: jobNow})
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != f.head2.Serial || got.Head != f.head2.Hash || got.Extends != f.head1 || got.Entries != 3 || got.Signer != f.pin {
		t.Errorf("next digest: %+v, want %s extending %s", got, f.head2, f.head1)
	}
	// --last inside the range, and at the head itself.
	e, _ := export.ParseJSON(bytes.NewReader(f.next))
	mid := directory.Head{Serial: e.Chain.Entries[0].Seq, Hash: e.Chain.Entries[0].Hash}
	for _, last := range []directory.Head{mid, f.head2} {
		if _, err := digest.Check(f.next, f.nextSig, digest.CheckOptions{Pin: f.pin, Last: &last, Now: jobNow}); err != nil {
			t.Errorf("--last %s: %v", last, err)
		}
	}
	// The detached signature is what gpg checks (see check_basic.txtar);
	// the JSON states the previous digest.
	if e.Chain.PrevSerial != f.head1.Serial || e.Chain.PrevHead != f.head1.Hash || len(e.Chain.Keys) != 1 || e.Chain.Keys[0].FromSerial != 1 {
		t.Errorf("chain: prev %d:%s, keys %+v", e.Chain.PrevSerial, e.Chain.PrevHead, e.Chain.Keys)
	}
}

// Each forged or broken digest is a *CheckError naming what does not
// hold.
func TestCheckBad(t *testing.T) {
	f := newChainFixture(t)
	other := keystest.NewSecret(t, "Other Directory", "other@ccdir.example")
	other.SetClock(func() time.Time { return jobNow })
	otherArmored, err := other.Public().Armored()
	if err != nil {
		t.Fatal(err)
	}
	revoked := revokedKey(t)

	type tc struct {
		name      string
		data, sig []byte
		pin       string
		last      *directory.Head
		want      string
	}
	var cases []tc
	add := func(name string, signer *keys.Secret, last *directory.Head, want string, fn func(*export.Export)) {
		d, s := edit(t, f.next, signer, fn)
		cases = append(cases, tc{name: name, data: d, sig: s, pin: f.pin, last: last, want: want})
	}
	stale := f.head2
	forked := directory.Head{Serial: f.head1.Serial, Hash: strings.Repeat("ab", 32)}
	cases = append(cases,
		tc{"signature by another key", f.next, signBy(t, other, f.next), f.pin, &f.head1, "the signature of directory.json is not by the directory key"},
		tc{"signature of other data", f.next, f.firstSig, f.pin, &f.head1, "the signature of directory.json is not by the directory key"},
		tc{"no signature", f.next, nil, f.pin, &f.head1, "no signature of directory.json"},
		tc{"pin of another key", f.next, f.nextSig, other.Fingerprint(), &f.head1, "is not in the digest's key chain"},
		tc{"fork from --last", f.next, f.nextSig, f.pin, &forked, "fork: this digest's ledger has"},
		tc{"replayed older digest", f.first, f.firstSig, f.pin, &stale, "rollback or replay: this digest is at serial"},
		tc{"missed digests", f.next, f.nextSig, f.pin, &directory.Head{Serial: 1, Hash: strings.Repeat("0", 64)}, "entries missing: this digest carries the ledger from serial"},
		tc{"garbage", []byte("garbage\x00\xff"), f.nextSig, f.pin, nil, "not a ccdir directory export"},
		tc{"a plain export", mustExport(t, f), f.nextSig, f.pin, nil, "directory.json has no chain"},
	)
	add("key chain with a gap", other, &f.head1, "key chain has a gap: no ledger entry links key", func(e *export.Export) {
		e.Chain.Keys = append(e.Chain.Keys, export.ExportKeyOf{Fingerprint: other.Fingerprint(), FromSerial: f.head2.Serial, Key: string(otherArmored)})
	})
	add("revoked key in the chain", other, &f.head1, "is revoked", func(e *export.Export) {
		e.Chain.Keys = []export.ExportKeyOf{{Fingerprint: revoked.Fingerprint, FromSerial: 1, Key: string(mustArmor(t, revoked))},
			{Fingerprint: other.Fingerprint(), FromSerial: 2, Key: string(otherArmored)}}
	})
	cases[len(cases)-1].pin = revoked.Fingerprint
	add("payload changed", f.j.Secret, &f.head1, "does not hash to its hash", func(e *export.Export) {
		e.Chain.Entries[0].Payload = strings.Replace(e.Chain.Entries[0].Payload, "NIC.br", "NIC.bz", 1)
	})
	add("entries that do not chain", f.j.Secret, &f.head1, "does not chain: its prev_hash", func(e *export.Export) {
		x := &e.Chain.Entries[1]
		x.PrevHash = strings.Repeat("cd", 32)
		h, _ := x.Hashed()
		x.Hash = h.Hash()
	})
	add("entry missing", f.j.Secret, &f.head1, "entries missing: after serial", func(e *export.Export) {
		e.Chain.Entries = e.Chain.Entries[1:]
	})
	add("no entries", f.j.Secret, &f.head1, "entries missing: directory.json carries none", func(e *export.Export) {
		e.Chain.Entries = []export.ExportEntry{}
	})
	add("head not the last entry", f.j.Secret, &f.head1, "the entries end at", func(e *export.Export) {
		e.Chain.Entries = e.Chain.Entries[:1]
	})
	add("entry signature by another key", f.j.Secret, &f.head1, "is not signed by the directory key", func(e *export.Export) {
		x := &e.Chain.Entries[1]
		x.Sig, _ = other.Sign(directory.SignedText(x.Seq, x.Hash))
	})
	add("bad evidence digest", f.j.Secret, &f.head1, "evidence_sha256", func(e *export.Export) {
		e.Chain.Entries[0].EvidenceSHA256 = "xyz"
	})
	add("key listed twice", f.j.Secret, &f.head1, "is listed twice", func(e *export.Export) {
		k := e.Chain.Keys[0]
		k.FromSerial = 5
		e.Chain.Keys = append(e.Chain.Keys, k)
	})
	add("key listed under another fingerprint", f.j.Secret, &f.head1, "key chain: key 1 is", func(e *export.Export) {
		e.Chain.Keys[0].Fingerprint = other.Fingerprint()
	})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := digest.Check(c.data, c.sig, digest.CheckOptions{Pin: c.pin, Last: c.last, Now: jobNow})
			var ce *digest.CheckError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a CheckError", err)
			}
			t.Logf("%s (hint: %s)", err, ce.Hint)
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %q, want %q", err, c.want)
			}
		})
	}
}

func signBy(t *testing.T, s *keys.Secret, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.ArmoredDetachSign(&b, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustExport(t *testing.T, f *chainFixture) []byte {
	t.Helper()
	snap, err := f.j.Store.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := export.WriteJSON(&b, snap); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func mustArmor(t *testing.T, p *keys.Public) []byte {
	t.Helper()
	b, err := p.Armored()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// revokedKey is a key gpg made and revoked.
func revokedKey(t *testing.T) *keys.Public {
	t.Helper()
	g := keystest.GPG(t)
	fpr := g.GenKey("Old Directory <old@ccdir.example>", "ed25519", "sign", "never")
	g.Revoke(fpr)
	p, err := keys.ParsePublicOne(g.ExportPublic(fpr))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Revocations()) == 0 {
		t.Fatal("gpg's revocation is not on the key")
	}
	return p
}

// DigestFiles finds directory.json and its signature in a decrypted
// digest, says so of one still encrypted, and refuses garbage.
func TestDigestFilesGarbage(t *testing.T) {
	for _, msg := range []string{"", "garbage", "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n\r\nhi\r\n--x--\r\n"} {
		if _, _, err := digest.DigestFiles([]byte(msg)); err == nil {
			t.Errorf("%q: no error", msg)
		}
	}
	enc := "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=x\r\n\r\n--x\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n--x\r\nContent-Type: application/octet-stream\r\n\r\n-----BEGIN PGP MESSAGE-----\r\n--x--\r\n"
	_, _, err := digest.DigestFiles([]byte(enc))
	var ee *digest.EncryptedError
	if !errors.As(err, &ee) || !bytes.Contains(ee.Armored, []byte("BEGIN PGP MESSAGE")) {
		t.Errorf("encrypted: %v", err)
	}
}

// TestReadmeCheckPy runs the README's check.py, the procedure of a member
// without ccdir, on real digests: it passes a good one and fails a
// changed entry, a fork and a replay, as Check does.
func TestReadmeCheckPy(t *testing.T) {
	py, script := readmeCheckPy(t)
	dir := t.TempDir()
	f := newChainFixture(t)
	changed, _ := edit(t, f.next, f.j.Secret, func(e *export.Export) {
		e.Chain.Entries[1].Payload = strings.Replace(e.Chain.Entries[1].Payload, "IIS", "IlS", 1)
	})
	skipped, _ := edit(t, f.next, f.j.Secret, func(e *export.Export) {
		e.Chain.Entries = append(e.Chain.Entries[:1:1], e.Chain.Entries[2:]...)
	})
	serial, _ := edit(t, f.next, f.j.Secret, func(e *export.Export) { e.Serial++ })
	// Entry 6 erased, "covered" by an erase entry before it (5).
	erasedBefore, _ := edit(t, f.next, f.j.Secret, func(e *export.Export) {
		e.Chain.Entries[0].Op, e.Chain.Entries[0].Payload = "contact.erase", `{"redacts":[6]}`
		e.Chain.Entries[1].Payload = ""
		prev := e.Chain.PrevHead // chained again: only signatures tell
		for i := range e.Chain.Entries {
			x := &e.Chain.Entries[i]
			x.PrevHash = prev
			h, _ := x.Hashed()
			x.Hash, prev = h.Hash(), h.Hash()
		}
		e.Head = prev
	})
	next := newKey(t, "next")
	rekeyed, _ := edit(t, f.next, next, rekeyTo(t, f, next, 6, nil, next, f.j.Secret, next))
	for _, c := range []struct {
		name string
		data []byte
		last directory.Head
		fpr  string
		want string
	}{
		{"good", f.next, f.head1, f.pin, fmt.Sprintf("ok serial %d head %s extends %d %s\n", f.head2.Serial, f.head2.Hash, f.head1.Serial, f.head1.Hash)},
		{"first", f.first, directory.Head{Serial: 1, Hash: firstHash(t, f.first)}, f.pin, fmt.Sprintf("ok serial %d head %s", f.head1.Serial, f.head1.Hash)},
		{"changed entry", changed, f.head1, f.pin, "FAILED: entry 6 does not hash to its hash"},
		{"fork", f.next, directory.Head{Serial: f.head1.Serial, Hash: strings.Repeat("ab", 32)}, f.pin, "FAILED: fork"},
		{"replay", f.first, f.head2, f.pin, "FAILED: rollback or replay"},
		{"another key", f.next, f.head1, next.Fingerprint(), "FAILED: the directory key is not your pinned key"},
		{"entry skipped", skipped, f.head1, f.pin, "FAILED: entries missing: after serial 5 comes entry 7"},
		{"serial not the last entry", serial, f.head1, f.pin, "FAILED: the entries do not end at the head"},
		{"erased before its erase", erasedBefore, f.head1, f.pin, "FAILED: entry 6 was erased, but no contact.erase after it covers it"},
		{"rekey", rekeyed, f.head1, next.Fingerprint(), "FAILED: entry 6 replaces the directory key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(dir, c.name+".json")
			if err := os.WriteFile(file, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, script, file, strconv.FormatInt(c.last.Serial, 10), c.last.Hash, c.fpr).CombinedOutput()
			if strings.HasPrefix(c.want, "ok") != (err == nil) || !strings.Contains(string(out), c.want) {
				t.Errorf("check.py: %v: %s, want %q", err, out, c.want)
			}
		})
	}
}

// firstHash is the hash of entry 1 in a directory.json.
func firstHash(t *testing.T, data []byte) string {
	t.Helper()
	e, err := export.ParseJSON(bytes.NewReader(data))
	if err != nil || len(e.Chain.Entries) == 0 || e.Chain.Entries[0].Seq != 1 {
		t.Fatalf("no entry 1: %v", err)
	}
	return e.Chain.Entries[0].Hash
}

// A chain of two keys: the head entry hands the directory over, signed
// by the old key and the new, and the new key signs the digest. A member
// who pinned either key follows it; a link without the new key's
// signature, or not the ledger's entry, is a gap.
func TestCheckKeyChain(t *testing.T) {
	f := newChainFixture(t)
	next := newKey(t, "Job Test Directory, next key")
	data, sig := edit(t, f.next, next, rekeyTo(t, f, next, 7, nil, next, f.j.Secret, next))
	for _, pin := range []string{f.pin, next.Fingerprint()} {
		got, err := digest.Check(data, sig, digest.CheckOptions{Pin: pin, Last: &f.head1, Now: jobNow})
		if err != nil {
			t.Fatalf("pinned %s: %v", pin, err)
		}
		if got.Signer != next.Fingerprint() {
			t.Errorf("pinned %s: signer %s, want the new key", pin, got.Signer)
		}
	}
	data, sig = edit(t, f.next, next, rekeyTo(t, f, next, 7, nil, next, f.j.Secret))
	if _, err := digest.Check(data, sig, digest.CheckOptions{Pin: f.pin, Last: &f.head1, Now: jobNow}); err == nil || !strings.Contains(err.Error(), "key chain has a gap: entry 7: it has 1 signatures") {
		t.Errorf("a link the new key did not sign: %v", err)
	}
	data, sig = edit(t, f.next, next, func(e *export.Export) {
		rekeyTo(t, f, next, 7, nil, next, f.j.Secret, next)(e)
		e.Chain.Keys[1].Link.Payload += " "
		h, _ := e.Chain.Keys[1].Link.Hashed()
		e.Chain.Keys[1].Link.Hash = h.Hash()
	})
	if _, err := digest.Check(data, sig, digest.CheckOptions{Pin: f.pin, Last: &f.head1, Now: jobNow}); err == nil || !strings.Contains(err.Error(), "key chain has a gap: entry 7") && !strings.Contains(err.Error(), "not the ledger's") {
		t.Errorf("a link that is not the ledger's entry: %v", err)
	}
}
