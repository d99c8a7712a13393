package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"text/tabwriter"
	"thaw/trainer/termtext"

	"thaw/trainer"
)

// runLRFind is thaw lr-find: fastai's learning-rate range test on the
// blocks the plan's first stage trains.
func (m *Main) runLRFind(ctx context.Context, args []string) error {
	fs := m.newFlags("lr-find")
	var f setupFlags
	f.register(fs)
	steps := fs.Int("sweep-steps", trainer.DefaultFindLRSteps, "number of batches in the sweep")
	start := fs.Float64("start-lr", trainer.DefaultFindLRStart, "learning rate of the first batch")
	end := fs.Float64("end-lr", trainer.DefaultFindLREnd, "learning rate the sweep ends at")
	stage := fs.Int("stage", 1, "the plan's stage `K` to test (1 is the first)")
	m.dataBudgetFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	m.limitMemory()
	if *steps < 2 || !(*start > 0 && *end > *start) || math.IsInf(*end, 0) {
		return usagef("lr-find: --sweep-steps %d, --start-lr %v, --end-lr %v: want at least 2 steps and 0 < start < end, both finite", *steps, *start, *end)
	}
	job, err := f.job(0)
	if err != nil {
		return fmt.Errorf("lr-find: %w", err)
	}
	spec, err := m.preparer().FindLRSpec(job, *stage-1)
	if err != nil {
		return fmt.Errorf("lr-find: %w", err)
	}
	spec.StartLR, spec.EndLR, spec.Steps = *start, *end, *steps
	fmt.Fprintf(m.Stderr, "lr-find: %d steps from %g to %g on %s\n", *steps, *start, *end, termtext.Sanitize(spec.Stage.Label))
	res, err := trainer.FindLR(ctx, spec)

	// Print the curve so far, whatever the outcome.
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tlr\tloss\tsmoothed\t")
	for i := range res.LRs {
		mark := ""
		if err == nil && i == res.SuggestionIndex {
			mark = "  <- suggested"
		}
		fmt.Fprintf(tw, "%d\t%.3e\t%.4f\t%.4f\t%s\n", i, res.LRs[i], res.RawLosses[i], res.Losses[i], mark)
	}
	tw.Flush()
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("lr-find: interrupted after %d steps", len(res.LRs))
	case err != nil:
		return fmt.Errorf("lr-find: %w", err)
	}
	fmt.Fprintf(m.Stdout, "suggested lr: %.3g (valley)\n", res.Suggestion)
	for _, sg := range res.Suggestions {
		fmt.Fprintf(m.Stdout, "  %-8s %.3g\n", sg.Name, sg.LR)
	}
	return nil
}
