package trainer

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// Freezing is real: a frozen parameter gets no gradient, no optimizer state,
// no weight decay and stays bit-identical, and Backward does no work below
// the lowest trainable block.

type optCase struct {
	name string
	new  func(m *Model[float32]) Optimizer[float32]
}

// optCases are the optimizers the freezing contract is checked for, with
// weight decay on so that a decayed frozen parameter would show.
var optCases = []optCase{
	{"sgd", func(m *Model[float32]) Optimizer[float32] {
		o, _ := NewSGD(m, 0.9, 1e-2, true)
		return o
	}},
	{"adamw", func(m *Model[float32]) Optimizer[float32] {
		o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 0.1)
		return o
	}},
}

func paramSnapshot[T Float](m *Model[T]) map[string][]T {
	s := map[string][]T{}
	for _, p := range m.Params() {
		s[p.Name] = slices.Clone(p.Value.Data)
	}
	return s
}

// checkFrozen verifies that the parameters of the named blocks are
// bit-identical to snap, have no gradient and no optimizer state, and that
// every other block's parameters moved.
func checkFrozen[T Float](t *testing.T, m *Model[T], o Optimizer[T], snap map[string][]T, frozen ...string) {
	t.Helper()
	state := o.State()
	for _, b := range m.Blocks {
		isFrozen := slices.Contains(frozen, b.Name)
		for _, p := range blockParams(b) {
			same := slices.Equal(p.Value.Data, snap[p.Name])
			switch {
			case isFrozen && !same:
				t.Errorf("frozen %s changed", p.Name)
			case !isFrozen && same:
				t.Errorf("trainable %s did not move", p.Name)
			}
			if isFrozen && p.Grad != nil {
				t.Errorf("frozen %s has a gradient", p.Name)
			}
			if isFrozen {
				for k := range state {
					if strings.HasPrefix(k, p.Name+".") {
						t.Errorf("frozen %s has optimizer state %q", p.Name, k)
					}
				}
			}
		}
	}
}

func TestFrozenBlocksStayPut(t *testing.T) {
	layouts := []struct {
		name   string
		frozen []string
	}{
		{"bottom", []string{"fc1"}},
		// A frozen block between trainable ones: Backward passes through it
		// for the input gradient but computes no parameter gradient.
		{"middle", []string{"fc2"}},
		{"all but head", []string{"fc1", "fc2"}},
	}
	for _, oc := range optCases {
		for _, lay := range layouts {
			t.Run(oc.name+"/"+lay.name, func(t *testing.T) {
				m := newMLP[float32](t, 1, 20, 16, 12, 5)
				for _, b := range lay.frozen {
					if err := m.SetFrozen(b, true); err != nil {
						t.Fatal(err)
					}
				}
				snap := paramSnapshot(m)
				o := oc.new(m)
				trainSteps(m, o, 50, 1)
				checkFrozen(t, m, o, snap, lay.frozen...)
				for i, st := range o.Stats() {
					if got, want := st.Updated, !slices.Contains(lay.frozen, m.Blocks[i].Name); got != want {
						t.Errorf("%s: stats Updated = %v, want %v", st.Block, got, want)
					}
				}
			})
		}
	}
}

// TestStateKeptWhenRefrozen: a block frozen again keeps its optimizer state
// unchanged (as PyTorch keeps state when requires_grad is turned off), and
// a block unfrozen later gets state lazily at its first update.
func TestStateKeptWhenRefrozen(t *testing.T) {
	m := newMLP[float32](t, 1, 20, 16, 12, 5)
	m.FreezeBelow(1) // fc1 frozen from the start
	o, _ := NewAdamW(m, 0.9, 0.999, 1e-8, 0.1)
	trainSteps(m, o, 3, 1)
	if _, ok := o.State()["fc1.weight.exp_avg"]; ok {
		t.Fatal("never-trained fc1 has state")
	}
	m.FreezeBelow(0)
	trainSteps(m, o, 2, 2)
	s := o.State()
	if got := s["fc1.weight.step"].Data[0]; got != 2 {
		t.Errorf("fc1 step after unfreezing for 2 steps: %v, want 2", got)
	}
	if got := s["head.weight.step"].Data[0]; got != 5 {
		t.Errorf("head step: %v, want 5", got)
	}
	m.FreezeBelow(1)
	snap := paramSnapshot(m)
	trainSteps(m, o, 4, 3)
	after := o.State()
	for _, k := range []string{"fc1.weight.exp_avg", "fc1.weight.exp_avg_sq", "fc1.bias.exp_avg", "fc1.weight.step"} {
		if !slices.Equal(after[k].Data, s[k].Data) {
			t.Errorf("%s changed while fc1 was frozen", k)
		}
	}
	if !slices.Equal(m.Params()[0].Value.Data, snap["fc1.weight"]) {
		t.Errorf("refrozen fc1.weight moved")
	}
	m.FreezeBelow(0)
	trainSteps(m, o, 1, 4)
	if got := o.State()["fc1.weight.step"].Data[0]; got != 3 {
		t.Errorf("fc1 step after unfreezing again: %v, want 3 (state resumed)", got)
	}
}

