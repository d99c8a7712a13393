package trainer

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
)

// jobInputs loads the run tests' model and blobs, with the given classes
// on the data.
func jobInputs(t *testing.T, classes ...string) JobInputs {
	t.Helper()
	m, err := New[float32](runMLPConfig(8, 4), rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	ds := blobs("blobs", len(classes), 8, 50, 3)
	ds.Classes = classes
	return JobInputs{Model: m, ModelName: "run-mlp", Data: ds}
}

func gradualJob() Job {
	return Job{Model: "run-mlp", Data: DataRef{Path: "blobs"}, Preset: &PresetRef{Name: "gradual", LR: 0.01, Epochs: 2},
		Shots: 10, ValSplit: 0.3, BatchSize: 8, Seed: 5, EvalEvery: 3}
}

func TestJobPrepare(t *testing.T) {
	t.Run("classes among the model's", func(t *testing.T) {
		in := jobInputs(t, "c2", "c0", "c1")
		head := slices.Clone(in.Model.Head().Layers[0].Params()[0].Value.Data)
		p, err := gradualJob().Prepare(in)
		if err != nil {
			t.Fatal(err)
		}
		// 50 per class, 15 held out, 10 shots of the 35 left.
		if p.HeadReplaced || p.Val.Len() != 45 || p.Train.Len() != 30 || !slices.Equal(p.Train.ClassCounts(), []int{10, 10, 10, 0}) {
			t.Errorf("head replaced %v, %d val, %d train %v", p.HeadReplaced, p.Val.Len(), p.Train.Len(), p.Train.ClassCounts())
		}
		if !slices.Equal(p.Train.Classes, in.Model.Config.Classes) {
			t.Errorf("classes %v, want the model's %v", p.Train.Classes, in.Model.Config.Classes)
		}
		if !slices.Equal(head, in.Model.Head().Layers[0].Params()[0].Value.Data) {
			t.Error("a kept head changed")
		}
		// The preset is expanded into the prepared job, and resolved.
		if len(p.Job.Plan.Stages) != 4 || p.Job.Preset == nil || len(p.Plan.Stages) != 4 || p.Plan.Stages[3].Label != "stage 4: +fc1" {
			t.Errorf("plan %+v resolved %+v", p.Job.Plan, p.Plan.Stages)
		}
		spec := p.Spec()
		if spec.Seed != 5 || spec.BatchSize != 8 || spec.EvalEvery != 3 || spec.Train != p.Train {
			t.Errorf("spec %+v", spec)
		}
		if p.StepsPerEpoch() != 4 || p.TotalSteps() != 32 {
			t.Errorf("%d steps an epoch, %d in all; want 4 and 32", p.StepsPerEpoch(), p.TotalSteps())
		}
	})
	t.Run("other classes", func(t *testing.T) {
		in := jobInputs(t, "x", "y")
		in.Source = blobs("source", 4, 8, 5, 1)
		p, err := gradualJob().Prepare(in)
		if err != nil {
			t.Fatal(err)
		}
		if !p.HeadReplaced || !slices.Equal(p.Model.Config.Classes, []string{"x", "y"}) || p.SourceHead == nil || p.Source == nil {
			t.Errorf("head replaced %v, classes %v, gauge %v", p.HeadReplaced, p.Model.Config.Classes, p.SourceHead != nil)
		}
		if p.SourceHead.Layers[0].Params()[0].Value.Shape[0] != 4 {
			t.Error("the gauge's head is not the base model's")
		}
	})
	t.Run("same job, same preparation", func(t *testing.T) {
		a, _ := gradualJob().Prepare(jobInputs(t, "x", "y"))
		b, _ := gradualJob().Prepare(jobInputs(t, "x", "y"))
		ha, _ := ModelHash(a.Model)
		hb, _ := ModelHash(b.Model)
		if ha != hb || DataHash(a.Train, a.Val) != DataHash(b.Train, b.Val) {
			t.Error("two preparations of one job differ")
		}
		c := gradualJob()
		c.Seed = 6
		pc, _ := c.Prepare(jobInputs(t, "x", "y"))
		hc, _ := ModelHash(pc.Model)
		if hc == ha || DataHash(pc.Train, pc.Val) == DataHash(a.Train, a.Val) {
			t.Error("another seed draws the same head and data")
		}
		s := gradualJob()
		s.Init = InitScratch
		ps, _ := s.Prepare(jobInputs(t, "c0", "c1"))
		hs, _ := ModelHash(ps.Model)
		base, _ := ModelHash(jobInputs(t).Model)
		if hs == base || ps.SourceHead != nil {
			t.Error("a scratch job starts from the base weights")
		}
	})
}

func TestJobRefuses(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plan.json")
	os.WriteFile(file, []byte(`{"lr": 0.1, "epochs": 1, "stages": [{"train": ["conv9"]}]}`), 0o644)
	tests := []struct {
		name string
		edit func(*Job)
	}{
		{"val split", func(j *Job) { j.ValSplit = 1 }},
		{"shots", func(j *Job) { j.Shots = -1 }},
		{"too many shots", func(j *Job) { j.Shots = 50 }},
		{"init", func(j *Job) { j.Init = "warm" }},
		{"no plan", func(j *Job) { j.Preset = nil }},
		{"unknown preset", func(j *Job) { j.Preset.Name = "thaw-harder" }},
		{"unknown block", func(j *Job) {
			if err := j.SetPlan(file, 0, 0, 0); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := gradualJob()
			tt.edit(&j)
			_, err := j.Prepare(jobInputs(t, "x", "y"))
			var in InputError
			if !errors.As(err, &in) {
				t.Errorf("err = %v, want an InputError", err)
			}
		})
	}
	var j Job
	if err := j.SetPlan("no-such-plan", 0, 0, 0); !errors.As(err, new(InputError)) {
		t.Errorf("SetPlan of neither a preset nor a file: %v", err)
	}
}

func TestJobJSON(t *testing.T) {
	p, err := gradualJob().Prepare(jobInputs(t, "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p.Job)
	if err != nil {
		t.Fatal(err)
	}
	var back Job
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p.Job) {
		t.Errorf("round trip:\n%+v\nwant\n%+v", back, p.Job)
	}
	// The decoded job prepares to the same plan, the preset left aside.
	back.Preset = nil
	q, err := back.Prepare(jobInputs(t, "x", "y"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(q.Summary(), p.Summary()) {
		t.Errorf("summary %+v, want %+v", q.Summary(), p.Summary())
	}
}

// TestSoftmax checks Softmax against the probabilities CrossEntropy's
// gradient is made of: with one row, ∂loss/∂logit_j = p_j − [j = label],
// rounded once to float32.
func TestSoftmax(t *testing.T) {
	rows := [][]float32{{1, 2, 3}, {-5, 0, 5, 40}, {3, 3, 1}, {0, float32(math.Copysign(0, -1))}}
	for _, row := range rows {
		p := make([]float64, len(row))
		best := Softmax(p, row)
		var ce CrossEntropy[float32]
		ce.Forward(&Tensor[float32]{Shape: []int{1, len(row)}, Data: row}, []int{0})
		d := ce.Backward().Data
		var sum float64
		for j := range row {
			onehot := 0.0
			if j == 0 {
				onehot = 1
			}
			if float32(p[j]-onehot) != d[j] {
				t.Errorf("%v: p[%d] = %v, gradient says %v", row, j, p[j], float64(d[j])+onehot)
			}
			sum += p[j]
			if row[j] > row[best] {
				t.Errorf("%v: best %d, but %d is larger", row, best, j)
			}
		}
		// A sum of a handful of float64 probabilities: a few ulps.
		if math.Abs(sum-1) > 1e-15 {
			t.Errorf("%v: probabilities sum to %v", row, sum)
		}
	}
}

// A dataset whose classes have one sample each cannot give validation a
// sample: Prepare refuses it and says why, instead of a run with no best.
func TestJobRefusesNoValidation(t *testing.T) {
	in := jobInputs(t, "x", "y")
	in.Data = in.Data.Subset([]int{0, 1})
	if in.Data.Y[0] == in.Data.Y[1] {
		t.Fatalf("labels %v, want one sample of each class", in.Data.Y)
	}
	j := gradualJob()
	j.Shots = 0
	_, err := j.Prepare(in)
	want := `data "blobs": no validation samples: no class has more than one sample, and a class gives validation a sample only when another stays for training; give some class at least 2`
	if !errors.As(err, new(InputError)) || !errors.Is(err, ErrNoValidation) || err.Error() != want {
		t.Fatalf("err = %v, want the InputError %q", err, want)
	}
}
