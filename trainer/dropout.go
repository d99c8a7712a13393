package trainer

import (
	"fmt"
	"math/rand/v2"
)

// Dropout zeroes each element with probability P while training and scales
// the survivors by 1/(1−P), so that evaluation is the identity (inverted
// dropout, as torch.nn.Dropout; Srivastava et al. 2014, "Dropout: A Simple
// Way to Prevent Neural Networks from Overfitting").
type Dropout[T Float] struct {
	P float64

	rng   *rand.Rand
	mask  []T // 0 or 1/(1−P) per element of the last training Forward
	train bool
	shape []int // of the last output
	y, dx *Tensor[T]
}

// NewDropout returns a dropout layer with drop probability p. It panics if
// p is outside [0, 1]. Before a training Forward it needs a random stream
// from SetRand.
func NewDropout[T Float](p float64) *Dropout[T] {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("trainer: dropout: p %v outside [0, 1]", p))
	}
	return &Dropout[T]{P: p}
}

func (l *Dropout[T]) Kind() string                     { return "dropout" }
func (l *Dropout[T]) Params() []*Param[T]              { return nil }
func (l *Dropout[T]) OutShape(in []int) ([]int, error) { return in, nil }

// SetRand sets the stream the masks are drawn from: one Float64 per
// element per training Forward, in row-major order, so the masks are a
// function of the stream alone.
func (l *Dropout[T]) SetRand(rng *rand.Rand) { l.rng = rng }

// Forward returns x itself in evaluation mode (or when P is 0). In training
// mode it draws a fresh mask; it panics if SetRand was never called, since
// silently falling back to a global source would break determinism.
func (l *Dropout[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	l.train = train && l.P > 0
	l.shape = append(l.shape[:0], x.Shape...)
	if !l.train {
		return x
	}
	if l.rng == nil {
		panic("trainer: dropout: training forward without a random stream; call SetRand (Model.SetRand) first")
	}
	y := ensure(&l.y, x.Shape...)
	l.mask = grow(l.mask, x.Len())
	var scale T
	if l.P < 1 {
		scale = T(1 / (1 - l.P))
	}
	for i, v := range x.Data {
		m := scale
		if l.rng.Float64() < l.P {
			m = 0
		}
		l.mask[i] = m
		y.Data[i] = v * m
	}
	return y
}

// Backward multiplies dy by the last mask, or passes it through after an
// evaluation Forward.
func (l *Dropout[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	if !needDX {
		return nil
	}
	if !sameShape(dy.Shape, l.shape) {
		panic(fmt.Sprintf("trainer: dropout: gradient shape %v, want %v", dy.Shape, l.shape))
	}
	if !l.train {
		return dy
	}
	dx := ensure(&l.dx, dy.Shape...)
	for i, g := range dy.Data {
		dx.Data[i] = g * l.mask[i]
	}
	return dx
}
