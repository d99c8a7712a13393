package trainer

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"thaw/trainer/safetensors"
)

// Step-by-step comparison with PyTorch 1.13: the MLP 784-256-128-10 trains
// 20 steps on the same fixture in thaw and in testdata/torch/reference.py,
// and the per-step losses and the final weights must agree.
//
// The fixture holds the initial weights and 20 batches of 16 samples. Its
// floats are stored as F16 so the file stays under 1 MB; both sides widen
// them exactly, so they start from identical values in either precision.

var updateTorch = flag.Bool("update-torch", false, "regenerate "+torchFixture)

const (
	torchFixture = "testdata/torch/fixture.safetensors"
	torchScript  = "testdata/torch/reference.py"
	// Debian's interpreter, which has python3-torch; the python3 first on
	// PATH may be another one without torch.
	torchPython = "/usr/bin/python3"

	torchSteps, torchBatch = 20, 16
)

var torchSizes = []int{784, 256, 128, 10}

// torchRun mirrors one entry of RUNS in reference.py.
type torchRun struct {
	name        string
	adamw       bool
	lr          float64
	momentum    float64
	nesterov    bool
	weightDecay float64
	mult        map[string]float64
	frozen      []string
	clip        float64 // 0: no clipping
}

var torchRuns = []torchRun{
	{name: "sgd", lr: 0.05, momentum: 0.9, weightDecay: 1e-4},
	{name: "adamw", adamw: true, lr: 1e-3, weightDecay: 1e-2},
	{name: "sgd-nesterov-frozen-clip", lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4,
		mult: map[string]float64{"fc2": 0.5}, frozen: []string{"fc1"}, clip: 0.8},
}

// Tolerances, relative; the final weights are compared as ‖Δ‖/‖w‖ per
// tensor. The two sides sum GEMMs in different orders and torch's vector
// kernels fuse multiply-adds, so they differ by a few ulps per operation;
// measured over the 20 steps: about 1e-7 (losses) and 1e-6 (weights) in
// float32, 1e-16 and 1e-15 in float64. The bounds are the acceptance
// criteria and leave room for that rounding to grow through training.
var torchTol = map[string]float64{"float32": 1e-4, "float64": 1e-9}

func TestTorchFixtureUpdate(t *testing.T) {
	if !*updateTorch {
		t.Skip("run with -update-torch to regenerate " + torchFixture)
	}
	rng := rand.New(rand.NewPCG(2026, 11))
	m, err := New[float32](mlpConfigSizes(torchSizes...), rng)
	if err != nil {
		t.Fatal(err)
	}
	var tensors []SafeTensor
	for _, p := range m.Params() {
		st, err := FromTensor(p.Name, p.Value, DTypeF16)
		if err != nil {
			t.Fatal(err)
		}
		tensors = append(tensors, st)
	}
	x := NewTensor[float64](torchSteps, torchBatch, torchSizes[0])
	for i := range x.Data {
		x.Data[i] = rng.NormFloat64()
	}
	y := NewTensor[float64](torchSteps, torchBatch)
	for i := range y.Data {
		y.Data[i] = float64(rng.IntN(torchSizes[len(torchSizes)-1]))
	}
	xs, err := FromTensor("x", x, DTypeF16)
	if err != nil {
		t.Fatal(err)
	}
	ys, err := FromTensor("y", y, DTypeI64)
	if err != nil {
		t.Fatal(err)
	}
	tensors = append(tensors, xs, ys)
	var buf bytes.Buffer
	meta := map[string]string{"about": "thaw optimizer comparison with PyTorch: MLP 784-256-128-10 initial weights, 20 batches x [16, 784], labels y"}
	if err := safetensors.Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(torchFixture, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTorchComparison(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PyTorch process; skipped with -short")
	}
	if err := exec.Command(torchPython, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch is not importable by %s (%v); install python3-torch to compare with it", torchPython, err)
	}
	fix, err := safetensors.ReadFile(torchFixture)
	if err != nil {
		t.Fatalf("%v (regenerate with -update-torch)", err)
	}
	out := t.TempDir()
	cmd := exec.Command(torchPython, torchScript, torchFixture, out)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1", "OPENBLAS_NUM_THREADS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", torchScript, err, stderr.String())
	}
	var ref map[string]map[string][]float64
	if err := json.Unmarshal(stdout, &ref); err != nil {
		t.Fatalf("%s output: %v\n%s", torchScript, err, stdout)
	}
	for _, run := range torchRuns {
		for _, dtype := range []string{"float32", "float64"} {
			t.Run(run.name+"/"+dtype, func(t *testing.T) {
				want := ref[run.name][dtype]
				if len(want) != torchSteps {
					t.Fatalf("reference has %d losses, want %d", len(want), torchSteps)
				}
				final, err := safetensors.ReadFile(filepath.Join(out, run.name+"-"+dtype+".safetensors"))
				if err != nil {
					t.Fatal(err)
				}
				var got []float64
				var weights map[string][]float64
				if dtype == "float32" {
					got, weights = trainLikeTorch[float32](t, fix, run)
				} else {
					got, weights = trainLikeTorch[float64](t, fix, run)
				}
				tol := torchTol[dtype]
				var worst float64
				for i := range want {
					d := math.Abs(got[i]-want[i]) / math.Abs(want[i])
					worst = max(worst, d)
					if !(d <= tol) {
						t.Errorf("step %d: loss %.10g, torch %.10g (relative difference %.2g, want ≤ %g)", i+1, got[i], want[i], d, tol)
					}
				}
				var worstW float64
				for name, w := range weights {
					st := final.Tensor(name)
					if st == nil {
						t.Fatalf("torch weights lack %s", name)
					}
					tw, err := ToTensor[float64](st)
					if err != nil {
						t.Fatal(err)
					}
					d := relErr(w, tw.Data)
					worstW = max(worstW, d)
					if !(d <= tol) {
						t.Errorf("final %s: relative difference ‖Δ‖/‖w‖ %.2g, want ≤ %g", name, d, tol)
					}
				}
				t.Logf("max relative difference: losses %.2g, final weights %.2g", worst, worstW)
			})
		}
	}
}

