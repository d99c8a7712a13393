package trainer

import (
	"bytes"
	"encoding/json"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The flag has its own name so that it cannot clash with other golden
// tests in this package.
var updatePresets = flag.Bool("update-presets", false, "rewrite testdata/plans/preset-*.json")

type wantStage struct {
	label     string
	trainable []string
	mult      []float64
	lr        float64
	epochs    int
	schedule  Schedule // with defaults filled in
}

func TestPresetExpansion(t *testing.T) {
	const lr, epochs = 0.01, 3
	cos := Schedule{Kind: ScheduleCosine}
	stlr := Schedule{Kind: ScheduleSlantedTriangular, CutFrac: 0.1, Ratio: 32}
	constant := Schedule{Kind: ScheduleConstant}
	head, all := []string{"head"}, blocks4
	f := 2.6
	// fine-tune spreads lr/2 .. lr/200 over 4 blocks: 100^(1/3) per block.
	ft := math.Pow(100, 1.0/3)
	tests := []struct {
		preset    string
		stages    []wantStage
		optimizer OptimizerConfig
		patience  int
		trainBN   bool
	}{
		{"head", []wantStage{
			{"stage 1: head", head, []float64{0, 0, 0, 1}, lr, epochs, cos},
		}, DefaultOptimizer(), DefaultPatience, false},
		{"full", []wantStage{
			{"stage 1: all", all, []float64{1, 1, 1, 1}, lr, epochs, cos},
		}, DefaultOptimizer(), DefaultPatience, false},
		{"lp-ft", []wantStage{
			{"stage 1: head", head, []float64{0, 0, 0, 1}, lr, epochs, cos},
			{"stage 2: all", all, []float64{1, 1, 1, 1}, lr / 10, epochs, cos},
		}, DefaultOptimizer(), DefaultPatience, false},
		{"fine-tune", []wantStage{
			{"stage 1: head", head, []float64{0, 0, 0, 1}, lr, 1, Schedule{Kind: ScheduleOneCycle, PctStart: 0.99, Div: 25, DivFinal: 1e5}},
			{"stage 2: all", all, []float64{0.01, 1 / (ft * ft), 1 / ft, 1}, lr / 2, epochs, Schedule{Kind: ScheduleOneCycle, PctStart: 0.3, Div: 5, DivFinal: 1e5}},
		}, OptimizerConfig{Kind: OptimizerAdamW, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-5}, DefaultPatience, true},
		{"gradual", []wantStage{
			{"stage 1: head", head, []float64{0, 0, 0, 1}, lr, epochs, stlr},
			{"stage 2: +fc1", []string{"fc1", "head"}, []float64{0, 0, 1 / f, 1}, lr, epochs, stlr},
			{"stage 3: +conv2", []string{"conv2", "fc1", "head"}, []float64{0, 1 / (f * f), 1 / f, 1}, lr, epochs, stlr},
			{"stage 4: +conv1", all, []float64{1 / (f * f * f), 1 / (f * f), 1 / f, 1}, lr, epochs, stlr},
		}, OptimizerConfig{Kind: OptimizerAdamW, WeightDecay: 0.01, Beta1: 0.7, Beta2: 0.99, Eps: 1e-8}, DefaultPatience, false},
		{"chain-thaw", []wantStage{
			{"stage 1: head", head, []float64{0, 0, 0, 1}, lr, epochs, constant},
			{"stage 2: conv1 only", []string{"conv1"}, []float64{1, 0, 0, 0}, lr / 10, epochs, constant},
			{"stage 3: conv2 only", []string{"conv2"}, []float64{0, 1, 0, 0}, lr / 10, epochs, constant},
			{"stage 4: fc1 only", []string{"fc1"}, []float64{0, 0, 1, 0}, lr / 10, epochs, constant},
			{"stage 5: all", all, []float64{1, 1, 1, 1}, lr / 10, epochs, constant},
		}, OptimizerConfig{Kind: OptimizerAdamW, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, ClipNorm: 1}, DefaultChainThawPatience, false},
	}
	for _, tt := range tests {
		t.Run(tt.preset, func(t *testing.T) {
			p, err := Preset(tt.preset, blocks4, lr, epochs)
			if err != nil {
				t.Fatal(err)
			}
			rp, err := p.Resolve(blocks4)
			if err != nil {
				t.Fatal(err)
			}
			if len(rp.Stages) != len(tt.stages) {
				t.Fatalf("%d stages, want %d", len(rp.Stages), len(tt.stages))
			}
			for i, w := range tt.stages {
				s := rp.Stages[i]
				if s.Label != w.label {
					t.Errorf("stage %d: label %q, want %q", i+1, s.Label, w.label)
				}
				if !slices.Equal(s.Trainable, w.trainable) {
					t.Errorf("stage %d: trainable %v, want %v", i+1, s.Trainable, w.trainable)
				}
				// Multipliers are powers computed two ways, and lr/10 and
				// lr/2 are rounded once: a few ulps apart at most.
				for b := range w.mult {
					if math.Abs(s.LRMult[b]-w.mult[b]) > 1e-15 {
						t.Errorf("stage %d: multipliers %v, want %v", i+1, s.LRMult, w.mult)
						break
					}
				}
				if math.Abs(s.LR-w.lr) > 1e-15 || s.Epochs != w.epochs || s.Steps != 0 {
					t.Errorf("stage %d: lr %v for %d epochs (%d steps), want %v for %d epochs", i+1, s.LR, s.Epochs, s.Steps, w.lr, w.epochs)
				}
				if s.Schedule != w.schedule {
					t.Errorf("stage %d: schedule %+v, want %+v", i+1, s.Schedule, w.schedule)
				}
				if s.Optimizer != tt.optimizer {
					t.Errorf("stage %d: optimizer %+v, want %+v", i+1, s.Optimizer, tt.optimizer)
				}
				// Chain-thaw evaluates at every epoch's end, as DeepMoji's
				// code does; the others at the presets' cadence.
				evals := DefaultEvals
				if tt.preset == "chain-thaw" {
					evals = 0
				}
				if s.Patience != tt.patience || s.Evals != evals || s.TrainBN != tt.trainBN {
					t.Errorf("stage %d: patience %d, evals %d, train_bn %v; want %d, %d, %v", i+1, s.Patience, s.Evals, s.TrainBN, tt.patience, evals, tt.trainBN)
				}
			}
		})
	}
}

// TestPresetDefaults checks what zero lr and epochs mean.
func TestPresetDefaults(t *testing.T) {
	for _, info := range Presets() {
		p, err := Preset(info.Name, blocks4, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		rp, err := p.Resolve(blocks4)
		if err != nil {
			t.Fatalf("%s: %v", info.Name, err)
		}
		want := map[string]struct {
			lr       float64
			minSteps int
		}{
			"head":       {DefaultHeadLR, DefaultHeadMinSteps},
			"fine-tune":  {DefaultFineTuneLR, DefaultFineTuneMinSteps},
			"gradual":    {DefaultGradualLR, DefaultGradualMinSteps},
			"chain-thaw": {DefaultChainThawLR, DefaultChainThawMinSteps},
			"lp-ft":      {DefaultLPFTLR, DefaultLPFTMinSteps},
			"full":       {DefaultFullLR, DefaultFullMinSteps},
		}[info.Name]
		if want.lr == 0 {
			t.Fatalf("preset %s has no defaults in this test", info.Name)
		}
		if got := rp.Stages[0].LR; got != want.lr {
			t.Errorf("%s: first stage lr %v, want %v", info.Name, got, want.lr)
		}
		// Every stage lasts one epoch with the preset's floor of steps,
		// but fine-tune's first, which is fastai's one epoch.
		for i, s := range rp.Stages {
			floor := want.minSteps
			if info.Name == "fine-tune" && i == 0 {
				floor = 0
			}
			if s.Epochs != 1 || s.MinSteps != floor {
				t.Errorf("%s: stage %d lasts %d epochs, at least %d steps; want 1, %d", info.Name, i+1, s.Epochs, s.MinSteps, floor)
			}
		}
		// An explicit length drops the floor.
		p, _ = Preset(info.Name, blocks4, 0, 3)
		rp, _ = p.Resolve(blocks4)
		for i, s := range rp.Stages {
			if s.MinSteps != 0 {
				t.Errorf("%s, 3 epochs: stage %d has a floor of %d steps", info.Name, i+1, s.MinSteps)
			}
		}
	}
}

// TestPresetSizes checks that every preset resolves on models of other
// depths, and that the depth-dependent ones scale with it.
func TestPresetSizes(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7} {
		blocks := make([]string, n)
		for i := range blocks {
			blocks[i] = string(rune('a' + i))
		}
		for _, info := range Presets() {
			p, err := Preset(info.Name, blocks, 0.1, 2)
			if err != nil {
				t.Fatal(err)
			}
			rp, err := p.Resolve(blocks)
			if err != nil {
				t.Fatalf("%s on %d blocks: %v", info.Name, n, err)
			}
			want := map[string]int{"head": 1, "full": 1, "lp-ft": 2, "fine-tune": 2, "gradual": n, "chain-thaw": n + 1}[info.Name]
			if n == 1 && info.Name == "chain-thaw" {
				want = 1
			}
			if len(rp.Stages) != want {
				t.Errorf("%s on %d blocks: %d stages, want %d", info.Name, n, len(rp.Stages), want)
			}
			if info.Name == "fine-tune" {
				// fastai's slice(lr/100, lr): the lowest block learns at a
				// hundredth of the top block's rate; one block has no spread.
				want := 0.01
				if n == 1 {
					want = 1
				}
				if got := rp.Stages[1].LRMult[0]; math.Abs(got-want) > 1e-15 {
					t.Errorf("fine-tune on %d blocks: lowest multiplier %v, want %v", n, got, want)
				}
			}
		}
	}
}

func TestPresetUnknown(t *testing.T) {
	_, err := Preset("ulmfit", blocks4, 0, 0)
	want := `no preset named "ulmfit" (presets: head, fine-tune, gradual, chain-thaw, full, lp-ft)`
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	for _, info := range Presets() {
		if info.Description == "" {
			t.Errorf("preset %s has no description", info.Name)
		}
	}
}

// TestPresetGolden stores every preset for the four-block model as JSON,
// which doubles as an example of each plan file and checks that a preset
// survives a trip through a file. Run with -update-presets to rewrite.
func TestPresetGolden(t *testing.T) {
	for _, info := range Presets() {
		p, err := Preset(info.Name, blocks4, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.MarshalIndent(p, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("testdata", "plans", "preset-"+info.Name+".json")
		if *updatePresets {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update-presets)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the preset:\n%s", path, got)
		}
		back, err := ParsePlan(want)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(back, p) {
			t.Errorf("%s: parsed back as %+v, want %+v", path, back, p)
		}
		if strings.Contains(string(want), `"schedule": ""`) {
			t.Errorf("%s: empty schedule written out", path)
		}
	}
}
