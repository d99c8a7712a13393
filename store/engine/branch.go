package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"thaw/store"
	"thaw/trainer"
)

// BranchPoint says where in its parent a branch starts: at the end of
// stage Stage (counting from 1), or, when Stage is zero, at a stored
// checkpoint at step Step.
type BranchPoint struct {
	Stage int
	Step  int64
}

func (b BranchPoint) String() string {
	if b.Stage > 0 {
		return fmt.Sprintf("the end of stage %d", b.Stage)
	}
	return fmt.Sprintf("step %d", b.Step)
}

// Continuation is how a branch goes on after its branch point: Plan's
// stages, or, when Plan has none, Preset expanded for the model's blocks.
type Continuation struct {
	Plan   trainer.Plan
	Preset *trainer.PresetRef
}

// Branch starts a new run from a stored checkpoint of the run parent: its
// weights, optimizer and loop state at the branch point, its job (model,
// data, split, seed, batch), and a continuation. A nil continuation
// is the rest of the parent's plan: the branch then reproduces the parent
// from that point bit for bit (same binary, same machine). Otherwise the
// branch's plan is the parent's stages up to the branch point (a stage the
// point falls inside ends there) followed by the continuation's stages,
// each with its own plan's defaults. The new run records the parent, the
// checkpoint and its step; its curves begin after that step.
//
// Branch returns an error wrapping [store.ErrNotFound] when the parent or a
// usable checkpoint at that point does not exist (the error lists the
// points there are), [store.ErrInvalid] when the parent has no job record or the
// point is out of range, a trainer.InputError for a continuation that does
// not resolve against the model's blocks, and the errors of Start.
func (e *Engine) Branch(ctx context.Context, parent string, from BranchPoint, cont *Continuation, opts StartOptions) (*Live, error) {
	pr, err := e.s.Run(ctx, parent)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	rec, err := store.DecodeJob(pr)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	ck, err := e.branchCheckpoint(ctx, pr, from)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	state, err := e.s.LoadCheckpoint(ctx, ck.ID)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	prep, err := e.prepareStored(pr, rec.Job, rec, cont == nil)
	if err != nil {
		return nil, fmt.Errorf("branch from %s: %w", store.Short(pr.ID), err)
	}
	spe := prep.StepsPerEpoch()
	if cont != nil {
		plan := cont.Plan
		if len(plan.Stages) == 0 && cont.Preset != nil {
			if plan, err = trainer.Preset(cont.Preset.Name, prep.Plan.Blocks, cont.Preset.LR, cont.Preset.Epochs); err != nil {
				return nil, fmt.Errorf("branch: %w", trainer.BadInput(err))
			}
		}
		if err := continuePlan(prep, &state, plan, spe); err != nil {
			return nil, fmt.Errorf("branch: %w", err)
		}
	}
	if state.Step > prep.TotalSteps() {
		return nil, fmt.Errorf("branch: %w: %s is step %d, beyond the plan's %d steps", store.ErrInvalid, from, state.Step, prep.TotalSteps())
	}
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("%s, branch at step %d", pr.Name, ck.Step)
	}
	run, err := e.create(ctx, prep, opts, store.Run{ParentRun: pr.ID, ParentCheckpoint: ck.ID})
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	ctl, stored := &trainer.Control{}, new(atomic.Int64)
	ropts := append(e.recordOptions(ctx, ctl, stored), store.ResumeFrom(state.Loop, int64(state.Step)))
	recorder, err := e.s.Record(ctx, run.ID, ropts...)
	if err != nil {
		e.s.SetStatus(context.WithoutCancel(ctx), run.ID, trainer.StatusFailed, err.Error())
		return nil, fmt.Errorf("branch: %w", err)
	}
	spec := prep.Spec()
	spec.Resume = &state
	l := newLive(run, prep, ctl, int64(state.Step), stored)
	l.Warning = rec.KernelWarning()
	e.launch(ctx, l, recorder, spec, opts)
	return l, nil
}

