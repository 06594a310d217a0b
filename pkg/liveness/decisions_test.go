package liveness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A line torn by a crash (no newline: its transaction never committed)
// must not swallow the decision appended after it, and lines however
// long or blank never stop the record from loading: the record fails
// safe only for the torn line itself.
func TestDecisionsTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pending-decided")
	var warnings []string
	d := &Decisions{Path: path, Secret: []byte(strings.Repeat("k", 32)),
		Warn: func(format string, args ...any) { warnings = append(warnings, fmt.Sprintf(format, args...)) }}
	at := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	if err := d.Append(Decision{ID: "chg-aaaaaaaaaa", State: StateVetoed, At: at}); err != nil {
		t.Fatal(err)
	}
	// A torn line, then another, then a very long one without newline.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("chg-bbbbbbbbbb cancelled 2026-12-04T1"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := d.Append(Decision{ID: "chg-cccccccccc", State: StateCancelled, At: at}); err != nil {
		t.Fatal(err)
	}
	f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n\n" + strings.Repeat("x", 4*maxDecisionLine)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := d.Append(Decision{ID: "chg-dddddddddd", State: StateApplied, At: at}); err != nil {
		t.Fatal(err)
	}
	got, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"chg-aaaaaaaaaa", "chg-cccccccccc", "chg-dddddddddd"} {
		if _, ok := got[id]; !ok {
			t.Errorf("decision %s lost; record %q", id, got)
		}
	}
	if _, ok := got["chg-bbbbbbbbbb"]; ok || len(got) != 3 {
		t.Errorf("record = %v, want the three whole lines", got)
	}
	if len(warnings) == 0 {
		t.Error("the torn lines were ignored without a warning")
	}
}
