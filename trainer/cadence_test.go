package trainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestEvalInterval(t *testing.T) {
	for _, tc := range []struct {
		name          string
		stage         ResolvedStage
		spe, interval int
	}{
		// A few-shot stage: 100 one-step epochs, 20 evaluations.
		{"floor of one-step epochs", ResolvedStage{Epochs: 1, MinSteps: 100, Evals: 20}, 1, 5},
		// ⌈101/20⌉ = 6: the last evaluation before the end is at 96.
		{"rounds up", ResolvedStage{Epochs: 1, MinSteps: 101, Evals: 20}, 1, 6},
		{"in steps", ResolvedStage{Steps: 40, Evals: 20}, 3, 3},
		// A large set: three epochs of 50 steps, evaluated at each end.
		{"long epochs", ResolvedStage{Epochs: 3, Evals: 20}, 50, 50},
		{"many epochs", ResolvedStage{Epochs: 30, Evals: 20}, 10, 15},
		// A stage without Evals keeps the epoch rule: no interval.
		{"no evals", ResolvedStage{Epochs: 1, MinSteps: 100}, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.stage.EvalInterval(tc.spe); got != tc.interval {
				t.Errorf("got %d, want %d", got, tc.interval)
			}
		})
	}
}

// cadenceSpec is runFixture's model and data (180 training samples: 3
// steps an epoch of 64) with plan p.
func cadenceSpec(t *testing.T, p Plan) Spec {
	t.Helper()
	spec := runFixture(t, "full", 3e-3, 1)
	rp, err := p.Resolve(spec.Model.Config.BlockNames())
	if err != nil {
		t.Fatal(err)
	}
	spec.Plan, spec.BatchSize = rp, 64
	return spec
}

func evalSteps(c *collect) []int {
	var out []int
	for _, p := range c.evals() {
		out = append(out, p.Step)
	}
	return out
}

// TestRunCadence checks the steps a run evaluates at: on each stage's
// cadence counted from its start, at its end, and, for a stage without
// one, at every epoch's end as before.
func TestRunCadence(t *testing.T) {
	p := Plan{LR: 1e-3, Stages: []Stage{
		// max(3, ⌈23/5⌉) = 5: 5, 10, 15, 20 and the end, 23.
		{Train: []string{"head"}, Steps: 23, Evals: 5},
		// 4 epochs of 3, max(3, ⌈12/2⌉) = 6: 29 and the end, 35.
		{Train: []string{"all"}, Epochs: 4, Evals: 2},
		// No cadence: the epoch ends 36 and 39, and the end, 42.
		{Train: []string{"all"}, Steps: 7},
	}}
	spec := cadenceSpec(t, p)
	var c collect
	if _, err := Run(context.Background(), spec, c.report); err != nil {
		t.Fatal(err)
	}
	want := []int{5, 10, 15, 20, 23, 29, 35, 36, 39, 42}
	if got := evalSteps(&c); !slices.Equal(got, want) {
		t.Errorf("evaluated at %v, want %v", got, want)
	}
	// Evaluations, which the Plan screen shows, counts what the run did:
	// 5 in the first stage, 2 in the second.
	for i, n := range []int{5, 2} {
		if got := spec.Plan.Stages[i].Evaluations(3); got != n {
			t.Errorf("stage %d: Evaluations %d, the run evaluated %d times", i+1, got, n)
		}
	}
	if got := spec.Plan.Stages[2].Evaluations(3); got != 0 {
		t.Errorf("a stage without Evals: Evaluations %d, want 0", got)
	}
	// --eval-every replaces the cadence by every 4 steps of the plan; the
	// stage without one keeps its epoch ends as well.
	spec = cadenceSpec(t, p)
	spec.EvalEvery = 4
	c = collect{}
	if _, err := Run(context.Background(), spec, c.report); err != nil {
		t.Fatal(err)
	}
	want = []int{4, 8, 12, 16, 20, 23, 24, 28, 32, 35, 36, 39, 40, 42}
	if got := evalSteps(&c); !slices.Equal(got, want) {
		t.Errorf("--eval-every 4: evaluated at %v, want %v", got, want)
	}
}