// branchCheckpoint finds the good checkpoint of run r at a branch point:
// the stage-end one of that stage, or the most complete one at that step.
func (e *Engine) branchCheckpoint(ctx context.Context, r store.Run, from BranchPoint) (store.Checkpoint, error) {
	if from.Stage < 0 || from.Step < 0 {
		return store.Checkpoint{}, fmt.Errorf("%w: branch point %s", store.ErrInvalid, from)
	}
	cs, err := e.s.Checkpoints(ctx, r.ID)
	if err != nil {
		return store.Checkpoint{}, err
	}
	var best *store.Checkpoint
	var points []string
	for i := range cs {
		c := &cs[i]
		if c.Bad {
			continue
		}
		if c.Kind == store.KindStageEnd {
			points = append(points, fmt.Sprintf("stage %d (step %d)", c.Stage+1, c.Step))
		}
		var match bool
		if from.Stage > 0 {
			match = c.Kind == store.KindStageEnd && c.Stage == from.Stage-1
		} else {
			match = c.Step == from.Step
		}
		if match && (best == nil || store.KindRank(c.Kind) > store.KindRank(best.Kind)) {
			best = c
		}
	}
	if best == nil {
		steps := "none"
		if len(cs) > 0 {
			var ss []string
			for _, c := range cs {
				if !c.Bad {
					ss = append(ss, fmt.Sprint(c.Step))
				}
			}
			steps = fmt.Sprint(slices.Compact(ss))
		}
		return store.Checkpoint{}, fmt.Errorf("run %s has no usable checkpoint at %s (%w); stage ends: %s; checkpoint steps: %s",
			store.Short(r.ID), from, store.ErrNotFound, cmp.Or(fmt.Sprint(points), "none"), steps)
	}
	return *best, nil
}

// continuePlan replaces prep's plan by the parent's stages up to the state's
// step followed by cont's, and ends the loop state's current stage there
// when the step falls inside it.
func continuePlan(prep *trainer.Prepared, state *trainer.Checkpoint, cont trainer.Plan, spe int) error {
	parent := prep.Job.Plan
	step := state.Step
	k, inStage := prep.Plan.Locate(step, spe)
	if step >= prep.TotalSteps() {
		k, inStage = len(prep.Plan.Stages), 0
	}
	// The stages the branch inherits keep exactly the length they had
	// in the parent, floors applied, so that the steps after them keep
	// their planned numbers.
	stages := flatten(parent)[:k]
	for i := range stages {
		stages[i].Epochs, stages[i].Steps, stages[i].MinSteps = 0, prep.Plan.Stages[i].Len(spe), 0
	}
	if inStage > 0 {
		// The stage the branch leaves ends at the branch point.
		s := flatten(parent)[k]
		s.Epochs, s.Steps, s.MinSteps = 0, inStage, 0
		stages = append(stages, s)
		if k < len(state.Loop.Stages) {
			state.Loop.Stages = slices.Clone(state.Loop.Stages)
			state.Loop.Stages[k].EndStep = step
		}
	}
	if len(cont.Stages) == 0 {
		return trainer.BadInput(errors.New("the continuation plan has no stages"))
	}
	stages = append(stages, flatten(cont)...)
	plan := trainer.Plan{Name: cmp.Or(cont.Name, "branch"), Description: cont.Description, Stages: stages}
	rp, err := plan.Resolve(prep.Plan.Blocks)
	if err != nil {
		return trainer.BadInput(fmt.Errorf("continuation plan: %w", err))
	}
	prep.Job.Plan, prep.Job.Preset, prep.Plan = plan, nil, rp
	prep.KeptHeadLoss(rp)
	return nil
}

// flatten returns p's stages with the plan's defaults written into each
// (length, floor, learning rate, factor, patience, evaluation cadence,
// schedule, optimizer, label smoothing), so that they keep their meaning
// in another plan.
func flatten(p trainer.Plan) []trainer.Stage {
	out := slices.Clone(p.Stages)
	for i := range out {
		s := &out[i]
		if s.Epochs == 0 && s.Steps == 0 {
			s.Epochs = p.Epochs
		}
		s.LR = cmp.Or(s.LR, p.LR)
		s.LRFactor = cmp.Or(s.LRFactor, p.LRFactor)
		if s.Steps == 0 {
			// A floor is for a length in epochs.
			s.MinSteps = cmp.Or(s.MinSteps, p.MinSteps)
		}
		s.Patience = cmp.Or(s.Patience, p.Patience)
		s.Evals = cmp.Or(s.Evals, p.Evals)
		s.TrainBN = s.TrainBN || p.TrainBN
		s.LabelSmoothing = cmp.Or(s.LabelSmoothing, p.LabelSmoothing)
		if s.Schedule == nil {
			s.Schedule = p.Schedule
		}
		if s.Optimizer == nil {
			s.Optimizer = p.Optimizer
		}
	}
	return out
}
