package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"thaw/store"
	"thaw/store/storetest"
	"thaw/trainer"
)

// The runs here are real: a four-block MLP trained by the trainer on
// Gaussian blobs and recorded through the store, as the store's own tests
// make them. Each is checked against what the trainer itself said
// (trainer.Result, which never went through the store) and the raw stored
// rows.

// viewConfig is the model: 8 features → 32 → 32 → 16 → 3 classes.
func viewConfig() *trainer.Config {
	return &trainer.Config{Name: "view-mlp", InputShape: []int{8}, Classes: []string{"a", "b", "c"},
		Blocks: []trainer.BlockConfig{
			{Name: "fc1", Layers: []trainer.LayerConfig{{Type: "linear", Name: "fc1", InFeatures: 8, OutFeatures: 32}, {Type: "relu"}}},
			{Name: "fc2", Layers: []trainer.LayerConfig{{Type: "linear", Name: "fc2", InFeatures: 32, OutFeatures: 32}, {Type: "relu"}}},
			{Name: "fc3", Layers: []trainer.LayerConfig{{Type: "linear", Name: "fc3", InFeatures: 32, OutFeatures: 16}, {Type: "relu"}}},
			{Name: "head", Layers: []trainer.LayerConfig{{Type: "linear", Name: "head", InFeatures: 16, OutFeatures: 3}}},
		}}
}

// viewBlobs is three Gaussian clusters in 8 dimensions, n samples a class.
func viewBlobs(n int, seed uint64) *trainer.Dataset {
	rng := rand.New(rand.NewPCG(seed, 99))
	ds := &trainer.Dataset{Name: "blobs", Shape: []int{8}, Classes: []string{"a", "b", "c"}}
	centers := make([][8]float64, 3)
	for c := range centers {
		for j := range centers[c] {
			centers[c][j] = 1.5 * rng.NormFloat64()
		}
	}
	for i := 0; i < 3*n; i++ {
		c := i % 3
		for j := 0; j < 8; j++ {
			ds.X = append(ds.X, float32(centers[c][j]+1.3*rng.NormFloat64()))
		}
		ds.Y = append(ds.Y, c)
	}
	return ds
}

// viewJob is a gradual job of default length, one epoch a stage: 180 training samples in
// batches of 16 make 12 steps an epoch, so every stage is lengthened to
// the preset's floor, trainer.DefaultGradualMinSteps. The preset expands
// as it did before its cadence and patience (Legacy), so that every stage
// runs its whole length: early stops have a job of their own, patientJob.
func viewJob() trainer.Job {
	return trainer.Job{Model: "view-mlp", Data: trainer.DataRef{Path: "blobs"},
		Preset:   &trainer.PresetRef{Name: "gradual", LR: 1e-2, Legacy: true},
		ValSplit: 0.25, BatchSize: 16, Seed: 42}
}

// prepare builds viewJob afresh, with a source set for the gauge.
func prepare(t *testing.T) *trainer.Prepared {
	t.Helper()
	return prepareJob(t, viewJob())
}

// patientJob is a plan file's job: its first stage, 60 steps by its floor,
// ends when an evaluation (every 6 steps) fails to improve.
func patientJob() trainer.Job {
	j := viewJob()
	j.Preset, j.EvalEvery = nil, 6
	j.Plan = trainer.Plan{Name: "patient", LR: 0.2, Stages: []trainer.Stage{
		{Train: []string{"head"}, Epochs: 1, MinSteps: 60, Patience: 1},
		{Train: []string{"fc3", "head"}, Steps: 60},
	}}
	return j
}

