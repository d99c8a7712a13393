package engine

import (
	"context"

	"thaw/trainer"
)

// FindLRSpec prepares job as [Engine.Prepare] does and returns the
// learning-rate range test (trainer.FindLR) of its plan's first stage:
// the prepared model, the stage, the training set, the job's seed and
// batch size. The caller sets the sweep's range and length (zero: the
// trainer's defaults). It returns the errors of Prepare.
func (e *Engine) FindLRSpec(job trainer.Job) (trainer.FindLRSpec, error) {
	p, err := e.Prepare(job)
	if err != nil {
		return trainer.FindLRSpec{}, err
	}
	spec := p.Spec()
	return trainer.FindLRSpec{
		Model: spec.Model, Stage: &spec.Plan.Stages[0], Train: spec.Train,
		Seed: spec.Seed, BatchSize: spec.BatchSize,
	}, nil
}

// FindLR runs the learning-rate range test of job's first stage with the
// trainer's default range and length (see [Engine.FindLRSpec]). Nothing
// is recorded. Cancelling ctx stops it with ctx's error.
func (e *Engine) FindLR(ctx context.Context, job trainer.Job) (trainer.LRFindResult, error) {
	spec, err := e.FindLRSpec(job)
	if err != nil {
		return trainer.LRFindResult{}, err
	}
	return trainer.FindLR(ctx, spec)
}
