package trainer

import (
	"math"
	"math/rand/v2"
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
