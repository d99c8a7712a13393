package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Gradient checks: every layer's backward pass against central finite
// differences, in float64, for the input and for every parameter.
//
// The scalar checked is L = Σ r ⊙ f(x) for a fixed random r, so ∂L/∂y = r.
// Central differences have truncation error O(h²) and rounding error
// O(ε/h); h = 1e-6 balances the two for float64 (ε ≈ 1e-16) at about 1e-10
// absolute, far below the 1e-4 relative tolerance the checks demand.
const (
	fdStep  = 1e-6
	gradTol = 1e-4 // relative error, ‖analytic − numeric‖ / max(‖analytic‖, ‖numeric‖)
)

// gradCase is one layer to check.
type gradCase struct {
	name  string
	layer func(rng *rand.Rand) Layer[float64]
	input []int // batch shape, including N
	train bool
	// before runs ahead of every forward pass; layers with randomness use it
	// to replay the same draws (Dropout's mask) so the function is fixed.
	before func(l Layer[float64])
	// input fills x; nil draws from N(0,1).
	fill func(rng *rand.Rand, x []float64)
}

// checkGradients compares analytic and numeric gradients for one case.
func checkGradients(t *testing.T, c gradCase) {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	l := c.layer(rng)
	for _, p := range l.Params() {
		p.Trainable = !p.Buffer
	}
	x := NewTensor[float64](c.input...)
	if c.fill != nil {
		c.fill(rng, x.Data)
	} else {
		for i := range x.Data {
			x.Data[i] = rng.NormFloat64()
		}
	}
	forward := func() *Tensor[float64] {
		if c.before != nil {
			c.before(l)
		}
		return l.Forward(x, c.train)
	}
	y := forward()
	r := NewTensor[float64](y.Shape...)
	for i := range r.Data {
		r.Data[i] = rng.NormFloat64()
	}
	loss := func() float64 {
		y := forward()
		var s float64
		for i, v := range y.Data {
			s += v * r.Data[i]
		}
		return s
	}
	// Analytic.
	forward()
	dx := l.Backward(r, true).Clone()
	grads := map[string]*Tensor[float64]{}
	for _, p := range l.Params() {
		if p.Trainable {
			grads[p.Name] = p.Grad.Clone()
		}
	}
	// Numeric.
	numeric := func(v []float64) []float64 {
		g := make([]float64, len(v))
		for i := range v {
			orig := v[i]
			v[i] = orig + fdStep
			lp := loss()
			v[i] = orig - fdStep
			lm := loss()
			v[i] = orig
			g[i] = (lp - lm) / (2 * fdStep)
		}
		return g
	}
	if e := relErr(dx.Data, numeric(x.Data)); e > gradTol {
		t.Errorf("input gradient: relative error %.3g, want < %g", e, gradTol)
	}
	for _, p := range l.Params() {
		if !p.Trainable {
			continue
		}
		if e := relErr(grads[p.Name].Data, numeric(p.Value.Data)); e > gradTol {
			t.Errorf("%s gradient: relative error %.3g, want < %g", p.Name, e, gradTol)
		}
	}
}

func relErr(a, b []float64) float64 {
	var d, na, nb float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	den := math.Sqrt(max(na, nb))
	if den == 0 {
		return math.Sqrt(d)
	}
	return math.Sqrt(d) / den
}

