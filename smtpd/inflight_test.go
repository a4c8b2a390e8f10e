package smtpd

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestTransactionsDrain(t *testing.T) {
	closed := func(c <-chan struct{}) bool {
		select {
		case <-c:
			return true
		default:
			return false
		}
	}
	for _, tc := range []struct {
		name          string
		begun, ended  int
		wantIdleFirst bool
	}{
		{"none in flight", 0, 0, true},
		{"all ended before", 2, 2, true},
		{"two in flight", 2, 0, false},
		{"one of two ended", 2, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tx transactions
			for range tc.begun {
				if !tx.begin() {
					t.Fatal("begin refused before drain")
				}
			}
			for range tc.ended {
				tx.end()
			}
			idle := tx.drain()
			if closed(idle) != tc.wantIdleFirst {
				t.Fatalf("idle at drain = %v, want %v", closed(idle), tc.wantIdleFirst)
			}
			if tx.begin() {
				t.Fatal("begin accepted after drain")
			}
			if tx.drain() != idle {
				t.Error("a second drain gave another channel")
			}
			for range tc.begun - tc.ended {
				if closed(idle) {
					t.Fatal("idle before the last transaction ended")
				}
				tx.end()
			}
			if !closed(idle) {
				t.Error("not idle after every transaction ended")
			}
		})
	}
}

// TestTransactionsBeginRacingDrain: sessions beginning and ending
// transactions while Shutdown drains. A transaction begun holds idle open
// until it ends, so idle never closes while one is between its begin and
// its end. A sync.WaitGroup here panicked ("Add called concurrently with
// Wait") when a begin met the count at zero.
func TestTransactionsBeginRacingDrain(t *testing.T) {
	for round := range 200 {
		var tx transactions
		var idleSeen atomic.Bool
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 50 {
					if !tx.begin() {
						return
					}
					if idleSeen.Load() {
						t.Errorf("round %d: idle while a transaction was in flight", round)
					}
					tx.end()
				}
			}()
		}
		<-tx.drain()
		idleSeen.Store(true)
		wg.Wait()
		if tx.begin() {
			t.Fatalf("round %d: begin accepted after drain", round)
		}
	}
}
