package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
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
