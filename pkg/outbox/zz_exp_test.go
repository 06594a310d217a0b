package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func BenchmarkDeliverFake(b *testing.B) {
	const n, size = 1000, 25 << 10
	o := newOutbox(b, nil)
	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ref := fmt.Sprintf("bench%d", i)
		msgs := make([]Message, n)
		for j := range msgs {
			msgs[j] = mail(KindDigest, ref, rcpt("b", j), size)
		}
		mustEnqueue(b, o, msgs...)
		b.StartTimer()
		start := time.Now()
		sum, err := o.Deliver(context.Background(), newFake(), Filter{Ref: ref}, DeliverOptions{Connections: 4})
		elapsed += time.Since(start)
		if err != nil || sum.Sent != n {
			b.Fatal(sum, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
}
