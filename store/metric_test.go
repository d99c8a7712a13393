package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"
)

func BenchmarkSeries1M(b *testing.B) {
	s := mustOpen(b)
	r := mustRun(b, s, "bench")
	fillSeries(b, s, r.ID, "loss", 1_000_000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		got, err := s.Series(ctx, r.ID, "loss", 2000)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) > 2000 {
			b.Fatalf("%d buckets", len(got))
		}
	}
}

func BenchmarkAddMetrics(b *testing.B) {
	s := mustOpen(b)
	r := mustRun(b, s, "bench")
	ctx := context.Background()
	batch := make([]Metric, 20)
	step := int64(0)
	var times []time.Duration
	for b.Loop() {
		for i := range batch {
			batch[i] = Metric{Step: step, Name: fmt.Sprintf("m%02d", i), Value: float64(i)}
		}
		start := time.Now()
		if err := s.AddMetrics(ctx, r.ID, batch); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		step++
	}
	// The target is on the median: a WAL checkpoint now and then makes a
	// few inserts slow, which the mean would charge to every one.
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns/op")
}

func TestSeriesDownsampling(t *testing.T) { dialects(t, testSeriesDownsampling) }

func testSeriesDownsampling(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	r := mustRun(t, s, "r")
	tests := []struct {
		name      string
		n         int // points at steps 0..n-1
		maxPoints int
	}{
		{"fewer points than buckets", 100, 2000},
		{"raw buckets", 10_000, 2000},     // width 5: no summary is narrow enough
		{"from summaries", 100_000, 2000}, // width 50: summaries of 16
		{"uneven width", 99_999, 777},
	}
	if testing.Short() {
		// The same paths at a tenth of the size: under the race detector
		// the full sizes take a minute to insert.
		tests[2] = struct {
			name      string
			n         int
			maxPoints int
		}{"from summaries", 10_000, 200} // width 50 again
		tests[3].n, tests[3].maxPoints = 9_999, 77
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := tt.name
			fillSeries(t, s, r.ID, name, tt.n)
			got, err := s.Series(ctx, r.ID, name, tt.maxPoints)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) > tt.maxPoints {
				t.Fatalf("%d buckets, want at most %d", len(got), tt.maxPoints)
			}
			// Every point falls in exactly one bucket, and each bucket's
			// min and max are those of the points in [From, To].
			var total int
			var prevTo int64 = -1
			for _, b := range got {
				if b.From <= prevTo || b.To < b.From {
					t.Fatalf("bucket %+v overlaps the one before (ends at %d)", b, prevTo)
				}
				prevTo = b.To
				mn, mx, sum := 2.0, -1.0, 0.0
				for x := b.From; x <= b.To; x++ {
					v := seriesValue(x)
					mn, mx, sum = min(mn, v), max(mx, v), sum+v
				}
				n := int(b.To - b.From + 1)
				// The mean is a sum of sums in another order: allow a
				// few ulps per point.
				if b.N != n || b.Min != mn || b.Max != mx || math.Abs(b.Mean-sum/float64(n)) > 1e-12 {
					t.Fatalf("bucket %+v, want n %d min %v max %v mean %v", b, n, mn, mx, sum/float64(n))
				}
				total += b.N
			}
			if total != tt.n {
				t.Errorf("buckets hold %d points, want %d", total, tt.n)
			}
		})
	}
}

func TestAddMetricsSummaries(t *testing.T) { dialects(t, testAddMetricsSummaries) }

func testAddMetricsSummaries(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	r := mustRun(t, s, "r")
	// Appends in batches, a replacement, NaN, then a truncation: Series read
	// from the summaries must match the points.
	add := func(from, to int64, f func(int64) float64) {
		var ms []Metric
		for x := from; x < to; x++ {
			ms = append(ms, Metric{Step: x, Name: "loss", Value: f(x)})
		}
		if err := s.AddMetrics(ctx, r.ID, ms); err != nil {
			t.Fatal(err)
		}
	}
	add(0, 3000, func(x int64) float64 { return float64(x % 100) })
	add(3000, 5000, func(x int64) float64 { return -float64(x) })
	add(1234, 1235, func(int64) float64 { return 1e9 }) // replaces a point
	add(5000, 5010, func(int64) float64 { return math.NaN() })
	check := func(want func(int64) float64, n int64) {
		t.Helper()
		got, err := s.Series(ctx, r.ID, "loss", 50) // width 100: summaries of 16
		if err != nil {
			t.Fatal(err)
		}
		var count int64
		for _, b := range got {
			mn, mx := math.Inf(1), math.Inf(-1)
			for x := b.From; x <= b.To; x++ {
				if v := want(x); !math.IsNaN(v) {
					mn, mx = min(mn, v), max(mx, v)
				}
			}
			if math.IsInf(mn, 1) {
				mn, mx = math.NaN(), math.NaN()
			}
			if !same(b.Min, mn) || !same(b.Max, mx) {
				t.Errorf("bucket [%d, %d]: min %v max %v, want %v %v", b.From, b.To, b.Min, b.Max, mn, mx)
			}
			count += int64(b.N)
		}
		if count != n {
			t.Errorf("%d points, want %d", count, n)
		}
	}
	want := func(x int64) float64 {
		switch {
		case x == 1234:
			return 1e9
		case x < 3000:
			return float64(x % 100)
		case x < 5000:
			return -float64(x)
		}
		return math.NaN()
	}
	check(want, 5010)
	if err := s.TruncateMetrics(ctx, r.ID, 1200); err != nil {
		t.Fatal(err)
	}
	check(want, 1200)
	add(1200, 1300, func(int64) float64 { return 7 })
	check(func(x int64) float64 {
		if x >= 1200 {
			return 7
		}
		return want(x)
	}, 1300)
	names, err := s.MetricNames(ctx, r.ID)
	if err != nil || len(names) != 1 || names[0] != "loss" {
		t.Errorf("MetricNames = %v, %v", names, err)
	}
	if err := s.AddMetrics(ctx, "nope", []Metric{{Name: "x"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("AddMetrics(unknown run): %v", err)
	}
	if err := s.AddMetrics(ctx, r.ID, []Metric{{Name: "x", Step: -1}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("AddMetrics(negative step): %v", err)
	}
}

// same reports whether a and b are equal or both NaN.
func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