// TestRunPatienceStops checks that a stage stops after its patience of
// evaluations on its cadence, that the evaluation that stops it says so,
// and that the stage's end is the step it stopped at.
func TestRunPatienceStops(t *testing.T) {
	// A rate too small to improve the loss: the stage stops at the
	// patience's end, long before its 60 steps.
	p := Plan{LR: 1e-12, Patience: 2, Stages: []Stage{
		{Train: []string{"all"}, Steps: 60, Evals: 20},
		{Train: []string{"head"}, Steps: 6, Evals: 2},
	}}
	spec := cadenceSpec(t, p)
	var c collect
	res, err := Run(context.Background(), spec, c.report)
	if err != nil {
		t.Fatal(err)
	}
	s0 := res.Stages[0]
	if !s0.StoppedEarly || s0.EndStep >= 60 || s0.EndStep%3 != 0 {
		t.Fatalf("stage 1 %+v: want it stopped early on its cadence of 3 steps", s0)
	}
	var stops []int
	for _, e := range c.evals() {
		if e.StoppedEarly {
			stops = append(stops, e.Step)
		}
	}
	if !slices.Equal(stops, []int{s0.EndStep}) {
		t.Errorf("evaluations marked as stopping at %v, want [%d]", stops, s0.EndStep)
	}
	if res.Stages[1].StartStep != 60 {
		t.Errorf("stage 2 starts at %d, want its planned 60", res.Stages[1].StartStep)
	}
}

// TestOldJobResolvesAsBefore checks that jobs stored before stages had a
// cadence and presets a patience resolve to what they ran then: a preset
// ref without cadence expands to the epoch rule and the old patience, a
// stored plan without evals keeps the epoch rule, while a ref made now
// gets the presets' cadence.
func TestOldJobResolvesAsBefore(t *testing.T) {
	blocks := runMLPConfig(8, 4).BlockNames()
	resolve := func(t *testing.T, js string) *ResolvedPlan {
		t.Helper()
		var j Job
		if err := json.Unmarshal([]byte(js), &j); err != nil {
			t.Fatal(err)
		}
		_, rp, err := j.ResolvePlan(blocks)
		if err != nil {
			t.Fatal(err)
		}
		return rp
	}
	for _, tc := range []struct {
		name, job       string
		evals, patience int
	}{
		{"gradual ref", `{"model":"m","data":{"path":"d"},"plan":{"stages":null},"preset":{"name":"gradual"},"val_split":0.2,"batch":32,"seed":1}`, 0, 0},
		{"head ref", `{"model":"m","data":{"path":"d"},"plan":{"stages":null},"preset":{"name":"head","steps":30},"val_split":0.2,"batch":32,"seed":1}`, 0, 0},
		{"chain-thaw ref", `{"model":"m","data":{"path":"d"},"plan":{"stages":null},"preset":{"name":"chain-thaw"},"val_split":0.2,"batch":32,"seed":1}`, 0, 5},
		// A prepared job holds its preset's expansion, as stored before.
		{"stored expansion", `{"model":"m","data":{"path":"d"},"plan":{"name":"gradual","lr":0.01,"epochs":1,"min_steps":100,"schedule":"slanted-triangular","lr_factor":2.6,"stages":[{"train":["head"]},{"train":["top:2"]}]},"preset":{"name":"gradual"},"val_split":0.2,"batch":32,"seed":1}`, 0, 0},
		{"new gradual ref", `{"model":"m","data":{"path":"d"},"plan":{"stages":null},"preset":{"name":"gradual","cadence":true},"val_split":0.2,"batch":32,"seed":1}`, DefaultEvals, DefaultPatience},
		{"new chain-thaw ref", `{"model":"m","data":{"path":"d"},"plan":{"stages":null},"preset":{"name":"chain-thaw","cadence":true},"val_split":0.2,"batch":32,"seed":1}`, 0, DefaultChainThawPatience},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i, s := range resolve(t, tc.job).Stages {
				if s.Evals != tc.evals || s.Patience != tc.patience {
					t.Errorf("stage %d: evals %d, patience %d; want %d, %d", i+1, s.Evals, s.Patience, tc.evals, tc.patience)
				}
			}
		})
	}

	// A legacy ref stays legacy through JSON, as the store writes it back.
	var legacy Job
	json.Unmarshal([]byte(`{"preset":{"name":"gradual","lr":0.01}}`), &legacy)
	again, _ := json.Marshal(legacy)
	var back Job
	json.Unmarshal(again, &back)
	if !legacy.Preset.Legacy || !back.Preset.Legacy || back.Preset.LR != 0.01 {
		t.Errorf("a stored ref %+v, written back as %s, read as %+v: want legacy throughout", legacy.Preset, again, back.Preset)
	}

	// SetPlan makes refs with the cadence, and they keep it through JSON.
	var j Job
	if err := j.SetPlan("gradual", 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(j)
	if !strings.Contains(string(b), `"cadence":true`) {
		t.Errorf("a new job's JSON %s has no cadence", b)
	}

	// An old job runs as it did: evaluated at every epoch's end. Its run
	// must be the same bits as the spec built with the rule spelled out
	// the old way (every evaluation on an epoch end).
	var old Job
	if err := json.Unmarshal([]byte(`{"model":"run-mlp","data":{"path":"blobs"},"plan":{"stages":null},"preset":{"name":"gradual","steps":7},"val_split":0.3,"batch":16,"seed":5}`), &old); err != nil {
		t.Fatal(err)
	}
	prep, err := old.Prepare(jobInputs(t, "c0", "c1", "c2", "c3"))
	if err != nil {
		t.Fatal(err)
	}
	var c collect
	if _, err := Run(context.Background(), prep.Spec(), c.report); err != nil {
		t.Fatal(err)
	}
	spe, total := prep.StepsPerEpoch(), prep.TotalSteps()
	var want []int
	for s := 1; s <= total; s++ {
		if s%spe == 0 || s%7 == 0 {
			want = append(want, s)
		}
	}
	if got := evalSteps(&c); !slices.Equal(got, want) {
		t.Errorf("old job (%d steps an epoch) evaluated at %v, want every epoch's end and each stage's: %v", spe, got, want)
	}
}

