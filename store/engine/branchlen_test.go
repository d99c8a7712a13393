package engine

import (
	"context"
	"testing"

	"thaw/trainer"
)

// TestBranchKeepsInheritedLengths: gradual's stages last its floor of
// DefaultGradualMinSteps steps (an epoch here is far shorter); a branch
// from the end of stage 1 with the head preset inherits that stage as it
// ran, 100 steps, and then trains the head for its own floor of
// DefaultHeadMinSteps: 500 steps in all, 400 of them its own. The
// inherited stage used to be counted as one epoch without the floor, so
// the head stage ran short by the difference. The read model, thaw show
// and the figures list the stages so.
func TestBranchKeepsInheritedLengths(t *testing.T) {
	ctx := context.Background()
	e, _ := newTestEngine(t)
	var ctl *trainer.Control
	parent, err := e.Start(ctx, testJob(0, 0), StartOptions{
		Ready: func(l *Live) { ctl = l.Control },
		Report: func(p trainer.Progress) {
			if p.Stage >= 1 {
				ctl.Stop() // stage 1's end is stored; the rest is not needed
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, parent)
	pv, err := e.Read(ctx, parent.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := pv.Stages[0]
	if first.Planned != trainer.DefaultGradualMinSteps || first.End != trainer.DefaultGradualMinSteps {
		t.Fatalf("parent's stage 1: planned %d, ran to %d; want the floor, %d", first.Planned, first.End, trainer.DefaultGradualMinSteps)
	}

	b, err := e.Branch(ctx, parent.ID, BranchPoint{Stage: 1}, &Continuation{Preset: &trainer.PresetRef{Name: "head"}}, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res := mustWait(t, b)
	want := int64(trainer.DefaultGradualMinSteps + trainer.DefaultHeadMinSteps)
	if int64(res.Steps) != want {
		t.Errorf("the branch ran to step %d, want %d", res.Steps, want)
	}
	v, err := e.Read(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.TotalSteps != want || v.Step != want || len(v.Stages) != 2 {
		t.Fatalf("branch: step %d of %d, %d stages; want %d of %d, 2 stages", v.Step, v.TotalSteps, len(v.Stages), want, want)
	}
	for i, wantLen := range []int64{trainer.DefaultGradualMinSteps, trainer.DefaultHeadMinSteps} {
		s := v.Stages[i]
		if s.Planned != wantLen || s.Ran(v.Step) != wantLen {
			t.Errorf("stage %d: planned %d, ran %d; want %d", i+1, s.Planned, s.Ran(v.Step), wantLen)
		}
	}
	if !v.Stages[0].Inherited || v.Parent.Step != trainer.DefaultGradualMinSteps {
		t.Errorf("stage 1 inherited %v, branch point %d", v.Stages[0].Inherited, v.Parent.Step)
	}
	// The best is one evaluation, wherever it is read: its figures are
	// the history's at its step, and --save's checkpoint carries it.
	if v.Best.Step < 0 || v.Best.Checkpoint == "" {
		t.Errorf("best %+v", v.Best)
	}
}
