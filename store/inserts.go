package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// insertChunks splits n rows into the multi-row INSERTs that write them:
// full statements of perStatement rows, then the rest in one statement,
// or with ladder in powers of two (135 = 128 + 4 + 2 + 1), so that the
// sizes come from a short fixed list and the batch writers' statements
// can be prepared once and reused whatever the batch size.
func insertChunks(n, perStatement int, ladder bool) []int {
	var chunks []int
	for ; n >= perStatement; n -= perStatement {
		chunks = append(chunks, perStatement)
	}
	if !ladder {
		if n > 0 {
			chunks = append(chunks, n)
		}
		return chunks
	}
	for size := 1 << 30; n > 0; size >>= 1 {
		if size <= n {
			chunks = append(chunks, size)
			n -= size
		}
	}
	return chunks
}

// preparedInserts holds the batch writers' multi-row INSERTs, one per
// table, column list and row count. Parsing a 365-row, 26-column INSERT
// was a fifth of the cost of writing the rows; prepared once, each batch
// only binds and steps (and builds no query text: the key is not it).
type preparedInserts struct {
	mu    sync.Mutex
	stmts map[insertKey]*sql.Stmt
}

type insertKey struct {
	table, columns string
	rows           int
}

// insertStatements returns, one per chunk of n rows (insertChunks with
// ladder), the prepared INSERT that writes it. It must be called before
// the transaction that uses them begins: preparing takes a connection
// from the pool, and SQLite's only connection would be the transaction's.
func (s *Store) insertStatements(ctx context.Context, table, columns string, ncols, n int) ([]*sql.Stmt, error) {
	chunks := insertChunks(n, maxParams/ncols, true)
	stmts := make([]*sql.Stmt, len(chunks))
	s.inserts.mu.Lock()
	defer s.inserts.mu.Unlock()
	if s.inserts.stmts == nil {
		s.inserts.stmts = map[insertKey]*sql.Stmt{}
	}
	for i, rows := range chunks {
		key := insertKey{table, columns, rows}
		st, ok := s.inserts.stmts[key]
		if !ok {
			var err error
			if st, err = s.DB.PrepareContext(ctx, insertSQL(table, columns, ncols, rows, s.Dialect)); err != nil {
				return nil, fail(fmt.Sprintf("prepare %d-row %s insert", rows, table), err)
			}
			s.inserts.stmts[key] = st
		}
		stmts[i] = st
	}
	return stmts, nil
}

// closeInserts closes the prepared INSERTs.
func (s *Store) closeInserts() {
	s.inserts.mu.Lock()
	defer s.inserts.mu.Unlock()
	for _, st := range s.inserts.stmts {
		st.Close()
	}
	s.inserts.stmts = nil
}

// rowArgs appends a row's values to a multi-row INSERT's arguments.
//
// Boxing a string, an int64 or a float64 into an interface allocates, and
// the rows of a batch repeat most of their columns (one node, a few
// domains, actions, replies and scores), so a value equal to the same
// column's in the previous row reuses that row's box. ncols is the row
// width; equal values of one type are interchangeable whichever column
// they come from, so a row of another width only misses the reuse.
type rowArgs struct {
	args  []any
	ncols int
}

func (a *rowArgs) strs(vs ...string) {
	for _, v := range vs {
		a.args = appendReusing(a.args, a.ncols, v, func(p string) bool { return p == v })
	}
}

func (a *rowArgs) ints(vs ...int64) {
	for _, v := range vs {
		a.args = appendReusing(a.args, a.ncols, v, func(p int64) bool { return p == v })
	}
}

// floats compares bits: 0 and -0 are equal but not the same value, and
// NaN equals nothing.
func (a *rowArgs) floats(vs ...float64) {
	for _, v := range vs {
		a.args = appendReusing(a.args, a.ncols, v, func(p float64) bool { return math.Float64bits(p) == math.Float64bits(v) })
	}
}

// bools never allocate: both values are boxed statically.
func (a *rowArgs) bools(vs ...bool) {
	for _, v := range vs {
		a.args = append(a.args, v)
	}
}

func appendReusing[T any](args []any, ncols int, v T, same func(T) bool) []any {
	if i := len(args) - ncols; i >= 0 {
		if p, ok := args[i].(T); ok && same(p) {
			return append(args, args[i])
		}
	}
	return append(args, v)
}

// batchText builds a batch's derived text values (joined symbols,
// addresses) in one growing buffer, each a substring of it, so that a row
// costs no allocation of its own for them. The strings handed out stay
// valid as the buffer grows: a Builder never rewrites what it wrote.
type batchText struct{ b strings.Builder }

// join is strings.Join(parts, sep).
func (t *batchText) join(parts []string, sep string) string {
	start := t.b.Len()
	for i, p := range parts {
		if i > 0 {
			t.b.WriteString(sep)
		}
		t.b.WriteString(p)
	}
	return t.b.String()[start:]
}

// addr is a.String().
func (t *batchText) addr(a netip.Addr) string {
	if !a.IsValid() {
		return a.String() // a constant
	}
	var buf [64]byte
	start := t.b.Len()
	t.b.Write(a.AppendTo(buf[:0]))
	return t.b.String()[start:]
}

// batchIDs gives a batch of n rows of table (a table with an (at_us, id)
// index) their ids from the table's sequence, through set, in increasing
// order, the first time it is written: firstID, the batch's first row's,
// is 0. Given the batch again with its ids, it reports whether the write
// that had them was committed, and then the batch is not written twice.
//
// PostgreSQL only: a commit can take effect while its reply is lost (the
// connection broken after the COMMIT went out, the store's timeout passing
// meanwhile), and the batch queues write a batch that failed again, whole.
// Written again under new ids, every row was stored twice. With its ids, a
// batch whose first write is still committing is refused by the primary
// key meanwhile (the queue tries again later), never stored twice.
func (s *Store) batchIDs(ctx context.Context, table string, n int, firstID int64, firstAt time.Time, set func(i int, id int64)) (stored bool, err error) {
	if firstID != 0 {
		err := s.DB.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+table+` WHERE at_us = $1 AND id = $2)`,
			firstAt.UnixMicro(), firstID).Scan(&stored)
		if err != nil {
			return false, fail("insert "+table+" rows: was the batch stored", err)
		}
		return stored, nil
	}
	ids, err := nextIDs(ctx, s.DB, table, n)
	if err != nil {
		return false, err
	}
	for i, id := range ids {
		set(i, id)
	}
	return false, nil
}

// nextIDs takes n ids from table's id sequence (PostgreSQL), in increasing
// order.
func nextIDs(ctx context.Context, db querier, table string, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	err := scanRows(ctx, db, "allocate "+table+" ids", `SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2)`,
		[]any{table, n}, func(rows *sql.Rows) (int64, error) {
			var id int64
			return id, rows.Scan(&id)
		}, func(id int64) error {
			ids = append(ids, id)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if len(ids) != n {
		return nil, fmt.Errorf("store: allocate %s ids: %d for %d rows", table, len(ids), n)
	}
	slices.Sort(ids)
	return ids, nil
}
