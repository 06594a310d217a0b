package liveness

import (
	"bytes"
	"testing"
	"time"
)

// TestParseApplyEvidence: what ApplyEvidence writes reads back (the
// change, who asked and when, the quoted mail exactly), with and
// without a mail, early or confirmed; other text does not.
func TestParseApplyEvidence(t *testing.T) {
	asked := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	mail := []byte("ccdir evidence v1\nform: x\n\n\nbody\n\nwith blank lines\n")
	for _, tc := range []struct {
		name string
		p    Pending
		how  string
		now  time.Time
	}{
		{"due", Pending{ID: "chg-aaaaaaaaaa", Actor: "member:ABCDEF0123456789ABCDEF0123456789ABCDEF01", Requested: asked, Due: asked.Add(72 * time.Hour), Evidence: mail}, "", asked.Add(73 * time.Hour)},
		{"early, confirmed", Pending{ID: "chg-bbbbbbbbbb", Actor: "member:ABCDEF0123456789ABCDEF0123456789ABCDEF01", Requested: asked, Due: asked.Add(72 * time.Hour), Evidence: mail, Proven: asked.Add(time.Hour)}, "phoned Ana, at 12:00, twice", asked.Add(2 * time.Hour)},
		{"no mail", Pending{ID: "chg-cccccccccc", Actor: "operator:ana", Requested: asked, Due: asked.Add(72 * time.Hour)}, "", asked.Add(73 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := ApplyEvidence(tc.p, tc.how, tc.now)
			id, actor, at, got, ok := ParseApplyEvidence(ev)
			if !ok || id != tc.p.ID || actor != tc.p.Actor || !at.Equal(asked) || !bytes.Equal(got, tc.p.Evidence) {
				t.Fatalf("ParseApplyEvidence(%q) = %q, %q, %v, %q, %v", ev, id, actor, at, got, ok)
			}
		})
	}
	for _, bad := range []string{"", "phoned Ana", "pending change chg-x asked by member:AB at yesterday, announced\n\nmail", "pending change\n\n"} {
		if _, _, _, _, ok := ParseApplyEvidence([]byte(bad)); ok {
			t.Errorf("ParseApplyEvidence(%q) ok", bad)
		}
	}
}
