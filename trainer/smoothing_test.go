package trainer

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// A plan's label smoothing is the loss its steps train on and its
// validation measures: the first step's reported loss equals CrossEntropy
// with that ε on the starting model's logits of the whole training set
// (one batch holds it all), and the validation loss (of weights a rate of
// 1e-9 leaves as they were) CrossEntropy with that ε on the validation
// set's.
func TestLabelSmoothingTrainsThePlansLoss(t *testing.T) {
	const k, d = 3, 5
	cfg := &Config{Name: "probe", InputShape: []int{d}, Blocks: []BlockConfig{
		{Name: "head", Layers: []LayerConfig{{Type: "linear", Name: "head", InFeatures: d, OutFeatures: k}}},
	}, Classes: []string{"c0", "c1", "c2"}}
	train := blobs("train", k, d, 6, 1)
	val := blobs("val", k, d, 10, 2)
	for _, eps := range []float64{0, 0.1, 0.3} {
		m, err := New[float32](cfg, rand.New(rand.NewPCG(5, 5)))
		if err != nil {
			t.Fatal(err)
		}
		all := make([]int, train.Len())
		for i := range all {
			all[i] = i
		}
		x := &Tensor[float32]{}
		y := train.Batch(x, nil, all)
		logits := m.Forward(x, false)
		want := (&CrossEntropy[float32]{Smoothing: eps}).Forward(logits, y)
		wantVal := (&CrossEntropy[float32]{Smoothing: eps}).Forward(m.Forward(func() *Tensor[float32] {
			vx := &Tensor[float32]{}
			idx := make([]int, val.Len())
			for i := range idx {
				idx[i] = i
			}
			val.Batch(vx, nil, idx)
			return vx
		}(), false), val.Y)

		plan := Plan{LR: 1e-9, LabelSmoothing: eps, Stages: []Stage{{Train: []string{"head"}, Steps: 1}}}
		rp, err := plan.Resolve(cfg.BlockNames())
		if err != nil {
			t.Fatal(err)
		}
		var c collect
		if _, err := Run(context.Background(), Spec{Model: m, Plan: rp, Train: train, Val: val, Seed: 9, BatchSize: 64}, c.report); err != nil {
			t.Fatal(err)
		}
		losses := c.stepLosses(t)
		if len(losses) != 1 || math.Abs(losses[0]-want) > 1e-5 {
			t.Errorf("ε %v: first step's loss %v, want %v (CrossEntropy with ε on the starting logits)", eps, losses, want)
		}
		evs := c.evals()
		if len(evs) == 0 || math.Abs(evs[len(evs)-1].ValLoss-wantVal) > 1e-4 {
			t.Errorf("ε %v: validation loss %v, want %v (CrossEntropy with ε on the validation set)", eps, evs, wantVal)
		}
	}
}

