package digest_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/pkg/digest"
	"github.com/ccdir/ccdir/pkg/export"
)

// readmeCheckPy writes the README's check.py into a temporary folder and
// returns python3 and the script: what a member without ccdir runs.
func readmeCheckPy(t *testing.T) (py, script string) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed (scripts/deps.sh installs it): the README's check.py is what a member runs")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(readme, []byte("<!-- check.py -->\n```python\n"))
	code, _, ok2 := bytes.Cut(rest, []byte("\n```\n"))
	if !ok || !ok2 {
		t.Fatal("README.md has no check.py block")
	}
	script = filepath.Join(t.TempDir(), "check.py")
	if err := os.WriteFile(script, code, 0o600); err != nil {
		t.Fatal(err)
	}
	return py, script
}

// TestCheckSubject (review r4 finding 2): a version 3 entry's subject
// is covered by its hash, and must be whom its payload is about. The
// first digest's entry 4 (the contact.add of contact 4) given contact
// 3's subject, its hash recomputed and the digest signed again (what
// only the directory key's holder could do), is refused by Check and by
// the README's check.py; the subject changed without the hash is
// refused as a changed entry.
func TestCheckSubject(t *testing.T) {
	f := newChainFixture(t)
	ex, err := export.ParseJSON(bytes.NewReader(f.first))
	if err != nil {
		t.Fatal(err)
	}
	if e := ex.Chain.Entries[3]; e.Seq != 4 || e.Op != "contact.add" || e.Version != 3 || e.Subject != "contact:4" {
		t.Fatalf("entry 4 of the first digest: %+v", e)
	}
	rehashed, rsig := edit(t, f.first, f.j.Secret, func(e *export.Export) {
		x := &e.Chain.Entries[3]
		x.Subject = "contact:3"
		h, _ := x.Hashed()
		x.Hash = h.Hash()
		e.Head = x.Hash
	})
	changed, csig := edit(t, f.first, f.j.Secret, func(e *export.Export) { e.Chain.Entries[2].Subject = "contact:4" })
	dropped, dsig := edit(t, f.first, f.j.Secret, func(e *export.Export) { e.Chain.Entries[3].Subject = "" })
	member, msig := edit(t, f.first, f.j.Secret, func(e *export.Export) { // a member.add about a contact
		x := &e.Chain.Entries[1]
		x.Subject = "contact:3"
		h, _ := x.Hashed()
		x.Hash = h.Hash()
		for i := 2; i < len(e.Chain.Entries); i++ {
			y := &e.Chain.Entries[i]
			y.PrevHash = e.Chain.Entries[i-1].Hash
			h, _ := y.Hashed()
			y.Hash = h.Hash()
		}
		e.Head = e.Chain.Entries[len(e.Chain.Entries)-1].Hash
	})
	opts := digest.CheckOptions{Pin: f.pin, Now: jobNow}
	if _, err := digest.Check(f.first, f.firstSig, opts); err != nil {
		t.Fatal(err)
	}
	py, script := readmeCheckPy(t)
	dir := t.TempDir()
	last := directory.Head{Serial: 1, Hash: firstHash(t, f.first)}
	for _, c := range []struct {
		name         string
		data, sig    []byte
		want, wantPy string
	}{
		{"good", f.first, f.firstSig, "", "ok serial 4 "},
		{"rehashed", rehashed, rsig, `entry 4's subject is "contact:3", but its payload is about "contact:4"`, "FAILED: entry 4: its subject is not whom its payload is about"},
		{"changed", changed, csig, "entry 3 does not hash to its hash", "FAILED: entry 3: its subject is not whom its payload is about"},
		{"dropped", dropped, dsig, "entry 4 does not hash to its hash", "FAILED: entry 4"},
		{"member", member, msig, `entry 2's subject is "contact:3", but its payload is about ""`, "FAILED: entry 2: its subject is not whom its payload is about"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.want != "" {
				if _, err := digest.Check(c.data, c.sig, opts); err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Check: %v, want %q", err, c.want)
				}
			}
			file := filepath.Join(dir, c.name+".json")
			if err := os.WriteFile(file, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(py, script, file, strconv.FormatInt(last.Serial, 10), last.Hash, f.pin).CombinedOutput()
			if strings.HasPrefix(c.wantPy, "ok") != (err == nil) || !strings.Contains(string(out), c.wantPy) {
				t.Errorf("check.py: %v: %s, want %q", err, out, c.wantPy)
			}
		})
	}
}