// prepareJob builds job afresh, with a source set for the gauge.
func prepareJob(t *testing.T, job trainer.Job) *trainer.Prepared {
	t.Helper()
	m, err := trainer.New[float32](viewConfig(), rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := job.Prepare(trainer.JobInputs{Model: m, ModelName: "view-mlp",
		Data: viewBlobs(80, 3), Source: viewBlobs(30, 3)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// testGrace is the stores' grace here: short, so that a killed run goes
// stale within the test. Recorders beat far more often.
const testGrace = 400 * time.Millisecond

var beat = store.HeartbeatEvery(10 * time.Millisecond)

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	return openStoreGrace(t, dir, testGrace)
}

func openStoreGrace(t *testing.T, dir string, grace time.Duration, opts ...store.Option) *store.Store {
	t.Helper()
	st, err := store.Open(dir, append(opts, store.WithGrace(grace))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// create records a new run of prep's job, or a branch from checkpoint
// parent.
func create(t *testing.T, st *store.Store, name string, prep *trainer.Prepared, parent string) store.Run {
	t.Helper()
	rec, err := json.Marshal(store.NewJobRecord(prep))
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.CreateRun(context.Background(), store.Run{Name: name, Model: "view-mlp", Dataset: "blobs",
		Plan: rec, Seed: 42, Version: "test", ParentCheckpoint: parent})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// when acts once when the run reports a step at or past step in stage
// stage.
func when(stage, step int, act func()) func(trainer.Progress) {
	var once sync.Once
	return func(p trainer.Progress) {
		if p.Stage == stage && p.Step >= step {
			once.Do(act)
		}
	}
}

// trainRun trains prep's job to its end (or until control stops it) as
// run id and returns the trainer's result.
func trainRun(t *testing.T, st *store.Store, id string, spec trainer.Spec, report func(trainer.Progress)) trainer.Result {
	t.Helper()
	res, err := st.Train(context.Background(), id, spec, report, beat)
	if err != nil && res.Status != trainer.StatusStopped {
		t.Fatalf("train %s: %v", id, err)
	}
	return res
}

// kind is one of the kinds of run the read model must get right: the
// issue's six, and a run whose stage ran out of patience.
type kind struct {
	name string
	id   string
	job  trainer.Job
	res  trainer.Result // what the trainer said, not read back from the store
	// status is what the run must read as; stage the index of the stage
	// it ends in.
	status trainer.Status
	stage  int
	check  func(t *testing.T, v RunView)
}

// makeRuns trains the six runs into st.
func makeRuns(t *testing.T, st *store.Store) []kind {
	ctx := context.Background()
	var out []kind

	// Finished.
	prep := prepare(t)
	fin := create(t, st, "finished", prep, "")
	res := trainRun(t, st, fin.ID, prep.Spec(), nil)
	out = append(out, kind{name: "finished", id: fin.ID, job: viewJob(), res: res, status: trainer.StatusDone, stage: 3})

	// Stopped in its second stage.
	prep = prepare(t)
	stop := create(t, st, "stopped", prep, "")
	spec := prep.Spec()
	spec.Control = &trainer.Control{}
	res = trainRun(t, st, stop.ID, spec, when(1, 150, spec.Control.Stop))
	out = append(out, kind{name: "stopped", id: stop.ID, job: viewJob(), res: res, status: trainer.StatusStopped, stage: 1})

	// Stopped the same way, then resumed to its end.
	prep = prepare(t)
	resumed := create(t, st, "resumed", prep, "")
	spec = prep.Spec()
	spec.Control = &trainer.Control{}
	trainRun(t, st, resumed.ID, spec, when(1, 150, spec.Control.Stop))
	build := func(store.ResumePoint) (trainer.Spec, error) { return prepare(t).Spec(), nil }
	res, err := st.Resume(ctx, resumed.ID, build, nil, beat)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, kind{name: "resumed", id: resumed.ID, job: viewJob(), res: res, status: trainer.StatusDone, stage: 3,
		check: func(t *testing.T, v RunView) {
			// One point per step across the resume, none twice.
			ss, err := ReadSeries(ctx, st, v.Run.ID, []string{trainer.MetricTrainLoss, trainer.MetricValLoss}, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range ss {
				last := int64(0)
				for _, b := range s.Buckets {
					if b.From <= last || b.N != 1 {
						t.Fatalf("%s: step %d (%d points) after step %d", s.Name, b.From, b.N, last)
					}
					last = b.From
				}
			}
			if got := len(ss[0].Buckets); got != 400 {
				t.Errorf("%s: %d points, want one for each of the 400 steps", ss[0].Name, got)
			}
		}})

	// A branch from the end of the finished run's second stage, going on
	// with the same plan.
	cks, err := st.Checkpoints(ctx, fin.ID)
	if err != nil {
		t.Fatal(err)
	}
	var from store.Checkpoint
	for _, c := range cks {
		if c.Kind == store.KindStageEnd && c.Stage == 1 {
			from = c
		}
	}
	state, err := st.LoadCheckpoint(ctx, from.ID)
	if err != nil {
		t.Fatal(err)
	}
	prep = prepare(t)
	branch := create(t, st, "branch", prep, from.ID)
	spec = prep.Spec()
	spec.Resume = &state
	res = trainRun(t, st, branch.ID, spec, nil)
	out = append(out, kind{name: "branch", id: branch.ID, job: viewJob(), res: res, status: trainer.StatusDone, stage: 3,
		check: func(t *testing.T, v RunView) {
			if !v.Parent.IsBranch() || v.Parent.Run != fin.ID || v.Parent.Step != from.Step || v.Parent.Name != "finished" {
				t.Errorf("parent %+v, want run %s at step %d", v.Parent, fin.ID, from.Step)
			}
			for i, s := range v.Stages {
				if want := i < 2; s.Inherited != want {
					t.Errorf("stage %d inherited %v, want %v", i+1, s.Inherited, want)
				}
			}
		}})

	// A branch from the end of its third stage whose last stage, at a
	// hundred times the rate, never beats the parent: its best is
	// inherited, at a step of the parent's.
	var from3 store.Checkpoint
	for _, c := range cks {
		if c.Kind == store.KindStageEnd && c.Stage == 2 {
			from3 = c
		}
	}
	state, err = st.LoadCheckpoint(ctx, from3.ID)
	if err != nil {
		t.Fatal(err)
	}
	hot := viewJob()
	hot.Preset.LR = 1
	prep = prepareJob(t, hot)
	inherit := create(t, st, "branch, inherited best", prep, from3.ID)
	spec = prep.Spec()
	spec.Resume = &state
	res = trainRun(t, st, inherit.ID, spec, nil)
	out = append(out, kind{name: "branch-inherited", id: inherit.ID, job: hot, res: res, status: trainer.StatusDone, stage: 3,
		check: func(t *testing.T, v RunView) {
			if v.Best.Run != fin.ID || v.Best.Step > from3.Step || v.Best.Checkpoint == "" || v.Best.CheckpointIsBest {
				t.Errorf("best %+v; want the parent's, at or before the branch point %d, in the branch's newest checkpoint", v.Best, from3.Step)
			}
		}})

	// A run whose second stage is skipped (n) 30 steps in.
	prep = prepare(t)
	skip := create(t, st, "skipped", prep, "")
	spec = prep.Spec()
	spec.Control = &trainer.Control{}
	res = trainRun(t, st, skip.ID, spec, when(1, 130, spec.Control.Skip))
	out = append(out, kind{name: "skipped", id: skip.ID, job: viewJob(), res: res, status: trainer.StatusDone, stage: 3,
		check: func(t *testing.T, v RunView) {
			s := v.Stages[1]
			if !s.Skipped || s.End >= s.PlannedStart+s.Planned {
				t.Errorf("stage 2: skipped %v, steps %d–%d; want skipped before its planned end %d", s.Skipped, s.Start, s.End, s.PlannedStart+s.Planned)
			}
			// Steps keep their planned numbers after a skip.
			if next := v.Stages[2]; next.Start != next.PlannedStart {
				t.Errorf("stage 3 starts at step %d, want its planned %d", next.Start, next.PlannedStart)
			}
			if got, want := v.Gaps(), [][2]int64{{s.End, 200}}; !reflect.DeepEqual(got, want) {
				t.Errorf("gaps %v, want %v", got, want)
			}
			// The training loss has no point in the gap, and one at each
			// step either side.
			bs, err := st.Series(ctx, v.Run.ID, trainer.MetricTrainLoss, 0)
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(bs); i++ {
				if d := bs[i].From - bs[i-1].From; d != 1 && (bs[i-1].From != s.End || bs[i].From != 201) {
					t.Errorf("training loss jumps from step %d to %d", bs[i-1].From, bs[i].From)
				}
			}
		}})

	// A killed run: its process dies in the second stage without a word,
	// the last checkpoint is not written, and the status stays running.
	prep = prepare(t)
	killed := create(t, st, "killed", prep, "")
	rec, err := st.Record(ctx, killed.ID, beat)
	if err != nil {
		t.Fatal(err)
	}
	kctx, kill := context.WithCancel(ctx)
	var dead bool
	spec = prep.Spec()
	spec.Checkpoint = func(c trainer.Checkpoint) error {
		if dead {
			return nil
		}
		return rec.Checkpoint(c)
	}
	stopAt := when(1, 170, func() { dead = true; kill() })
	res, _ = trainer.Run(kctx, spec, func(p trainer.Progress) {
		if !dead {
			rec.Report(p)
		}
		stopAt(p)
	})
	rec.Close() // stores what was reported; marks it interrupted
	if err := st.SetStatus(ctx, killed.ID, trainer.StatusRunning, ""); err != nil {
		t.Fatal(err)
	}
	out = append(out, kind{name: "killed", id: killed.ID, job: viewJob(), res: res, status: trainer.StatusInterrupted, stage: 1,
		check: func(t *testing.T, v RunView) {
			if v.Run.Status != trainer.StatusRunning {
				t.Errorf("stored status %s, want running: a reader does not write", v.Run.Status)
			}
			if s := v.Stages[1]; s.End != -1 || s.Start != 100 {
				t.Errorf("stage 2 as run %d–%d, want begun at 100 and not ended", s.Start, s.End)
			}
		}})

	// A stage that runs out of patience: it ends early, and the next one
	// starts where the plan puts it.
	prep = prepareJob(t, patientJob())
	patient := create(t, st, "patient", prep, "")
	res = trainRun(t, st, patient.ID, prep.Spec(), nil)
	out = append(out, kind{name: "patience", id: patient.ID, job: patientJob(), res: res, status: trainer.StatusDone, stage: 1,
		check: func(t *testing.T, v RunView) {
			if s := v.Stages[0]; !s.StoppedEarly || s.End >= s.Planned || v.Stages[1].Start != s.Planned {
				t.Errorf("stage 1 steps %d–%d early %v, stage 2 from %d; want it stopped early before its planned %d, and stage 2 from there",
					s.Start, s.End, s.StoppedEarly, v.Stages[1].Start, s.Planned)
			}
		}})
	return out
}

// bestOfRows is the ground truth of the best from the raw stored rows:
// the lowest validation loss, the first of equal ones, among the run's
// own evaluations up to its newest checkpoint and, for a branch, its
// parent's up to the branch point.
// savedStep is the step of run id's newest checkpoint.
func savedStep(t *testing.T, st *store.Store, id string) int64 {
	t.Helper()
	cks, err := st.Checkpoints(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	saved := int64(-1)
	for _, c := range cks {
		saved = max(saved, c.Step)
	}
	return saved
}

func bestOfRows(t *testing.T, st *store.Store, r store.Run) (step int64, loss float64) {
	t.Helper()
	ctx := context.Background()
	cks, err := st.Checkpoints(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	saved := int64(0)
	for _, c := range cks {
		saved = max(saved, c.Step)
	}
	step, loss = -1, math.Inf(1)
	scan := func(id string, upTo int64) {
		bs, err := st.Series(ctx, id, trainer.MetricValLoss, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range bs {
			if b.From <= upTo && (b.Mean < loss || (b.Mean == loss && b.From < step)) {
				step, loss = b.From, b.Mean
			}
		}
	}
	scan(r.ID, saved)
	if r.ParentRun != "" {
		scan(r.ParentRun, r.ParentStep)
	}
	return step, loss
}

// TestViewEveryKindOfRun runs on both of the store's databases.
func TestViewEveryKindOfRun(t *testing.T) {
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) { testViewEveryKindOfRun(t, d) })
	}
}

func testViewEveryKindOfRun(t *testing.T, dialect string) {
	ctx := context.Background()
	dir, opts := t.TempDir(), []store.Option(nil)
	if dialect == "postgres" {
		dir, opts = storetest.Postgres(t), []store.Option{store.WithCheckpoints(t.TempDir())}
	}
	st := openStoreGrace(t, dir, testGrace, opts...)
	kinds := makeRuns(t, st)
	time.Sleep(testGrace + 100*time.Millisecond) // the killed run's heartbeat goes stale
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			want := prepareJob(t, k.job)
			summary := want.Summary()
			v, err := Read(ctx, st, k.id)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != k.status {
				t.Errorf("status %s, want %s", v.Status, k.status)
			}

			// Stages as planned, floors applied: the gradual plan's four of
			// 12 steps (one epoch) each lengthened to its 100-step floor,
			// the patient plan's first to its 60.
			floor := int64(trainer.DefaultGradualMinSteps)
			if k.name == "patience" {
				floor = 60
			}
			if got, want := v.TotalSteps, int64(want.TotalSteps()); got != want {
				t.Errorf("total steps %d, want the plan's %d", got, want)
			}
			if len(v.Stages) != len(summary.Stages) {
				t.Fatalf("%d stages, want the plan's %d", len(v.Stages), len(summary.Stages))
			}
			for i, s := range v.Stages {
				if s.Planned != int64(summary.Stages[i].Steps) || s.Planned != floor {
					t.Errorf("stage %d planned %d steps, want %d, the floor", i+1, s.Planned, floor)
				}
				if s.PlannedStart != int64(i)*floor {
					t.Errorf("stage %d planned from step %d, want %d", i+1, s.PlannedStart, int64(i)*floor)
				}
			}
			// Stages as run: as the trainer says they ran.
			for i, sr := range k.res.Stages {
				s := v.Stages[i]
				end := int64(sr.EndStep)
				if sr.EndStep <= sr.StartStep {
					end = -1
				}
				if k.name == "killed" && i == 1 {
					end = -1 // it died before the trainer closed the stage
				}
				if s.Start != int64(sr.StartStep) || s.End != end || s.Skipped != sr.Skipped || s.StoppedEarly != sr.StoppedEarly {
					t.Errorf("stage %d: steps %d–%d skipped %v early %v; the trainer says %d–%d skipped %v early %v",
						i+1, s.Start, s.End, s.Skipped, s.StoppedEarly, sr.StartStep, end, sr.Skipped, sr.StoppedEarly)
				}
				if k.name != "killed" && (s.BestValLoss != sr.BestValLoss || s.BestValAcc != sr.BestValAcc) &&
					!(math.IsNaN(sr.BestValLoss) && math.IsNaN(s.BestValLoss)) {
					t.Errorf("stage %d: best %.6f (acc %.4f); the trainer says %.6f (acc %.4f)",
						i+1, s.BestValLoss, s.BestValAcc, sr.BestValLoss, sr.BestValAcc)
				}
			}
			if v.Stage != k.stage {
				t.Errorf("at stage %d of %d, want %d", v.Stage+1, len(v.Stages), k.stage+1)
			}

			// The step reached: the trainer's, and the last stored loss.
			if v.Step != int64(k.res.Steps) {
				t.Errorf("step %d, the trainer stopped at %d", v.Step, k.res.Steps)
			}

			// The best: the trainer's, the raw rows', and the stored best
			// checkpoint's step.
			if saved := savedStep(t, st, v.Run.ID); k.name == "killed" && int64(k.res.BestStep) > saved {
				// It died after storing its best evaluation and before
				// saving its weights: the best is a saved one.
				if v.Best.Step > saved {
					t.Errorf("best at step %d; want the unsaved evaluation at %d left out", v.Best.Step, k.res.BestStep)
				}
			} else if v.Best.Step != int64(k.res.BestStep) || v.Best.ValLoss != k.res.BestValLoss || v.Best.ValAcc != k.res.BestValAcc {
				t.Errorf("best %.6f (acc %.4f) at step %d; the trainer says %.6f (acc %.4f) at step %d",
					v.Best.ValLoss, v.Best.ValAcc, v.Best.Step, k.res.BestValLoss, k.res.BestValAcc, k.res.BestStep)
			}
			if step, loss := bestOfRows(t, st, v.Run); v.Best.Step != step || v.Best.ValLoss != loss {
				t.Errorf("best %.6f at step %d; the stored rows say %.6f at step %d", v.Best.ValLoss, v.Best.Step, loss, step)
			}
			if v.Best.Checkpoint == "" {
				t.Errorf("best at step %d has no checkpoint", v.Best.Step)
			} else if c, err := st.Checkpoint(ctx, v.Best.Checkpoint); err != nil {
				t.Error(err)
			} else if v.Best.CheckpointIsBest && (c.Kind != store.KindBest || c.Step != v.Best.Step) {
				t.Errorf("best checkpoint is %s at step %d, want best at step %d", c.Kind, c.Step, v.Best.Step)
			} else if loop, err := st.CheckpointLoop(c); err != nil {
				t.Error(err)
			} else if int64(loop.BestStep) != v.Best.Step {
				t.Errorf("the best checkpoint holds the best of step %d, want %d", loop.BestStep, v.Best.Step)
			}

			// The gauge: before as the trainer measured it, at best and at
			// the end as stored.
			if v.SourceAccBefore != k.res.SourceAccBefore || math.IsNaN(v.SourceAccBefore) {
				t.Errorf("source acc before %v, the trainer says %v", v.SourceAccBefore, k.res.SourceAccBefore)
			}
			if math.IsNaN(v.SourceAccBest) || math.IsNaN(v.SourceAccEnd) {
				t.Errorf("source acc at best %v, at the end %v; want both measured", v.SourceAccBest, v.SourceAccEnd)
			}
			if k.check != nil {
				k.check(t, v)
			}
		})
	}

	// A read-only store reads the same: the same statuses, stages and
	// best, the killed run interrupted in both.
	t.Run("read-only", func(t *testing.T) {
		ro, err := store.OpenReadOnly(dir, append(opts, store.WithGrace(testGrace))...)
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		a, err := List(ctx, st, store.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := List(ctx, ro, store.RunFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(kinds) || len(b) != len(a) {
			t.Fatalf("%d runs writable, %d read-only, want %d", len(a), len(b), len(kinds))
		}
		for i := range a {
			a[i].Live, b[i].Live = store.Liveness{}, store.Liveness{} // ages differ by the time between the reads
			if !reflect.DeepEqual(normal(a[i]), normal(b[i])) {
				t.Errorf("run %s: writable %+v\nread-only %+v", a[i].Run.Name, a[i], b[i])
			}
		}
		got, err := List(ctx, ro, store.RunFilter{Status: []trainer.Status{trainer.StatusInterrupted}})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Run.Name != "killed" {
			t.Errorf("interrupted runs: %d, want the killed one", len(got))
		}
		got, err = List(ctx, ro, store.RunFilter{Status: []trainer.Status{trainer.StatusRunning}})
		if err != nil || len(got) != 0 {
			t.Errorf("running runs: %d (%v), want none: the killed one is stale", len(got), err)
		}
	})
}

// normal makes NaN figures comparable with reflect.DeepEqual.
func normal(v RunView) RunView {
	fix := func(f *float64) {
		if math.IsNaN(*f) {
			*f = -999
		}
	}
	for _, f := range []*float64{&v.MaxValAcc, &v.SourceAccBefore, &v.SourceAccBest, &v.SourceAccEnd,
		&v.Best.ValLoss, &v.Best.ValAcc, &v.Best.SourceAcc} {
		fix(f)
	}
	for i := range v.Stages {
		s := &v.Stages[i]
		for _, f := range []*float64{&s.BestValLoss, &s.BestValAcc, &s.SourceAccStart, &s.SourceAccEnd} {
			fix(f)
		}
	}
	return v
}

// A live run is running while it beats, "interrupted?" with its countdown
// once its heartbeat ages, and interrupted once it is stale, judged alike by
// a writable and a read-only store, and none of it is written.
func TestViewLiveness(t *testing.T) {
	// Long enough that a busy machine's pauses between sleeping and
	// reading (a few hundred ms at worst) stay inside each phase.
	const grace = 2 * time.Second
	ctx := context.Background()
	dir := t.TempDir()
	st := openStoreGrace(t, dir, grace)
	r := create(t, st, "silent", prepare(t), "")
	ro, err := store.OpenReadOnly(dir, store.WithGrace(grace))
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	steps := []struct {
		after    time.Duration // since the heartbeat
		status   trainer.Status
		doubtful bool
	}{
		{0, trainer.StatusRunning, false},
		{grace * 3 / 4, trainer.StatusRunning, true},
		{grace + 100*time.Millisecond, trainer.StatusInterrupted, false},
	}
	for _, s := range steps {
		time.Sleep(time.Until(r.Heartbeat.Add(s.after)))
		for name, x := range map[string]*store.Store{"writable": st, "read-only": ro} {
			v, err := Read(ctx, x, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if v.Status != s.status || v.Live.Doubtful != s.doubtful {
				t.Errorf("%s, %v after the heartbeat: %s (doubtful %v), want %s (doubtful %v)",
					name, s.after, v.Status, v.Live.Doubtful, s.status, s.doubtful)
			}
			if s.doubtful && (v.Live.Left <= 0 || v.Live.Left > grace/2) {
				t.Errorf("%s: %v left, want the countdown to the stale heartbeat", name, v.Live.Left)
			}
			if v.Run.Status != trainer.StatusRunning {
				t.Errorf("%s: stored status %s, want running", name, v.Run.Status)
			}
		}
	}
	// The store's own check agrees: a delete of the stale run is allowed.
	if err := st.Delete(ctx, r.ID); err != nil {
		t.Errorf("delete once stale: %v", err)
	}
}

// A reader never writes: the database and its log are byte for byte the
// same after reading every run, the stale one included.
func TestViewReaderDoesNotWrite(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st := openStore(t, dir)
	prep := prepare(t)
	r := create(t, st, "stale", prep, "")
	res := trainRun(t, st, r.ID, prep.Spec(), nil)
	if res.Status != trainer.StatusDone {
		t.Fatalf("status %s", res.Status)
	}
	silent := create(t, st, "silent", prepare(t), "")
	time.Sleep(testGrace + 50*time.Millisecond)
	files := func() map[string][]byte {
		out := map[string][]byte{}
		for _, name := range []string{"thaw.db", "thaw.db-wal"} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			out[name] = b
		}
		return out
	}
	before := files()
	for range 3 {
		if _, err := List(ctx, st, store.RunFilter{}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{r.ID, silent.ID} {
			if _, err := Read(ctx, st, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	after := files()
	for name := range before {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s changed while reading (%d bytes, then %d)", name, len(before[name]), len(after[name]))
		}
	}
	got, err := st.Run(ctx, silent.ID)
	if err != nil || got.Status != trainer.StatusRunning {
		t.Errorf("stored status of the stale run: %s (%v), want running", got.Status, err)
	}
}
