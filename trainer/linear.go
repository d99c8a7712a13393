package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Linear is a fully connected layer y = x·Wᵀ + b with W of shape [out, in],
// as torch.nn.Linear.
type Linear[T Float] struct {
	In, Out int
	Weight  *Param[T] // [Out, In]
	Bias    *Param[T] // [Out]

	x     *Tensor[T] // input of the last Forward, kept for Backward
	y, dx *Tensor[T]
	relu  bool // a ReLU follows: clamp the output at zero (see fuseReLUs)
}

// NewLinear returns a Linear layer whose parameters are named
// prefix+".weight" and prefix+".bias", with zero values; call Reset to
// initialise them.
func NewLinear[T Float](prefix string, in, out int) *Linear[T] {
	return &Linear[T]{
		In: in, Out: out,
		Weight: &Param[T]{Name: prefix + ".weight", Value: NewTensor[T](out, in)},
		Bias:   &Param[T]{Name: prefix + ".bias", Value: NewTensor[T](out), NoDecay: true},
	}
}

func (l *Linear[T]) Kind() string        { return "linear" }
func (l *Linear[T]) fuseReLU()           { l.relu = true }
func (l *Linear[T]) Params() []*Param[T] { return []*Param[T]{l.Weight, l.Bias} }

func (l *Linear[T]) OutShape(in []int) ([]int, error) {
	if numel(in) != l.In {
		return nil, fmt.Errorf("linear %s: input has %d features (shape %v), want %d", trimSuffix(l.Weight.Name), numel(in), in, l.In)
	}
	return []int{l.Out}, nil
}

// Reset initialises W and b from U(-1/√in, 1/√in), which is what PyTorch's
// kaiming_uniform_(a=√5) and its bias rule give for nn.Linear
// (torch/nn/modules/linear.py, reset_parameters).
func (l *Linear[T]) Reset(rng *rand.Rand) {
	bound := 1 / math.Sqrt(float64(l.In))
	uniform(rng, l.Weight.Value.Data, bound)
	uniform(rng, l.Bias.Value.Data, bound)
}

// Forward computes y = x·Wᵀ + b; x is [N, In] or any [N, ...] whose trailing
// dimensions multiply to In.
func (l *Linear[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	n := x.Shape[0]
	if x.Len() != n*l.In {
		panic(fmt.Sprintf("trainer: linear %s: input shape %v, want [N %d]", l.Weight.Name, x.Shape, l.In))
	}
	l.x = x
	y := ensure(&l.y, n, l.Out)
	b := l.Bias.Value.Data
	for i := 0; i < n; i++ {
		copy(y.Data[i*l.Out:(i+1)*l.Out], b)
	}
	gemmReLU(false, true, n, l.Out, l.In, x.Data, l.In, l.Weight.Value.Data, l.In, 1, y.Data, l.Out, l.relu)
	return y
}

// Backward: dW = dyᵀ·x, db = Σ_rows dy, dx = dy·W.
func (l *Linear[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	n := l.x.Shape[0]
	if !sameShape(dy.Shape, l.y.Shape) {
		panic(fmt.Sprintf("trainer: linear %s: gradient shape %v, want %v", l.Weight.Name, dy.Shape, l.y.Shape))
	}
	if l.Weight.Trainable {
		gemm(true, false, l.Out, l.In, n, 1, dy.Data, l.Out, l.x.Data, l.In, 0, l.Weight.grad().Data, l.In)
	}
	if l.Bias.Trainable {
		db := l.Bias.grad().Data
		clear(db)
		for i := 0; i < n; i++ {
			row := dy.Data[i*l.Out : (i+1)*l.Out]
			for j, v := range row {
				db[j] += v
			}
		}
	}
	if !needDX {
		return nil
	}
	dx := ensure(&l.dx, l.x.Shape...)
	gemm(false, false, n, l.In, l.Out, 1, dy.Data, l.Out, l.Weight.Value.Data, l.In, 0, dx.Data, l.In)
	return dx
}

// uniform fills x with draws from U(-bound, bound).
func uniform[T Float](rng *rand.Rand, x []T, bound float64) {
	for i := range x {
		x[i] = T((2*rng.Float64() - 1) * bound)
	}
}

// trimSuffix strips the last ".part" of a parameter name, giving the
// module's name ("features.0.weight" → "features.0").
func trimSuffix(name string) string {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '.' {
			return name[:i]
		}
	}
	return name
}
