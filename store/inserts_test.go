package store

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mxgrid/mxgrid/tracking"
	"github.com/mxgrid/mxgrid/verdict"
)

func TestInsertChunks(t *testing.T) {
	for _, tc := range []struct {
		n, per int
		ladder bool
		want   []int
	}{
		{0, 365, true, nil},
		{0, 365, false, nil},
		{1, 365, true, []int{1}},
		{135, 365, false, []int{135}},
		{135, 365, true, []int{128, 4, 2, 1}},
		{365, 365, true, []int{365}},
		{500, 365, false, []int{365, 135}},
		{500, 365, true, []int{365, 128, 4, 2, 1}},
		{1000, 475, true, []int{475, 475, 32, 16, 2}},
		{730, 365, true, []int{365, 365}},
	} {
		got := insertChunks(tc.n, tc.per, tc.ladder)
		if !slices.Equal(got, tc.want) {
			t.Errorf("insertChunks(%d, %d, %v) = %v, want %v", tc.n, tc.per, tc.ladder, got, tc.want)
		}
	}
}

// TestBatchInsertsReuseStatements: batches of every shape the chunking
// makes (one row, a full statement, a full statement and a ladder of
// rests) are stored completely, in order, on both dialects, and a second
// round of the same sizes adds no statement to the cache.
func TestBatchInsertsReuseStatements(t *testing.T) {
	eachDialect(t, (*Store).MigrateTracking, func(t *testing.T, s *Store) {
		ctx := context.Background()
		per := maxParams / trackingColumnCount
		sizes := []int{1, 3, per, per + 1, 500, 2*per + 77}
		now := time.Now().UTC().Truncate(time.Microsecond)
		batch := func(round, size int) []tracking.Record {
			recs := make([]tracking.Record, size)
			for i := range recs {
				recs[i] = tracking.Record{Time: now.Add(time.Duration(i) * time.Microsecond), Node: "n1",
					QueueID: fmt.Sprintf("R%dS%dI%d", round, size, i), Recipient: "a@b.example", Domain: "b.example",
					Status: tracking.StatusDelivered, ReplyCode: 250}
			}
			return recs
		}
		cached := 0
		for round := range 2 {
			for _, size := range sizes {
				if err := s.InsertTracking(ctx, batch(round, size)); err != nil {
					t.Fatalf("round %d, %d rows: %v", round, size, err)
				}
			}
			if round == 0 {
				cached = len(s.inserts.stmts)
			}
		}
		if len(s.inserts.stmts) != cached {
			t.Errorf("the second round prepared %d more statements", len(s.inserts.stmts)-cached)
		}
		for _, size := range sizes {
			for round := range 2 {
				for _, i := range []int{0, size / 2, size - 1} {
					id := fmt.Sprintf("R%dS%dI%d", round, size, i)
					got, _, err := s.SearchTracking(ctx, tracking.Filter{Scope: tracking.Scope{Operator: true}, QueueID: id})
					if err != nil {
						t.Fatal(err)
					}
					if len(got) != 1 || !got[0].Time.Equal(now.Add(time.Duration(i)*time.Microsecond)) {
						t.Fatalf("queue id %s: %+v", id, got)
					}
				}
			}
		}
		var rows int
		if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM message_log").Scan(&rows); err != nil {
			t.Fatal(err)
		}
		want := 0
		for _, size := range sizes {
			want += 2 * size
		}
		if rows != want {
			t.Errorf("%d rows stored, want %d", rows, want)
		}
	})
}

