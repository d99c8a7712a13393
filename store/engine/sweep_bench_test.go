package engine_test

import (
	"context"
	"testing"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// BenchmarkSweepDigitsCNN is issue 20's cost target: a 3-seed sweep of
// digits-cnn at 5 shots over its four freeze points,
//
//	thaw sweep --model digits-cnn --data digits-5to9 --shots 5
//
// recorded in a store and measured on the test split at the end, at most
// 4× the CPU of the default run (thaw train --model digits-cnn --data
// digits-5to9 --shots 5), which it runs first in the same process, with
// its test score. It reports both in CPU-s of the process (the sweep's
// set-up and test included), their ratio, and the pick's test accuracy.
func BenchmarkSweepDigitsCNN(b *testing.B) {
	for range b.N {
		st, err := store.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		e := engine.New(st, nil)
		job := trainer.Job{Model: "digits-cnn", Data: trainer.DataRef{Path: "digits-5to9"}, Shots: 5, Seed: 1}
		if err := job.SetPlan("gradual", 0, 0, 0); err != nil {
			b.Fatal(err)
		}
		// thaw sweep's plan, as thaw sweep gives it none.
		swJob := job
		if err := swJob.SetPlan(engine.DefaultSweepPlan, 0, 0, 0); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()

		// The default run, as thaw train runs it (its test score included).
		cpu := engine.ProcessCPU()
		l, err := e.Start(ctx, job, engine.StartOptions{})
		if err != nil {
			b.Fatal(err)
		}
		res, err := l.Wait()
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := e.TestScore(l.Prepared, res); err != nil {
			b.Fatal(err)
		}
		run := engine.ProcessCPU() - cpu

		// The sweep, recorded and measured on the test split.
		cpu = engine.ProcessCPU()
		sw, err := e.NewSweep(ctx, engine.SweepSpec{Job: swJob, PlanRef: engine.DefaultSweepPlan})
		if err != nil {
			b.Fatal(err)
		}
		tb, err := e.RunSweep(ctx, sw.ID, engine.SweepOptions{})
		if err != nil {
			b.Fatal(err)
		}
		sweep := engine.ProcessCPU() - cpu
		b.ReportMetric(run.Seconds(), "default-run-CPU-s")
		b.ReportMetric(sweep.Seconds(), "sweep-CPU-s")
		b.ReportMetric(sweep.Seconds()/run.Seconds(), "sweep/run")
		if g := tb.Groups[0]; g.Test != nil {
			b.ReportMetric(100*g.Test.Mean, "test-acc-%")
		}
		st.Close()
	}
}