// gradCases lists every layer with the shapes it is checked at.
var gradCases = []gradCase{
	{name: "linear", input: []int{4, 5}, layer: func(rng *rand.Rand) Layer[float64] {
		l := NewLinear[float64]("fc", 5, 3)
		l.Reset(rng)
		return l
	}},
	{name: "linear/4d input", input: []int{3, 2, 2, 2}, layer: func(rng *rand.Rand) Layer[float64] {
		l := NewLinear[float64]("fc", 8, 4)
		l.Reset(rng)
		return l
	}},
	{name: "relu", input: []int{4, 7}, layer: func(*rand.Rand) Layer[float64] { return &ReLU[float64]{} }},
	{name: "gelu", input: []int{4, 7}, layer: func(*rand.Rand) Layer[float64] { return &GELU[float64]{} }},
	{name: "flatten", input: []int{2, 3, 2, 4}, layer: func(*rand.Rand) Layer[float64] { return &Flatten[float64]{} }},

	// Conv2D: stride and padding combinations on a non-square input whose
	// sizes do not divide evenly by the stride, so the floor in the output
	// size and the clipped windows at the border are both exercised.
	convCase(1, 0, 3, []int{2, 3, 6, 5}),
	convCase(1, 1, 3, []int{2, 3, 6, 5}),
	convCase(2, 0, 3, []int{2, 3, 7, 6}),
	convCase(2, 1, 3, []int{2, 3, 7, 6}),
	convCase(3, 2, 4, []int{2, 2, 8, 7}),
	convCase(1, 0, 1, []int{3, 4, 3, 2}),
	{name: "conv2d/chunked", input: []int{3, 2, 6, 5}, layer: func(rng *rand.Rand) Layer[float64] {
		// A column bound of two samples' worth lowers the batch of three
		// in two chunks, the second one short.
		l := NewConv2D[float64]("conv", 2, 3, 3, 1, 1)
		l.maxCol = 2 * 2 * 3 * 3 * 6 * 5
		l.Reset(rng)
		return l
	}},

	poolCase(2, 0, 0, []int{2, 3, 6, 5}),
	poolCase(3, 2, 1, []int{2, 2, 7, 6}),
	poolCase(3, 1, 0, []int{1, 2, 5, 6}),

	{name: "dropout/train", input: []int{4, 9}, train: true,
		layer: func(*rand.Rand) Layer[float64] { return NewDropout[float64](0.4) },
		// A fresh stream with the same seed before every forward replays
		// the mask, so the layer is a fixed function of x.
		before: func(l Layer[float64]) { l.(*Dropout[float64]).SetRand(rand.New(rand.NewPCG(7, 8))) }},
	{name: "dropout/eval", input: []int{4, 9},
		layer: func(*rand.Rand) Layer[float64] { return NewDropout[float64](0.4) }},

	bnCase("batchnorm1d/train", []int{6, 4}, true),
	bnCase("batchnorm1d/eval", []int{6, 4}, false),
	bnCase("batchnorm1d/train 3d input", []int{3, 4, 5}, true),
	bnCase("batchnorm2d/train", []int{3, 2, 4, 3}, true),
	bnCase("batchnorm2d/eval", []int{3, 2, 4, 3}, false),
}

func convCase(stride, pad, kernel int, in []int) gradCase {
	return gradCase{
		name:  fmt.Sprintf("conv2d/k%d s%d p%d %v", kernel, stride, pad, in),
		input: in,
		layer: func(rng *rand.Rand) Layer[float64] {
			l := NewConv2D[float64]("conv", in[1], 3, kernel, stride, pad)
			l.Reset(rng)
			return l
		},
	}
}

// poolCase checks MaxPool2D on a shuffled arange: distinct values at least
// 0.1 apart, far beyond the finite-difference step, so no window has a tie
// that the step could flip.
func poolCase(kernel, stride, pad int, in []int) gradCase {
	return gradCase{
		name:  fmt.Sprintf("maxpool2d/k%d s%d p%d %v", kernel, stride, pad, in),
		input: in,
		layer: func(*rand.Rand) Layer[float64] { return NewMaxPool2D[float64](kernel, stride, pad) },
		fill:  distinct,
	}
}

// distinct fills x with a random permutation of 0, 0.1, 0.2, ... .
func distinct(rng *rand.Rand, x []float64) {
	for i, j := range rng.Perm(len(x)) {
		x[i] = 0.1*float64(j) - 0.05*float64(len(x))
	}
}

// bnCase checks BatchNorm with non-trivial γ, β and running statistics, so
// that evaluation mode is not the identity.
func bnCase(name string, in []int, train bool) gradCase {
	return gradCase{
		name:  name,
		input: in,
		train: train,
		layer: func(rng *rand.Rand) Layer[float64] {
			var l *BatchNorm[float64]
			if len(in) == 4 {
				l = NewBatchNorm2D[float64]("bn", in[1], 0, 0)
			} else {
				l = NewBatchNorm1D[float64]("bn", in[1], 0, 0)
			}
			for i := range l.Features {
				l.Weight.Value.Data[i] = 1 + 0.5*rng.NormFloat64()
				l.Bias.Value.Data[i] = rng.NormFloat64()
				l.RunningMean.Value.Data[i] = 0.3 * rng.NormFloat64()
				l.RunningVar.Value.Data[i] = 0.5 + rng.Float64()
			}
			return l
		},
	}
}

