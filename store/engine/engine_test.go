package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

// sameRuns checks that two runs stored the same curves from step from on
// and ended with the same weights.
func sameRuns(t *testing.T, s *store.Store, a, b string, from int64) {
	t.Helper()
	for _, name := range []string{trainer.MetricTrainLoss, trainer.MetricValLoss, trainer.MetricValAcc} {
		x, y := rawSeries(t, s, a, name), rawSeries(t, s, b, name)
		x = slices.DeleteFunc(x, func(p [2]uint64) bool { return int64(p[0]) <= from })
		y = slices.DeleteFunc(y, func(p [2]uint64) bool { return int64(p[0]) <= from })
		if len(x) == 0 || !slices.Equal(x, y) {
			t.Errorf("%s after step %d: %d points, want the %d of the other run, bit for bit", name, from, len(y), len(x))
		}
	}
	_, w1 := lastWeights(t, s, a)
	_, w2 := lastWeights(t, s, b)
	if err := sameTensors(w1, w2); err != nil {
		t.Errorf("final weights: %v", err)
	}
}

func TestEngineStartRecordsTheJob(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	before := runtime.NumGoroutine()
	job := testJob(1, 0)
	var reports int
	l, err := e.Start(ctx, job, StartOptions{Tags: []string{"sweep-1", "a"}, Owner: "ann",
		Report: func(trainer.Progress) { reports++ }})
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads Progress: the run must finish all the same.
	res := mustWait(t, l)
	settle(t, before)
	if res.Status != trainer.StatusDone || res.Steps != l.Prepared.TotalSteps() || reports == 0 {
		t.Fatalf("result %s after %d of %d steps, %d reports", res.Status, res.Steps, l.Prepared.TotalSteps(), reports)
	}
	if p, ok := l.Latest(); !ok || p.Event != trainer.EventDone {
		t.Errorf("latest report %+v, want the end", p)
	}
	var n int
	for range l.Progress() { // closed after the last report
		n++
	}
	if n == 0 || int64(n)+l.Dropped() != int64(reports) {
		t.Errorf("%d reports on the channel and %d dropped, want %d in all", n, l.Dropped(), reports)
	}

	r, err := s.Run(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != trainer.StatusDone || r.Owner != "ann" || !slices.Equal(r.Tags, []string{"a", "sweep-1"}) ||
		r.Version != "test" || r.Seed != 42 || r.Name != "gradual: store-mlp on blobs" {
		t.Errorf("run %+v", r)
	}
	rec, err := store.DecodeJob(r)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Version != store.JobVersion || len(rec.Job.Plan.Stages) != 4 || rec.Job.Preset.Name != "gradual" ||
		len(rec.Plan.Stages) != 4 || rec.Plan.Stages[3].Steps != 12 {
		t.Errorf("stored job %+v", rec)
	}
	for _, f := range []struct {
		filter RunFilter
		want   int
	}{
		{RunFilter{Tag: "sweep-1"}, 1},
		{RunFilter{Tag: "sweep-2"}, 0},
		{RunFilter{Owners: []string{"ann"}}, 1},
		{RunFilter{Owners: []string{""}}, 0},
		{RunFilter{Parent: l.ID}, 0},
	} {
		runs, err := s.ListRuns(ctx, f.filter)
		if err != nil || len(runs) != f.want {
			t.Errorf("%+v: %d runs, %v; want %d", f.filter, len(runs), err, f.want)
		}
	}
}

func TestEngineStartRefusesBadJobs(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	bad := testJob(1, 0)
	bad.Model = "no-such-model"
	unknownBlock := testJob(1, 0)
	unknownBlock.Preset = nil
	unknownBlock.Plan = trainer.Plan{LR: 0.1, Epochs: 1, Stages: []trainer.Stage{{Train: []string{"conv9"}}}}
	split := testJob(1, 0)
	split.ValSplit = 1.5
	for name, job := range map[string]trainer.Job{"model": bad, "block": unknownBlock, "split": split} {
		_, err := e.Start(ctx, job, StartOptions{})
		var in trainer.InputError
		if !errors.As(err, &in) {
			t.Errorf("%s: err = %v, want an InputError", name, err)
		}
	}
	if runs, _ := s.ListRuns(ctx, RunFilter{}); len(runs) != 0 {
		t.Errorf("%d runs recorded for jobs that could not start", len(runs))
	}
}

// TestEngineMatchesTrain: the engine runs a job exactly as Store.Train runs
// its spec.
func TestEngineMatchesTrain(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	l, err := e.Start(ctx, testJob(2, 5), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, l)
	direct := createRun(t, s, "direct")
	spec := trainSpec(t, 2, 5)
	p, err := e.Prepare(testJob(2, 5))
	if err != nil {
		t.Fatal(err)
	}
	// The data and the plan as Prepare gives them (the kept head's
	// plain loss: Prepared.KeptHeadLoss).
	spec.Train, spec.Val, spec.Plan = p.Train, p.Val, p.Plan
	if _, err := s.Train(ctx, direct.ID, spec, nil); err != nil {
		t.Fatal(err)
	}
	sameRuns(t, s, direct.ID, l.ID, 0)
}

func TestEngineControlAndStopRequest(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	before := runtime.NumGoroutine()
	paused := make(chan struct{})
	var ctl *trainer.Control
	l, err := e.Start(ctx, testJob(2, 5), StartOptions{
		Ready: func(l *Live) { ctl = l.Control },
		// Pause from the trainer's own goroutine at step 10: the run
		// then holds still until the stop request reaches it.
		Report: func(p trainer.Progress) {
			if p.Step >= 10 && p.Status == trainer.StatusRunning {
				ctl.Pause()
			}
			if p.Status == trainer.StatusPaused {
				select {
				case <-paused:
				default:
					close(paused)
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-paused
	if err := s.RequestStop(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	res := mustWait(t, l)
	settle(t, before)
	r, _ := s.Run(ctx, l.ID)
	if res.Status != trainer.StatusStopped || r.Status != trainer.StatusStopped || !r.StopRequested {
		t.Fatalf("after a stop request: result %s, run %s, requested %v", res.Status, r.Status, r.StopRequested)
	}
	if err := s.RequestStop(ctx, l.ID); !errors.Is(err, store.ErrNotLive) {
		t.Errorf("stop of a stopped run: %v, want store.ErrNotLive", err)
	}

	// Resuming clears the request and ends where an uninterrupted run does.
	l2, err := e.Resume(ctx, l.ID, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l2.From == 0 || l2.Resumed.State == nil {
		t.Errorf("resumed from %d, want a checkpoint", l2.From)
	}
	mustWait(t, l2)
	full, err := e.Start(ctx, testJob(2, 5), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, full)
	sameRuns(t, s, full.ID, l.ID, 0)
	if r, _ := s.Run(ctx, l.ID); r.Status != trainer.StatusDone || r.StopRequested {
		t.Errorf("resumed run is %s, stop requested %v", r.Status, r.StopRequested)
	}
}

func TestEngineQueue(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	q, err := e.Enqueue(ctx, testJob(1, 0), StartOptions{Tags: []string{"sweep"}})
	if err != nil {
		t.Fatal(err)
	}
	if q.Status != trainer.StatusQueued {
		t.Fatalf("status %s, want queued", q.Status)
	}
	runs, err := s.ListRuns(ctx, RunFilter{Status: []trainer.Status{trainer.StatusQueued}})
	if err != nil || len(runs) != 1 || !runs[0].Finished.IsZero() {
		t.Fatalf("queued runs: %+v, %v", runs, err)
	}
	l, err := e.Resume(ctx, q.ID, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, l)
	ref, err := e.Start(ctx, testJob(1, 0), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, ref)
	sameRuns(t, s, ref.ID, q.ID, 0)

	// A queued run stops at once on request.
	q2, _ := e.Enqueue(ctx, testJob(1, 0), StartOptions{})
	if err := s.RequestStop(ctx, q2.ID); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Run(ctx, q2.ID); r.Status != trainer.StatusStopped || r.Finished.IsZero() {
		t.Errorf("stopped queued run: %s", r.Status)
	}
}

func TestEngineBranch(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	parent, err := e.Start(ctx, testJob(2, 5), StartOptions{Name: "parent"})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, parent)
	// Stage 2 of gradual ends after two stages of 24 steps.
	const at = 48

	t.Run("rest of the plan", func(t *testing.T) {
		before := runtime.NumGoroutine()
		b, err := e.Branch(ctx, parent.ID, BranchPoint{Stage: 2}, nil, StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustWait(t, b)
		settle(t, before)
		if b.From != at {
			t.Errorf("branched from step %d, want %d", b.From, at)
		}
		r, _ := s.Run(ctx, b.ID)
		if r.ParentRun != parent.ID || r.ParentStep != at || r.ParentCheckpoint == "" || r.Status != trainer.StatusDone {
			t.Errorf("branch %+v", r)
		}
		sameRuns(t, s, parent.ID, b.ID, at)
		loss := rawSeries(t, s, b.ID, trainer.MetricTrainLoss)
		if len(loss) == 0 || loss[0][0] != at+1 {
			t.Errorf("the branch's curve starts at %v, want step %d", loss, at+1)
		}
		stages, _ := s.Stages(ctx, b.ID)
		want, _ := s.Stages(ctx, parent.ID)
		if fmt.Sprint(stages) != fmt.Sprint(want) {
			t.Errorf("stages %v, want the parent's %v", stages, want)
		}
		if bs, _ := s.Branches(ctx, parent.ID); len(bs) != 1 {
			t.Errorf("%d branches of the parent, want 1", len(bs))
		}
	})

	t.Run("another continuation", func(t *testing.T) {
		// The parent's loss (the preset's label smoothing), so that the
		// two report the same figure for the same weights.
		cont := &Continuation{Plan: trainer.Plan{Name: "all at once", LR: 0.05, Epochs: 1,
			Optimizer:      &trainer.OptimizerConfig{Kind: trainer.OptimizerSGD, Momentum: 0.9},
			LabelSmoothing: trainer.DefaultLabelSmoothing,
			Stages:         []trainer.Stage{{Train: []string{"all"}}}}}
		b, err := e.Branch(ctx, parent.ID, BranchPoint{Stage: 2}, cont, StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		mustWait(t, b)
		x, y := rawSeries(t, s, parent.ID, trainer.MetricTrainLoss), rawSeries(t, s, b.ID, trainer.MetricTrainLoss)
		// Step 49's loss comes from the weights at step 48, shared; the
		// update after it is the continuation's.
		if len(y) != 12 || y[0] != x[at] || y[1] == x[at+1] {
			t.Errorf("branch losses %d points, first %v %v; parent's there %v %v", len(y), y[0], y[1], x[at], x[at+1])
		}
		rec, _ := store.DecodeJob(b.Run)
		if n := len(rec.Job.Plan.Stages); n != 3 || rec.Job.Preset != nil || rec.Plan.Stages[2].Trainable[0] != "fc1" {
			t.Errorf("branch plan %+v", rec.Plan)
		}
	})

	t.Run("mid-stage step", func(t *testing.T) {
		// A parent stopped at step 30, inside stage 2 (steps 24 to 48),
		// keeps its last checkpoint there.
		var ctl *trainer.Control
		stopped, err := e.Start(ctx, testJob(2, 5), StartOptions{
			Ready: func(l *Live) { ctl = l.Control },
			Report: func(p trainer.Progress) {
				if p.Step >= 30 {
					ctl.Stop()
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res := mustWait(t, stopped); res.Status != trainer.StatusStopped || res.Steps != 30 {
			t.Fatalf("parent %s at step %d, want stopped at 30", res.Status, res.Steps)
		}
		cont := &Continuation{Preset: &trainer.PresetRef{Name: "full", LR: 0.01, Epochs: 1}}
		b, err := e.Branch(ctx, stopped.ID, BranchPoint{Step: 30}, cont, StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		res := mustWait(t, b)
		// Stage 1 whole, stage 2 cut at step 30, then full for an epoch.
		if res.Steps != 42 || len(res.Stages) != 3 || res.Stages[1].EndStep != 30 || res.Stages[2].StartStep != 30 {
			t.Errorf("branch from step 30: %d steps, stages %+v", res.Steps, res.Stages)
		}
		stages, _ := s.Stages(ctx, b.ID)
		if len(stages) != 3 || stages[1].End != 30 || stages[2].Start != 30 || stages[2].End != 42 {
			t.Errorf("stored stages %+v", stages)
		}
	})

	t.Run("no such point", func(t *testing.T) {
		if _, err := e.Branch(ctx, parent.ID, BranchPoint{Stage: 9}, nil, StartOptions{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("stage 9: %v, want store.ErrNotFound", err)
		}
		if _, err := e.Branch(ctx, parent.ID, BranchPoint{Step: 7}, nil, StartOptions{}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("step 7: %v, want store.ErrNotFound", err)
		}
	})
}

func TestEngineCancelStopsTheRun(t *testing.T) {
	e, s := newTestEngine(t)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	l, err := e.Start(ctx, testJob(50, 0), StartOptions{Ready: func(*Live) { cancel() }})
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Wait()
	settle(t, before)
	if !errors.Is(err, context.Canceled) || res.Status != trainer.StatusStopped {
		t.Errorf("cancelled run: %s, %v", res.Status, err)
	}
	if r, _ := s.Run(context.Background(), l.ID); r.Status != trainer.StatusStopped {
		t.Errorf("stored status %s, want stopped", r.Status)
	}
}

// TestEngineKernelWarning checks that a run records the kernel path its
// products took, and that resuming or branching it on another path warns
// that the bits may differ, while the same path does not.
func TestEngineKernelWarning(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	var ctl *trainer.Control
	l, err := e.Start(ctx, testJob(2, 5), StartOptions{
		Ready: func(l *Live) { ctl = l.Control },
		Report: func(p trainer.Progress) {
			if p.Step >= 10 && p.Status == trainer.StatusRunning {
				ctl.Stop()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res := mustWait(t, l); res.Status != trainer.StatusStopped {
		t.Fatalf("run ended %s, want stopped", res.Status)
	}
	r, err := s.Run(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := store.DecodeJob(r)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kernel != trainer.KernelPath() {
		t.Fatalf("recorded kernel %q, want this binary's %q", rec.Kernel, trainer.KernelPath())
	}
	if w := rec.KernelWarning(); w != "" {
		t.Errorf("same path warns: %q", w)
	}

	// The same run as if recorded on another machine's kernels.
	rec.Kernel = "elsewhere"
	raw, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if err := setPlan(s, l.ID, raw); err != nil {
		t.Fatal(err)
	}
	b, err := e.Branch(ctx, l.ID, BranchPoint{Step: 10}, nil, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, b)
	if !strings.Contains(b.Warning, "elsewhere") {
		t.Errorf("branch warning %q, want one naming the other path", b.Warning)
	}
	l2, err := e.Resume(ctx, l.ID, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, l2)
	if !strings.Contains(l2.Warning, "elsewhere") || !strings.Contains(l2.Warning, trainer.KernelPath()) {
		t.Errorf("resume warning %q, want one naming both paths", l2.Warning)
	}
}
