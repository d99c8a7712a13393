package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"strings"
)

// Metric is one value of one named quantity at one step, such as the
// training loss or the validation accuracy.
type Metric struct {
	Step  int64 // zero or positive
	Stage int   // index of the stage the step belongs to
	Name  string
	Value float64 // NaN is stored and returned as NaN
}

// rollupWidths are the step widths of the stored summaries. Series answers
// a query of bucket width w from the widest summary no wider than w, so it
// reads fewer than 16 rows per bucket it returns up to buckets of 65536
// steps (a 130-million-step series at 2000 points), and more beyond; each
// level costs one more row write per metric name and batch in AddMetrics,
// which is why there are three levels and not four. Stores written with a
// 65536-wide level keep those rows; nothing reads them.
var rollupWidths = []int64{16, 256, 4096}

// rollupKey names one summary row.
type rollupKey struct {
	name          string
	width, bucket int64
}

// rollup accumulates points of one summary row. The value fields are valid
// only when nValues > 0.
type rollup struct {
	first, last   int64
	min, max, sum float64
	n, nValues    int64
}

func (r *rollup) add(step int64, v float64) {
	if r.n == 0 || step < r.first {
		r.first = step
	}
	if r.n == 0 || step > r.last {
		r.last = step
	}
	r.n++
	if math.IsNaN(v) {
		return
	}
	if r.nValues == 0 {
		r.min, r.max = v, v
	}
	r.min, r.max = min(r.min, v), max(r.max, v)
	r.sum += v
	r.nValues++
}

// nullable returns v as a NULL when there is no value.
func (r *rollup) nullable(v float64) sql.NullFloat64 {
	return sql.NullFloat64{Float64: v, Valid: r.nValues > 0}
}

