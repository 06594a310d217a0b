package pgpmime

import (
	"runtime"
	"sync"
)

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
