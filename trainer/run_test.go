package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// blobs is an easy, deterministic classification problem: k Gaussian
// clusters in d dimensions, n samples per class.
func blobs(name string, k, d, n int, seed uint64) *Dataset {
	rng := rand.New(rand.NewPCG(seed, 99))
	centers := make([][]float64, k)
	for c := range centers {
		centers[c] = make([]float64, d)
		for j := range centers[c] {
			centers[c][j] = 2.5 * rng.NormFloat64()
		}
	}
	ds := &Dataset{Name: name, Shape: []int{d}}
	for i := 0; i < n*k; i++ {
		c := i % k
		for j := 0; j < d; j++ {
			ds.X = append(ds.X, float32(centers[c][j]+rng.NormFloat64()))
		}
		ds.Y = append(ds.Y, c)
	}
	for c := 0; c < k; c++ {
		ds.Classes = append(ds.Classes, fmt.Sprintf("c%d", c))
	}
	return ds
}

// runMLPConfig is a four-block MLP: fc1, fc2, fc3, head.
func runMLPConfig(d, k int) *Config {
	cfg := &Config{Name: "run-mlp", InputShape: []int{d}, Blocks: []BlockConfig{
		{Name: "fc1", Layers: []LayerConfig{{Type: "linear", Name: "fc1", InFeatures: d, OutFeatures: 32}, {Type: "relu"}}},
		{Name: "fc2", Layers: []LayerConfig{{Type: "linear", Name: "fc2", InFeatures: 32, OutFeatures: 32}, {Type: "batchnorm1d", Name: "bn2", NumFeatures: 32}, {Type: "relu"}}},
		{Name: "fc3", Layers: []LayerConfig{{Type: "linear", Name: "fc3", InFeatures: 32, OutFeatures: 16}, {Type: "relu"}, {Type: "dropout", P: 0.1}}},
		{Name: "head", Layers: []LayerConfig{{Type: "linear", Name: "head", InFeatures: 16, OutFeatures: k}}},
	}}
	for c := 0; c < k; c++ {
		cfg.Classes = append(cfg.Classes, fmt.Sprintf("c%d", c))
	}
	return cfg
}

// runFixture builds a model and a train/val split for run tests.
func runFixture(t *testing.T, preset string, lr float64, epochs int) Spec {
	t.Helper()
	cfg := runMLPConfig(8, 4)
	m, err := New[float32](cfg, rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	ds := blobs("blobs", 4, 8, 60, 3)
	train, val, err := ds.Split(rand.New(rand.NewPCG(1, 1)), 0.25)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Preset(preset, cfg.BlockNames(), lr, epochs)
	if err != nil {
		t.Fatal(err)
	}
	rp, err := plan.Resolve(cfg.BlockNames())
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Model: m, Plan: rp, Train: train, Val: val, Seed: 42, BatchSize: 16}
}

// collect gathers every report of a run.
type collect struct{ ps []Progress }

func (c *collect) report(p Progress) {
	p.Losses = slices.Clone(p.Losses)
	p.Blocks = slices.Clone(p.Blocks)
	c.ps = append(c.ps, p)
}

// stepLosses joins the per-step losses of every report, in step order.
func (c *collect) stepLosses(t *testing.T) []float64 {
	t.Helper()
	var out []float64
	start := -1
	for _, p := range c.ps {
		if len(p.Losses) == 0 {
			continue
		}
		if start < 0 {
			start = p.FirstStep
		}
		if p.FirstStep != start+len(out) {
			t.Fatalf("report at step %d starts its losses at %d, want %d", p.Step, p.FirstStep, start+len(out))
		}
		out = append(out, p.Losses...)
	}
	return out
}

func (c *collect) evals() []Progress {
	var out []Progress
	for _, p := range c.ps {
		if p.Event == EventEval {
			out = append(out, p)
		}
	}
	return out
}

