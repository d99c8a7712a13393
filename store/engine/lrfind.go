package engine

import (
	"context"
	"fmt"

	"thaw/trainer"
)

// FindLRSpec prepares job as [Engine.Prepare] does and returns the
// learning-rate range test (trainer.FindLR) of its plan's stage (0 is the
// first): the prepared model, the stage, the training set, the job's seed
// and batch size. The caller sets the sweep's range and length (zero: the
// trainer's defaults). It returns the errors of Prepare, and an
// [trainer.InputError] for a stage the plan does not have.
func (e *Engine) FindLRSpec(job trainer.Job, stage int) (trainer.FindLRSpec, error) {
	p, err := e.Prepare(job)
	if err != nil {
		return trainer.FindLRSpec{}, err
	}
	spec := p.Spec()
	if stage < 0 || stage >= len(spec.Plan.Stages) {
		return trainer.FindLRSpec{}, trainer.BadInput(fmt.Errorf("the plan has no stage %d: it has %d", stage+1, len(spec.Plan.Stages)))
	}
	return trainer.FindLRSpec{
		Model: spec.Model, Stage: &spec.Plan.Stages[stage], Train: spec.Train,
		Seed: spec.Seed, BatchSize: spec.BatchSize,
	}, nil
}

// FindLR runs the learning-rate range test of job's stage (0 is the first)
// with the trainer's default range and length (see [Engine.FindLRSpec]).
// Nothing is recorded. Cancelling ctx stops it with ctx's error.
func (e *Engine) FindLR(ctx context.Context, job trainer.Job, stage int) (trainer.LRFindResult, error) {
	spec, err := e.FindLRSpec(job, stage)
	if err != nil {
		return trainer.LRFindResult{}, err
	}
	return trainer.FindLR(ctx, spec)
}
