package digest_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBodyReachability: the digest's text body gives each contact's last
// confirmed (liveness.Confirmed, as it stood at the digest's date; "never"
// before a PONG) in a section apart from the signed directory, judged
// stale against Config.PingInterval.
func TestBodyReachability(t *testing.T) {
	ctx := context.Background()
	j := newJobStore(t, 2, nil)
	snap, err := j.Store.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fpr := func(email string) string {
		for _, c := range snap.Contacts {
			if c.Email == email {
				return c.Key.Fingerprint
			}
		}
		t.Fatalf("no contact %s", email)
		return ""
	}
	ping := func(n int, email string, sent, answered time.Time) {
		t.Helper()
		_, err := j.Store.DB().Exec(`INSERT INTO pings (email, fingerprint, nonce, token_hash, sent, expires, answered) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			email, fpr(email), fmt.Sprint("n", n), fmt.Sprint("h", n), sent.Format(time.RFC3339), sent.AddDate(0, 0, 14).Format(time.RFC3339), answered.Format(time.RFC3339))
		if err != nil {
			t.Fatal(err)
		}
	}
	ping(1, "c000@dns.pt", jobNow.AddDate(0, 0, -4), jobNow.AddDate(0, 0, -3))
	// An answer after the digest's date is not in it.
	ping(2, "c000@dns.pt", jobNow, jobNow.Add(time.Hour))

	var b bytes.Buffer
	if err := j.PreviewText(ctx, &b); err != nil {
		t.Fatal(err)
	}
	body := b.String()
	for _, want := range []string{
		"\nReachability (operational, not part of the signed directory)\n",
		"\n  Contact 000 <c000@dns.pt>: last confirmed: 2025-05-30 10:00 UTC (3 days ago)\n",
		"\n  Contact 001 <c001@dns.pt>: last confirmed: never (has not answered a reachability check)\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	if i, k := strings.Index(body, "\nReachability"), strings.LastIndex(body, "Role:"); i < k {
		t.Error("the reachability section is not after the directory")
	}

	j.Config.PingInterval = 2 * 24 * time.Hour
	b.Reset()
	if err := j.PreviewText(ctx, &b); err != nil {
		t.Fatal(err)
	}
	if want := "\n  Contact 000 <c000@dns.pt>: last confirmed: 2025-05-30 10:00 UTC (3 days ago), stale\n"; !strings.Contains(b.String(), want) {
		t.Errorf("with a 2-day interval the body lacks %q", want)
	}
}
