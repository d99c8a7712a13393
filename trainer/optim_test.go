package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// mlpConfigSizes describes an MLP with ReLUs between linear layers: one block per
// linear layer, named fc1, fc2, … and head for the last.
func mlpConfigSizes(sizes ...int) *Config {
	cfg := &Config{Name: "mlp", Architecture: "mlp", InputShape: []int{sizes[0]}}
	for i := 1; i < len(sizes); i++ {
		name := fmt.Sprintf("fc%d", i)
		if i == len(sizes)-1 {
			name = "head"
		}
		b := BlockConfig{Name: name, Layers: []LayerConfig{{Type: "linear", Name: name, InFeatures: sizes[i-1], OutFeatures: sizes[i]}}}
		if i < len(sizes)-1 {
			b.Layers = append(b.Layers, LayerConfig{Type: "relu"})
		}
		cfg.Blocks = append(cfg.Blocks, b)
	}
	for c := 0; c < sizes[len(sizes)-1]; c++ {
		cfg.Classes = append(cfg.Classes, fmt.Sprintf("c%d", c))
	}
	return cfg
}

func newMLP[T Float](t testing.TB, seed uint64, sizes ...int) *Model[T] {
	t.Helper()
	m, err := New[T](mlpConfigSizes(sizes...), rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// scalarModel is a model whose only learnable parameter that matters is a
// 1×1 weight w; its bias (NoDecay) is frozen out by giving it no gradient.
func scalarModel(w float64) (*Model[float64], *Param[float64]) {
	l := NewLinear[float64]("fc", 1, 1)
	l.Weight.Value.Data[0] = w
	l.Weight.Trainable = true
	m := &Model[float64]{Blocks: []*Block[float64]{{Name: "b", Layers: []Layer[float64]{l}}}}
	return m, l.Weight
}

// TestOptimizerSteps checks three steps of each rule against values worked
// out by hand, for w₀ = 1, a constant gradient g = 0.5 and lr = 0.1.
func TestOptimizerSteps(t *testing.T) {
	// AdamW with a constant gradient: the bias-corrected moments are exactly
	// g and g², so each step is w ← w·(1−lr·wd) − lr·g/(|g|+ε).
	u := 0.1 * 0.5 / (0.5 + 1e-8)
	aw1 := 1*0.99 - u
	aw2 := aw1*0.99 - u
	aw3 := aw2*0.99 - u
	a1 := 1 - u
	cases := []struct {
		name string
		opt  func(m *Model[float64]) (Optimizer[float64], error)
		mult float64
		want [3]float64
	}{
		{"sgd", func(m *Model[float64]) (Optimizer[float64], error) { return NewSGD(m, 0, 0, false) },
			0, [3]float64{0.95, 0.9, 0.85}},
		{"sgd/lr-mult", func(m *Model[float64]) (Optimizer[float64], error) { return NewSGD(m, 0, 0, false) },
			0.5, [3]float64{0.975, 0.95, 0.925}},
		// g' = g + 0.1·w: 0.6, 0.594, 0.58806.
		{"sgd/wd", func(m *Model[float64]) (Optimizer[float64], error) { return NewSGD(m, 0, 0.1, false) },
			0, [3]float64{0.94, 0.8806, 0.821794}},
		// buf: 0.5, 0.95, 1.355.
		{"sgd/momentum", func(m *Model[float64]) (Optimizer[float64], error) { return NewSGD(m, 0.9, 0, false) },
			0, [3]float64{0.95, 0.855, 0.7195}},
		// step direction g + 0.9·buf: 0.95, 1.355, 1.7195.
		{"sgd/nesterov", func(m *Model[float64]) (Optimizer[float64], error) { return NewSGD(m, 0.9, 0, true) },
			0, [3]float64{0.905, 0.7695, 0.59755}},
		// g' 0.6, 0.594, 0.58266; buf 0.6, 1.134, 1.60326.
		{"sgd/momentum+wd", func(m *Model[float64]) (Optimizer[float64], error) { return NewSGD(m, 0.9, 0.1, false) },
			0, [3]float64{0.94, 0.8266, 0.666274}},
		{"adamw", func(m *Model[float64]) (Optimizer[float64], error) { return NewAdamW(m, 0.9, 0.999, 1e-8, 0.1) },
			0, [3]float64{aw1, aw2, aw3}},
		{"adamw/no-wd", func(m *Model[float64]) (Optimizer[float64], error) { return NewAdamW(m, 0.9, 0.999, 1e-8, 0) },
			0, [3]float64{a1, a1 - u, a1 - 2*u}},
	}
	// The values above are exact decimals; float64 arithmetic over three
	// steps is within a few ulps of them.
	const tol = 1e-14
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, w := scalarModel(1)
			m.Blocks[0].LRMult = c.mult
			o, err := c.opt(m)
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range c.want {
				w.Grad = &Tensor[float64]{Shape: []int{1, 1}, Data: []float64{0.5}}
				o.Step(0.1)
				if got := w.Value.Data[0]; math.Abs(got-want) > tol {
					t.Errorf("step %d: w = %.17g, want %.17g", i+1, got, want)
				}
			}
		})
	}
}

