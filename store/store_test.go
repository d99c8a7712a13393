package store

import (
	"context"
	"encoding/json"
	"testing"
)

// mustOpen opens a store in a fresh temporary directory and closes it when
// the test ends.
func mustOpen(t testing.TB, opts ...Option) *Store {
	t.Helper()
	return mustOpenDir(t, t.TempDir(), opts...)
}

func mustOpenDir(t testing.TB, dir string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open(%q): %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustRun creates a run with plausible fields.
func mustRun(t testing.TB, s *Store, name string) Run {
	t.Helper()
	r, err := s.CreateRun(context.Background(), Run{
		Name: name, Model: "mlp-mnist", ModelHash: "abc", Dataset: "fashion", DatasetHash: "def",
		Plan: json.RawMessage(`{"stages":[{"blocks":["head"]}]}`), Seed: 1, Version: "test",
	})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	return r
}

// fillSeries inserts points 0..n-1 of metric name in one statement, far
// faster than AddMetrics for a million points. The values are a fixed
// pseudo-random sequence in [0, 1).
func fillSeries(t testing.TB, s *Store, run, name string, n int) {
	t.Helper()
	_, err := s.db.Exec(`WITH RECURSIVE seq(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM seq WHERE x + 1 < ?)
		INSERT INTO metrics (run_id, name, step, stage, value)
		SELECT ?, ?, x, 0, ((x * 7919) % 1000) / 1000.0 FROM seq`, n, run, name)
	if err != nil {
		t.Fatalf("fill series: %v", err)
	}
	for _, w := range rollupWidths {
		_, err := s.db.Exec(`INSERT INTO metric_rollups
			(run_id, name, width, bucket, first_step, last_step, min_value, max_value, sum_value, n, n_values)
			SELECT run_id, name, ?, bucket, MIN(step), MAX(step), MIN(value), MAX(value), SUM(value), COUNT(*), COUNT(value)
			FROM (SELECT run_id, name, step, value, step / ? AS bucket FROM metrics WHERE run_id = ? AND name = ?) m
			GROUP BY run_id, name, bucket`, w, w, run, name)
		if err != nil {
			t.Fatalf("fill series: summaries of width %d: %v", w, err)
		}
	}
}

// seriesValue is the value fillSeries stores at step x.
func seriesValue(x int64) float64 { return float64((x*7919)%1000) / 1000.0 }
