package engine

import (
	"context"
	"fmt"
	"time"

	"thaw/trainer"
)

// A freeze-depth sweep runs the same short plan at every freeze point: the
// head alone, then one more block thawed each time, up to every block. Its
// runs are started like any other, one after another, stored and tagged
// "sweep", and each finished run makes a row.

// SweepRow is one freeze point's result.
type SweepRow struct {
	// Thawed counts the top blocks trained; Low is the lowest of them.
	Thawed int
	Low    string
	RunID  string
	Acc    float64 // best val acc: the accuracy of the lowest val loss
	Loss   float64
}

// SweepPlan is the plan a sweep runs at a freeze point that trains the top
// thawed blocks: one stage of rp's first stage's length, peak learning
// rate, schedule and factor, under its optimizer.
func SweepPlan(rp *trainer.ResolvedPlan, thawed int) trainer.Plan {
	first := rp.Stages[0]
	sch := first.Schedule
	opt := first.Optimizer
	n := len(rp.Blocks)
	return trainer.Plan{
		Name: fmt.Sprintf("sweep: top %d of %d", thawed, n),
		Stages: []trainer.Stage{{
			Train:  append([]string(nil), rp.Blocks[n-thawed:]...),
			Epochs: first.Epochs, Steps: first.Steps, LR: first.LR,
			Schedule: &sch, LRFactor: first.LRFactor, Optimizer: &opt,
			Patience: first.Patience, TrainBN: first.TrainBN,
		}},
	}
}

// Sweep runs the freeze-depth sweep of base, whose plan resolves to rp,
// as recorded runs of the engine's: see [RunSweep].
func (e *Engine) Sweep(ctx context.Context, base trainer.Job, rp *trainer.ResolvedPlan, row func(SweepRow)) error {
	return RunSweep(ctx, e.Start, base, rp, row)
}

// Sweep runs the freeze-depth sweep of base, whose plan resolves to rp,
// as runs of the user's (see [UserView.Start] for the sweep's runs): see
// [RunSweep].
func (v *UserView) Sweep(ctx context.Context, base trainer.Job, rp *trainer.ResolvedPlan, row func(SweepRow)) error {
	return RunSweep(ctx, v.Start, base, rp, row)
}

// RunSweep runs every freeze point of base in turn, from the head alone
// up, each as a run started with start (an engine's or a user view's
// Start) and bound to ctx, and calls row with each as it finishes, from
// RunSweep's goroutine. Cancelling ctx stops the sweep and its run; it
// then returns context.Canceled. It returns start's error, or the run's
// error naming its freeze point, when one fails.
func RunSweep(ctx context.Context, start func(context.Context, trainer.Job, StartOptions) (*Live, error),
	base trainer.Job, rp *trainer.ResolvedPlan, row func(SweepRow)) error {
	n := len(rp.Blocks)
	// One sweep's runs share a tag naming when it started.
	label := time.Now().UTC().Format("20060102-150405")
	for k := 1; k <= n; k++ {
		job := base
		job.Plan, job.Preset = SweepPlan(rp, k), nil
		run, err := start(ctx, job, StartOptions{
			Name: fmt.Sprintf("sweep %s: %s → %s, from %s (top %d of %d)", label, base.Model, base.Data.Path, rp.Blocks[n-k], k, n),
			Tags: []string{"sweep", "sweep:" + label, fmt.Sprintf("sweep-depth:%d", k)},
		})
		if err != nil {
			return err
		}
		for range run.Progress() {
			// The rows come from the results; reports are not needed.
		}
		res, err := run.Wait()
		if ctx.Err() != nil {
			return context.Canceled
		}
		if err != nil {
			return fmt.Errorf("freeze point %s: %w", rp.Blocks[n-k], err)
		}
		row(SweepRow{Thawed: k, Low: rp.Blocks[n-k], RunID: run.ID, Acc: res.BestValAcc, Loss: res.BestValLoss})
	}
	return nil
}
