package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/ccdir/ccdir/internal/benchmem"
)

// BenchmarkServeBigUnsigned sends, at once, 64 unsigned messages of
// almost 10 MiB (the default size limit) to the real `ccdir serve` on
// 127.0.0.1 (run in this process), each from its own source address,
// 127.0.0.2 to 127.0.0.65 (Linux routes all of 127/8 to the loopback
// interface), so that no per-address connection limit applies: the
// memory budget (serve.memory_budget) alone bounds what the messages in
// flight hold. Each iteration is one such wave.
//
// Metrics: peak-rss-MB, the process's peak resident set over the waves
// (serve and the 64 clients, which share one copy of the message), and
// base-rss-MB before them; refused-5xx (checked and refused as unsigned)
// and deferred-452 (no room in the budget: the sender retries) per wave.
// It fails if the peak passes 300 MB, as 64 such messages took serve
// from 22 MB to 1.9 GB before the budget. CCDIR_BENCH_BIG_CLIENTS
// changes the number of clients (1 to 64). scripts/bench/memory.sh runs
// it.
func BenchmarkServeBigUnsigned(b *testing.B) {
	clients := 64
	if v := os.Getenv("CCDIR_BENCH_BIG_CLIENTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 64 {
			b.Fatalf("CCDIR_BENCH_BIG_CLIENTS=%q: want 1 to 64", v)
		}
		clients = n
	}
	home := filepath.Join(b.TempDir(), "home")
	initHome(b, home)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, stop := context.WithCancel(context.Background())
	log := &serveLog{}
	served := make(chan int, 1)
	go func() {
		served <- run(ctx, []string{"--home", home, "serve", "--smtp", addr}, strings.NewReader(""), io.Discard, log)
	}()
	defer func() {
		stop()
		if code := <-served; code != 0 {
			b.Errorf("serve exited %d: %s", code, log.errors())
		}
	}()
	waitListening(b, addr, served, log)

	body := bigUnsigned(10<<20 - 4<<10)
	runtime.GC()
	debug.FreeOSMemory()
	if !benchmem.ResetHWM() {
		b.Log("cannot reset VmHWM: the peak includes what came before")
	}
	base := benchmem.VmHWM()
	var refused, deferred atomic.Int64
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
				conn, err := d.Dial("tcp", addr)
				if err != nil {
					errs <- err
					return
				}
				c := smtp.NewClient(conn)
				defer c.Close()
				err = c.SendMail("sender@member.example", []string{"ccdir@bench.example"}, bytes.NewReader(body))
				var se *smtp.SMTPError
				switch {
				case errors.As(err, &se) && se.Code == 452:
					deferred.Add(1)
				case errors.As(err, &se) && se.Code >= 500:
					refused.Add(1)
				default:
					errs <- fmt.Errorf("client 127.0.0.%d: %v, want 5xx (unsigned) or 452 (no room)", 2+i, err)
					return
				}
				c.Quit()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	peak := benchmem.VmHWM()
	b.ReportMetric(float64(peak)/1024, "peak-rss-MB")
	b.ReportMetric(float64(base)/1024, "base-rss-MB")
	b.ReportMetric(float64(refused.Load())/float64(b.N), "refused-5xx")
	b.ReportMetric(float64(deferred.Load())/float64(b.N), "deferred-452")
	if refused.Load() == 0 {
		b.Error("no message was checked: the budget let none through")
	}
	if peak > 300*1024 {
		b.Errorf("peak RSS %d MB with %d messages of 10 MiB in flight, want under 300 MB", peak/1024, clients)
	}
}

// bigUnsigned is an unsigned text message of about n bytes.
func bigUnsigned(n int) []byte {
	var buf bytes.Buffer
	buf.WriteString("From: Sender <sender@member.example>\r\nTo: ccdir@bench.example\r\nSubject: big\r\n" +
		"Message-ID: <big@member.example>\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	line := strings.Repeat("0123456789", 7) + "abcd\r\n"
	for buf.Len()+len(line) <= n {
		buf.WriteString(line)
	}
	return buf.Bytes()
}
