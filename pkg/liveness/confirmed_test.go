package liveness

import (
	"testing"
	"time"
)

// TestConfirmedAt: the last confirmed as it stood at a time counts only
// the answers given by then; Confirmed counts them all.
func TestConfirmedAt(t *testing.T) {
	f := newFixture(t)
	f.send(Config{})
	f.advance(time.Hour)
	first := f.now()
	if _, err := f.pong("ana@dns.pt", f.token("ana@dns.pt")); err != nil {
		t.Fatal(err)
	}
	f.advance(DefaultInterval)
	f.send(Config{})
	f.advance(time.Hour)
	second := f.now()
	if _, err := f.pong("ana@dns.pt", f.token("ana@dns.pt")); err != nil {
		t.Fatal(err)
	}
	snap, err := f.store.Snapshot(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		at   time.Time
		want time.Time // zero: not in the map
	}{
		{start, time.Time{}},
		{first.Add(-time.Second), time.Time{}},
		{first, first},
		{second.Add(-time.Second), first},
		{second, second},
		{time.Time{}, second},
	} {
		conf, err := ConfirmedAt(f.ctx, f.store.DB(), snap.Contacts, tt.at)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := conf["ana@dns.pt"]
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) || len(conf) > 1 {
			t.Errorf("at %s: %v, want ana at %s", tt.at, conf, tt.want)
		}
	}
	all, err := Confirmed(f.ctx, f.store.DB(), snap.Contacts)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || !all["ana@dns.pt"].Equal(second) {
		t.Errorf("Confirmed: %v", all)
	}
}

// TestConfirmedText: the words every place that shows a last confirmed
// uses (SHOW, CALL, digests).
func TestConfirmedText(t *testing.T) {
	now := start
	for _, tt := range []struct {
		t    time.Time
		want string
	}{
		{time.Time{}, "last confirmed: never (has not answered a reachability check)"},
		{now, "last confirmed: 2026-11-02 10:00 UTC (0 hours ago)"},
		{now.Add(-time.Hour), "last confirmed: 2026-11-02 09:00 UTC (1 hour ago)"},
		{now.Add(-47 * time.Hour), "last confirmed: 2026-10-31 11:00 UTC (47 hours ago)"},
		{now.Add(-48 * time.Hour), "last confirmed: 2026-10-31 10:00 UTC (2 days ago)"},
		{now.Add(-DefaultInterval + time.Minute), "last confirmed: 2026-08-04 10:01 UTC (89 days ago)"},
		{now.Add(-DefaultInterval), "last confirmed: 2026-08-04 10:00 UTC (90 days ago), stale"},
	} {
		if got := ConfirmedText(tt.t, DefaultInterval, now); got != tt.want {
			t.Errorf("ConfirmedText(%s) = %q, want %q", tt.t, got, tt.want)
		}
	}
	if !Fresh(now.Add(-time.Hour), DefaultInterval, now) || Fresh(time.Time{}, DefaultInterval, now) || Fresh(now.Add(-DefaultInterval), DefaultInterval, now) {
		t.Error("Fresh")
	}
}
