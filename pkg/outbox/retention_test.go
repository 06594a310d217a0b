package outbox

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestPruneBounces: bounces older than the cut-off are deleted once a
// later message to the address was delivered; a run still going is kept
// whole however old (BounceRuns says the same before and after), and so
// is a bounce younger than the cut-off.
func TestPruneBounces(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	o := bounceOutbox(t, c)
	bounce := func(to, ref string) {
		t.Helper()
		if _, err := o.Bounced(ctx, bounceBase, rowOfRef(t, o, to, ref).From, "d"+ref); err != nil {
			t.Fatal(err)
		}
	}
	// a: bounced 1 and 2, delivered 3 (the run ended), bounced 4 (a run
	// going). b: bounced 1..4, never delivered since (unreachable).
	for i := 1; i <= 4; i++ {
		ref := fmt.Sprint(i)
		mustEnqueue(t, o, mail(KindDigest, ref, "a@nic.example", 200), mail(KindDigest, ref, "B@nic.example", 200))
		sendAll(t, o)
		if i != 3 {
			bounce("a@nic.example", ref)
		}
		bounce("B@nic.example", ref)
		c.Add(24 * time.Hour)
	}
	runs, err := BounceRuns(ctx, o.db)
	if err != nil {
		t.Fatal(err)
	}
	statusOf := func() map[string]Status {
		out := map[string]Status{}
		rows, err := o.List(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			out[r.Ref+" "+r.To] = r.Status
		}
		return out
	}
	// The cut-off between the bounces of 1 and those of 2: only a's
	// bounce of 1 is old and no longer counts.
	n, err := o.PruneBounces(ctx, c.Now().Add(-4*24*time.Hour+time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneBounces = %d, %v; want 1", n, err)
	}
	got := statusOf()
	if _, ok := got["1 a@nic.example"]; ok {
		t.Errorf("a's old bounce of 1 kept: %v", got)
	}
	for _, k := range []string{"2 a@nic.example", "4 a@nic.example", "1 B@nic.example", "2 B@nic.example"} {
		if got[k] != Bounced {
			t.Errorf("%s is %q, want bounced (kept)", k, got[k])
		}
	}
	if got["3 a@nic.example"] != Sent {
		t.Errorf("a's delivered 3 is %q", got["3 a@nic.example"])
	}
	// Everything older than now: a's bounce of 2 goes too; its run of 4
	// and all of B's stay.
	if n, err = o.PruneBounces(ctx, c.Now()); err != nil || n != 1 {
		t.Fatalf("PruneBounces(now) = %d, %v; want 1", n, err)
	}
	got = statusOf()
	if _, ok := got["2 a@nic.example"]; ok || got["4 a@nic.example"] != Bounced {
		t.Errorf("after pruning to now: %v", got)
	}
	for i := 1; i <= 4; i++ {
		if got[fmt.Sprint(i)+" B@nic.example"] != Bounced {
			t.Errorf("B's bounce %d pruned: a run still counting", i)
		}
	}
	after, err := BounceRuns(ctx, o.db)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(runs, after) {
		t.Errorf("BounceRuns changed by pruning:\n%+v\n%+v", runs, after)
	}
	if n, err = o.PruneBounces(ctx, c.Now()); err != nil || n != 0 {
		t.Errorf("PruneBounces again = %d, %v; want 0", n, err)
	}
}
