package engine_test

import (
	"context"
	"testing"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// TestSweepTestIsTrains: the test accuracy a sweep reports for its pick,
// measured once after the choice, is on every seed the test score thaw
// train gives the command the sweep ends with (--freeze-below the pick,
// the sweep's plan and seed), bit for bit, on the same test samples.
func TestSweepTestIsTrains(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a sweep of letters-mlp and two runs")
	}
	ctx := context.Background()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := engine.New(st, nil)
	job := trainer.Job{Model: "letters-mlp", Data: trainer.DataRef{Path: "letters-n-z"}, Shots: 5}
	if err := job.SetPlan(engine.DefaultSweepPlan, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	seeds := []uint64{3001, 3002}
	sw, err := e.NewSweep(ctx, engine.SweepSpec{Job: job, Seeds: seeds, PlanRef: engine.DefaultSweepPlan})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := e.RunSweep(ctx, sw.ID, engine.SweepOptions{})
	if err != nil {
		t.Fatal(err)
	}
	g := tb.Groups[0]
	if g.Test == nil || len(g.Test.Acc) != len(seeds) {
		t.Fatalf("no test measurement of the pick: %+v", g.Test)
	}
	if pick := g.Rows[g.Pick.Index].Point; g.Test.Point != pick {
		t.Fatalf("test measured on %s, the pick is %s", g.Test.Point, pick)
	}
	train := job
	train.FreezeBelow = g.Test.Point
	for i, seed := range seeds {
		train.Seed = seed
		l, err := e.Start(ctx, train, engine.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Wait()
		if err != nil {
			t.Fatal(err)
		}
		acc, n, err := e.TestScore(l.Prepared, res)
		if err != nil {
			t.Fatal(err)
		}
		if acc != g.Test.Acc[i] || n != g.Test.Samples {
			t.Errorf("seed %d: thaw train --freeze-below %s scores %v on %d test samples, the sweep %v on %d",
				seed, g.Test.Point, acc, n, g.Test.Acc[i], g.Test.Samples)
		}
	}
}