// AddMetrics stores a batch of metrics of run in one transaction. A metric
// with the same name and step as a stored one replaces it; that is correct
// but slower than appending, so a run resumed from a checkpoint should call
// [Store.TruncateMetrics] first and then append. It returns an error
// wrapping [ErrNotFound] when the run does not exist and [ErrInvalid] when a
// step is negative; then nothing of the batch is stored. An empty batch is a
// no-op.
func (s *Store) AddMetrics(ctx context.Context, run string, ms []Metric) error {
	if len(ms) == 0 {
		return nil
	}
	for _, m := range ms {
		if m.Step < 0 {
			return fmt.Errorf("add metrics to %s: %s at step %d: %w: negative step", run, m.Name, m.Step, ErrInvalid)
		}
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := runExists(ctx, tx, run); err != nil {
			return err
		}
		inserted, err := s.insertMetrics(ctx, tx, run, ms)
		if err != nil {
			return err
		}
		if inserted == int64(len(ms)) {
			// Only new points: add them to the summaries.
			rollups := make(map[rollupKey]*rollup)
			for _, m := range ms {
				for _, w := range rollupWidths {
					k := rollupKey{m.Name, w, m.Step / w}
					r := rollups[k]
					if r == nil {
						r = &rollup{}
						rollups[k] = r
					}
					r.add(m.Step, m.Value)
				}
			}
			return s.mergeRollups(ctx, tx, run, rollups)
		}
		// Some points replaced stored ones: store every value and rebuild
		// the summaries the batch touches from the points.
		stmt, err := tx.PrepareContext(ctx, `UPDATE metrics SET stage = ?, value = ?
			WHERE run_id = ? AND name = ? AND step = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		redo := make(map[rollupKey]bool)
		for _, m := range ms {
			if _, err := stmt.ExecContext(ctx, m.Stage, nullNaN(m.Value), run, m.Name, m.Step); err != nil {
				return err
			}
			for _, w := range rollupWidths {
				redo[rollupKey{m.Name, w, m.Step / w}] = true
			}
		}
		for k := range redo {
			if err := rebuildRollup(ctx, tx, run, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add %d metrics to %s: %w", len(ms), run, err)
	}
	return nil
}

// nullNaN stores NaN as NULL, which every database can hold.
func nullNaN(v float64) sql.NullFloat64 {
	return sql.NullFloat64{Float64: v, Valid: !math.IsNaN(v)}
}

// The statements of AddMetrics insert many rows each: one multi-row INSERT
// costs about as much as a single-row one, so a report of 20 metrics (20
// points and 80 summary rows) takes two statements instead of 100. They are
// built for each row count up to the chunk sizes and prepared once; see
// [Store.rowsStmt].
const (
	insertMetricSQL = `INSERT INTO metrics (run_id, name, step, stage, value) VALUES `
	insertMetricRow = `(?, ?, ?, ?, ?)`
	insertMetricEnd = ` ON CONFLICT (run_id, name, step) DO NOTHING`

	mergeRollupSQL = `INSERT INTO metric_rollups
		(run_id, name, width, bucket, first_step, last_step, min_value, max_value, sum_value, n, n_values) VALUES `
	mergeRollupRow = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	// CASE rather than two-argument MIN and MAX, which are spelled
	// differently in every database. A NULL (all NaN) side never wins.
	mergeRollupEnd = ` ON CONFLICT (run_id, name, width, bucket) DO UPDATE SET
		first_step = CASE WHEN excluded.first_step < metric_rollups.first_step
			THEN excluded.first_step ELSE metric_rollups.first_step END,
		last_step = CASE WHEN excluded.last_step > metric_rollups.last_step
			THEN excluded.last_step ELSE metric_rollups.last_step END,
		min_value = CASE WHEN metric_rollups.min_value IS NULL OR excluded.min_value < metric_rollups.min_value
			THEN excluded.min_value ELSE metric_rollups.min_value END,
		max_value = CASE WHEN metric_rollups.max_value IS NULL OR excluded.max_value > metric_rollups.max_value
			THEN excluded.max_value ELSE metric_rollups.max_value END,
		sum_value = CASE WHEN metric_rollups.sum_value IS NULL THEN excluded.sum_value
			WHEN excluded.sum_value IS NULL THEN metric_rollups.sum_value
			ELSE metric_rollups.sum_value + excluded.sum_value END,
		n = metric_rollups.n + excluded.n,
		n_values = metric_rollups.n_values + excluded.n_values`

	// Rows per statement: well under every database's limit on
	// parameters (SQLite's is 32766, PostgreSQL's 65535).
	metricChunk = 128
	rollupChunk = 64
)

// rowsQuery is a multi-row INSERT: head, then rows of row, then tail.
type rowsQuery struct{ head, row, tail string }

var (
	insertMetricsQuery = rowsQuery{insertMetricSQL, insertMetricRow, insertMetricEnd}
	mergeRollupsQuery  = rowsQuery{mergeRollupSQL, mergeRollupRow, mergeRollupEnd}
)

// rowsStmt returns q for n rows, prepared on the first use.
func (s *Store) rowsStmt(ctx context.Context, q rowsQuery, n int) (*sql.Stmt, error) {
	key := stmtKey{q.head, n}
	s.stmtMu.Lock()
	defer s.stmtMu.Unlock()
	if st := s.stmts[key]; st != nil {
		return st, nil
	}
	var b strings.Builder
	b.WriteString(q.head)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(q.row)
	}
	b.WriteString(q.tail)
	st, err := s.db.PrepareContext(ctx, b.String())
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = make(map[stmtKey]*sql.Stmt)
	}
	s.stmts[key] = st
	return st, nil
}

// stmtKey names a prepared multi-row statement.
type stmtKey struct {
	head string
	rows int
}

// execRows runs q over rows in chunks of at most chunk rows, each row
// giving its arguments through args, and returns the rows affected.
func (s *Store) execRows(ctx context.Context, tx *sql.Tx, q rowsQuery, chunk, rows int,
	args func(i int, dst []any) []any) (int64, error) {
	var affected int64
	var buf []any
	for lo := 0; lo < rows; lo += chunk {
		hi := min(lo+chunk, rows)
		st, err := s.rowsStmt(ctx, q, hi-lo)
		if err != nil {
			return 0, err
		}
		buf = buf[:0]
		for i := lo; i < hi; i++ {
			buf = args(i, buf)
		}
		res, err := tx.StmtContext(ctx, st).ExecContext(ctx, buf...)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		affected += n
	}
	return affected, nil
}

// insertMetrics inserts the points that are not stored yet and returns how
// many it inserted.
func (s *Store) insertMetrics(ctx context.Context, tx *sql.Tx, run string, ms []Metric) (int64, error) {
	return s.execRows(ctx, tx, insertMetricsQuery, metricChunk, len(ms), func(i int, dst []any) []any {
		m := ms[i]
		return append(dst, run, m.Name, m.Step, m.Stage, nullNaN(m.Value))
	})
}

// mergeRollups adds the summaries of new points to the stored ones.
func (s *Store) mergeRollups(ctx context.Context, tx *sql.Tx, run string, rollups map[rollupKey]*rollup) error {
	keys := make([]rollupKey, 0, len(rollups))
	for k := range rollups {
		keys = append(keys, k)
	}
	_, err := s.execRows(ctx, tx, mergeRollupsQuery, rollupChunk, len(keys), func(i int, dst []any) []any {
		k := keys[i]
		r := rollups[k]
		return append(dst, run, k.name, k.width, k.bucket, r.first, r.last,
			r.nullable(r.min), r.nullable(r.max), r.nullable(r.sum), r.n, r.nValues)
	})
	return err
}

// TruncateMetrics deletes the metrics of run at step from and after, with
// their summaries, so that a run resumed from a checkpoint at that step can
// append its replayed steps. It returns an error wrapping [ErrNotFound] when
// the run does not exist.
func (s *Store) TruncateMetrics(ctx context.Context, run string, from int64) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := runExists(ctx, tx, run); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM metrics WHERE run_id = ? AND step >= ?`, run, from); err != nil {
			return err
		}
		for _, w := range rollupWidths {
			// Summaries wholly after from go; the one that straddles it
			// is rebuilt from the points that remain.
			b := max(from, 0) / w
			if _, err := tx.ExecContext(ctx, `DELETE FROM metric_rollups
				WHERE run_id = ? AND width = ? AND bucket > ?`, run, w, b); err != nil {
				return err
			}
			names, err := rollupNames(ctx, tx, run, w, b)
			if err != nil {
				return err
			}
			for _, name := range names {
				if err := rebuildRollup(ctx, tx, run, rollupKey{name, w, b}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("truncate metrics of %s at step %d: %w", run, from, err)
	}
	return nil
}

// rollupNames returns the metric names with a summary in bucket b of width w.
func rollupNames(ctx context.Context, tx *sql.Tx, run string, w, b int64) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM metric_rollups
		WHERE run_id = ? AND width = ? AND bucket = ?`, run, w, b)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}

// rebuildRollup recomputes one summary row from the points.
func rebuildRollup(ctx context.Context, tx *sql.Tx, run string, k rollupKey) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM metric_rollups
		WHERE run_id = ? AND name = ? AND width = ? AND bucket = ?`, run, k.name, k.width, k.bucket); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO metric_rollups
		(run_id, name, width, bucket, first_step, last_step, min_value, max_value, sum_value, n, n_values)
		SELECT run_id, name, ?, ?, MIN(step), MAX(step), MIN(value), MAX(value), SUM(value), COUNT(*), COUNT(value)
		FROM metrics WHERE run_id = ? AND name = ? AND step >= ? AND step < ?
		GROUP BY run_id, name`,
		k.width, k.bucket, run, k.name, k.bucket*k.width, (k.bucket+1)*k.width)
	return err
}

// MetricNames returns the names of the metrics stored for run, sorted. It
// returns an empty list when there are none or the run does not exist.
func (s *Store) MetricNames(ctx context.Context, run string) ([]string, error) {
	// The widest summaries hold one row per 4096 steps and name.
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT name FROM metric_rollups
		WHERE run_id = ? AND width = ? ORDER BY name`, run, rollupWidths[len(rollupWidths)-1])
	if err != nil {
		return nil, fmt.Errorf("metric names of %s: %w", run, err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("metric names of %s: %w", run, err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("metric names of %s: %w", run, err)
	}
	return names, nil
}

// Bucket summarises the points of a series in a range of steps.
type Bucket struct {
	From, To int64   // first and last step stored in the bucket
	Min, Max float64 // extremes of the values; NaN when every value is NaN
	Mean     float64 // mean of the values that are not NaN
	N        int     // number of points, NaN ones included
}

// Series returns the metric name of run from its first to its last step,
// downsampled to at most maxPoints buckets. Every bucket holds the minimum
// and the maximum of its points, so spikes survive downsampling. Buckets
// cover about equal step ranges: bucket i holds the points whose step lies
// in [lo+i*w, lo+(i+1)*w), where lo is the first step and w the span over
// maxPoints rounded up, except that the boundaries snap down to multiples of
// the stored summaries' width (at most w) when the series is long. When the
// series spans no more than maxPoints steps, or maxPoints is zero or
// negative, every point is its own bucket (From == To, Min == Max == Mean).
// Buckets come in step order; empty ones are left out. It returns an empty
// list when the series does not exist.
func (s *Store) Series(ctx context.Context, run, name string, maxPoints int) ([]Bucket, error) {
	fail := func(err error) ([]Bucket, error) {
		return nil, fmt.Errorf("series %s of %s: %w", name, run, err)
	}
	// Two single-aggregate queries: each is answered from one end of the
	// (run_id, name, step) key, whereas MIN and MAX together scan it.
	var lo, hi sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(step) FROM metrics WHERE run_id = ? AND name = ?`,
		run, name).Scan(&lo); err != nil {
		return fail(err)
	}
	if !lo.Valid {
		return nil, nil
	}
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(step) FROM metrics WHERE run_id = ? AND name = ?`,
		run, name).Scan(&hi); err != nil {
		return fail(err)
	}
	width := int64(1)
	if span := hi.Int64 - lo.Int64 + 1; maxPoints > 0 && span > int64(maxPoints) {
		width = (span + int64(maxPoints) - 1) / int64(maxPoints)
	}
	var summary int64 // widest stored summary no wider than a bucket
	for _, w := range rollupWidths {
		if w <= width {
			summary = w
		}
	}
	// Integer division numbers the buckets; both operands are integers, so
	// every database truncates the same way (towards zero: a summary that
	// starts before lo, by less than one bucket, falls in bucket 0).
	var rows *sql.Rows
	var err error
	if summary == 0 {
		rows, err = s.db.QueryContext(ctx, `SELECT MIN(step), MAX(step), MIN(value), MAX(value),
			SUM(value), COUNT(*), COUNT(value)
			FROM metrics WHERE run_id = ? AND name = ?
			GROUP BY (step - ?) / ? ORDER BY MIN(step)`, run, name, lo.Int64, width)
	} else {
		rows, err = s.db.QueryContext(ctx, `SELECT MIN(first_step), MAX(last_step), MIN(min_value), MAX(max_value),
			SUM(sum_value), SUM(n), SUM(n_values)
			FROM metric_rollups WHERE run_id = ? AND name = ? AND width = ?
			GROUP BY (bucket * ? - ?) / ? ORDER BY MIN(first_step)`, run, name, summary, summary, lo.Int64, width)
	}
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		var b Bucket
		var mn, mx, sum sql.NullFloat64
		var nValues int64
		if err := rows.Scan(&b.From, &b.To, &mn, &mx, &sum, &b.N, &nValues); err != nil {
			return fail(err)
		}
		b.Min, b.Max, b.Mean = nanIfNull(mn), nanIfNull(mx), math.NaN()
		if nValues > 0 {
			b.Mean = sum.Float64 / float64(nValues)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	return out, nil
}

func nanIfNull(v sql.NullFloat64) float64 {
	if !v.Valid {
		return math.NaN()
	}
	return v.Float64
}
