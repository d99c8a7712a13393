package engine_test

import (
	"context"
	"runtime/pprof"
	"testing"

	"thaw/store/engine"
	"thaw/trainer"
)

// BenchmarkFewShotJob runs the whole few-shot job that the PyTorch
// counterpart in trainer/testdata/bench/torch_job.py repeats:
//
//	thaw train --model digits-cnn --data digits-5to9 --plan gradual --shots 20 --epochs 10 --seed 1
//
// start-up (model, data, split, shots, head) included, the store left out.
// With -cpuprofile, go tool pprof -tags splits its CPU between start-up
// (Engine.Prepare), training steps, validation and the forgetting gauge
// by the label phase.
func BenchmarkFewShotJob(b *testing.B) {
	for range b.N {
		job := trainer.Job{Model: "digits-cnn", Data: trainer.DataRef{Path: "digits-5to9"}, Shots: 20, Seed: 1}
		if err := job.SetPlan("gradual", 0, 10, 0); err != nil {
			b.Fatal(err)
		}
		var p *trainer.Prepared
		var err error
		pprof.Do(context.Background(), pprof.Labels("phase", "start-up"), func(context.Context) {
			p, err = engine.New(nil, nil).Prepare(job)
		})
		if err != nil {
			b.Fatal(err)
		}
		res, err := trainer.Run(context.Background(), p.Spec(), nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.FinalValAcc*100, "val-acc-%")
	}
}

// BenchmarkPrepare is the start-up of the job above with one shot: the
// model and data resolved, decoded, split and drawn, the head replaced.
func BenchmarkPrepare(b *testing.B) {
	for range b.N {
		job := trainer.Job{Model: "digits-cnn", Data: trainer.DataRef{Path: "digits-5to9"}, Shots: 1, Seed: 1}
		if err := job.SetPlan("gradual", 0, 0, 0); err != nil {
			b.Fatal(err)
		}
		if _, err := engine.New(nil, nil).Prepare(job); err != nil {
			b.Fatal(err)
		}
	}
}
