package main

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// runBranch is thaw branch: a new run from a stored checkpoint of another,
// going on with the rest of its plan or with another.
func (m *Main) runBranch(ctx context.Context, args []string) error {
	fs := m.newFlags("branch")
	from := fs.String("from", "", "where to branch: `K`, the end of stage K (from 1), or step:N, a stored checkpoint at step N")
	plan := fs.String("plan", "", "the continuation: a preset ("+strings.Join(presetNames(), ", ")+") or a plan JSON `file` (default: the rest of the parent's plan)")
	lr := fs.Float64("lr", 0, "peak learning rate of every continuation stage (0: the plan's; needs --plan)")
	epochs := fs.Int("epochs", 0, "epochs of every continuation stage (0: the plan's; needs --plan)")
	name := fs.String("name", "", "a `name` for the new run (default: the parent's and the step)")
	asJSON := fs.Bool("json", false, "write the result to stdout as one JSON object")
	save := fs.String("save", "", "write the fine-tuned model (best weights) to `dir`, loadable as a base model")
	storeDir := storeFlag(fs)
	m.dataBudgetFlag(fs)
	id, err := parseRun(fs, args)
	if err != nil {
		return err
	}
	m.limitMemory()
	point, err := parseBranchPoint(*from)
	if err != nil {
		return err
	}
	if !(*lr >= 0) || math.IsInf(*lr, 0) {
		return usagef("branch: --lr %v: must be finite: want a positive rate, or 0 for the plan's", *lr)
	}
	if *epochs < 0 {
		return usagef("branch: --epochs %d: want a positive count, or 0 for the plan's", *epochs)
	}
	var cont *engine.Continuation
	switch {
	case *plan != "":
		var j trainer.Job
		if err := j.SetPlan(*plan, *lr, *epochs, 0); err != nil {
			return fmt.Errorf("branch: %w", err)
		}
		cont = &engine.Continuation{Plan: j.Plan, Preset: j.Preset}
	case *lr != 0 || *epochs != 0:
		return usagef("branch: --lr and --epochs change a continuation plan; give one with --plan")
	}
	eng, st, err := m.openEngine(*storeDir)
	if err != nil {
		return fmt.Errorf("branch: %w", err)
	}
	defer st.Close()
	prog := newProgress(m.Stderr)
	live, err := eng.Branch(ctx, id, point, cont, engine.StartOptions{Name: *name, Ready: m.announceBranch, Report: prog.report})
	if err != nil {
		return storeUsage(err)
	}
	if err := m.finishRun(ctx, eng, live, prog, *asJSON, *save); err != nil {
		return fmt.Errorf("branch: %w", err)
	}
	return nil
}

// parseBranchPoint reads --from: K or step:N.
func parseBranchPoint(s string) (engine.BranchPoint, error) {
	if n, ok := strings.CutPrefix(s, "step:"); ok {
		step, err := strconv.ParseInt(n, 10, 64)
		if err != nil || step < 0 {
			return engine.BranchPoint{}, usagef("branch: --from %q: want step:N with N a step count", s)
		}
		return engine.BranchPoint{Step: step}, nil
	}
	k, err := strconv.Atoi(s)
	if err != nil || k < 1 {
		return engine.BranchPoint{}, usagef("branch: --from %q: want K, the end of stage K (from 1), or step:N", s)
	}
	return engine.BranchPoint{Stage: k}, nil
}

// announceBranch says on stderr which run the branch is and where it
// starts.
func (m *Main) announceBranch(l *engine.Live) {
	m.warn(l)
	fmt.Fprintf(m.Stderr, "run %s  (thaw show %s): branched from run %s at step %d\n",
		l.ID, store.Short(l.ID), store.Short(l.Run.ParentRun), l.From)
}