func TestGradients(t *testing.T) {
	for _, c := range gradCases {
		t.Run(c.name, func(t *testing.T) { checkGradients(t, c) })
	}
}

func TestCrossEntropyGradient(t *testing.T) {
	for _, smoothing := range []float64{0, 0.1} {
		rng := rand.New(rand.NewPCG(3, 4))
		logits := NewTensor[float64](5, 4)
		for i := range logits.Data {
			logits.Data[i] = 3 * rng.NormFloat64()
		}
		labels := []int{0, 3, 1, 2, 3}
		ce := &CrossEntropy[float64]{Smoothing: smoothing}
		ce.Forward(logits, labels)
		got := ce.Backward().Clone()
		num := make([]float64, logits.Len())
		for i := range logits.Data {
			orig := logits.Data[i]
			logits.Data[i] = orig + fdStep
			lp := ce.Forward(logits, labels)
			logits.Data[i] = orig - fdStep
			lm := ce.Forward(logits, labels)
			logits.Data[i] = orig
			num[i] = (lp - lm) / (2 * fdStep)
		}
		if e := relErr(got.Data, num); e > gradTol {
			t.Errorf("smoothing %g: relative error %.3g, want < %g", smoothing, e, gradTol)
		}
	}
}

func TestCrossEntropyValue(t *testing.T) {
	// Uniform logits give log K whatever the label or smoothing.
	ce := &CrossEntropy[float64]{Smoothing: 0.1}
	logits := NewTensor[float64](2, 4)
	if got, want := ce.Forward(logits, []int{1, 3}), math.Log(4); math.Abs(got-want) > 1e-12 {
		t.Errorf("uniform logits: loss %v, want %v", got, want)
	}
	// A confident correct prediction: loss = log(1+3e^-10) without smoothing.
	ce = &CrossEntropy[float64]{}
	logits = &Tensor[float64]{Shape: []int{1, 4}, Data: []float64{10, 0, 0, 0}}
	want := math.Log(1 + 3*math.Exp(-10))
	if got := ce.Forward(logits, []int{0}); math.Abs(got-want) > 1e-12 {
		t.Errorf("confident: loss %v, want %v", got, want)
	}
}

// smallCNN is a model with every layer kind: conv-bn-relu-pool blocks,
// flatten, a hidden linear block with BatchNorm1d, GELU and dropout, and a
// linear head.
func smallCNN() *Config {
	return &Config{
		Name:       "tiny-cnn",
		InputShape: []int{2, 8, 7},
		Classes:    []string{"a", "b", "c"},
		Blocks: []BlockConfig{
			{Name: "conv1", Layers: []LayerConfig{
				{Type: "conv2d", Name: "features.0", InChannels: 2, OutChannels: 3, KernelSize: 3, Padding: 1},
				{Type: "batchnorm2d", Name: "features.1", NumFeatures: 3},
				{Type: "relu"},
				{Type: "maxpool2d", KernelSize: 2},
			}},
			{Name: "conv2", Layers: []LayerConfig{
				{Type: "conv2d", Name: "features.4", InChannels: 3, OutChannels: 4, KernelSize: 3, Stride: 1, Padding: 1},
				{Type: "batchnorm2d", Name: "features.5", NumFeatures: 4},
				{Type: "relu"},
				{Type: "maxpool2d", KernelSize: 2},
				{Type: "flatten"},
			}},
			{Name: "fc1", Layers: []LayerConfig{
				{Type: "linear", Name: "classifier.0", InFeatures: 8, OutFeatures: 6},
				{Type: "batchnorm1d", Name: "classifier.1", NumFeatures: 6},
				{Type: "gelu"},
				{Type: "dropout", P: 0.25},
			}},
			{Name: "head", Layers: []LayerConfig{
				{Type: "linear", Name: "classifier.4", InFeatures: 6, OutFeatures: 3},
			}},
		},
	}
}

