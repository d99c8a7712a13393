package assets

import (
	"context"
	"testing"

	"thaw/trainer"
)

// BenchmarkFewShotJob runs the whole few-shot job that the PyTorch
// counterpart in trainer/testdata/bench/torch_job.py repeats:
//
//	thaw train --model digits-cnn --data digits-5to9 --plan gradual --shots 20 --epochs 10 --seed 1
//
// start-up (model, data, split, shots, head) included, the store left out.
// With -cpuprofile its profile splits the CPU between start-up
// (Catalog.Prepare), training steps, validation and the forgetting gauge.
func BenchmarkFewShotJob(b *testing.B) {
	for range b.N {
		job := trainer.Job{Model: "digits-cnn", Data: trainer.DataRef{Path: "digits-5to9"}, Shots: 20, Seed: 1}
		if err := job.SetPlan("gradual", 0, 10); err != nil {
			b.Fatal(err)
		}
		p, err := NewCatalog().Prepare(job)
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
