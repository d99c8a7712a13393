package trainer

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// blocks4 is the model every plan test resolves against.
var blocks4 = []string{"conv1", "conv2", "fc1", "head"}

// mustResolve parses src and resolves it against blocks4.
func mustResolve(t *testing.T, src string) *ResolvedPlan {
	t.Helper()
	p, err := ParsePlan([]byte(src))
	if err != nil {
		t.Fatalf("ParsePlan: %v", err)
	}
	rp, err := p.Resolve(blocks4)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	return rp
}

func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "plans", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPlanExamples parses and resolves every shipped example.
func TestPlanExamples(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "plans", "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no example plans (%v)", err)
	}
	for _, path := range paths {
		p, err := LoadPlan(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if _, err := p.Resolve(blocks4); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}

// TestDocExample keeps the example in Plan's doc comment identical to
// testdata/plans/example.json, which the README copies.
func TestDocExample(t *testing.T) {
	src, err := os.ReadFile("plan.go")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for line := range strings.Lines(strings.TrimSpace(string(readExample(t, "example.json")))) {
		want.WriteString("//\t" + line)
	}
	if !strings.Contains(string(src), want.String()+"\n") {
		t.Errorf("Plan's doc comment does not contain testdata/plans/example.json as\n%s", want.String())
	}
}

func TestResolveExample(t *testing.T) {
	rp, err := LoadPlan(filepath.Join("testdata", "plans", "example.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := rp.Resolve(blocks4)
	if err != nil {
		t.Fatal(err)
	}
	planOpt := OptimizerConfig{Kind: OptimizerAdamW, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, ClipNorm: 1}
	f := 2.6
	want := []ResolvedStage{
		{
			Label: "stage 1: head", Blocks: blocks4, LRMult: []float64{0, 0, 0, 1}, Trainable: []string{"head"},
			Epochs: 2, LR: 0.003, Schedule: Schedule{Kind: ScheduleOneCycle, PctStart: 0.25, Div: 25, DivFinal: 1e5},
			LRFactor: 1, Optimizer: planOpt, Patience: 3,
		},
		{
			Label: "stage 2: top two", Blocks: blocks4, LRMult: []float64{0, 0, 1, 1}, Trainable: []string{"fc1", "head"},
			Epochs: 3, LR: 0.001, Schedule: Schedule{Kind: ScheduleCosine, WarmupFrac: 0.1},
			LRFactor: 1, Optimizer: planOpt, Patience: 3,
		},
		{
			Label: "stage 3: all", Blocks: blocks4, LRMult: []float64{1 / (f * f * f), 1 / (f * f), 1 / f, 1},
			Trainable: blocks4, Steps: 600, LR: 0.001, Schedule: Schedule{Kind: ScheduleSlantedTriangular, CutFrac: 0.1, Ratio: 32},
			LRFactor: 2.6, Patience: 3, TrainBN: true,
			Optimizer: OptimizerConfig{Kind: OptimizerSGD, Momentum: 0.9, Nesterov: true, WeightDecay: 0.0005, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		},
	}
	if len(r.Stages) != len(want) {
		t.Fatalf("%d stages, want %d", len(r.Stages), len(want))
	}
	for i := range want {
		got := r.Stages[i]
		// The multipliers are powers computed two ways; compare them within
		// a few ulps and the rest exactly.
		for b := range got.LRMult {
			if math.Abs(got.LRMult[b]-want[i].LRMult[b]) > 1e-15 {
				t.Errorf("stage %d: LRMult %v, want %v", i+1, got.LRMult, want[i].LRMult)
				break
			}
		}
		got.LRMult = want[i].LRMult
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("stage %d:\n got %+v\nwant %+v", i+1, got, want[i])
		}
	}
}

func TestParsePlanErrors(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"syntax", "{\n  \"stages\": [\n    {\"train\": [\"head\"],, \"epochs\": 1}\n  ]\n}", "line 3, column 24: invalid character ','"},
		{"type", "{\n  \"stages\": [{\"train\": \"head\", \"epochs\": 1, \"lr\": 1}]\n}", "line 2, column 30: stages.train: cannot use string as []string"},
		{"unknown key", "{\n  \"stages\": [{\"train\": [\"head\"], \"epoch\": 1}]\n}", `line 2, column 34: unknown key "epoch"`},
		{"unknown key in schedule", `{"schedule": {"kind": "cosine", "warmup": 5}, "stages": []}`, `unknown field "warmup"`},
		{"trailing data", "{\"stages\": []}\n}", "line 2, column 1: data after the plan"},
		{"no stages", `{"name": "x"}`, "plan has no stages"},
		{"empty train", `{"lr": 1, "stages": [{"train": [], "epochs": 1}]}`, `stage 1: nothing trainable`},
		{"both lengths", `{"lr": 1, "stages": [{"train": ["head"], "epochs": 1, "steps": 10}]}`, "stage 1: both epochs (1) and steps (10) are set"},
		{"no length", `{"lr": 1, "stages": [{"train": ["head"], "epochs": 1}, {"train": ["all"]}]}`, "stage 2: no length"},
		{"no lr", `{"stages": [{"train": ["head"], "epochs": 1}]}`, "stage 1: learning rate 0 must be positive"},
		{"negative lr", `{"stages": [{"train": ["head"], "epochs": 1, "lr": -0.1}]}`, "stage 1: learning rate -0.1 must be positive"},
		{"unknown schedule", `{"lr": 1, "stages": [{"train": ["head"], "epochs": 1, "schedule": "linear"}]}`, `stage 1: unknown schedule "linear"`},
		{"unknown plan schedule", `{"lr": 1, "schedule": "step", "stages": [{"train": ["head"], "epochs": 1}]}`, `plan: unknown schedule "step"`},
		{"wrong schedule parameter", `{"lr": 1, "stages": [{"train": ["head"], "epochs": 1, "schedule": {"kind": "cosine", "div": 5}}]}`, "schedule cosine has no parameter div"},
		{"unknown optimizer", `{"lr": 1, "optimizer": {"kind": "adam"}, "stages": [{"train": ["head"], "epochs": 1}]}`, `plan: unknown optimizer "adam"`},
		{"nesterov without momentum", `{"lr": 1, "stages": [{"train": ["head"], "epochs": 1, "optimizer": {"kind": "sgd", "nesterov": true}}]}`, "nesterov needs a momentum"},
		{"factor below 1", `{"lr": 1, "lr_factor": 0.5, "stages": [{"train": ["all"], "epochs": 1}]}`, "lr_factor 0.5 must be at least 1"},
		{"negative patience", `{"lr": 1, "patience": -1, "stages": [{"train": ["all"], "epochs": 1}]}`, "stage 1: patience -1 is negative"},
		{"top:0", `{"lr": 1, "stages": [{"train": ["top:0"], "epochs": 1}]}`, `selector "top:0": N must be a whole number`},
		{"top:x", `{"lr": 1, "stages": [{"train": ["top:two"], "epochs": 1}]}`, `selector "top:two": N must be a whole number`},
		{"too many stages", `{"lr": 1, "epochs": 1, "stages": [` + strings.Repeat(`{"train": ["head"]},`, MaxStages) + `{"train": ["all"]}]}`,
			"plan has 1001 stages, more than the 1000 allowed: every stage ends with a checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlan([]byte(tt.src))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadPlanNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(path, []byte(`{"stages": [}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPlan(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": line 1, column 13") {
		t.Errorf("error %v, want it to start with the path and position", err)
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name  string
		train []string
		want  string
	}{
		{"unknown block", []string{"conv3"}, `stage 2: no block named "conv3" (blocks: conv1, conv2, fc1, head; or "head", "top:N", "all")`},
		{"top beyond blocks", []string{"top:5"}, `stage 2: selector "top:5": the model has only 4 blocks`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Plan{LR: 1, Epochs: 1, Stages: []Stage{{Train: []string{"head"}}, {Train: tt.train}}}
			_, err := p.Resolve(blocks4)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
	if _, err := (Plan{LR: 1, Epochs: 1, Stages: []Stage{{Train: []string{"all"}}}}).Resolve(nil); err == nil {
		t.Error("resolving against no blocks: no error")
	}
}

func TestSelectors(t *testing.T) {
	tests := []struct {
		train []string
		want  []string
	}{
		{[]string{"head"}, []string{"head"}},
		{[]string{"all"}, blocks4},
		{[]string{"top:1"}, []string{"head"}},
		{[]string{"top:3"}, []string{"conv2", "fc1", "head"}},
		{[]string{"top:4"}, blocks4},
		{[]string{"conv1", "head"}, []string{"conv1", "head"}},
		{[]string{"head", "top:2", "fc1"}, []string{"fc1", "head"}},
		{[]string{"conv2"}, []string{"conv2"}},
	}
	for _, tt := range tests {
		rp, err := Plan{LR: 1, Epochs: 1, Stages: []Stage{{Train: tt.train}}}.Resolve(blocks4)
		if err != nil {
			t.Errorf("%v: %v", tt.train, err)
			continue
		}
		if got := rp.Stages[0].Trainable; !slices.Equal(got, tt.want) {
			t.Errorf("%v: trainable %v, want %v", tt.train, got, tt.want)
		}
	}
}

// TestDiscriminativeLR checks that multipliers count positions below the
// top trainable block, frozen blocks in between included.
func TestDiscriminativeLR(t *testing.T) {
	tests := []struct {
		train  []string
		factor float64
		want   []float64
	}{
		{[]string{"all"}, 2, []float64{0.125, 0.25, 0.5, 1}},
		{[]string{"all"}, 0, []float64{1, 1, 1, 1}},
		{[]string{"all"}, 1, []float64{1, 1, 1, 1}},
		{[]string{"conv1", "conv2"}, 2, []float64{0.5, 1, 0, 0}},
		{[]string{"conv1", "fc1"}, 4, []float64{1.0 / 16, 0, 1, 0}},
	}
	for _, tt := range tests {
		rp, err := Plan{LR: 1, Epochs: 1, Stages: []Stage{{Train: tt.train, LRFactor: tt.factor}}}.Resolve(blocks4)
		if err != nil {
			t.Fatal(err)
		}
		if got := rp.Stages[0].LRMult; !slices.Equal(got, tt.want) {
			t.Errorf("%v, factor %v: LRMult %v, want %v", tt.train, tt.factor, got, tt.want)
		}
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		stages [][]string
		want   []string
	}{
		{[][]string{{"head"}, {"top:2"}, {"top:3"}, {"all"}},
			[]string{"stage 1: head", "stage 2: +fc1", "stage 3: +conv2", "stage 4: +conv1"}},
		{[][]string{{"head"}, {"conv1"}, {"conv2"}, {"all"}},
			[]string{"stage 1: head", "stage 2: conv1 only", "stage 3: conv2 only", "stage 4: all"}},
		{[][]string{{"all"}, {"fc1", "head"}, {"fc1", "head"}},
			[]string{"stage 1: all", "stage 2: fc1, head", "stage 3: fc1, head"}},
		{[][]string{{"top:2"}, {"conv1", "conv2", "head"}},
			[]string{"stage 1: fc1, head", "stage 2: conv1, conv2, head"}},
	}
	for _, tt := range tests {
		p := Plan{LR: 1, Epochs: 1}
		for _, tr := range tt.stages {
			p.Stages = append(p.Stages, Stage{Train: tr})
		}
		rp, err := p.Resolve(blocks4)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range rp.Stages {
			got = append(got, s.Label)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%v: labels %q, want %q", tt.stages, got, tt.want)
		}
	}
}

func TestOverride(t *testing.T) {
	p := Plan{LR: 1, Epochs: 2, Stages: []Stage{
		{Train: []string{"head"}, LR: 0.5},
		{Train: []string{"all"}, Steps: 100},
	}}
	q := p.Override(0.01, 3, 0)
	if p.Stages[0].LR != 0.5 || p.Stages[1].Steps != 100 {
		t.Errorf("Override changed the original plan: %+v", p.Stages)
	}
	rq, err := q.Resolve(blocks4)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range rq.Stages {
		if s.LR != 0.01 || s.Epochs != 3 || s.Steps != 0 {
			t.Errorf("stage %d: lr %v, epochs %d, steps %d; want 0.01, 3, 0", i+1, s.LR, s.Epochs, s.Steps)
		}
	}
	if r := p.Override(0, 0, 0); !reflect.DeepEqual(r, p) {
		t.Errorf("Override(0, 0, 0) = %+v, want the plan unchanged", r)
	}
	floor := Plan{LR: 1, Epochs: 1, MinSteps: 50, Stages: []Stage{{Train: []string{"head"}}, {Train: []string{"all"}, Epochs: 2}}}
	rs, err := floor.Override(0, 0, 7).Resolve(blocks4)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range rs.Stages {
		if s.Len(3) != 7 || s.MinSteps != 0 {
			t.Errorf("steps 7: stage %d lasts %d steps (floor %d), want 7", i+1, s.Len(3), s.MinSteps)
		}
	}
}

// TestMinSteps: a stage in epochs lasts its epochs or its floor of steps,
// whichever is longer; the plan's floor is the stages' default.
func TestMinSteps(t *testing.T) {
	rp := mustResolve(t, `{"lr": 0.1, "epochs": 2, "min_steps": 10, "stages": [
		{"train": ["head"]},
		{"train": ["all"], "min_steps": 3},
		{"train": ["all"], "steps": 4}]}`)
	for _, c := range []struct{ spe, want0, want1, want2 int }{
		{1, 10, 3, 4},   // the floors win
		{4, 10, 8, 4},   // the second stage's epochs win
		{20, 40, 40, 4}, // both stages' epochs win
	} {
		got := []int{rp.Stages[0].Len(c.spe), rp.Stages[1].Len(c.spe), rp.Stages[2].Len(c.spe)}
		if want := []int{c.want0, c.want1, c.want2}; !slices.Equal(got, want) {
			t.Errorf("%d steps an epoch: stages of %v steps, want %v", c.spe, got, want)
		}
	}
	if _, err := ParsePlan([]byte(`{"lr": 1, "stages": [{"train": ["all"], "steps": 4, "min_steps": 5}]}`)); err == nil {
		t.Error("steps with min_steps: no error")
	}
}

func TestPreview(t *testing.T) {
	rp := mustResolve(t, `{"stages": [
		{"train": ["head"], "steps": 4, "lr": 1, "schedule": {"kind": "warmup", "warmup_steps": 2}},
		{"train": ["all"], "epochs": 2, "lr": 0.5, "lr_factor": 2}
	]}`)
	const spe = 3
	if got := rp.Len(spe); got != 10 {
		t.Errorf("Len = %d, want 10", got)
	}
	if got := rp.Starts(spe); !slices.Equal(got, []int{0, 4}) {
		t.Errorf("Starts = %v, want [0 4]", got)
	}
	wantCurve := []float64{0.5, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5}
	if got := rp.LRCurve(spe); !slices.Equal(got, wantCurve) {
		t.Errorf("LRCurve = %v, want %v", got, wantCurve)
	}
	locs := []struct{ step, stage, at int }{{-1, 0, 0}, {0, 0, 0}, {3, 0, 3}, {4, 1, 0}, {9, 1, 5}, {10, 1, 6}, {99, 1, 6}}
	for _, l := range locs {
		if s, at := rp.Locate(l.step, spe); s != l.stage || at != l.at {
			t.Errorf("Locate(%d) = %d, %d; want %d, %d", l.step, s, at, l.stage, l.at)
		}
	}
	if got, want := rp.BlockLRs(0, spe), []float64{0, 0, 0, 0.5}; !slices.Equal(got, want) {
		t.Errorf("BlockLRs(0) = %v, want %v", got, want)
	}
	if got, want := rp.BlockLRs(5, spe), []float64{0.0625, 0.125, 0.25, 0.5}; !slices.Equal(got, want) {
		t.Errorf("BlockLRs(5) = %v, want %v", got, want)
	}
}

func TestApplyStage(t *testing.T) {
	cfg := &Config{
		Name: "four", InputShape: []int{3}, Classes: []string{"a", "b"},
		Blocks: []BlockConfig{
			{Name: "conv1", Layers: []LayerConfig{{Type: "linear", Name: "l0", InFeatures: 3, OutFeatures: 3}}},
			{Name: "conv2", Layers: []LayerConfig{{Type: "linear", Name: "l1", InFeatures: 3, OutFeatures: 3}}},
			{Name: "fc1", Layers: []LayerConfig{{Type: "linear", Name: "l2", InFeatures: 3, OutFeatures: 3}, {Type: "relu"}}},
			{Name: "head", Layers: []LayerConfig{{Type: "linear", Name: "l3", InFeatures: 3, OutFeatures: 2}}},
		},
	}
	m, err := New[float64](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	rp := mustResolve(t, `{"lr": 1, "epochs": 1, "stages": [{"train": ["fc1", "head"], "lr_factor": 2, "train_bn": true}]}`)
	if err := ApplyStage(m, &rp.Stages[0]); err != nil {
		t.Fatal(err)
	}
	for i, b := range m.Blocks {
		frozen := i < 2
		if b.Frozen != frozen || b.LRMult != rp.Stages[0].LRMult[i] {
			t.Errorf("block %s: frozen %v, mult %v; want %v, %v", b.Name, b.Frozen, b.LRMult, frozen, rp.Stages[0].LRMult[i])
		}
		for _, p := range blockParams(b) {
			if p.Trainable == frozen {
				t.Errorf("param %s: trainable %v in a block with frozen %v", p.Name, p.Trainable, frozen)
			}
		}
	}
	if !m.TrainBN {
		t.Error("TrainBN not set")
	}
	other, err := Plan{LR: 1, Epochs: 1, Stages: []Stage{{Train: []string{"all"}}}}.Resolve([]string{"a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ApplyStage(m, &other.Stages[0]); err == nil {
		t.Error("applying a stage resolved for other blocks: no error")
	}
}

func FuzzParsePlan(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "plans", "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePlan(b)
		if err != nil {
			return
		}
		rp, err := p.Resolve(blocks4)
		if err != nil {
			return
		}
		// A plan that resolves must preview without NaNs or panics. Keep the
		// length bounded so that the fuzzer does not spend its time
		// allocating curves.
		if rp.Len(1) > 1e5 {
			return
		}
		for i, lr := range rp.LRCurve(1) {
			if math.IsNaN(lr) || lr < 0 {
				t.Fatalf("step %d: lr %v", i, lr)
			}
		}
	})
}
