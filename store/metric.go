package store

import (
	"context"
	"database/sql"
	"fmt"
	"math"
)

// Metric is one value of one named quantity at one step, such as the
// training loss or the validation accuracy.
type Metric struct {
	Step  int64
	Stage int // index of the stage the step belongs to
	Name  string
	Value float64 // NaN is stored and returned as NaN
}

// AddMetrics stores a batch of metrics of run in one transaction. A metric
// with the same name and step as a stored one replaces it, so that a run
// resumed from a checkpoint can replay the steps after it. It returns an
// error wrapping [ErrNotFound] when the run does not exist; then nothing of
// the batch is stored. An empty batch is a no-op.
func (s *Store) AddMetrics(ctx context.Context, run string, ms []Metric) error {
	if len(ms) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := runExists(ctx, tx, run); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO metrics (run_id, name, step, stage, value)
			VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (run_id, name, step) DO UPDATE SET stage = excluded.stage, value = excluded.value`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, m := range ms {
			v := sql.NullFloat64{Float64: m.Value, Valid: !math.IsNaN(m.Value)}
			if _, err := stmt.ExecContext(ctx, run, m.Name, m.Step, m.Stage, v); err != nil {
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

// MetricNames returns the names of the metrics stored for run, sorted. It
// returns an empty list when there are none or the run does not exist.
func (s *Store) MetricNames(ctx context.Context, run string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name`, run)
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
// downsampled to at most maxPoints buckets of equal step width. Every bucket
// keeps the minimum and the maximum of its points, so spikes survive. When
// the series spans no more than maxPoints steps, or maxPoints is zero or
// negative, every point is its own bucket (From == To, Min == Max == Mean).
// Buckets come in step order; empty buckets are left out. It returns an empty
// list when the series does not exist.
func (s *Store) Series(ctx context.Context, run, name string, maxPoints int) ([]Bucket, error) {
	fail := func(err error) ([]Bucket, error) {
		return nil, fmt.Errorf("series %s of %s: %w", name, run, err)
	}
	// Two single-aggregate queries: each is answered from one end of the
	// (run_id, name, step) index, whereas MIN and MAX together scan it.
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
	// Integer division of the step offset by the width numbers the buckets;
	// both operands are integers, so every database truncates the same way.
	rows, err := s.db.QueryContext(ctx, `SELECT MIN(step), MAX(step), MIN(value), MAX(value), AVG(value), COUNT(*)
		FROM metrics WHERE run_id = ? AND name = ?
		GROUP BY (step - ?) / ? ORDER BY MIN(step)`, run, name, lo.Int64, width)
	if err != nil {
		return fail(err)
	}
	defer rows.Close()
	var out []Bucket
	for rows.Next() {
		var b Bucket
		var mn, mx, mean sql.NullFloat64
		if err := rows.Scan(&b.From, &b.To, &mn, &mx, &mean, &b.N); err != nil {
			return fail(err)
		}
		b.Min, b.Max, b.Mean = nanIfNull(mn), nanIfNull(mx), nanIfNull(mean)
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