// trainLikeTorch trains the fixture's MLP as reference.py does and returns
// the per-step losses and the final weights by name.
func trainLikeTorch[T Float](t *testing.T, fix *safetensors.File, run torchRun) ([]float64, map[string][]float64) {
	t.Helper()
	m, err := New[T](mlpConfigSizes(torchSizes...), rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	var weights []SafeTensor
	for _, st := range fix.Tensors {
		if strings.Contains(st.Name, ".") {
			weights = append(weights, st)
		}
	}
	if err := m.LoadState(weights); err != nil {
		t.Fatal(err)
	}
	for _, b := range run.frozen {
		if err := m.SetFrozen(b, true); err != nil {
			t.Fatal(err)
		}
	}
	for b, k := range run.mult {
		m.Block(b).LRMult = k
	}
	var o Optimizer[T]
	if run.adamw {
		o, err = NewAdamW(m, 0.9, 0.999, 1e-8, run.weightDecay)
	} else {
		o, err = NewSGD(m, run.momentum, run.weightDecay, run.nesterov)
	}
	if err != nil {
		t.Fatal(err)
	}
	x, err := ToTensor[T](fix.Tensor("x"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := ToTensor[float64](fix.Tensor("y"))
	if err != nil {
		t.Fatal(err)
	}
	in := torchSizes[0]
	labels := make([]int, torchBatch)
	var ce CrossEntropy[T]
	var losses []float64
	// The clipping norm sits inside the range of the gradient norms
	// (about 0.7–0.95), so both branches of clipping are compared.
	clipped := 0
	for s := range torchSteps {
		xb := &Tensor[T]{Shape: []int{torchBatch, in}, Data: x.Data[s*torchBatch*in : (s+1)*torchBatch*in]}
		for i := range labels {
			labels[i] = int(y.Data[s*torchBatch+i])
		}
		losses = append(losses, ce.Forward(m.Forward(xb, true), labels))
		m.Backward(ce.Backward())
		if run.clip > 0 && o.ClipGradNorm(run.clip) > run.clip {
			clipped++
		}
		o.Step(run.lr)
	}
	if run.clip > 0 && (clipped == 0 || clipped == torchSteps) {
		t.Errorf("%d of %d steps clipped at %v: want some clipped and some not", clipped, torchSteps, run.clip)
	}
	final := map[string][]float64{}
	for _, p := range m.Params() {
		w := make([]float64, p.Value.Len())
		for i, v := range p.Value.Data {
			w[i] = float64(v)
		}
		final[p.Name] = w
	}
	if len(final) != 6 {
		panic(fmt.Sprintf("MLP has %d parameters, want 6", len(final)))
	}
	return losses, final
}

// TestSavedModelLoadsInTorch checks the promise made to users: a model
// thaw saves loads into torch.nn with load_state_dict(strict=True) and
// computes the same outputs. The model has every kind of layer with
// parameters or buffers (conv, BatchNorm 1d and 2d with their int64
// num_batches_tracked, linear) and trained BatchNorm statistics.
func TestSavedModelLoadsInTorch(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PyTorch process; skipped with -short")
	}
	if err := exec.Command(torchPython, "-c", "import torch").Run(); err != nil {
		t.Skipf("PyTorch is not importable by %s (%v); install python3-torch to compare with it", torchPython, err)
	}
	cfg := smallCNN()
	cfg.Normalize = &Normalization{Mean: []float64{0.25}, Std: []float64{0.5}}
	m, err := New[float32](cfg, rand.New(rand.NewPCG(5, 6)))
	if err != nil {
		t.Fatal(err)
	}
	m.SetRand(rand.New(rand.NewPCG(1, 1)))
	rng := rand.New(rand.NewPCG(7, 8))
	x := NewTensor[float32](append([]int{6}, cfg.InputShape...)...)
	for i := range x.Data {
		x.Data[i] = float32(rng.Float64())
	}
	labels := []int{0, 1, 2, 0, 1, 2}
	opt, err := NewSGD(m, 0.9, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	var ce CrossEntropy[float32]
	for range 3 { // move the weights and the BatchNorm statistics
		ce.Forward(m.Forward(x, true), labels)
		m.Backward(ce.Backward())
		opt.Step(0.05)
	}
	dir := t.TempDir()
	if err := SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	want := m.Forward(x, false).Clone()

	xt, err := FromTensor("x", x, DTypeF32)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, []SafeTensor{xt}, nil); err != nil {
		t.Fatal(err)
	}
	inputs, out := filepath.Join(dir, "x.safetensors"), filepath.Join(dir, "logits.safetensors")
	if err := os.WriteFile(inputs, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(torchPython, "testdata/torch/load_model.py", dir, inputs, out)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("load_model.py: %v\n%s", err, b)
	}
	f, err := safetensors.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ToTensor[float32](f.Tensor("logits"))
	if err != nil {
		t.Fatal(err)
	}
	if !got.SameShape(want) {
		t.Fatalf("torch logits shape %v, want %v", got.Shape, want.Shape)
	}
	// Same float32 arithmetic in another order: a few ulps of the logits.
	if e := relErr(toF64(got.Data), toF64(want.Data)); e > 1e-5 {
		t.Errorf("torch and thaw logits differ: relative error %.3g, want < 1e-5\ntorch %v\nthaw  %v", e, got.Data, want.Data)
	}
}

func toF64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}
