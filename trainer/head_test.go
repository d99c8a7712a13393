package trainer

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func randBatch[T Float](rng *rand.Rand, n, in int) *Tensor[T] {
	x := NewTensor[T](n, in)
	for i := range x.Data {
		x.Data[i] = T(rng.NormFloat64())
	}
	return x
}

func TestReplaceHead(t *testing.T) {
	cfg := mlpConfigSizes(6, 5, 4, 3)
	// A two-layer head: both layers are re-initialised, the last resized.
	cfg.Blocks[2].Layers = []LayerConfig{
		{Type: "linear", Name: "head.0", InFeatures: 4, OutFeatures: 7},
		{Type: "relu"},
		{Type: "linear", Name: "head.2", InFeatures: 7, OutFeatures: 3},
	}
	m, err := New[float64](cfg, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	x := randBatch[float64](rand.New(rand.NewPCG(2, 2)), 4, 6)
	before := m.Forward(x, false).Clone()
	backbone := slices.Clone(m.Params()[:4])
	var backboneVals []*Tensor[float64]
	for _, p := range backbone {
		backboneVals = append(backboneVals, p.Value.Clone())
	}
	src := m.Head()

	classes := []string{"a", "b", "c", "d", "e"}
	if err := m.ReplaceHead(classes, rand.New(rand.NewPCG(9, 9))); err != nil {
		t.Fatal(err)
	}
	if got := m.Forward(x, false).Shape; !slices.Equal(got, []int{4, 5}) {
		t.Errorf("logits shape %v, want [4 5]", got)
	}
	if !slices.Equal(m.Config.Classes, classes) {
		t.Errorf("config classes %v, want %v", m.Config.Classes, classes)
	}
	if got := m.Config.Blocks[2].Layers[2].OutFeatures; got != 5 {
		t.Errorf("config head out_features %d, want 5", got)
	}
	if got := cfg.Blocks[2].Layers[2].OutFeatures; got != 3 || len(cfg.Classes) != 3 {
		t.Errorf("the source config changed: out_features %d, %d classes", got, len(cfg.Classes))
	}
	if err := m.Config.Validate(); err != nil {
		t.Errorf("updated config does not validate: %v", err)
	}
	// The new head is what PyTorch's construction order draws: head.0 then
	// head.2, each weight then bias from U(±1/√in).
	rng := rand.New(rand.NewPCG(9, 9))
	want0, want2 := NewLinear[float64]("head.0", 4, 7), NewLinear[float64]("head.2", 7, 5)
	want0.Reset(rng)
	want2.Reset(rng)
	h := m.Head()
	for i, want := range []*Linear[float64]{want0, want2} {
		got := h.Layers[2*i].(*Linear[float64])
		if !slices.Equal(got.Weight.Value.Data, want.Weight.Value.Data) || !slices.Equal(got.Bias.Value.Data, want.Bias.Value.Data) {
			t.Errorf("%s: not initialised as nn.Linear would be from rng", got.Weight.Name)
		}
		if !got.Weight.Trainable {
			t.Errorf("%s: new head is not trainable", got.Weight.Name)
		}
	}
	for i, p := range m.Params()[:4] {
		if p != backbone[i] || !slices.Equal(p.Value.Data, backboneVals[i].Data) {
			t.Errorf("backbone parameter %s changed", p.Name)
		}
	}
	// The detached source head still computes the old logits through the
	// backbone.
	if got := m.ForwardWithHead(x, src); !slices.Equal(got.Data, before.Data) {
		t.Errorf("source head through the backbone: logits differ from before the replacement")
	}
	if src.Layers[0].Params()[0].Trainable || !src.Frozen {
		t.Errorf("detached source head is still trainable")
	}
}

func TestReplaceHeadErrors(t *testing.T) {
	cases := []struct {
		classes []string
		want    string
	}{
		{[]string{"a"}, "at least two classes"},
		{[]string{"a", "b", "a"}, "twice"},
		{[]string{"a", ""}, "no name"},
	}
	for _, c := range cases {
		m := newMLP[float64](t, 1, 4, 3, 2)
		w := m.Head().Layers[0].Params()[0].Value.Clone()
		err := m.ReplaceHead(c.classes, rand.New(rand.NewPCG(1, 1)))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one containing %q", c.classes, err, c.want)
		}
		if got := m.Head().Layers[0].Params()[0].Value; !slices.Equal(got.Data, w.Data) || len(m.Config.Classes) != 2 {
			t.Errorf("%q: the model changed on error", c.classes)
		}
	}
}

