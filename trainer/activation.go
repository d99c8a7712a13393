package trainer

import (
	"fmt"
	"math"
)

// ReLU is max(0, x), element-wise.
type ReLU[T Float] struct {
	// rectified is set when the layer before already clamps its output
	// (see fuseReLUs): Forward then passes its input on without a copy,
	// and Backward masks with it as usual.
	rectified bool
	// pooled is set when a max-pool follows that applies this layer's
	// mask in its own Backward (see fuseReLUs): Backward then passes the
	// gradient on as it is.
	pooled bool
	y, dx  *Tensor[T]
}

func (l *ReLU[T]) Kind() string                     { return "relu" }
func (l *ReLU[T]) Params() []*Param[T]              { return nil }
func (l *ReLU[T]) OutShape(in []int) ([]int, error) { return in, nil }

func (l *ReLU[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	if l.rectified {
		l.y = x
		return x
	}
	y := ensure(&l.y, x.Shape...)
	for i, v := range x.Data {
		y.Data[i] = max(v, 0)
	}
	return y
}

// Backward passes dy where the output was positive. The subgradient at 0 is
// 0, as in PyTorch.
func (l *ReLU[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	if !needDX {
		return nil
	}
	if !sameShape(dy.Shape, l.y.Shape) {
		panic(fmt.Sprintf("trainer: relu: gradient shape %v, want %v", dy.Shape, l.y.Shape))
	}
	if l.pooled {
		return dy
	}
	dx := ensure(&l.dx, dy.Shape...)
	switch y := any(l.y.Data).(type) {
	case []float32:
		reluMask32(any(dx.Data).([]float32), any(dy.Data).([]float32), y)
	case []float64:
		reluMask64(any(dx.Data).([]float64), any(dy.Data).([]float64), y)
	}
	return dx
}

// reluMask32 sets dx = dy where y > 0 and +0 elsewhere. Masking the bits
// rather than branching keeps the loop free of mispredictions on the
// random signs of real activations (about 1.5× faster).
func reluMask32(dx, dy, y []float32) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	for i, v := range y {
		var m uint32
		if v > 0 {
			m = ^uint32(0)
		}
		dx[i] = math.Float32frombits(math.Float32bits(dy[i]) & m)
	}
}

// reluMask64 is reluMask32 for float64.
func reluMask64(dx, dy, y []float64) {
	dx, dy = dx[:len(y)], dy[:len(y)]
	for i, v := range y {
		var m uint64
		if v > 0 {
			m = ^uint64(0)
		}
		dx[i] = math.Float64frombits(math.Float64bits(dy[i]) & m)
	}
}

// GELU is x·Φ(x) with Φ the standard normal CDF, in the exact erf form
// 0.5·x·(1 + erf(x/√2)) that torch.nn.GELU uses by default
// (approximate='none'; Hendrycks and Gimpel 2016, "Gaussian Error Linear
// Units").
type GELU[T Float] struct {
	x     *Tensor[T]
	y, dx *Tensor[T]
}

func (l *GELU[T]) Kind() string                     { return "gelu" }
func (l *GELU[T]) Params() []*Param[T]              { return nil }
func (l *GELU[T]) OutShape(in []int) ([]int, error) { return in, nil }

func (l *GELU[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	l.x = x
	y := ensure(&l.y, x.Shape...)
	for i, v := range x.Data {
		f := float64(v)
		y.Data[i] = T(0.5 * f * (1 + math.Erf(f/math.Sqrt2)))
	}
	return y
}

// Backward: d/dx x·Φ(x) = Φ(x) + x·φ(x), φ the standard normal density.
func (l *GELU[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	if !needDX {
		return nil
	}
	if !sameShape(dy.Shape, l.y.Shape) {
		panic(fmt.Sprintf("trainer: gelu: gradient shape %v, want %v", dy.Shape, l.y.Shape))
	}
	const invSqrt2Pi = 0.3989422804014327 // 1/√(2π)
	dx := ensure(&l.dx, dy.Shape...)
	for i, v := range l.x.Data {
		f := float64(v)
		cdf := 0.5 * (1 + math.Erf(f/math.Sqrt2))
		pdf := invSqrt2Pi * math.Exp(-0.5*f*f)
		dx.Data[i] = dy.Data[i] * T(cdf+f*pdf)
	}
	return dx
}

// reluFuser is implemented by layers that can clamp their own output at
// zero in the pass that writes it (Conv2D, Linear).
type reluFuser interface {
	fuseReLU()
}

// fuseReLUs lets each layer of b that a ReLU follows apply the ReLU itself,
// in its GEMM's output pass, and makes the ReLU pass its input on: one
// write of the activations instead of two. A max-pool that follows a ReLU
// applies the ReLU's mask to the gradient it routes, and the ReLU passes
// the gradient on: one pass over the gradient instead of two. Only within a
// block, so a block's output is what its layers say whatever comes next.
// The result is the same as unfused except that a sum of exactly −0 stays
// −0 in the forward pass.
func fuseReLUs[T Float](b *Block[T]) {
	for i := 0; i+1 < len(b.Layers); i++ {
		f, ok := b.Layers[i].(reluFuser)
		r, isReLU := b.Layers[i+1].(*ReLU[T])
		if ok && isReLU {
			f.fuseReLU()
			r.rectified = true
		}
		if r, ok := b.Layers[i].(*ReLU[T]); ok {
			if p, ok := b.Layers[i+1].(*MaxPool2D[T]); ok {
				p.masked = true
				r.pooled = true
			}
		}
	}
}