// Every preset smooths its labels by DefaultLabelSmoothing; a preset ref
// stored before (legacy) expands to none, as its run trained; a branch's
// flattened stages and a sweep point keep ε; a bad ε is refused with the
// field's name.
func TestLabelSmoothingDefaults(t *testing.T) {
	blocks := []string{"fc1", "fc2", "head"}
	for _, info := range Presets() {
		p, err := Preset(info.Name, blocks, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		rp, err := p.Resolve(blocks)
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range rp.Stages {
			if s.LabelSmoothing != DefaultLabelSmoothing {
				t.Errorf("%s stage %d: label smoothing %v, want %v", info.Name, i+1, s.LabelSmoothing, DefaultLabelSmoothing)
			}
		}
		var legacy PresetRef
		if err := json.Unmarshal([]byte(`{"name":"`+info.Name+`"}`), &legacy); err != nil {
			t.Fatal(err)
		}
		lp, err := legacy.expand(blocks)
		if err != nil {
			t.Fatal(err)
		}
		if lp.LabelSmoothing != 0 || slices.ContainsFunc(lp.Stages, func(s Stage) bool { return s.LabelSmoothing != 0 }) {
			t.Errorf("%s stored before label smoothing expands with ε %v; want none", info.Name, lp.LabelSmoothing)
		}
		fresh, err := json.Marshal(PresetRef{Name: info.Name})
		if err != nil {
			t.Fatal(err)
		}
		var again PresetRef
		if err := json.Unmarshal(fresh, &again); err != nil {
			t.Fatal(err)
		}
		if fp, err := again.expand(blocks); err != nil || fp.LabelSmoothing != DefaultLabelSmoothing {
			t.Errorf("%s ref written now expands with ε %v, %v; want %v", info.Name, fp.LabelSmoothing, err, DefaultLabelSmoothing)
		}
	}
	for _, bad := range []string{
		`{"label_smoothing": 1, "lr": 0.1, "stages": [{"train": ["head"], "steps": 1}]}`,
		`{"label_smoothing": -0.1, "lr": 0.1, "stages": [{"train": ["head"], "steps": 1}]}`,
		`{"lr": 0.1, "stages": [{"train": ["head"], "steps": 1, "label_smoothing": 2}]}`,
	} {
		if _, err := ParsePlan([]byte(bad)); err == nil || !strings.Contains(err.Error(), "label_smoothing") {
			t.Errorf("plan %s: %v; want an error naming label_smoothing", bad, err)
		}
	}
	// A stage's own ε wins over the plan's.
	p := Plan{LR: 0.1, LabelSmoothing: 0.1, Stages: []Stage{{Train: []string{"head"}, Steps: 1, LabelSmoothing: 0.2}, {Train: []string{"all"}, Steps: 1}}}
	rp, err := p.Resolve(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if rp.Stages[0].LabelSmoothing != 0.2 || rp.Stages[1].LabelSmoothing != 0.1 {
		t.Errorf("stages' ε %v and %v, want 0.2 (its own) and 0.1 (the plan's)", rp.Stages[0].LabelSmoothing, rp.Stages[1].LabelSmoothing)
	}
}

// A run that keeps the base model's trained head trains on the plain
// loss whatever the plan's ε (Prepared.KeptHeadLoss); a new head, and a
// scratch model's, train on the plan's. The run's first step shows it:
// its loss is the plain cross-entropy's of the step a plan without
// smoothing takes.
func TestKeptHeadTrainsPlain(t *testing.T) {
	for _, c := range []struct {
		name    string
		classes []string
		init    Init
		want    float64
	}{
		{"kept head", []string{"c2", "c0", "c1"}, InitPretrained, 0},
		{"new head", []string{"x", "y", "z"}, InitPretrained, DefaultLabelSmoothing},
		{"scratch", []string{"c2", "c0", "c1"}, InitScratch, DefaultLabelSmoothing},
	} {
		t.Run(c.name, func(t *testing.T) {
			job := gradualJob()
			job.Init = c.init
			p, err := job.Prepare(jobInputs(t, c.classes...))
			if err != nil {
				t.Fatal(err)
			}
			if p.Job.Plan.LabelSmoothing != DefaultLabelSmoothing {
				t.Errorf("the job's plan says ε %v, want the preset's %v", p.Job.Plan.LabelSmoothing, DefaultLabelSmoothing)
			}
			for i, s := range p.Plan.Stages {
				if s.LabelSmoothing != c.want {
					t.Errorf("stage %d trains with ε %v, want %v", i+1, s.LabelSmoothing, c.want)
				}
			}
		})
	}
	// The kept head's first step equals a plain plan's, bit for bit.
	first := func(eps float64) float64 {
		job := gradualJob()
		job.Plan, job.Preset = Plan{LR: 0.01, Epochs: 1, LabelSmoothing: eps, Stages: []Stage{{Train: []string{"all"}}}}, nil
		p, err := job.Prepare(jobInputs(t, "c2", "c0", "c1"))
		if err != nil {
			t.Fatal(err)
		}
		spec := p.Spec()
		spec.Plan.Stages[0].Steps, spec.Plan.Stages[0].Epochs, spec.Plan.Stages[0].MinSteps = 1, 0, 0
		var col collect
		if _, err := Run(context.Background(), spec, col.report); err != nil {
			t.Fatal(err)
		}
		return col.stepLosses(t)[0]
	}
	if a, b := first(0.1), first(0); a != b {
		t.Errorf("a kept head's first loss with ε 0.1 in the plan: %v; the plain plan's %v", a, b)
	}
}