// TestForgettingGauge is the run loop's use: keep the source head, replace
// it, train, and evaluate the source task through the moving backbone.
func TestForgettingGauge(t *testing.T) {
	m := newMLP[float64](t, 1, 6, 5, 4, 3)
	x := randBatch[float64](rand.New(rand.NewPCG(2, 2)), 4, 6)
	clone := m.CloneHead()
	if got, want := m.ForwardWithHead(x, clone).Clone(), m.Forward(x, false); !slices.Equal(got.Data, want.Data) {
		t.Fatalf("cloned head gives other logits than the model")
	}
	src := m.Head()
	before := m.ForwardWithHead(x, src).Clone()
	if err := m.ReplaceHead([]string{"x", "y"}, rand.New(rand.NewPCG(3, 3))); err != nil {
		t.Fatal(err)
	}
	o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 0)
	trainSteps(m, o, 3, 1)
	after := m.ForwardWithHead(x, src)
	if slices.Equal(after.Data, before.Data) {
		t.Errorf("source-task logits did not move although the backbone trained")
	}
	if c := m.ForwardWithHead(x, clone); !slices.Equal(c.Data, after.Data) {
		t.Errorf("clone and detached head disagree")
	}
	if got := m.ForwardWithHead(x, nil).Shape; !slices.Equal(got, []int{4, 2}) {
		t.Errorf("nil head: shape %v, want [4 2]", got)
	}
}

// TestOptimizerFollowsNewHead: state of the replaced head is dropped, the
// new head starts afresh, and the backbone keeps its state.
func TestOptimizerFollowsNewHead(t *testing.T) {
	m := newMLP[float32](t, 1, 6, 5, 3)
	o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 1e-2)
	trainSteps(m, o, 2, 1)
	if err := m.ReplaceHead([]string{"a", "b", "c", "d"}, rand.New(rand.NewPCG(3, 3))); err != nil {
		t.Fatal(err)
	}
	trainSteps(m, o, 2, 2)
	s := o.State()
	if got := s["head.weight.step"].Data[0]; got != 2 {
		t.Errorf("new head step count %v, want 2", got)
	}
	if got := s["fc1.weight.step"].Data[0]; got != 4 {
		t.Errorf("backbone step count %v, want 4", got)
	}
	if got := s["head.weight.exp_avg"].Shape; !slices.Equal(got, []int{4, 5}) {
		t.Errorf("head state shape %v, want [4 5]", got)
	}
	for _, v := range s["head.weight"+".exp_avg_sq"].Data {
		if math.IsNaN(float64(v)) {
			t.Fatal("NaN in new head state")
		}
	}
}

// TestCutModel: the model cut after block k keeps blocks 0..k with copies
// of their weights, tops them with a linear probe to the classes, and
// leaves the model it was cut from alone.
func TestCutModel(t *testing.T) {
	m, err := New[float64](mlpConfigSizes(6, 5, 4, 3), rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	cut, err := CutModel(m, 0, rand.New(rand.NewPCG(2, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if got := cut.Config.BlockNames(); !slices.Equal(got, []string{m.Blocks[0].Name, "probe"}) {
		t.Fatalf("blocks %v, want the first and the probe", got)
	}
	src, dst := m.Blocks[0].Layers[0].Params(), cut.Blocks[0].Layers[0].Params()
	for i := range src {
		if !slices.Equal(src[i].Value.Data, dst[i].Value.Data) {
			t.Errorf("parameter %d of block 0 not copied", i)
		}
	}
	dst[0].Value.Data[0]++
	if src[0].Value.Data[0] == dst[0].Value.Data[0] {
		t.Error("the cut model shares its weights with the model")
	}
	x := randBatch[float64](rand.New(rand.NewPCG(3, 3)), 4, 6)
	if got := cut.Forward(x, false).Shape; !slices.Equal(got, []int{4, len(m.Config.Classes)}) {
		t.Errorf("logits shape %v, want [4 %d]", got, len(m.Config.Classes))
	}
	if len(m.Blocks) != 3 {
		t.Errorf("the model has %d blocks after the cut, want 3", len(m.Blocks))
	}
}