func TestFreezeBelow(t *testing.T) {
	p := PresetGradual(blocks4, 0.01, 1)
	f := 2.6
	for _, tc := range []struct {
		block string
		train []string
		mult  []float64
	}{
		{"head", []string{"head"}, []float64{0, 0, 0, 1}},
		{"fc1", []string{"fc1", "head"}, []float64{0, 0, 1 / f, 1}},
		{"conv2", []string{"conv2", "fc1", "head"}, []float64{0, 1 / (f * f), 1 / f, 1}},
		{"conv1", blocks4, []float64{1 / (f * f * f), 1 / (f * f), 1 / f, 1}},
	} {
		t.Run(tc.block, func(t *testing.T) {
			got, err := p.FreezeBelow(blocks4, tc.block)
			if err != nil {
				t.Fatal(err)
			}
			rp, err := got.Resolve(blocks4)
			if err != nil {
				t.Fatal(err)
			}
			s := rp.Stages[0]
			if !slices.Equal(s.Trainable, tc.train) {
				t.Errorf("trains %v, want %v", s.Trainable, tc.train)
			}
			// The factor's powers, computed two ways: a few ulps apart.
			for b := range tc.mult {
				if math.Abs(s.LRMult[b]-tc.mult[b]) > 1e-15 {
					t.Errorf("multipliers %v, want %v", s.LRMult, tc.mult)
					break
				}
			}
			// Everything else of the stage, and the later stages, stay.
			orig, _ := p.Resolve(blocks4)
			if s.MinSteps != orig.Stages[0].MinSteps || s.LR != orig.Stages[0].LR || s.Evals != orig.Stages[0].Evals ||
				s.Patience != orig.Stages[0].Patience || s.Schedule != orig.Stages[0].Schedule || s.Optimizer != orig.Stages[0].Optimizer {
				t.Errorf("stage 1 became %+v, from %+v", s, orig.Stages[0])
			}
			for i := 1; i < len(rp.Stages); i++ {
				if !slices.Equal(rp.Stages[i].Trainable, orig.Stages[i].Trainable) {
					t.Errorf("stage %d trains %v, want %v", i+1, rp.Stages[i].Trainable, orig.Stages[i].Trainable)
				}
			}
		})
	}
	if p.Stages[0].Train[0] != "head" {
		t.Error("FreezeBelow changed the plan it was called on")
	}
	if _, err := p.FreezeBelow(blocks4, "fc9"); err == nil || !strings.Contains(err.Error(), "conv1, conv2, fc1, head") {
		t.Errorf("an unknown block: %v, want an error listing the blocks", err)
	}
	named := Plan{LR: 0.1, Epochs: 1, Stages: []Stage{{Name: "probe", Train: []string{"head"}}}}
	if got, _ := named.FreezeBelow(blocks4, "fc1"); got.Stages[0].Name != "" {
		t.Errorf("a stage trained from fc1 is still named %q", got.Stages[0].Name)
	}
	if got, _ := named.FreezeBelow(blocks4, "head"); got.Stages[0].Name != "probe" {
		t.Errorf("a stage whose blocks did not change lost its name: %q", got.Stages[0].Name)
	}
}