func TestRunGradualImproves(t *testing.T) {
	spec := runFixture(t, "gradual", 3e-3, 3)
	var c collect
	res, err := Run(context.Background(), spec, c.report)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != StatusDone {
		t.Fatalf("status %s, want done", res.Status)
	}
	if got, want := len(res.Stages), 4; got != want {
		t.Fatalf("%d stages, want %d", got, want)
	}
	if got, want := res.Steps, spec.Plan.Len(StepsPerEpoch(spec.Train.Len(), 16)); got != want {
		t.Errorf("ran %d steps, want %d", got, want)
	}
	first, last := res.Stages[0].BestValAcc, res.Stages[len(res.Stages)-1].BestValAcc
	if !(last > first) || last < 0.9 {
		t.Errorf("validation accuracy went from %.3f (stage 1) to %.3f (last stage), want a rise to at least 0.9", first, last)
	}
	if got := len(c.stepLosses(t)); got != res.Steps {
		t.Errorf("reports carried %d step losses, want one per step (%d)", got, res.Steps)
	}
	// gradual trains every block by the end: nothing is left to audit.
	if len(res.Audit.Checked) != 0 {
		t.Errorf("audit checked %v, want nothing (every block trained)", res.Audit.Checked)
	}
	// Stage boundaries are contiguous.
	for i := 1; i < len(res.Stages); i++ {
		if res.Stages[i].StartStep != res.Stages[i-1].EndStep {
			t.Errorf("stage %d starts at %d, stage %d ended at %d", i+1, res.Stages[i].StartStep, i, res.Stages[i-1].EndStep)
		}
	}
	if res.Best == nil || res.BestStep <= 0 {
		t.Errorf("no best weights kept (best step %d)", res.BestStep)
	}
}

func TestRunHeadAudit(t *testing.T) {
	spec := runFixture(t, "head", 1e-2, 2)
	before := copyWeights(spec.Model)
	res, err := Run(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"fc1", "fc2", "fc3"}; !slices.Equal(res.Audit.Checked, want) {
		t.Errorf("audit checked %v, want %v", res.Audit.Checked, want)
	}
	if !res.Audit.Passed() {
		t.Errorf("audit found changed blocks %v", res.Audit.Changed)
	}
	// The audit is only as good as its comparison: check the head moved
	// and the rest (BatchNorm running statistics included) did not.
	after := copyWeights(spec.Model)
	ps := spec.Model.Params()
	for i, p := range ps {
		moved := !bitEqual(before[i], after[i])
		isHead := i >= len(ps)-2
		if moved != isHead {
			t.Errorf("%s moved=%v, want %v", p.Name, moved, isHead)
		}
	}
}

func TestRunDeterministic(t *testing.T) {
	run := func() (*collect, Result, [][]float32) {
		spec := runFixture(t, "gradual", 3e-3, 1)
		spec.EvalEvery = 5
		var c collect
		res, err := Run(context.Background(), spec, c.report)
		if err != nil {
			t.Fatal(err)
		}
		return &c, res, copyWeights(spec.Model)
	}
	c1, r1, w1 := run()
	c2, r2, w2 := run()
	l1, l2 := c1.stepLosses(t), c2.stepLosses(t)
	if !slices.Equal(l1, l2) {
		t.Errorf("step losses differ between two runs with the same seed")
	}
	e1, e2 := c1.evals(), c2.evals()
	if len(e1) != len(e2) {
		t.Fatalf("%d and %d evaluations", len(e1), len(e2))
	}
	for i := range e1 {
		a, b := e1[i], e2[i]
		if a.Step != b.Step || a.ValLoss != b.ValLoss || a.ValAcc != b.ValAcc {
			t.Errorf("evaluation %d: step %d loss %v acc %v vs step %d loss %v acc %v", i, a.Step, a.ValLoss, a.ValAcc, b.Step, b.ValLoss, b.ValAcc)
		}
		for j := range a.Blocks {
			if a.Blocks[j].Drift != b.Blocks[j].Drift || a.Blocks[j].GradNorm != b.Blocks[j].GradNorm {
				t.Errorf("evaluation %d, block %s: diagnostics differ", i, a.Blocks[j].Name)
			}
		}
	}
	for i := range w1 {
		if !bitEqual(w1[i], w2[i]) {
			t.Errorf("parameter %d differs between runs", i)
		}
	}
	if r1.BestValLoss != r2.BestValLoss || r1.FinalValAcc != r2.FinalValAcc {
		t.Errorf("results differ: %v/%v vs %v/%v", r1.BestValLoss, r1.FinalValAcc, r2.BestValLoss, r2.FinalValAcc)
	}
	// A different seed gives a different run, or the test above proves
	// nothing.
	spec := runFixture(t, "gradual", 3e-3, 1)
	spec.Seed = 43
	var c3 collect
	if _, err := Run(context.Background(), spec, c3.report); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(l1, c3.stepLosses(t)) {
		t.Errorf("seed 43 gave the same losses as seed 42")
	}
}

