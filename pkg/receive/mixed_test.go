package receive

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccdir/ccdir/pkg/inbound"
)

// TestReceiveMixedRoutes: one message for the bounce address and another
// address of ours (in either order) is refused with one permanent answer
// saying to send them apart: it is neither read as a report nor run as
// commands, nothing is queued, and the inbound log says why.
func TestReceiveMixedRoutes(t *testing.T) {
	w := newWorld(t)
	cmd := w.signed(dirAddr, "mixed1@dns.pt", "DIRECTORY "+dirAddr+"\nWHOAMI\n")
	for _, to := range [][]string{{bounceAddr, dirAddr}, {dirAddr, bounceAddr}, {"ccdir-bounces+1-ab@directory.example", listAddr}, {keyAddr, bounceAddr}} {
		w.logs.Reset()
		err := w.receive(anaAddr, to, cmd)
		var ref *inbound.Refusal
		if !errors.As(err, &ref) || ref.Temporary || ref.Code != 550 || ref.Enhanced != [3]int{5, 5, 3} ||
			!strings.Contains(ref.Reason, "the bounce address takes mail of its own") || ExitCode(err) == 75 {
			t.Fatalf("%v: Receive = %v, want 550 5.5.3 for mixed routes", to, err)
		}
		if rows := w.queued(""); len(rows) != 0 {
			t.Fatalf("%v: %d messages queued", to, len(rows))
		}
		expectLines(t, w.lines(), `^ccdir: refused mail from "ana@dns.pt": .*bounce address takes mail of its own`)
	}
	log, err := InboundLog(w.ctx, w.store.DB(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 4 || log[0].Verdict != VerdictRefused || log[0].Reason != ReasonMixed || log[0].Recipient != bounceAddr || log[1].Recipient != dirAddr {
		t.Fatalf("inbound log %+v", log)
	}
	// The command mail alone is run, once: it was not marked seen.
	if err := w.receive(anaAddr, []string{dirAddr}, cmd); err != nil {
		t.Fatalf("the command mail alone: %v", err)
	}
}