// tripwire is an identity layer that fails the test if Backward reaches it.
type tripwire[T Float] struct{}

func (l *tripwire[T]) Kind() string                                { return "tripwire" }
func (l *tripwire[T]) Params() []*Param[T]                         { return nil }
func (l *tripwire[T]) OutShape(in []int) ([]int, error)            { return in, nil }
func (l *tripwire[T]) Forward(x *Tensor[T], train bool) *Tensor[T] { return x }
func (l *tripwire[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	panic("backward reached a layer below the lowest trainable block")
}

func TestBackwardStopsAtLowestTrainable(t *testing.T) {
	for _, oc := range optCases {
		t.Run(oc.name, func(t *testing.T) {
			m := newMLP[float32](t, 1, 20, 16, 12, 5)
			// Tripwires at the bottom of fc1 and between fc1 and fc2.
			m.Blocks[0].Layers = append([]Layer[float32]{&tripwire[float32]{}}, m.Blocks[0].Layers...)
			m.Blocks[1].Layers = append([]Layer[float32]{&tripwire[float32]{}}, m.Blocks[1].Layers...)
			m.FreezeBelow(1)
			o := oc.new(m)
			// The tripwire in fc2 sits below fc2's Linear, the lowest layer
			// with a trainable parameter, so it must not be reached either.
			trainSteps(m, o, 5, 1)
			for _, p := range blockParams(m.Blocks[0]) {
				if p.Grad != nil {
					t.Errorf("%s has a gradient buffer", p.Name)
				}
			}
			// Sanity: with everything trainable the tripwire does fire.
			m.FreezeBelow(0)
			func() {
				defer func() {
					if recover() == nil {
						t.Error("tripwire did not fire with fc1 trainable")
					}
				}()
				trainSteps(m, o, 1, 2)
			}()
		})
	}
}

// bnConfig is a 20-16-12-5 MLP with BatchNorm1d after each hidden Linear, as
// nn.Sequential(Linear, BatchNorm1d, ReLU) blocks.
func bnConfig() *Config {
	block := func(name string, in, out int) BlockConfig {
		return BlockConfig{Name: name, Layers: []LayerConfig{
			{Type: "linear", Name: name + ".0", InFeatures: in, OutFeatures: out},
			{Type: "batchnorm1d", Name: name + ".1", NumFeatures: out},
			{Type: "relu"},
		}}
	}
	return &Config{
		Name: "bn-mlp", InputShape: []int{20}, Classes: []string{"a", "b", "c", "d", "e"},
		Blocks: []BlockConfig{
			block("fc1", 20, 16),
			block("fc2", 16, 12),
			{Name: "head", Layers: []LayerConfig{{Type: "linear", Name: "head", InFeatures: 12, OutFeatures: 5}}},
		},
	}
}

// TestFrozenBatchNorm: a frozen block's BatchNorm runs in inference mode, so
// its running statistics stay bit-identical through 50 training steps; with
// SetTrainBN(true) they move and its weight and bias train, while the rest
// of the block stays frozen (fastai's train_bn).
func TestFrozenBatchNorm(t *testing.T) {
	for _, trainBN := range []bool{false, true} {
		for _, oc := range optCases {
			t.Run(fmt.Sprintf("%s/trainBN=%v", oc.name, trainBN), func(t *testing.T) {
				m, err := New[float32](bnConfig(), rand.New(rand.NewPCG(1, 1)))
				if err != nil {
					t.Fatal(err)
				}
				m.FreezeBelow(1)
				m.SetTrainBN(trainBN)
				snap := paramSnapshot(m)
				o := oc.new(m)
				trainSteps(m, o, 50, 1)
				state := o.State()
				for _, p := range m.Params() {
					same := slices.Equal(p.Value.Data, snap[p.Name])
					_, hasState := state[p.Name+"."+map[string]string{"sgd": "momentum_buffer", "adamw": "exp_avg"}[oc.name]]
					var wantMoved, wantState bool
					switch {
					case strings.HasPrefix(p.Name, "fc1.0."): // frozen Linear
					case strings.HasPrefix(p.Name, "fc1.1."): // frozen block's BatchNorm
						wantMoved = trainBN
						wantState = trainBN && !p.Buffer
					default: // trainable blocks: parameters and running statistics move
						wantMoved = true
						wantState = !p.Buffer
					}
					// A bias right before BatchNorm has zero gradient in exact
					// arithmetic (BN subtracts the batch mean), so whether a
					// trainable one moves is rounding noise: not checked.
					noise := p.Name == "fc2.0.bias"
					if same == wantMoved && !noise {
						t.Errorf("%s moved = %v, want %v", p.Name, !same, wantMoved)
					}
					if hasState != wantState {
						t.Errorf("%s has optimizer state = %v, want %v", p.Name, hasState, wantState)
					}
					if (p.Grad != nil) != wantState {
						t.Errorf("%s has a gradient = %v, want %v", p.Name, p.Grad != nil, wantState)
					}
				}
			})
		}
	}
}