func TestRunCancelWithinOneBatch(t *testing.T) {
	spec := runFixture(t, "full", 1e-3, 50)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const at = 7
	cancelledAt := -1
	spec.ReportEvery = 1 // report every step
	res, err := Run(ctx, spec, func(p Progress) {
		if p.Event == EventStep && p.Step >= at && cancelledAt < 0 {
			cancelledAt = p.Step
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if res.Status != StatusStopped {
		t.Errorf("status %s, want stopped", res.Status)
	}
	if res.Steps > cancelledAt+1 {
		t.Errorf("cancelled at step %d, run went on to step %d", cancelledAt, res.Steps)
	}
}

func TestRunDiverges(t *testing.T) {
	spec := runFixture(t, "full", 1e6, 3)
	res, err := Run(context.Background(), spec, nil)
	if !errors.Is(err, ErrDiverged) {
		t.Fatalf("err = %v, want ErrDiverged", err)
	}
	if res.Status != StatusDiverged {
		t.Errorf("status %s, want diverged", res.Status)
	}
	for _, p := range spec.Model.Params() {
		if !allFinite(p.Value.Data) {
			t.Errorf("%s is not finite after divergence", p.Name)
		}
	}
}

func TestRunControls(t *testing.T) {
	spec := runFixture(t, "gradual", 3e-3, 2)
	ctl := &Control{}
	spec.Control = ctl
	spec.ReportEvery = 1
	var statuses []Status
	skipped := false
	res, err := Run(context.Background(), spec, func(p Progress) {
		if len(statuses) == 0 || statuses[len(statuses)-1] != p.Status {
			statuses = append(statuses, p.Status)
		}
		switch {
		case p.Step == 3 && p.Status == StatusRunning && !slices.Contains(statuses, StatusPaused):
			ctl.Pause()
		case p.Status == StatusPaused:
			// Resume from another goroutine while the run waits.
			go ctl.Resume()
		case p.Stage == 1 && !skipped:
			skipped = true
			ctl.Skip()
		case p.Stage == 2:
			ctl.Stop()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(statuses, StatusPaused) {
		t.Errorf("statuses %v: never paused", statuses)
	}
	if res.Status != StatusStopped {
		t.Errorf("status %s, want stopped", res.Status)
	}
	if len(res.Stages) != 3 || !res.Stages[1].Skipped {
		t.Fatalf("stages %+v: want stage 2 skipped and the run stopped in stage 3", res.Stages)
	}
	if got, full := res.Stages[1].EndStep-res.Stages[1].StartStep, spec.Plan.Stages[1].Len(StepsPerEpoch(spec.Train.Len(), 16)); got >= full {
		t.Errorf("skipped stage ran %d of %d steps", got, full)
	}
}

// TestRunLossStepsAfterSkip checks that the training losses a report carries
// are placed at the steps that produced them when a stage was skipped: the
// first loss after the skip is the next stage's first step, and the last
// loss of every report is the report's own step.
func TestRunLossStepsAfterSkip(t *testing.T) {
	spec := runFixture(t, "gradual", 3e-3, 2)
	ctl := &Control{}
	spec.Control = ctl
	spec.ReportEvery = 1
	skipped := false
	var reports []Progress
	res, err := Run(context.Background(), spec, func(p Progress) {
		reports = append(reports, p)
		if p.Stage == 1 && !skipped && p.Step > 0 {
			skipped = true
			ctl.Skip()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stages) < 3 || !res.Stages[1].Skipped {
		t.Fatalf("stages %+v: want stage 2 skipped", res.Stages)
	}
	start3 := res.Stages[2].StartStep
	sawStage3 := false
	for _, p := range reports {
		if len(p.Losses) == 0 {
			continue
		}
		if last := p.FirstStep + len(p.Losses); last != p.Step {
			t.Errorf("report at step %d (stage %d): losses cover steps %d..%d, want them to end at the report's step",
				p.Step, p.Stage+1, p.FirstStep, last-1)
		}
		if p.Stage == 2 && !sawStage3 {
			sawStage3 = true
			if p.FirstStep != start3 {
				t.Errorf("first report of stage 3: losses start at step %d, want the stage's start %d", p.FirstStep, start3)
			}
		}
	}
	if !sawStage3 {
		t.Fatal("no report from stage 3")
	}
}

func TestRunResumeMatchesUninterrupted(t *testing.T) {
	t.Run("same optimizer", func(t *testing.T) { testResumeAtStage2(t, func(*Spec) {}) })
	// Stage 3 starts with a fresh optimizer of another kind: resumed at
	// its start, it must not get stage 2's state.
	t.Run("optimizer changes", func(t *testing.T) {
		testResumeAtStage2(t, func(s *Spec) {
			s.Plan.Stages[2].Optimizer = OptimizerConfig{Kind: OptimizerSGD, Momentum: 0.9}.WithDefaults()
		})
	})
}

// testResumeAtStage2 resumes a gradual run, changed by tweak, from the end
// of its stage 2 and checks it ends as the uninterrupted run does.
func testResumeAtStage2(t *testing.T, tweak func(*Spec)) {
	// Uninterrupted, keeping every checkpoint.
	spec := runFixture(t, "gradual", 3e-3, 2)
	tweak(&spec)
	var ckpts []Checkpoint
	spec.Checkpoint = func(c Checkpoint) error { ckpts = append(ckpts, c); return nil }
	var full collect
	want, err := Run(context.Background(), spec, full.report)
	if err != nil {
		t.Fatal(err)
	}
	wantW := copyWeights(spec.Model)
	// Resume from the end of stage 2.
	var from *Checkpoint
	for i := range ckpts {
		if ckpts[i].Kind == CheckpointStageEnd && ckpts[i].Stage == 1 {
			from = &ckpts[i]
		}
	}
	if from == nil {
		t.Fatal("no stage-end checkpoint for stage 2")
	}
	spec2 := runFixture(t, "gradual", 3e-3, 2)
	tweak(&spec2)
	spec2.Resume = from
	var resumed collect
	got, err := Run(context.Background(), spec2, resumed.report)
	if err != nil {
		t.Fatal(err)
	}
	gotW := copyWeights(spec2.Model)
	for i := range wantW {
		if !bitEqual(gotW[i], wantW[i]) {
			t.Errorf("parameter %s differs after resume", spec.Model.Params()[i].Name)
		}
	}
	if got.BestValLoss != want.BestValLoss || got.BestStep != want.BestStep {
		t.Errorf("best %v at %d, want %v at %d", got.BestValLoss, got.BestStep, want.BestValLoss, want.BestStep)
	}
	wl := full.stepLosses(t)[from.Step:]
	rl := resumed.stepLosses(t)
	if !slices.Equal(rl, wl) {
		t.Errorf("resumed losses differ from the uninterrupted run's")
	}
}

func TestRunEarlyStopping(t *testing.T) {
	spec := runFixture(t, "full", 1e-9, 20) // too small to improve
	spec.Plan.Stages[0].Patience = 2
	res, err := Run(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Stages[0].StoppedEarly {
		t.Errorf("stage did not stop early: %+v", res.Stages[0])
	}
	spe := StepsPerEpoch(spec.Train.Len(), 16)
	if res.Steps >= 20*spe {
		t.Errorf("ran %d steps, the full stage is %d", res.Steps, 20*spe)
	}
}

func TestRunForgettingGauge(t *testing.T) {
	// Pretrain on a 4-class source task, then fine-tune on a 3-class target
	// with the source head kept aside.
	cfg := runMLPConfig(8, 4)
	src := blobs("source", 4, 8, 60, 5)
	srcTrain, srcVal, _ := src.Split(rand.New(rand.NewPCG(2, 2)), 0.25)
	m, _ := New[float32](cfg, rand.New(rand.NewPCG(7, 7)))
	pre, _ := PresetFull(cfg.BlockNames(), 3e-3, 4).Resolve(cfg.BlockNames())
	if _, err := Run(context.Background(), Spec{Model: m, Plan: pre, Train: srcTrain, Val: srcVal, Seed: 1}, nil); err != nil {
		t.Fatal(err)
	}
	head := m.CloneHead()
	tgt := blobs("target", 3, 8, 60, 11)
	tgt.Classes = []string{"t0", "t1", "t2"}
	if err := m.ReplaceHead(tgt.Classes, rand.New(rand.NewPCG(3, 3))); err != nil {
		t.Fatal(err)
	}
	train, val, _ := tgt.Split(rand.New(rand.NewPCG(4, 4)), 0.25)
	plan, _ := PresetFull(m.Config.BlockNames(), 3e-2, 4).Resolve(m.Config.BlockNames())
	var c collect
	res, err := Run(context.Background(), Spec{Model: m, Plan: plan, Train: train, Val: val, Source: srcVal, SourceHead: head, Seed: 1}, c.report)
	if err != nil {
		t.Fatal(err)
	}
	if !(res.SourceAccBefore > 0.9) {
		t.Errorf("source accuracy before fine-tuning %.3f, want > 0.9", res.SourceAccBefore)
	}
	if !(res.SourceAccAfter < res.SourceAccBefore) {
		t.Errorf("full fine-tuning at a high rate left source accuracy at %.3f (from %.3f): the gauge shows no forgetting", res.SourceAccAfter, res.SourceAccBefore)
	}
	for _, p := range c.evals() {
		if math.IsNaN(p.SourceAcc) {
			t.Errorf("evaluation at step %d has no source accuracy", p.Step)
		}
	}
}

func TestLoopStateJSON(t *testing.T) {
	in := LoopState{Step: 12, BestStep: -1, BestValLoss: math.Inf(1), BestValAcc: math.NaN(),
		StageBestLoss: 0.25, SinceBest: 2, EverTrainable: []string{"head"}, SourceAccBefore: 0.875,
		Stages: []StageResult{{Label: "stage 1: head", Trainable: []string{"head"}, StartStep: 0, EndStep: 12,
			BestValLoss: 0.1 + 0.2, BestValAcc: math.NaN(), StoppedEarly: true}}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out LoopState
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	same := func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
	}
	if out.Step != in.Step || out.BestStep != in.BestStep || !same(out.BestValLoss, in.BestValLoss) ||
		!same(out.BestValAcc, in.BestValAcc) || !same(out.StageBestLoss, in.StageBestLoss) ||
		!same(out.SourceAccBefore, in.SourceAccBefore) || !slices.Equal(out.EverTrainable, in.EverTrainable) {
		t.Errorf("round trip: got %+v, want %+v (JSON %s)", out, in, b)
	}
	if len(out.Stages) != 1 || !same(out.Stages[0].BestValLoss, 0.1+0.2) || !math.IsNaN(out.Stages[0].BestValAcc) || !out.Stages[0].StoppedEarly {
		t.Errorf("stage round trip: got %+v (JSON %s)", out.Stages, b)
	}
}
