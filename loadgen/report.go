package loadgen

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"time"
)

// Summary is what a run's result comes to.
type Summary struct {
	Messages, Delivered, Rejected, Pending int
	Attempts, Tempfails, Uncertain         int
	Elapsed                                time.Duration
	// Rate is delivered messages per second of the whole run.
	Rate float64
	// Tx are percentiles of the 250 transactions (MAIL to reply); Delivery
	// of the delivered messages from first attempt to 250.
	Tx, Delivery Percentiles
}

// Percentiles of a set of durations.
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: s[len(s)-1]}
}

// Summarize counts outcomes and computes rates and percentiles.
func (r *Result) Summarize() Summary {
	s := Summary{Messages: len(r.Records), Elapsed: r.Elapsed}
	var delivery []time.Duration
	for _, rec := range r.Records {
		s.Attempts += rec.Attempts
		s.Tempfails += rec.Tempfails
		s.Uncertain += rec.Uncertain
		switch rec.Outcome {
		case Delivered:
			s.Delivered++
			delivery = append(delivery, rec.Latency)
		case Rejected:
			s.Rejected++
		default:
			s.Pending++
		}
	}
	if r.Elapsed > 0 {
		s.Rate = float64(s.Delivered) / r.Elapsed.Seconds()
	}
	s.Tx = percentiles(r.TxLatency)
	s.Delivery = percentiles(delivery)
	return s
}

// Print writes the human-readable report.
func (r *Result) Print(w io.Writer) {
	s := r.Summarize()
	fmt.Fprintf(w, "messages %d: delivered %d, rejected %d, pending %d\n", s.Messages, s.Delivered, s.Rejected, s.Pending)
	fmt.Fprintf(w, "attempts %d: tempfail %d, uncertain (connection lost after the message was sent) %d\n", s.Attempts, s.Tempfails, s.Uncertain)
	fmt.Fprintf(w, "elapsed %.2fs, %.1f messages/s delivered\n", s.Elapsed.Seconds(), s.Rate)
	fmt.Fprintf(w, "transaction latency (250s):  %s\n", s.Tx)
	fmt.Fprintf(w, "delivery latency (first try to 250): %s\n", s.Delivery)
	keys := make([]string, 0, len(r.Replies))
	for k := range r.Replies {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "replies:")
	for _, k := range keys {
		fmt.Fprintf(w, "  %-24s %d\n", k, r.Replies[k])
	}
}

func (p Percentiles) String() string {
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("p50 %v  p90 %v  p99 %v  max %v", r(p.P50), r(p.P90), r(p.P99), r(p.Max))
}

// WriteRecords writes one tab-separated line per message: id, outcome,
// attempts, tempfails, uncertain, last node, last reply.
func (r *Result) WriteRecords(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("records: %w", err)
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "id\toutcome\tattempts\ttempfails\tuncertain\tnode\treply")
	for _, rec := range r.Records {
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", rec.ID, rec.Outcome, rec.Attempts, rec.Tempfails, rec.Uncertain, rec.Node, rec.Reply)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("records: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("records: %w", err)
	}
	return nil
}

// Audit compares a run with what the sink counted.
type Audit struct {
	// Lost are delivered messages the sink never saw: must be empty.
	Lost []string
	// Duplicates is how many extra copies arrived, over all messages.
	Duplicates int
	// Unexplained are ids that arrived more often than the sender's
	// uncertain attempts allow: a node answered 4xx or 5xx for a copy the
	// sink had taken. Must be empty.
	Unexplained []string
	// ArrivedButRejected are messages refused with 5xx that the sink got
	// anyway: an accept-then-bounce in disguise. Must be empty.
	ArrivedButRejected []string
	// Foreign counts arrivals with ids not from this run (or none).
	Foreign int
}

// Audit checks counts (from the sink) against the run's records.
func (r *Result) Audit(counts map[string]int) Audit {
	var a Audit
	ours := make(map[string]bool, len(r.Records))
	for _, rec := range r.Records {
		ours[rec.ID] = true
		n := counts[rec.ID]
		if rec.Outcome == Delivered && n == 0 {
			a.Lost = append(a.Lost, rec.ID)
		}
		if rec.Outcome == Rejected && n > 0 {
			a.ArrivedButRejected = append(a.ArrivedButRejected, rec.ID)
		}
		if n > 1 {
			a.Duplicates += n - 1
			// Each uncertain attempt may have left one copy, and the
			// final 250 one more.
			if n-1 > rec.Uncertain {
				a.Unexplained = append(a.Unexplained, rec.ID)
			}
		}
	}
	for id, n := range counts {
		if !ours[id] {
			a.Foreign += n
		}
	}
	return a
}