// TestAdamWVaryingGradient follows AdamW's bias correction with a gradient
// that changes sign, against the formulas written out in float64.
func TestAdamWVaryingGradient(t *testing.T) {
	m, w := scalarModel(2)
	o, err := NewAdamW(m, 0.8, 0.9, 1e-3, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	grads := []float64{0.5, -1, 3}
	want, mom, v := 2.0, 0.0, 0.0
	for i, g := range grads {
		lr := 0.1 * float64(i+1)
		w.Grad = &Tensor[float64]{Shape: []int{1, 1}, Data: []float64{g}}
		o.Step(lr)
		step := float64(i + 1)
		want *= 1 - lr*0.05
		mom = 0.8*mom + 0.2*g
		v = 0.9*v + 0.1*g*g
		want -= lr / (1 - math.Pow(0.8, step)) * mom / (math.Sqrt(v)/math.Sqrt(1-math.Pow(0.9, step)) + 1e-3)
		if got := w.Value.Data[0]; math.Abs(got-want) > 1e-14 {
			t.Errorf("step %d: w = %.17g, want %.17g", i+1, got, want)
		}
	}
}

func TestNoDecay(t *testing.T) {
	// A NoDecay parameter with a zero gradient does not move under either
	// optimizer's weight decay.
	for _, name := range []string{"sgd", "adamw"} {
		m, w := scalarModel(1)
		w.NoDecay = true
		var o Optimizer[float64]
		if name == "sgd" {
			o, _ = NewSGD(m, 0.9, 0.5, false)
		} else {
			o, _ = NewAdamW(m, 0.9, 0.999, 1e-8, 0.5)
		}
		w.Grad = NewTensor[float64](1, 1)
		for range 3 {
			o.Step(0.1)
		}
		if got := w.Value.Data[0]; got != 1 {
			t.Errorf("%s: NoDecay weight = %v, want 1", name, got)
		}
	}
}

func TestOptimizerArgs(t *testing.T) {
	m, _ := scalarModel(1)
	bad := map[string]func() error{
		"sgd negative momentum":       func() error { _, err := NewSGD(m, -0.1, 0, false); return err },
		"sgd negative wd":             func() error { _, err := NewSGD(m, 0, -1, false); return err },
		"sgd nesterov w/o momentum":   func() error { _, err := NewSGD(m, 0, 0, true); return err },
		"adamw beta1 = 1":             func() error { _, err := NewAdamW(m, 1, 0.999, 1e-8, 0); return err },
		"adamw beta2 NaN":             func() error { _, err := NewAdamW(m, 0.9, math.NaN(), 1e-8, 0); return err },
		"adamw negative eps":          func() error { _, err := NewAdamW(m, 0.9, 0.999, -1, 0); return err },
		"adamw negative weight decay": func() error { _, err := NewAdamW(m, 0.9, 0.999, 1e-8, -1); return err },
	}
	for name, f := range bad {
		if f() == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestClipGradNorm(t *testing.T) {
	cases := []struct {
		name     string
		max      float64
		wantNorm float64
		scale    float64 // expected factor on the gradients
	}{
		{"clipped", 6.5, 13, 6.5 / (13 + 1e-6)},
		{"below max", 20, 13, 1},
		// coef = 13/(13+1e-6) < 1: PyTorch scales even at the limit.
		{"at max", 13, 13, 13 / (13 + 1e-6)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := NewLinear[float64]("fc", 2, 1)
			frozen := NewLinear[float64]("low", 2, 1)
			m := &Model[float64]{Blocks: []*Block[float64]{
				{Name: "low", Layers: []Layer[float64]{frozen}},
				{Name: "top", Layers: []Layer[float64]{l}},
			}}
			l.Weight.Trainable, l.Bias.Trainable = true, true
			l.Weight.Grad = &Tensor[float64]{Shape: []int{1, 2}, Data: []float64{3, 4}}
			l.Bias.Grad = &Tensor[float64]{Shape: []int{1}, Data: []float64{12}}
			// A stale gradient on a frozen parameter is neither counted nor
			// scaled.
			frozen.Weight.Grad = &Tensor[float64]{Shape: []int{1, 2}, Data: []float64{100, 100}}
			o, _ := NewSGD(m, 0, 0, false)
			if got := o.ClipGradNorm(c.max); math.Abs(got-c.wantNorm) > 1e-12 {
				t.Errorf("norm = %v, want %v", got, c.wantNorm)
			}
			want := []float64{3 * c.scale, 4 * c.scale, 12 * c.scale}
			got := append(append([]float64{}, l.Weight.Grad.Data...), l.Bias.Grad.Data...)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12 {
					t.Errorf("grad[%d] = %v, want %v", i, got[i], want[i])
				}
			}
			if frozen.Weight.Grad.Data[0] != 100 {
				t.Errorf("frozen gradient changed to %v", frozen.Weight.Grad.Data[0])
			}
		})
	}
}

// trainSteps runs n training steps of m with o on fixed random batches.
func trainSteps[T Float](m *Model[T], o Optimizer[T], n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	in, k := m.Config.InputShape[0], len(m.Config.Classes)
	x := NewTensor[T](8, in)
	labels := make([]int, 8)
	var ce CrossEntropy[T]
	var losses []float64
	for range n {
		for i := range x.Data {
			x.Data[i] = T(rng.NormFloat64())
		}
		for i := range labels {
			labels[i] = rng.IntN(k)
		}
		losses = append(losses, ce.Forward(m.Forward(x, true), labels))
		m.Backward(ce.Backward())
		o.Step(0.01)
	}
	return losses
}

func TestBlockStats(t *testing.T) {
	m := newMLP[float64](t, 1, 6, 5, 4, 3)
	m.FreezeBelow(1)
	m.Block("head").LRMult = 2
	o, _ := NewSGD(m, 0, 0, false)
	before := m.Params()[2].Value.Clone() // fc2.weight
	trainSteps(m, o, 1, 1)
	st := o.Stats()
	if len(st) != 3 {
		t.Fatalf("%d block stats, want 3", len(st))
	}
	if st[0].Updated || st[0].GradNorm != 0 || st[0].UpdateRatio != 0 {
		t.Errorf("frozen fc1 stats %+v, want zero", st[0])
	}
	if !st[1].Updated || !st[2].Updated {
		t.Fatalf("trainable blocks not updated: %+v", st)
	}
	if st[1].LR != 0.01 || st[2].LR != 0.02 {
		t.Errorf("block LRs %v, %v, want 0.01, 0.02", st[1].LR, st[2].LR)
	}
	// Plain SGD: Δw = −lr·g, so ‖Δw‖ = lr·‖g‖ up to rounding.
	for _, s := range st[1:] {
		if r := s.UpdateNorm / (s.LR * s.GradNorm); math.Abs(r-1) > 1e-12 {
			t.Errorf("%s: ‖Δw‖/(lr·‖g‖) = %v, want 1", s.Block, r)
		}
		if r := s.UpdateNorm / s.WeightNorm; r != s.UpdateRatio {
			t.Errorf("%s: UpdateRatio %v, want %v", s.Block, s.UpdateRatio, r)
		}
	}
	// The weight norm is the one before the step.
	fc2 := m.Block("fc2")
	w := fc2.Layers[0].(*Linear[float64])
	want := math.Sqrt(sumSq(before.Data) + sumSq(w.Bias.Value.Data)) // bias moved, so only check the weight part loosely
	if st[1].WeightNorm < want*0.99 || st[1].WeightNorm > want*1.01 {
		t.Errorf("fc2 weight norm %v, want about %v", st[1].WeightNorm, want)
	}
}

// TestSkipStats checks that skipping the diagnostics changes nothing but
// the diagnostics: the same weights, and Stats keeps the last collected.
func TestSkipStats(t *testing.T) {
	for _, kind := range []string{"sgd", "adamw"} {
		t.Run(kind, func(t *testing.T) {
			mk := func() (*Model[float64], Optimizer[float64]) {
				m := newMLP[float64](t, 1, 6, 5, 4, 3)
				if kind == "sgd" {
					o, _ := NewSGD(m, 0.9, 1e-4, true)
					return m, o
				}
				o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 1e-2)
				return m, o
			}
			m1, o1 := mk()
			m2, o2 := mk()
			for range 3 {
				trainSteps(m1, o1, 1, 1)
			}
			o2.SkipStats(true)
			trainSteps(m2, o2, 1, 1)
			if o2.Stats()[1].Updated {
				t.Errorf("a step without stats filled them: %+v", o2.Stats()[1])
			}
			o2.SkipStats(false)
			trainSteps(m2, o2, 1, 1)
			o2.SkipStats(true)
			collected := o2.Stats()[1]
			trainSteps(m2, o2, 1, 1)
			if got := o2.Stats()[1]; got != collected || !got.Updated {
				t.Errorf("stats after a skipped step %+v, want the collected %+v", got, collected)
			}
			for i, p := range m1.Params() {
				if !slices.Equal(p.Value.Data, m2.Params()[i].Value.Data) {
					t.Errorf("%s differs when stats are skipped", p.Name)
				}
			}
		})
	}
}

