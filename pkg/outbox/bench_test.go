package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ccdir/ccdir/pkg/outbox/smtptest"
)

// BenchmarkDeliverSMTP delivers 1,000 messages of 25 KB to the loopback
// sink over 4 connections, recording each result in its own transaction
// (WAL, synchronous=FULL, as package directory opens the file).
func BenchmarkDeliverSMTP(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts smtptest.Options
		pass string
	}{
		{"starttls+auth", smtptest.Options{TLS: true, User: sinkUser, Password: sinkPass}, sinkPass},
		{"plain", smtptest.Options{}, ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			const n, size = 1000, 25 << 10
			ctx := context.Background()
			srv := smtptest.NewServer(b, tc.opts)
			tr := sinkTransport(b, srv, tc.pass)
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
				msgs = nil
				b.StartTimer()
				start := time.Now()
				sum, err := o.Deliver(ctx, tr, Filter{Ref: ref}, DeliverOptions{Connections: 4})
				elapsed += time.Since(start)
				if err != nil || sum.Sent != n {
					b.Fatalf("Deliver = %+v, %v", sum, err)
				}
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/1000msgs")
		})
	}
}

// BenchmarkDeliverQueue measures the outbox alone: 1,000 messages of
// 25 KB through a transport that accepts everything in memory.
func BenchmarkDeliverQueue(b *testing.B) {
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

// BenchmarkDeliverMaildir: 1,000 messages of 25 KB into a maildir (each
// file and new/ synced).
func BenchmarkDeliverMaildir(b *testing.B) {
	const n, size = 1000, 25 << 10
	tr, err := NewTransport("maildir:"+b.TempDir(), TransportOptions{})
	if err != nil {
		b.Fatal(err)
	}
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
		sum, err := o.Deliver(context.Background(), tr, Filter{Ref: ref}, DeliverOptions{Connections: 4})
		elapsed += time.Since(start)
		if err != nil || sum.Sent != n {
			b.Fatal(sum, err)
		}
	}
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "msgs/s")
}

// BenchmarkEnqueueShared queues a digest to 10,000 recipients: a head of
// 1.5 KB each, one shared part of 30 KB, and a short tail, stored in one
// transaction with PutBlobTx and EnqueueTx. dbMB/op is how much the
// database file grew.
func BenchmarkEnqueueShared(b *testing.B) {
	const n, headSize, sharedSize = 10000, 1536, 30 << 10
	ctx := context.Background()
	o := newOutbox(b, nil)
	var grew int64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		ref := fmt.Sprintf("bench%d", i)
		shared, _ := sharedMail(KindDigest, ref, "b", 0, sharedSize)
		msgs := make([]Message, n)
		for j := range msgs {
			msgs[j] = mail(KindDigest, ref, rcpt("b", j), headSize)
			msgs[j].Tail = []byte("\r\n-- \r\nTo stop these digests, reply STOP.\r\n")
		}
		before := dbSize(b, o)
		b.StartTimer()
		tx, err := o.db.BeginTx(ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		id, err := o.PutBlobTx(ctx, tx, shared)
		if err != nil {
			b.Fatal(err)
		}
		for j := range msgs {
			msgs[j].Blob = id
		}
		if added, err := o.EnqueueTx(ctx, tx, msgs...); err != nil || added != n {
			b.Fatalf("EnqueueTx = %d, %v", added, err)
		}
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		grew += dbSize(b, o) - before
		b.StartTimer()
	}
	b.ReportMetric(float64(grew)/float64(b.N)/(1<<20), "dbMB/op")
}

// dbSize is the size of the database in bytes, WAL included.
func dbSize(b *testing.B, o *Outbox) int64 {
	b.Helper()
	var pages, size int64
	if err := o.db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		b.Fatal(err)
	}
	if err := o.db.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	return pages * size
}
