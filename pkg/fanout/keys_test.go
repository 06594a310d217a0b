package fanout

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ccdir/ccdir/directory"
	"github.com/ccdir/ccdir/keys"
	"github.com/ccdir/ccdir/keys/keystest"
)

// testKeys are registered keys made by gpg: a good one, one that
// expires two days after it was made, one expired long ago, a revoked
// one and an RSA 1024 one; now is a minute after they were made.
type testKeys struct {
	good, expiring, expired, revoked, weak *directory.Key
	now                                    time.Time
}

func makeTestKeys(t *testing.T) *testKeys {
	t.Helper()
	g := keystest.GPG(t)
	reg := func(fpr string) *directory.Key {
		return &directory.Key{Fingerprint: fpr, Armored: string(g.ExportPublic(fpr))}
	}
	good := g.GenKey("Good <good@x.pt>", "future-default", "default", "1y")
	expiring := g.GenKey("Soon <soon@x.pt>", "future-default", "default", "2d")
	expired := g.GenKeyAt(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "Old <old@x.pt>", "future-default", "default", "1d")
	revoked := g.GenKey("Gone <gone@x.pt>", "future-default", "default", "1y")
	g.Revoke(revoked)
	weak := g.GenKey("Weak <weak@x.pt>", "rsa1024", "default", "1y")
	g.AddKey(weak, "rsa1024", "encr", "1y")
	return &testKeys{good: reg(good), expiring: reg(expiring), expired: reg(expired), revoked: reg(revoked), weak: reg(weak),
		now: time.Now().UTC().Add(time.Minute).Truncate(time.Second)}
}

func TestKeysVerdicts(t *testing.T) {
	tk := makeTestKeys(t)
	testStart := tk.now
	for _, kept := range []bool{false, true} {
		c := NewKeys()
		if kept {
			c = NewKeysKept()
		}
		c.Load([]*directory.Key{tk.good, tk.expired, nil, tk.revoked, tk.weak, tk.good}, testStart)
		for _, tc := range []struct {
			name   string
			key    *directory.Key
			want   error
			reason string
		}{
			{"good", tk.good, nil, ""},
			{"none", nil, keys.ErrNoKey, "no key"},
			{"expired", tk.expired, keys.ErrExpired, "key expired"},
			{"revoked", tk.revoked, keys.ErrRevoked, "key revoked"},
			{"weak", tk.weak, keys.ErrWeakKey, "key too weak"},
		} {
			r, err := c.Recipient(tc.key, testStart)
			if tc.want == nil {
				if err != nil || r == nil || r.Fingerprint != tc.key.Fingerprint {
					t.Errorf("kept=%v %s: Recipient = %v, %v", kept, tc.name, r, err)
				}
				if pub, err := c.Public(tc.key, testStart); err != nil || pub.Fingerprint != tc.key.Fingerprint {
					t.Errorf("kept=%v %s: Public = %v, %v", kept, tc.name, pub, err)
				}
				continue
			}
			if r != nil || !errors.Is(err, tc.want) || !keys.Unusable(err) || keys.Reason(err) != tc.reason {
				t.Errorf("kept=%v %s: Recipient = %v, %v; want %v (reason %q, got %q)", kept, tc.name, r, err, tc.want, tc.reason, keys.Reason(err))
			}
			if err2 := c.Err(tc.key, testStart); !errors.Is(err2, tc.want) {
				t.Errorf("kept=%v %s: Err = %v", kept, tc.name, err2)
			}
			if pub, err := c.Public(tc.key, testStart); pub != nil || !errors.Is(err, tc.want) {
				t.Errorf("kept=%v %s: Public = %v, %v", kept, tc.name, pub, err)
			}
		}
	}
}

// TestKeysTime: the verdict is the one at the time asked, for a cache of
// a run and of an instance alike.
func TestKeysTime(t *testing.T) {
	tk := makeTestKeys(t)
	testStart := tk.now
	later := testStart.Add(72 * time.Hour)
	for _, c := range []*Keys{NewKeys(), NewKeysKept()} {
		if _, err := c.Recipient(tk.expiring, testStart); err != nil {
			t.Fatalf("at start: %v", err)
		}
		if _, err := c.Recipient(tk.expiring, later); !errors.Is(err, keys.ErrExpired) {
			t.Errorf("three days later: %v, want expired", err)
		}
		if _, err := c.Recipient(tk.expiring, testStart); err != nil {
			t.Errorf("at start again: %v", err)
		}
	}
}

// TestKeysKeptParsedOnce: an instance's cache parses a key once, whatever
// the time; a key registered anew under the same fingerprint is read anew.
func TestKeysKeptParsedOnce(t *testing.T) {
	tk := makeTestKeys(t)
	testStart := tk.now
	c := NewKeysKept()
	p1, err := c.Public(tk.good, testStart)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Public(tk.good, testStart.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Error("the kept cache parsed the key twice")
	}
	// The same fingerprint with another armored text (here: broken).
	broken := &directory.Key{Fingerprint: tk.good.Fingerprint, Armored: "not a key"}
	if _, err := c.Recipient(broken, testStart); err == nil {
		t.Error("a key registered anew was answered from the cache")
	}
	p3, err := c.Public(tk.good, testStart)
	if err != nil {
		t.Fatal(err)
	}
	if p3 == p1 {
		t.Error("the old entry survived a new registration")
	}
	// A run's cache keeps no certificate: each Public parses.
	r := NewKeys()
	q1, _ := r.Public(tk.good, testStart)
	q2, _ := r.Public(tk.good, testStart)
	if q1 == nil || q1 == q2 {
		t.Errorf("the run's cache kept a parsed certificate (%p, %p)", q1, q2)
	}
}

// TestKeysConcurrent: many goroutines asking for the same keys get the
// same verdicts (run with -race).
func TestKeysConcurrent(t *testing.T) {
	tk := makeTestKeys(t)
	testStart := tk.now
	c := NewKeysKept()
	var wg sync.WaitGroup
	errs := make([]error, 32)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := tk.good
			if i%2 == 1 {
				k = tk.revoked
			}
			_, errs[i] = c.Recipient(k, testStart.Add(time.Duration(i%3)*time.Hour))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if (i%2 == 1) != errors.Is(err, keys.ErrRevoked) {
			t.Errorf("goroutine %d: %v", i, err)
		}
	}
}