// TestSweepPointIsFirstStageOfTrain checks that a sweep's point at every
// freeze point of every preset, at the presets' defaults (their step
// floors included), trains bit for bit the first stage of the job thaw
// train builds with --plan P --freeze-below B (Job.SetPlan, FreezeBelow).
func TestSweepPointIsFirstStageOfTrain(t *testing.T) {
	classes := []string{"x", "y", "z"} // not the model's: a new head
	blocks := runMLPConfig(8, 4).BlockNames()
	for _, info := range Presets() {
		for _, b := range blocks {
			t.Run(info.Name+"/"+b, func(t *testing.T) {
				base := Job{Model: "run-mlp", Data: DataRef{Path: "blobs"}, Shots: 5, ValSplit: 0.3, BatchSize: 8, Seed: 9}
				if err := base.SetPlan(info.Name, 0, 0, 0); err != nil {
					t.Fatal(err)
				}
				// thaw train's job, stopped at its first stage's end.
				train := base
				train.FreezeBelow = b
				pt, err := train.Prepare(jobInputs(t, classes...))
				if err != nil {
					t.Fatal(err)
				}
				var first *Checkpoint
				spec := pt.Spec()
				spec.Checkpoint = func(c Checkpoint) error {
					if c.Kind == CheckpointStageEnd && c.Stage == 0 && first == nil {
						first = &c
					}
					return nil
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var trainEvals collect
				Run(ctx, spec, func(p Progress) {
					if first == nil {
						trainEvals.report(p)
					} else {
						cancel()
					}
				})
				if first == nil {
					t.Fatal("thaw train's job ended no first stage")
				}

				point, err := base.SweepPoint(blocks, b)
				if err != nil {
					t.Fatal(err)
				}
				pp, err := point.Prepare(jobInputs(t, classes...))
				if err != nil {
					t.Fatal(err)
				}
				if len(pp.Plan.Stages) != 1 {
					t.Fatalf("the point has %d stages", len(pp.Plan.Stages))
				}
				got, want := pp.Plan.Stages[0], pt.Plan.Stages[0]
				if !stageEqual(&got, &want) || pp.StepsPerEpoch() != pt.StepsPerEpoch() {
					t.Fatalf("point's stage %+v\nthaw train's %+v", got, want)
				}
				var pointEvals collect
				res, err := Run(context.Background(), pp.Spec(), pointEvals.report)
				if err != nil {
					t.Fatal(err)
				}
				if res.Steps != first.Step || res.BestStep != first.Loop.BestStep || math.Float64bits(res.BestValLoss) != math.Float64bits(first.Loop.BestValLoss) {
					t.Errorf("point: %d steps, best %v at %d; thaw train's first stage: %d, %v at %d",
						res.Steps, res.BestValLoss, res.BestStep, first.Step, first.Loop.BestValLoss, first.Loop.BestStep)
				}
				if w := pp.Model; !sameState(t, w, first.Weights) || !sameTensors(res.Best, first.Best) {
					t.Error("the point's weights differ from thaw train's at its first stage's end")
				}
				ge, we := evalSteps(&pointEvals), evalSteps(&trainEvals)
				if !slices.Equal(ge, we) {
					t.Errorf("point evaluated at %v, thaw train's first stage at %v", ge, we)
				}
			})
		}
	}
}

// stageEqual compares two resolved stages but for their labels.
func stageEqual(a, b *ResolvedStage) bool {
	x, y := *a, *b
	x.Label, y.Label = "", ""
	j1, _ := json.Marshal(x)
	j2, _ := json.Marshal(y)
	return string(j1) == string(j2)
}

// sameState reports whether m's state dict is sd, bit for bit.
func sameState(t *testing.T, m *Model[float32], sd []SafeTensor) bool {
	t.Helper()
	got, err := m.StateDict()
	if err != nil {
		t.Fatal(err)
	}
	return sameTensors(got, sd)
}

func sameTensors(a, b []SafeTensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Data) != string(b[i].Data) {
			return false
		}
	}
	return true
}