// TestFailedBatchStoresNothing: a row that breaks a constraint in a later
// statement of a batch fails the batch and leaves none of it stored (on
// SQLite the statement rolls the whole transaction back, OR ROLLBACK), and
// the store takes the next batch at once.
func TestFailedBatchStoresNothing(t *testing.T) {
	eachDialect(t, func(*Store, context.Context) error { return nil }, func(t *testing.T, s *Store) {
		ctx := context.Background()
		if _, err := s.DB.ExecContext(ctx, `CREATE TABLE batch_probe (k BIGINT NOT NULL UNIQUE)`); err != nil {
			t.Fatal(err)
		}
		per := maxParams / 1
		insert := func(keys []int64) error {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return s.insertRows(ctx, "batch_probe", "k", 1, len(keys), func(args []any, i int) []any { return append(args, keys[i]) })
		}
		keys := make([]int64, per+3)
		for i := range keys {
			keys[i] = int64(i)
		}
		keys[per+2] = 5 // the ladder's last statement repeats a key of the first
		if err := insert(keys); err == nil {
			t.Fatal("a batch with a duplicate key was stored")
		}
		count := func() (n int) {
			if err := s.DB.QueryRowContext(ctx, "SELECT count(*) FROM batch_probe").Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if n := count(); n != 0 {
			t.Fatalf("%d rows of the failed batch stored", n)
		}
		if err := insert([]int64{1, 2, 3}); err != nil {
			t.Fatalf("the next batch: %v", err)
		}
		if n := count(); n != 3 {
			t.Fatalf("%d rows stored, want 3", n)
		}
	})
}

// TestRowArgsMatchPlainBoxing: rowArgs hands the driver the same values,
// of the same types, as appending each one would, whether or not a value
// repeats the previous row's, and a row that repeats the previous one
// allocates nothing.
func TestRowArgsMatchPlainBoxing(t *testing.T) {
	type row struct {
		s    []string
		i    []int64
		f    []float64
		b    []bool
		want []any
	}
	r := func(s0, s1 string, i0, i1 int64, f0 float64, b0 bool) row {
		return row{s: []string{s0, s1}, i: []int64{i0, i1}, f: []float64{f0}, b: []bool{b0},
			want: []any{s0, s1, i0, i1, f0, b0}}
	}
	nan := math.NaN()
	negZero := math.Copysign(0, -1)
	for _, tc := range []struct {
		name string
		rows []row
	}{
		{"one row", []row{r("a", "", 1, 1000, 1.5, true)}},
		{"repeated rows", []row{r("a", "b", 1000, 7, 1.5, true), r("a", "b", 1000, 7, 1.5, true), r("a", "b", 1000, 7, 1.5, false)}},
		{"changing rows", []row{r("a", "b", 1000, 7, 1.5, true), r("b", "a", 7, 1000, 2.5, false)}},
		{"zero and minus zero", []row{r("", "", 0, 0, 0, false), r("", "", 0, 0, negZero, false), r("", "", 0, 0, 0, false)}},
		{"NaN", []row{r("x", "x", -1, -1, nan, true), r("x", "x", -1, -1, nan, true)}},
		{"equal values across types", []row{r("1", "1", 1, 1, 1, true), r("1", "1", 1, 1, 1, true)}},
		{"a row of another width", []row{{s: []string{"a", "b", "c"}, want: []any{"a", "b", "c"}}, r("c", "a", 1000, 1000, 1, true), r("c", "a", 1000, 1000, 1, true)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := rowArgs{ncols: 6}
			var want []any
			for _, row := range tc.rows {
				a.strs(row.s...)
				a.ints(row.i...)
				a.floats(row.f...)
				a.bools(row.b...)
				want = append(want, row.want...)
			}
			if len(a.args) != len(want) {
				t.Fatalf("%d values, want %d", len(a.args), len(want))
			}
			for i, got := range a.args {
				if !sameValue(got, want[i]) {
					t.Errorf("value %d = %T %#v, want %T %#v", i, got, got, want[i], want[i])
				}
			}
		})
	}
	a := rowArgs{args: make([]any, 0, 64), ncols: 6}
	add := func() {
		a.strs("node-a", "alice@sender.example")
		a.ints(1_700_000_000_000_000, 4096)
		a.floats(12.75)
		a.bools(true)
	}
	add()
	if n := testing.AllocsPerRun(5, add); n != 0 {
		t.Errorf("a repeated row allocates %v times", n)
	}
}

// sameValue is ==, except that floats compare by bits (-0 is not 0, NaN is
// NaN).
func sameValue(a, b any) bool {
	fa, ok := a.(float64)
	if fb, okb := b.(float64); ok && okb {
		return math.Float64bits(fa) == math.Float64bits(fb)
	}
	return a == b
}

// TestBatchText: the buffer's strings are strings.Join's and Addr.String's,
// and the first ones handed out are intact after the buffer has grown.
func TestBatchText(t *testing.T) {
	var text batchText
	type handed struct{ got, want string }
	var out []handed
	for i := range 2000 {
		parts := [][]string{nil, {"ONE"}, {"A", "B", fmt.Sprint("SYM_", i)}, {"", ""}}[i%4]
		out = append(out, handed{text.join(parts, " "), strings.Join(parts, " ")})
		addr := []netip.Addr{{}, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), netip.MustParseAddr("2001:db8::1"),
			netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::ffff:192.0.2.1")}[i%5]
		out = append(out, handed{text.addr(addr), addr.String()})
	}
	for i, h := range out {
		if h.got != h.want {
			t.Fatalf("string %d = %q, want %q", i, h.got, h.want)
		}
	}
}

// TestTrackingBatchRoundTrip: every row of a batch whose columns repeat,
// change and alternate from row to row is stored as it was given, on both
// dialects.
func TestTrackingBatchRoundTrip(t *testing.T) {
	eachDialect(t, (*Store).MigrateTracking, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now().UTC().Truncate(time.Millisecond)
		addrs := []netip.Addr{{}, netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::7")}
		symbols := [][]string{nil, {"MODEL_HAM"}, {"MODEL_SPAM", "DNSBL_ZEN", "SPF_FAIL"}}
		recs := make([]tracking.Record, 700) // a full statement and a ladder of rests
		for i := range recs {
			msg := i / 3
			recs[i] = tracking.Record{Time: now.Add(time.Duration(msg) * time.Millisecond), Node: fmt.Sprint("n", i%2),
				QueueID: fmt.Sprint("Q", msg), ClientIP: addrs[msg%len(addrs)], HELO: "mx.sender.example",
				Sender: fmt.Sprintf("s%d@sender.example", msg), Recipient: fmt.Sprintf("r%d@d.example", i), Domain: "d.example",
				DomainID: int64(1000 + i%5), CustomerID: int64(i / 100), Size: int64(300 * msg), MessageID: fmt.Sprintf("<%d@x>", msg),
				Subject: []string{"", "Invoice ü"}[msg%2], Action: "deliver", Reason: []verdict.Reason{"", verdict.ReasonSpam}[i%2],
				Score: float64(msg%9)/2 - 2, Symbols: symbols[i%len(symbols)], Status: tracking.StatusDelivered,
				ReplyCode: []int{250, 451, 550}[i/7%3], Reply: "2.0.0 ok", Downstream: fmt.Sprint("250 queued ", msg),
				Reference: []string{"", "REF"}[i/50%2], DeferReason: []tracking.DeferReason{"", tracking.DeferUnreachable}[i/3%2],
				TLSIn: i%2 == 0, TLSOut: i/2%2 == 0, Duration: time.Duration(i) * time.Millisecond}
		}
		if err := s.InsertTracking(ctx, recs); err != nil {
			t.Fatal(err)
		}
		got, err := s.scanTracking(ctx, `SELECT id, `+trackingColumns+` FROM message_log ORDER BY id`, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(recs) {
			t.Fatalf("%d rows stored, want %d", len(got), len(recs))
		}
		for i := range recs {
			want := recs[i]
			want.ID = got[i].ID
			if !reflect.DeepEqual(got[i], want) {
				t.Fatalf("row %d:\n got %+v\nwant %+v", i, got[i], want)
			}
		}
	})
}
