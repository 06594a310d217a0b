package keys_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// gpgExpiries returns the expiry gpg lists for fpr's primary key and for
// each of its subkeys, in order (zero: never).
func gpgExpiries(t *testing.T, g *keystest.GPGHome, fpr string) (primary time.Time, subs []time.Time) {
	t.Helper()
	out, _ := g.MustRun("--with-colons", "--list-keys", fpr)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 7 || (f[0] != "pub" && f[0] != "sub") {
			continue
		}
		var exp time.Time
		if f[6] != "" {
			n, err := strconv.ParseInt(f[6], 10, 64)
			if err != nil {
				t.Fatalf("gpg expiry %q: %v", f[6], err)
			}
			exp = time.Unix(n, 0).UTC()
		}
		if f[0] == "pub" {
			primary = exp
		} else {
			subs = append(subs, exp)
		}
	}
	return primary, subs
}

func parseAt(t *testing.T, data []byte) *keys.Public {
	t.Helper()
	p, err := keys.ParsePublicOne(data)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// UsableUntil is the earliest of the primary key's expiry and the latest
// expiry of its encryption subkeys: a refresh of the primary key alone
// (gpg --quick-set-expire FPR 1y) leaves it at the subkey's expiry, one
// with '*' too moves it; a primary key that never expires with an
// expiring encryption subkey stops working when the subkey expires.
func TestUsableUntil(t *testing.T) {
	g := keystest.GPG(t)
	now := time.Now().UTC().Add(time.Hour) // after the keys gpg makes now
	d := func(days int) string { return now.AddDate(0, 0, days).Format(time.DateOnly) }

	// Primary (sign) and encryption subkey expiring the same day.
	ana := g.GenKey("Ana <ana@dns.pt>", "ed25519", "sign", d(60))
	g.AddKey(ana, "cv25519", "encr", d(60))
	p := parseAt(t, g.ExportPublic(ana))
	prim, subs := gpgExpiries(t, g, ana)
	if got := p.UsableUntil(now); !got.Equal(prim) || !p.Expires.Equal(prim) || !subs[0].Equal(prim) {
		t.Fatalf("same expiry: UsableUntil %v, Expires %v, gpg %v %v", got, p.Expires, prim, subs)
	}

	// The primary key alone extended: still the subkey's expiry.
	g.MustRun("--pinentry-mode", "loopback", "--passphrase", "", "--quick-set-expire", ana, d(400))
	p = parseAt(t, g.ExportPublic(ana))
	prim, subs = gpgExpiries(t, g, ana)
	if got := p.UsableUntil(now); !got.Equal(subs[0]) || !p.Expires.Equal(prim) || !prim.After(subs[0]) {
		t.Fatalf("primary extended: UsableUntil %v, want the subkey's %v (primary %v, Expires %v)", got, subs[0], prim, p.Expires)
	}
	// Past the subkey's expiry: the time it stopped working, and Check says why.
	late := subs[0].Add(7 * 24 * time.Hour)
	if got := p.UsableUntil(late); !got.Equal(subs[0]) {
		t.Fatalf("after the subkey expired: UsableUntil %v, want %v", got, subs[0])
	}
	if err := p.Check(late); !keys.Unusable(err) {
		t.Fatalf("Check after the subkey expired: %v", err)
	}
	if err := p.Check(now); err != nil {
		t.Fatalf("Check now: %v", err)
	}

	// And the subkeys too ('*'): the primary key's expiry again.
	g.MustRun("--pinentry-mode", "loopback", "--passphrase", "", "--quick-set-expire", ana, d(400), "*")
	p = parseAt(t, g.ExportPublic(ana))
	prim, subs = gpgExpiries(t, g, ana)
	if got := p.UsableUntil(now); !got.Equal(prim) || !subs[0].Equal(prim) {
		t.Fatalf("both extended: UsableUntil %v, gpg %v %v", got, prim, subs)
	}

	// A primary key that never expires, an encryption subkey that does.
	bob := g.GenKey("Bob <bob@dns.pt>", "ed25519", "sign", "never")
	g.AddKey(bob, "cv25519", "encr", d(20))
	p = parseAt(t, g.ExportPublic(bob))
	_, subs = gpgExpiries(t, g, bob)
	if got := p.UsableUntil(now); !p.Expires.IsZero() || !got.Equal(subs[0]) {
		t.Fatalf("primary never expires: UsableUntil %v, Expires %v, want the subkey's %v", got, p.Expires, subs[0])
	}
	// A second, later encryption subkey is what encryption will use.
	g.AddKey(bob, "cv25519", "encr", d(200))
	p = parseAt(t, g.ExportPublic(bob))
	_, subs = gpgExpiries(t, g, bob)
	if got := p.UsableUntil(now); !got.Equal(subs[1]) {
		t.Fatalf("two encryption subkeys: UsableUntil %v, want the later %v (%v)", got, subs[1], subs)
	}

	// A signing subkey under a certify-only primary key counts too.
	cid := g.GenKey("Cid <cid@dns.pt>", "ed25519", "cert", "never")
	g.AddKey(cid, "ed25519", "sign", d(30))
	g.AddKey(cid, "cv25519", "encr", "never")
	p = parseAt(t, g.ExportPublic(cid))
	_, subs = gpgExpiries(t, g, cid)
	if got := p.UsableUntil(now); !got.Equal(subs[0]) {
		t.Fatalf("signing subkey: UsableUntil %v, want %v", got, subs[0])
	}

	// Nothing expires: never.
	dan := g.GenKey("Dan <dan@dns.pt>", "future-default", "default", "never")
	if got := parseAt(t, g.ExportPublic(dan)).UsableUntil(now); !got.IsZero() {
		t.Fatalf("nothing expires: UsableUntil %v", got)
	}
}
