package export

import (
	"strings"
	"testing"
	"time"
)

// A rekey is told until the end of its overlap; a revocation for as long
// as it is the last rekey; no rekey, never.
func TestKeyChangeTold(t *testing.T) {
	replaced := time.Date(2026, 9, 2, 10, 0, 0, 0, time.UTC)
	kc := &KeyChange{Old: "OLD", New: "NEW", Replaced: replaced, Until: replaced.Add(60 * 24 * time.Hour)}
	for _, tc := range []struct {
		at   time.Time
		told bool
	}{
		{replaced, true},
		{kc.Until.Add(-time.Second), true},
		{kc.Until, false},
		{kc.Until.Add(365 * 24 * time.Hour), false},
	} {
		if got := kc.Told(tc.at); got != tc.told {
			t.Errorf("Told(%s) = %v, want %v", tc.at, got, tc.told)
		}
		if n := kc.Notice(tc.at); (n != "") != tc.told {
			t.Errorf("Notice(%s) = %q", tc.at, n)
		}
	}
	n := kc.Notice(replaced)
	for _, want := range []string{"changed on 2026-09-02", "NEW", "OLD", "accepted until 2026-11-01", KeyChangeFile} {
		if !strings.Contains(n, want) {
			t.Errorf("notice lacks %q:\n%s", want, n)
		}
	}
	kc.Revoked, kc.Reason = true, "stolen"
	if !kc.Told(kc.Until.Add(365*24*time.Hour)) || !strings.Contains(kc.Notice(kc.Until.Add(time.Hour)), "OLD KEY IS REVOKED") ||
		!strings.Contains(kc.Notice(replaced), "(stolen)") {
		t.Errorf("revoked: %q", kc.Notice(replaced))
	}
	var none *KeyChange
	if none.Told(replaced) || none.Notice(replaced) != "" {
		t.Error("a nil KeyChange is told")
	}
}
