package cluster_test

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkKillDetection measures what the lan profile's timers promise:
// three real `mxgrid serve` processes on loopback, one killed with SIGKILL
// per iteration (no leave, no drain) and restarted, the time until BOTH
// survivors list it dead in /api/v1/cluster (polled every 25 ms). The
// victim rotates, so the leader and the others are each killed.
//
// Before the kills, a quiet window measures each node's gossip traffic and
// the suspicions raised while every node is healthy (each is false). The
// cpu-load variant keeps 2×NumCPU busy threads spinning in this process
// through the window and the kills, the case that makes a slow but healthy
// node look dead.
//
//	go test -run '^$' -bench KillDetection -benchtime 5x ./cluster
func BenchmarkKillDetection(b *testing.B) {
	for _, load := range []bool{false, true} {
		name := "quiet"
		if load {
			name = "cpu-load"
		}
		b.Run(name, func(b *testing.B) { killDetection(b, load) })
	}
}

func killDetection(b *testing.B, load bool) {
	ps := newProcs(b, "lan", []string{"a", "b", "c"}, []string{"hetzner", "ovh", "scaleway"})
	for _, p := range ps {
		p.start(b)
	}
	waitAll(b, 30*time.Second, "3 nodes alive and ready everywhere", ps, allAliveReady(3))
	if load {
		defer spin(2 * runtime.NumCPU())()
	}

	const window = 20 * time.Second
	bytes0, susp0 := sums(b, ps, gossipBytes), sums(b, ps, suspicions)
	time.Sleep(window)
	bytes1, susp1 := sums(b, ps, gossipBytes), sums(b, ps, suspicions)
	var perNode float64
	for i := range ps {
		perNode += (bytes1[i] - bytes0[i]) / window.Seconds() / float64(len(ps))
	}
	var falseSusp float64
	for i := range ps {
		falseSusp += susp1[i] - susp0[i]
	}

	var both []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		victim := ps[i%len(ps)]
		var survivors []*proc
		for _, p := range ps {
			if p != victim {
				survivors = append(survivors, p)
			}
		}
		start := time.Now()
		victim.kill()
		seen := make([]time.Duration, len(survivors))
		var wg sync.WaitGroup
		for j, s := range survivors {
			wg.Go(func() { seen[j] = seenDead(b, s, victim.name, start) })
		}
		wg.Wait()
		both = append(both, slices.Max(seen))
		b.Logf("run %d: killed %s; seen dead by %s after %v, by %s after %v", i+1, victim.name,
			survivors[0].name, seen[0].Round(time.Millisecond), survivors[1].name, seen[1].Round(time.Millisecond))

		b.StopTimer()
		victim.start(b)
		waitAll(b, 30*time.Second, "the killed node back, 3 alive everywhere", ps, allAliveReady(3))
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(both)
	b.ReportMetric(both[len(both)/2].Seconds(), "p50-s")
	b.ReportMetric(both[len(both)-1].Seconds(), "max-s")
	b.ReportMetric(perNode, "gossip-B/s/node")
	b.ReportMetric(falseSusp, "false-suspicions")
	b.Logf("detection (both survivors), sorted: %v; gossip %.0f B/s per node; %v false suspicions in %v of 3 healthy nodes",
		both, perNode, falseSusp, window)
}

// seenDead polls s until it lists name dead and returns the time since start.
func seenDead(b *testing.B, s *proc, name string, start time.Time) time.Duration {
	for {
		st, err := s.status()
		if err == nil && st.Members[name].State == "dead" {
			return time.Since(start)
		}
		if time.Since(start) > 30*time.Second {
			b.Errorf("%s did not list %s dead within 30 s (last %+v, %v)", s.name, name, st.Members[name], err)
			return time.Since(start)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// suspicions is how many times the node has marked another suspect.
func suspicions(t testing.TB, p *proc) float64 {
	return metricSum(t, p, `mxgrid_cluster_member_transitions_total{state="suspect"}`)
}

func sums(b *testing.B, ps []*proc, f func(testing.TB, *proc) float64) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = f(b, p)
	}
	return out
}

// spin keeps n threads busy until the returned func is called.
func spin(n int) (stop func()) {
	prev := runtime.GOMAXPROCS(max(n, runtime.GOMAXPROCS(0)))
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			x := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				for range 1_000_000 {
					x++
				}
				_ = fmt.Sprint(x) // keeps the loop from being optimised away
			}
		})
	}
	return func() {
		close(done)
		wg.Wait()
		runtime.GOMAXPROCS(prev)
	}
}
