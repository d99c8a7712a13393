package engine

import (
	"context"
	"fmt"
	"math/rand/v2"

	"thaw/trainer"
)

// A probe measures how well one block's output fits the new task: a linear
// classifier trained on the block's frozen features, everything below it
// frozen too. The probe of the block just below the head is the head
// preset itself (the head is that classifier); a lower block gets a fresh
// linear layer from its flattened output to the classes
// (trainer.CutModel). Every probe runs ProbePlan on the job's split,
// shots, batch and seed, so probes reproduce for a seed.

// ProbeInput is the block index of the raw-input probe: a linear
// classifier on the input itself, the baseline that says what a block's
// features add.
const ProbeInput = -1

// ProbeScore is a probe's best checkpoint (the lowest validation loss):
// that loss and the validation accuracy there.
type ProbeScore struct {
	ValLoss, ValAcc float64
}

// Probe budget: linear probes want more steps and a higher rate than the
// head preset's defaults, and few-shot data has few steps per epoch.
const (
	ProbeLR       = 1e-2 // a linear classifier on frozen features (a common probing rate)
	ProbeMinSteps = 60   // at least this many steps, in whole epochs
	probeMaxEpoch = 20
)

// probeSalt separates a probe head's initialisation from the job's other
// streams drawn from the seed.
const probeSalt = 0x70726f6265

// ProbePlan is the plan every probe runs: the head preset, at ProbeLR, for
// enough epochs of stepsPerEpoch steps to make ProbeMinSteps steps.
func ProbePlan(stepsPerEpoch int) trainer.Plan {
	epochs := min(max((ProbeMinSteps+stepsPerEpoch-1)/max(stepsPerEpoch, 1), 1), probeMaxEpoch)
	p := trainer.PresetHead(nil, ProbeLR, epochs)
	p.Name = "probe"
	return p
}

// Probe trains and evaluates the probe of block k (0 is the input block;
// k must be below the head, or ProbeInput for the raw input) for job: the
// job prepared as [Engine.Inspect] prepares it (split, shots, head), the
// model cut after block k with a linear head (the job's own head when k is
// just below it), ProbePlan trained on the frozen features. It returns the
// best checkpoint's (lowest validation loss) loss and accuracy. Nothing is
// recorded. Cancelling ctx stops it with ctx's error.
func (e *Engine) Probe(ctx context.Context, job trainer.Job, k int) (ProbeScore, error) {
	prep, err := e.Inspect(job)
	if err != nil {
		return ProbeScore{}, err
	}
	return probe(ctx, prep, k)
}

// probe trains the probe of block k on prep, which it changes.
func probe(ctx context.Context, prep *trainer.Prepared, k int) (ProbeScore, error) {
	job := prep.Job
	mod := prep.Model
	var err error
	n := len(mod.Blocks)
	if k < ProbeInput || k >= n-1 {
		return ProbeScore{}, fmt.Errorf("probe: block %d: want a block below the head (0 to %d) or the input (%d)", k, n-2, ProbeInput)
	}
	if k < n-2 {
		if mod, err = trainer.CutModel(mod, k, rand.New(rand.NewPCG(job.Seed, probeSalt))); err != nil {
			return ProbeScore{}, fmt.Errorf("probe: %w", err)
		}
	}
	spe := prep.StepsPerEpoch()
	rp, err := ProbePlan(spe).Resolve(mod.Config.BlockNames())
	if err != nil {
		return ProbeScore{}, err
	}
	if k == n-2 {
		// The prepared model's own head: a kept one trains on the plain
		// loss, as thaw train --plan head trains it.
		prep.KeptHeadLoss(rp)
	}
	spec := trainer.Spec{Model: mod, Plan: rp, Train: prep.Train, Val: prep.Val,
		Seed: job.Seed, BatchSize: prep.Spec().BatchSize, EvalEvery: job.EvalEvery}
	res, err := trainer.Run(ctx, spec, func(trainer.Progress) {})
	if err != nil {
		return ProbeScore{}, err
	}
	return ProbeScore{ValLoss: res.BestValLoss, ValAcc: res.BestValAcc}, nil
}