// checkModelGradients compares Model.Backward's gradients of the trainable
// parameters with central differences of the cross-entropy loss of
// Model.Forward in training mode, at a few sampled elements per tensor.
// Dropout's streams are re-seeded before each forward so the masks replay.
func checkModelGradients(t *testing.T, m *Model[float64], x *Tensor[float64], labels []int) {
	t.Helper()
	ce := &CrossEntropy[float64]{}
	loss := func() float64 {
		m.SetRand(rand.New(rand.NewPCG(21, 22)))
		return ce.Forward(m.Forward(x, true), labels)
	}
	loss()
	m.Backward(ce.Backward())
	rng := rand.New(rand.NewPCG(23, 24))
	for _, p := range m.Params() {
		if !p.Trainable {
			continue
		}
		if p.Grad == nil {
			t.Errorf("%s: trainable but no gradient", p.Name)
			continue
		}
		const samples = 4
		var analytic, numeric []float64
		for s := 0; s < min(samples, p.Value.Len()); s++ {
			i := rng.IntN(p.Value.Len())
			orig := p.Value.Data[i]
			p.Value.Data[i] = orig + fdStep
			lp := loss()
			p.Value.Data[i] = orig - fdStep
			lm := loss()
			p.Value.Data[i] = orig
			analytic = append(analytic, p.Grad.Data[i])
			numeric = append(numeric, (lp-lm)/(2*fdStep))
		}
		// A bias feeding a training-mode BatchNorm has a zero gradient; there
		// both sides are rounding noise, which the absolute floor accepts.
		// Central differences of a loss of order 1 carry noise of about
		// ε/h ≈ 1e-10, so 1e-8 is still far below any real gradient.
		const absFloor = 1e-8
		if e := relErr(analytic, numeric); e > gradTol && absDiff(analytic, numeric) > absFloor {
			t.Errorf("%s: relative error %.3g, want < %g (analytic %v, numeric %v)", p.Name, e, gradTol, analytic, numeric)
		}
	}
}

func absDiff(a, b []float64) float64 {
	var d float64
	for i := range a {
		d += (a[i] - b[i]) * (a[i] - b[i])
	}
	return math.Sqrt(d)
}

func TestModelGradients(t *testing.T) {
	m, err := New[float64](smallCNN(), rand.New(rand.NewPCG(31, 32)))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(33, 34))
	x := NewTensor[float64](5, 2, 8, 7)
	for i := range x.Data {
		x.Data[i] = rng.NormFloat64()
	}
	labels := []int{0, 2, 1, 1, 0}

	t.Run("all trainable", func(t *testing.T) { checkModelGradients(t, m, x, labels) })

	t.Run("conv1 frozen", func(t *testing.T) {
		m.FreezeBelow(1)
		frozen := blockParams(m.Block("conv1"))
		before := make([]*Tensor[float64], len(frozen))
		for i, p := range frozen {
			before[i] = p.Value.Clone()
		}
		checkModelGradients(t, m, x, labels)
		for i, p := range frozen {
			if p.Grad != nil {
				t.Errorf("%s: frozen but has a gradient", p.Name)
			}
			// A frozen BatchNorm runs in inference mode, so its running
			// statistics stay as they were.
			if !slices.Equal(p.Value.Data, before[i].Data) {
				t.Errorf("%s: changed in a frozen block", p.Name)
			}
		}
	})
}

func TestTranspose(t *testing.T) {
	for _, sz := range [][3]int{{1, 1, 1}, {3, 5, 5}, {8, 3, 4}, {17, 9, 12}, {16, 16, 16}} {
		rows, cols, lds := sz[0], sz[1], sz[2]
		src := make([]float64, rows*lds)
		for i := range src {
			src[i] = float64(i)
		}
		dst := make([]float64, rows*cols)
		transpose(dst, src, rows, cols, lds)
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				if got, want := dst[j*rows+i], src[i*lds+j]; got != want {
					t.Fatalf("%dx%d (stride %d): dst[%d][%d] = %v, want %v", rows, cols, lds, j, i, got, want)
				}
			}
		}
	}
}