// TestResumeAfterEarlyStop resumes a run from every checkpoint it took,
// among them the end of a stage that stopped early, and checks that each
// resumed run ends as the uninterrupted one: the stopped stage is not
// trained on, the next one starts where it was planned.
func TestResumeAfterEarlyStop(t *testing.T) {
	p := Plan{LR: 1e-12, Patience: 2, Stages: []Stage{
		{Train: []string{"all"}, Steps: 60, Evals: 20},
		{Train: []string{"head"}, Steps: 9, Evals: 3, LR: 1e-2},
		{Train: []string{"all"}, Steps: 60, Evals: 20},
	}}
	spec := cadenceSpec(t, p)
	var ckpts []Checkpoint
	spec.Checkpoint = func(c Checkpoint) error { ckpts = append(ckpts, c); return nil }
	var full collect
	want, err := Run(context.Background(), spec, full.report)
	if err != nil {
		t.Fatal(err)
	}
	if !want.Stages[0].StoppedEarly || !want.Stages[2].StoppedEarly {
		t.Fatalf("stages %+v: want the first and the last stopped early", want.Stages)
	}
	wantW, _ := spec.Model.StateDict()
	for _, c := range ckpts {
		spec2 := cadenceSpec(t, p)
		spec2.Resume = &c
		got, err := Run(context.Background(), spec2, nil)
		if err != nil {
			t.Fatal(err)
		}
		gotW, _ := spec2.Model.StateDict()
		if got.Steps != want.Steps || math.Float64bits(got.BestValLoss) != math.Float64bits(want.BestValLoss) ||
			!sameTensors(gotW, wantW) || fmt.Sprint(got.Stages) != fmt.Sprint(want.Stages) {
			t.Errorf("resumed from the %s checkpoint at step %d: %d steps, stages %+v; want %d, %+v",
				c.Kind, c.Step, got.Steps, got.Stages, want.Steps, want.Stages)
		}
	}
}

// TestStopDuringEvaluationResumes stops a patience plan during each of
// its evaluations in turn (the stop arrives while the evaluation reports)
// and resumes from the stop's checkpoint: the evaluation, the best
// checkpoint it makes and the patience it counts are in that checkpoint,
// so every resumed run evaluates at the same steps with the same numbers
// and ends on the uninterrupted run's weights and stages.
func TestStopDuringEvaluationResumes(t *testing.T) {
	p := Plan{LR: 1e-12, Patience: 2, Stages: []Stage{
		{Train: []string{"all"}, Steps: 60, Evals: 20},
		{Train: []string{"head"}, Steps: 9, Evals: 3, LR: 1e-2},
		{Train: []string{"all"}, Steps: 60, Evals: 20},
	}}
	spec := cadenceSpec(t, p)
	var full collect
	want, err := Run(context.Background(), spec, full.report)
	if err != nil {
		t.Fatal(err)
	}
	wantW, _ := spec.Model.StateDict()
	wantEvals := full.evals()
	for k := range wantEvals {
		spec := cadenceSpec(t, p)
		ctx, cancel := context.WithCancel(context.Background())
		var first collect
		n := 0
		var last *Checkpoint
		spec.Checkpoint = func(c Checkpoint) error { last = &c; return nil }
		_, err := Run(ctx, spec, func(p Progress) {
			first.report(p)
			if p.Event == EventEval {
				if n == k {
					cancel()
				}
				n++
			}
		})
		cancel()
		if err == nil {
			continue // the stop came with the run's last evaluation: it ended
		}
		if !errors.Is(err, context.Canceled) || last == nil || last.Kind != CheckpointLast {
			t.Fatalf("stop at evaluation %d: %v, want context.Canceled and a last checkpoint", k, err)
		}
		spec2 := cadenceSpec(t, p)
		spec2.Resume = last
		var second collect
		got, err := Run(context.Background(), spec2, second.report)
		if err != nil {
			t.Fatal(err)
		}
		gotW, _ := spec2.Model.StateDict()
		evals := append(first.evals(), second.evals()...)
		same := len(evals) == len(wantEvals)
		for i := 0; same && i < len(evals); i++ {
			same = evals[i].Step == wantEvals[i].Step && math.Float64bits(evals[i].ValLoss) == math.Float64bits(wantEvals[i].ValLoss)
		}
		if !same || got.Steps != want.Steps || !sameTensors(gotW, wantW) || fmt.Sprint(got.Stages) != fmt.Sprint(want.Stages) {
			t.Errorf("stopped at evaluation %d (step %d), resumed: %d evaluations, %d steps, stages %+v; want %d, %d, %+v",
				k, wantEvals[k].Step, len(evals), got.Steps, got.Stages, len(wantEvals), want.Steps, want.Stages)
		}
	}
}
