package engine

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"

	"thaw/trainer"
)

// sweepSpec is a two-seed sweep of testJob (evaluated every 3 steps of 12) over every block of store-mlp.
func sweepSpec() SweepSpec {
	return SweepSpec{Job: testJob(1, 3), Seeds: []uint64{3001, 3002}}
}

// runSweep records spec and runs it to the end with opts.
func runSweep(t *testing.T, e *Engine, spec SweepSpec, opts SweepOptions) SweepTable {
	t.Helper()
	ctx := context.Background()
	sw, err := e.NewSweep(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := e.RunSweep(ctx, sw.ID, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// sameTable reports the first difference between two tables' figures:
// the points, their trainable parameters and every seed's bits.
func sameTable(a, b SweepTable) error {
	if len(a.Groups) != len(b.Groups) {
		return errors.New("groups differ")
	}
	for gi := range a.Groups {
		ga, gb := a.Groups[gi], b.Groups[gi]
		if len(ga.Rows) != len(gb.Rows) {
			return errors.New("rows differ")
		}
		for i := range ga.Rows {
			ra, rb := ga.Rows[i], gb.Rows[i]
			if ra.Point != rb.Point || ra.Trainable != rb.Trainable ||
				!slices.Equal(bits(ra.ValLoss), bits(rb.ValLoss)) || !slices.Equal(bits(ra.ValAcc), bits(rb.ValAcc)) {
				return errors.New("row " + ra.Point + " differs")
			}
		}
		if ga.Pick.Index != gb.Pick.Index || ga.Pick.Note != gb.Pick.Note {
			return errors.New("picks differ")
		}
	}
	return nil
}

func bits(x []float64) []uint64 {
	out := make([]uint64, len(x))
	for i, v := range x {
		out[i] = math.Float64bits(v)
	}
	return out
}

// sameSweepRuns checks that two tables' runs end with the same weights, run
// for run.
func sameSweepRuns(t *testing.T, e *Engine, a, b SweepTable) {
	t.Helper()
	for gi := range a.Groups {
		for i, runs := range a.Groups[gi].Runs {
			for s, id := range runs {
				_, wa := lastWeights(t, e.s, id)
				_, wb := lastWeights(t, e.s, b.Groups[gi].Runs[i][s])
				if err := sameTensors(wa, wb); err != nil {
					t.Errorf("point %s seed %d: %v", a.Groups[gi].Rows[i].Point, a.Spec.Seeds[s], err)
				}
			}
		}
	}
}

// TestSweepWorkersAndSharing: one worker computing every prefix per run,
// one worker sharing them and two workers sharing them give the same
// table and the same weights, bit for bit.
func TestSweepWorkersAndSharing(t *testing.T) {
	e, _ := newTestEngine(t)
	spec := sweepSpec()
	perRun := runSweep(t, e, spec, SweepOptions{Workers: 1, NoShare: true})
	if perRun.Done != 8 || perRun.Total != 8 || len(perRun.Groups[0].Rows) != 4 {
		t.Fatalf("table: %d of %d done, %d rows; want 8 of 8, 4 rows", perRun.Done, perRun.Total, len(perRun.Groups[0].Rows))
	}
	if got := perRun.Groups[0].Rows[0].Point; got != "fc1" {
		t.Errorf("first row %s, want fc1 (the block table's order)", got)
	}
	prefixes := trainer.NewPrefixes()
	shared := runSweep(t, e, spec, SweepOptions{Workers: 1, Prefixes: prefixes})
	if prefixes.Hits() == 0 {
		t.Error("the shared sweep took no prefix from another run")
	}
	two := runSweep(t, e, spec, SweepOptions{Workers: 2})
	for _, c := range []struct {
		name string
		tb   SweepTable
	}{{"shared prefixes", shared}, {"two workers", two}} {
		if err := sameTable(perRun, c.tb); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		sameSweepRuns(t, e, perRun, c.tb)
	}
	for _, r := range perRun.Groups[0].Rows {
		if st := r.Stats(); st.Seeds != 2 || math.IsNaN(st.LossSD) {
			t.Errorf("row %s: %+v, want two seeds", r.Point, st)
		}
		if r.CPUSeconds <= 0 {
			t.Errorf("row %s: no CPU time", r.Point)
		}
	}
}

// TestSweepResume: a sweep cancelled after its first runs end, then run
// again, reuses the runs done, resumes the one stopped and ends with the
// table and the weights of a sweep run straight through.
func TestSweepResume(t *testing.T) {
	e, _ := newTestEngine(t)
	spec := sweepSpec()
	straight := runSweep(t, e, spec, SweepOptions{Workers: 1})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sw, err := e.NewSweep(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	cut, err := e.RunSweep(ctx, sw.ID, SweepOptions{Workers: 1, Report: func(task SweepTask, p trainer.Progress) {
		// Stop the fourth task a few steps in: three done, one stopped.
		if task.Index == 3 && p.Step >= 3 {
			seen++
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) || seen == 0 {
		t.Fatalf("cancelled sweep: %v (cancelled %d times)", err, seen)
	}
	if cut.Done != 3 {
		t.Fatalf("cancelled sweep: %d done, want 3", cut.Done)
	}
	done := map[string]bool{}
	for _, runs := range cut.Groups[0].Runs {
		for _, id := range runs {
			if id != "" {
				done[id] = true
			}
		}
	}
	resumed, err := e.RunSweep(context.Background(), sw.ID, SweepOptions{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTable(straight, resumed); err != nil {
		t.Error(err)
	}
	sameSweepRuns(t, e, straight, resumed)
	kept := 0
	for _, runs := range resumed.Groups[0].Runs {
		for _, id := range runs {
			if done[id] {
				kept++
			}
		}
	}
	if kept != 4 {
		t.Errorf("the resumed sweep kept %d of the 4 runs it had, want all (3 done, 1 stopped)", kept)
	}
	again, err := e.SweepTable(context.Background(), sw.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTable(straight, again); err != nil {
		t.Errorf("read back: %v", err)
	}
}

// TestSweepTaskMapping: a crossed sweep's index maps to (group, seed,
// point) as Tasks documents, and each task's job is the sweep point of
// its preset, shots and seed.
func TestSweepTaskMapping(t *testing.T) {
	spec := SweepSpec{Job: testJob(1, 0), Points: []string{"fc3", "head"}, Seeds: []uint64{7, 8, 9},
		Presets: []string{"gradual", "fine-tune"}, Shots: []int{5, 10}, Blocks: []string{"fc1", "fc2", "fc3", "head"}}
	tasks := spec.Tasks()
	if len(tasks) != 2*2*3*2 {
		t.Fatalf("%d tasks, want 24", len(tasks))
	}
	// Index (g·3 + s)·2 + p: group 3 is fine-tune at 10 shots.
	got := tasks[(3*3+1)*2+1]
	want := SweepTask{Index: 21, Point: "head", Seed: 8, Preset: "fine-tune", Shots: 10}
	if got != want {
		t.Errorf("task 21 is %+v, want %+v", got, want)
	}
	job, err := spec.TaskJob(got)
	if err != nil {
		t.Fatal(err)
	}
	ref := testJob(1, 0)
	ref.Plan, ref.Preset, ref.Shots, ref.Seed = trainer.Plan{}, &trainer.PresetRef{Name: "fine-tune"}, 10, 8
	wantJob, err := ref.SweepPoint(spec.Blocks, "head")
	if err != nil {
		t.Fatal(err)
	}
	if job.Seed != 8 || job.Shots != 10 || job.FreezeBelow != "head" || job.Plan.Name != wantJob.Plan.Name || len(job.Plan.Stages) != 1 {
		t.Errorf("task job %+v, want %+v", job, wantJob)
	}
}

// TestSweepCountsAsOneRun: through a user's view a sweep training two
// runs at once holds one slot of the user's limit.
func TestSweepCountsAsOneRun(t *testing.T) {
	e, _ := newTestEngine(t, WithLimits(Limits{MaxPerUser: 1}))
	v := e.For(User{ID: "ann"})
	ctx := context.Background()
	sw, err := v.NewSweep(ctx, sweepSpec())
	if err != nil {
		t.Fatal(err)
	}
	maxMine := 0
	tb, err := v.RunSweep(ctx, sw.ID, SweepOptions{Workers: 2, Progress: func(SweepTable) {
		e.users.mu.Lock()
		_, mine := e.users.counts("ann")
		full := e.users.full("ann")
		e.users.mu.Unlock()
		maxMine = max(maxMine, mine)
		if !full {
			t.Error("the user's limit is not reached while their sweep runs")
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if maxMine != 1 {
		t.Errorf("the sweep counted as %d runs, want 1", maxMine)
	}
	runs, err := v.ListRuns(ctx, RunFilter{Tag: "sweep:" + sw.ID})
	if err != nil || len(runs) != tb.Total {
		t.Fatalf("the user's sweep runs: %d, %v; want %d", len(runs), err, tb.Total)
	}
	if runs[0].Owner != "ann" {
		t.Errorf("a sweep run is owned by %q, want ann", runs[0].Owner)
	}
	if _, err := e.For(User{ID: "bob"}).SweepTable(ctx, sw.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("another user reads the sweep: %v, want not found", err)
	}
}

// TestSweepBeyondTheLimit: a user at their limit cannot start a sweep,
// which trains nothing then.
func TestSweepBeyondTheLimit(t *testing.T) {
	e, _ := newTestEngine(t, WithLimits(Limits{MaxPerUser: 1}))
	v := e.For(User{ID: "ann"})
	ctx := context.Background()
	run, err := v.Submit(testJob(200, 0), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sw, err := v.NewSweep(ctx, sweepSpec())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.RunSweep(ctx, sw.ID, SweepOptions{}); !errors.Is(err, ErrLimit) {
		t.Errorf("a sweep beyond the limit: %v, want ErrLimit", err)
	}
	tb, err := v.SweepTable(ctx, sw.ID)
	if err != nil || tb.Done != 0 || tb.Groups[0].Runs[0][0] != "" {
		t.Errorf("the refused sweep trained: %+v, %v", tb.Groups[0].Runs, err)
	}
	run.Live().Control.Stop()
	run.Wait()
}
