package workpool

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func goroutineID() string {
	buf := make([]byte, 64)
	id, _, _ := strings.Cut(strings.TrimPrefix(string(buf[:runtime.Stack(buf, false)]), "goroutine "), " ")
	return id
}

// TestIdleWorkerRunsTheNext: a function given while a worker is idle runs
// on that worker; functions given together each get one; idle workers end.
func TestIdleWorkerRunsTheNext(t *testing.T) {
	p := New(200 * time.Millisecond)
	ids := make(chan string, 1)
	p.Go(func() { ids <- goroutineID() })
	first := <-ids
	time.Sleep(20 * time.Millisecond) // the worker is back waiting
	p.Go(func() { ids <- goroutineID() })
	if second := <-ids; second != first {
		t.Errorf("second function ran on goroutine %s, not the idle worker %s", second, first)
	}

	var wg sync.WaitGroup
	release := make(chan struct{})
	seen := sync.Map{}
	for range 5 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			seen.Store(goroutineID(), true)
			<-release
		})
	}
	close(release)
	wg.Wait()
	n := 0
	seen.Range(func(any, any) bool { n++; return true })
	if n != 5 {
		t.Errorf("5 blocking functions ran on %d goroutines", n)
	}

	base := runtime.NumGoroutine()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base-5 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if now := runtime.NumGoroutine(); now > base-5 {
		t.Errorf("%d goroutines %v after the work, %d before: idle workers did not end", now, 5*time.Second, base)
	}
}
