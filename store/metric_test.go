package store

import (
	"context"
	"fmt"
	"testing"
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
	for b.Loop() {
		for i := range batch {
			batch[i] = Metric{Step: step, Name: fmt.Sprintf("m%02d", i), Value: float64(i)}
		}
		if err := s.AddMetrics(ctx, r.ID, batch); err != nil {
			b.Fatal(err)
		}
		step++
	}
}