func TestStepDoesNotAllocate(t *testing.T) {
	m := newMLP[float32](t, 1, 6, 5, 3)
	sgd, _ := NewSGD(m, 0.9, 1e-4, true)
	adam, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 1e-2)
	trainSteps(m, sgd, 1, 1)
	trainSteps(m, adam, 1, 1)
	for name, o := range map[string]Optimizer[float32]{"sgd": sgd, "adamw": adam} {
		if n := testing.AllocsPerRun(10, func() { o.ClipGradNorm(1); o.Step(0.01) }); n != 0 {
			t.Errorf("%s: %v allocations per step, want 0", name, n)
		}
	}
}

// TestOptimizerStateRoundTrip checks that exporting and importing the state resumes
// bit-exactly: a model copied after 3 steps with a fresh optimizer loaded
// from the state matches the original after 3 more.
func TestOptimizerStateRoundTrip(t *testing.T) {
	for _, name := range []string{"sgd", "adamw"} {
		t.Run(name, func(t *testing.T) {
			mk := func(m *Model[float32]) Optimizer[float32] {
				if name == "sgd" {
					o, _ := NewSGD(m, 0.9, 1e-4, false)
					return o
				}
				o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 1e-2)
				return o
			}
			a := newMLP[float32](t, 1, 6, 5, 3)
			a.FreezeBelow(1)
			oa := mk(a)
			trainSteps(a, oa, 3, 1)
			state := oa.State()
			wantKeys := map[string]int{"sgd": 2, "adamw": 6}[name]
			if len(state) != wantKeys {
				t.Errorf("%d state entries, want %d (head only): %v", len(state), wantKeys, stateKeys(state))
			}
			for k := range state {
				if strings.HasPrefix(k, "fc1.") {
					t.Errorf("frozen parameter has state %q", k)
				}
			}
			b := newMLP[float32](t, 2, 6, 5, 3)
			for i, p := range b.Params() {
				copy(p.Value.Data, a.Params()[i].Value.Data)
			}
			b.FreezeBelow(1)
			ob := mk(b)
			if err := ob.LoadState(state); err != nil {
				t.Fatal(err)
			}
			trainSteps(a, oa, 3, 2)
			trainSteps(b, ob, 3, 2)
			for i, p := range a.Params() {
				q := b.Params()[i]
				for j := range p.Value.Data {
					if p.Value.Data[j] != q.Value.Data[j] {
						t.Fatalf("%s[%d]: %v after resuming, want %v", p.Name, j, q.Value.Data[j], p.Value.Data[j])
					}
				}
			}
		})
	}
}

func stateKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestOptimizerLoadStateErrors(t *testing.T) {
	m := newMLP[float64](t, 1, 4, 3, 2)
	o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 0)
	trainSteps(m, o, 1, 1)
	good := o.State()
	cases := []struct {
		name string
		edit func(s map[string]*Tensor[float64])
		want string
	}{
		{"unknown parameter", func(s map[string]*Tensor[float64]) { s["nope.exp_avg"] = NewTensor[float64](1) }, "no learnable parameter"},
		{"unknown kind", func(s map[string]*Tensor[float64]) { s["head.weight.momentum_buffer"] = NewTensor[float64](2, 3) }, "unexpected entry"},
		{"shape", func(s map[string]*Tensor[float64]) { s["head.weight.exp_avg"] = NewTensor[float64](3, 2) }, "shape"},
		{"missing", func(s map[string]*Tensor[float64]) { delete(s, "head.bias.exp_avg_sq") }, "no \"head.bias.exp_avg_sq\""},
		{"step", func(s map[string]*Tensor[float64]) { s["head.bias.step"].Data[0] = 0.5 }, "positive integer"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := o.State()
			c.edit(s)
			before := o.State()
			err := o.LoadState(s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			after := o.State()
			if len(after) != len(before) || after["head.weight.exp_avg"].Data[0] != before["head.weight.exp_avg"].Data[0] {
				t.Errorf("failed LoadState changed the state")
			}
		})
	}
	if err := o.LoadState(good); err != nil {
		t.Errorf("loading own state: %v", err)
	}
}

func BenchmarkAdamWStep(b *testing.B) {
	m := newMLP[float32](b, 1, 784, 256, 128, 10)
	o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 1e-2)
	trainSteps(m, o, 1, 1)
	b.ResetTimer()
	for range b.N {
		o.Step(1e-3)
	}
}
