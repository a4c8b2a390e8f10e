package store

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/verdict"
)

// BenchmarkInsertTracking reports message records/s written in the
// recorder's batches of 500 (benchTrackingBatch), per dialect.
//
//	scripts/test.sh -run '^$' -bench InsertTracking -benchtime=20x ./store/
func BenchmarkInsertTracking(b *testing.B) {
	for _, tc := range dialects {
		b.Run(tc.name, func(b *testing.B) {
			s := tc.open(b)
			ctx := context.Background()
			if err := s.MigrateTracking(ctx); err != nil {
				b.Fatal(err)
			}
			batch := benchTrackingBatch(time.Now())
			b.ResetTimer()
			for range b.N {
				for i := range batch {
					batch[i].ID = 0 // new records, not the batch written again
				}
				if err := s.InsertTracking(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkInsertTrackingStream writes a node's stream of records in the
// recorder's default batches (tracking.DefaultConfig().BatchSize), each a
// batch of new records later than the last, so that the table and its
// indexes grow as in service (BenchmarkInsertTracking writes one batch's
// keys again and again, which spreads every index's inserts over as many
// places as the batch has rows). Workloads:
//
//   - smtp-source: scripts/bench-smtp.sh's mail, one sender and one
//     recipient, smtp-source's Message-IDs (<pid.fd.count@host>, about
//     one place in the Message-ID index per session), all delivered.
//   - refusals: mail to ten domains, a third of it refused at RCPT (no
//     Message-ID), a sixth refused after DATA (with a reference), random
//     Message-IDs.
//
// The database starts empty; b.N batches of records decide how large it
// grows, so compare runs of the same -benchtime=Nx. cpu-ns/record is the
// process's CPU time (user and system) spent in the writes: unlike the
// elapsed time it does not count the waits for the disk's flushes at a
// checkpoint, which on a shared machine vary more than the whole effect
// of a change.
//
//	go test -run '^$' -bench InsertTrackingStream -benchtime=100x ./store/
func BenchmarkInsertTrackingStream(b *testing.B) {
	size := tracking.DefaultConfig().BatchSize
	for _, w := range []struct {
		name string
		rec  func(n int, at time.Time) tracking.Record
	}{{"smtp-source", smtpSourceRecord}, {"refusals", refusalsRecord}} {
		b.Run(w.name, func(b *testing.B) {
			s := openSQLite(b)
			ctx := context.Background()
			if err := s.MigrateTracking(ctx); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			batch := make([]tracking.Record, size)
			var cpu time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				for j := range batch {
					n := i*size + j
					batch[j] = w.rec(n, start.Add(time.Duration(n)*500*time.Microsecond))
				}
				b.StartTimer()
				before := processCPU(b)
				if err := s.InsertTracking(ctx, batch); err != nil {
					b.Fatal(err)
				}
				cpu += processCPU(b) - before
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/record")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*size), "cpu-ns/record")
		})
	}
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// streamQueueID is a queue id as smtpd makes them: time first, then random.
func streamQueueID(n int, at time.Time) string {
	return fmt.Sprintf("%08X%05X", uint32(at.UnixNano()>>22), uint32(n)*2654435761>>12)
}

func smtpSourceRecord(n int, at time.Time) tracking.Record {
	return tracking.Record{Time: at, Node: "n1", QueueID: streamQueueID(n, at), ClientIP: netip.AddrFrom4([4]byte{127, 0, 0, 1}),
		HELO: "client.bench.test", Sender: "sender@bench.test", Recipient: "rcpt@example.org", Domain: "example.org",
		Size: 5300, MessageID: fmt.Sprintf("<%04x.%04x.%04x@client.bench.test>", 4733, 5+n%50, n/50&0xffff),
		Action: "deliver", Score: -1.25, Symbols: []string{"MODEL_HAM", "DKIM_NONE"},
		Status: tracking.StatusDelivered, ReplyCode: 250, Reply: "250 2.0.0 ok [ref " + streamQueueID(n, at) + "]",
		Downstream: "250 2.0.0 Ok: queued as 2556A60E", Duration: 3 * time.Millisecond}
}

func refusalsRecord(n int, at time.Time) tracking.Record {
	msg, domain := n/3, n%10
	r := tracking.Record{Time: at, Node: "n1", QueueID: streamQueueID(msg, at), ClientIP: netip.AddrFrom4([4]byte{192, 0, 2, byte(msg)}),
		HELO: fmt.Sprintf("mx%d.sender.example", msg%50), Sender: fmt.Sprintf("alice%d@sender.example", msg%5000),
		Recipient: fmt.Sprintf("user%d@d%d.example", n%20000, domain), Domain: fmt.Sprintf("d%d.example", domain),
		DomainID: int64(1000 + domain), CustomerID: int64(300 + domain)}
	switch n % 6 {
	case 0, 1: // refused at RCPT: no message yet
		r.Status, r.ReplyCode, r.Reply = tracking.StatusRefused, 550, "550 5.1.1 mailbox unknown"
		return r
	case 2: // spam, refused after DATA
		r.Status, r.ReplyCode, r.Reply, r.Reference = tracking.StatusRefused, 554, "554 5.7.1 spam [ref "+r.QueueID+"]", r.QueueID
		r.Action, r.Reason, r.Score, r.Symbols = "reject", verdict.ReasonSpam, 12.5, []string{"MODEL_SPAM", "DNSBL_ZEN"}
	default:
		r.Status, r.ReplyCode, r.Reply, r.Downstream = tracking.StatusDelivered, 250, "250 2.0.0 ok", "250 2.0.0 queued"
		r.Action, r.Score, r.Symbols = "deliver", -2, []string{"MODEL_HAM", "SPF_PASS", "DMARC_PASS"}
	}
	r.Size, r.Subject = int64(3000+37*msg%5000), fmt.Sprintf("Quarterly report %d", msg)
	r.MessageID = fmt.Sprintf("<%016x@sender.example>", uint64(msg)*0x9E3779B97F4A7C15)
	r.Duration = time.Duration(40+msg%90) * time.Millisecond
	return r
}

// BenchmarkTrackingArgs is the Go side of BenchmarkInsertTracking alone:
// building a batch's INSERT arguments, without a database.
func BenchmarkTrackingArgs(b *testing.B) {
	batch := benchTrackingBatch(time.Now())
	args := make([]any, 0, len(batch)*trackingColumnCount)
	for b.Loop() {
		var text batchText
		args = args[:0]
		for i := range batch {
			args = trackingArgs(args, &text, &batch[i], false)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/record")
}

// benchTrackingBatch is a recorder's batch of 500 records as a node
// writes it: messages of three recipients each, from many clients to a few
// domains, a few milliseconds apart, with varied sizes, scores and symbols.
func benchTrackingBatch(now time.Time) []tracking.Record {
	batch := make([]tracking.Record, 500)
	symbols := [][]string{{"MODEL_HAM", "DKIM_PASS"}, {"MODEL_HAM", "SPF_PASS", "DMARC_PASS"}, {"MODEL_SPAM", "DNSBL_ZEN"}, nil}
	for i := range batch {
		msg := i / 3
		domain := msg % 10
		batch[i] = tracking.Record{Time: now.Add(time.Duration(i) * 1700 * time.Microsecond), Node: "n1",
			QueueID: fmt.Sprintf("%013X", 0x123456789+msg), ClientIP: netip.AddrFrom4([4]byte{192, 0, 2, byte(msg)}),
			HELO: fmt.Sprintf("mx%d.sender.example", msg%50), Sender: fmt.Sprintf("alice%d@sender.example", msg),
			Recipient: fmt.Sprintf("user%d@d%d.example", i, domain), Domain: fmt.Sprintf("d%d.example", domain),
			DomainID: int64(1000 + domain), CustomerID: int64(300 + domain), Size: int64(3000 + 37*msg),
			MessageID: fmt.Sprintf("<%d@sender.example>", msg), Subject: fmt.Sprintf("Quarterly report %d", msg),
			Action: "deliver", Score: float64(msg%40)/4 - 2, Symbols: symbols[msg%len(symbols)],
			Status: tracking.StatusDelivered, ReplyCode: 250, Reply: "250 2.0.0 ok",
			Downstream: fmt.Sprintf("250 2.0.0 queued as %X", 0xABC000+msg), Duration: time.Duration(40+msg%90) * time.Millisecond}
	}
	return batch
}

// BenchmarkSearchTrackingByRecipient is the support desk's query on
// PostgreSQL: one recipient's last 30 days within a reseller's scope,
// first page, over MXGRID_BENCH_TRACKING_ROWS rows (default 1,000,000)
// spread over 30 days, 200,000 recipients and 20 customers of 2 resellers.
//
//	MXGRID_BENCH_TRACKING_ROWS=10000000 scripts/test.sh -run '^$' -bench SearchTrackingByRecipient -benchtime=200x ./store/
func BenchmarkSearchTrackingByRecipient(b *testing.B) {
	rows := 1_000_000
	if v := os.Getenv("MXGRID_BENCH_TRACKING_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("MXGRID_BENCH_TRACKING_ROWS=%q", v)
		}
		rows = n
	}
	s := openPostgres(b)
	ctx := context.Background()
	if err := s.MigrateTracking(ctx); err != nil {
		b.Fatal(err)
	}
	fx := seedTenants(b, s, 2, 10)
	resellers, customers := fx.resellers, fx.customers
	now := time.Now().UTC()
	start := now.AddDate(0, 0, -30)
	days := make([]tracking.Record, 32)
	for i := range days {
		days[i].Time = start.AddDate(0, 0, i)
	}
	if err := s.ensurePartitions(ctx, days); err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	// Generated in the database: the benchmark is the search, not the load.
	_, err := s.DB.ExecContext(ctx, `INSERT INTO message_log (`+trackingColumns+`)
		SELECT $1::bigint + (g::bigint * $2::bigint), 'n1', 'Q' || g, '192.0.2.1', 'mx.sender.example',
			'sender' || (g % 5000) || '@sender.example', 'user' || (g % 200000) || '@d' || (g % 200000 % 1000) || '.example',
			'd' || (g % 200000 % 1000) || '.example', g % 200000 % 1000 + 1, ($3::bigint[])[(g % 200000 % 1000 % 20) + 1], 5000,
			'<' || g || '@sender.example>', 'Subject ' || g, 'deliver', '', 1.5, 'MODEL_HAM', 'delivered', 250, '250 2.0.0 ok',
			'250 queued', '', '', false, false, 80
		FROM generate_series(1, $4::bigint) g`,
		start.UnixMicro(), (30*24*time.Hour).Microseconds()/int64(rows), customers, rows)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB.ExecContext(ctx, `ANALYZE message_log`); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d rows generated in %s", rows, time.Since(began).Round(time.Second))
	// user12345@d345.example belongs to customer (345 % 20) + 1's index,
	// which is reseller 0's when < 10.
	rcpt, owner := "user12345@d345.example", resellers[(345%20)/10]
	b.ResetTimer()
	var found int
	for i := range b.N {
		recs, _, err := s.SearchTracking(ctx, tracking.Filter{Scope: tracking.Scope{ResellerID: owner}, Recipient: rcpt,
			Since: now.AddDate(0, 0, -30), Limit: 50})
		if err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			found = len(recs)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/search")
	if found == 0 {
		b.Fatal("the recipient's records were not found")
	}
}
