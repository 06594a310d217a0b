package pgpmime

import (
	"bytes"
	"io"
	"runtime"
	"sync"

	"github.com/ccdir/ccdir/keys"
)

// Message encrypts the signed entity to rcpt and returns the whole mail:
// the outer headers o and the multipart/encrypted body (BuildEncrypted of
// what Encrypt writes). It is the one call per recipient of a mail that
// many receive alike (a digest, a list post), and is safe for concurrent
// use; rand must then be safe for concurrent use too (nil: crypto/rand).
func (e *Encrypter) Message(rcpt *keys.Public, o Outer, rand io.Reader) ([]byte, error) {
	asc := binPool.Get().(*bytes.Buffer)
	defer binPool.Put(asc)
	asc.Reset()
	if err := e.Encrypt(asc, rcpt, rand); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(asc.Len() + 2048)
	if err := BuildEncrypted(&out, o, asc.Bytes()); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// Parallel calls fn(i) for every i in [0, n) on at most workers
// goroutines (0 or less: GOMAXPROCS) and returns when all calls have
// returned. It is the worker pool of the sign-once, encrypt-many senders:
// fn encrypts one recipient's copy and stores it at index i.
func Parallel(n, workers int, fn func(i int)) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}
