package trainer

import (
	"fmt"
	"math"

	"thaw/trainer/internal/kernel"
)

// MaxPool2D takes the maximum over square windows of NCHW input, as
// torch.nn.MaxPool2d with dilation 1 and ceil_mode false: the output size is
// ⌊(size + 2·pad − kernel) / stride⌋ + 1 and padding counts as −∞.
// Where a window holds several equal maxima the first in row-major order
// wins and alone receives the gradient, and a NaN in a window propagates,
// as in PyTorch.
type MaxPool2D[T Float] struct {
	Kernel, Stride, Pad int

	argmax  []int32 // per output element, the index of its input within its plane
	inShape []int
	y, dx   *Tensor[T]

	// masked is set when a ReLU precedes in the same block (see
	// fuseReLUs): Backward then also applies the ReLU's mask, which at a
	// window's winner is whether the pooled output is positive, and the
	// ReLU passes the gradient on.
	masked bool
}

// NewMaxPool2D returns a max-pooling layer. A stride of 0 means the kernel
// size (PyTorch's default). It panics if kernel is not positive, stride or
// padding is negative, or padding exceeds half the kernel (PyTorch's rule,
// which guarantees every window holds an input element).
func NewMaxPool2D[T Float](kernel, stride, padding int) *MaxPool2D[T] {
	if stride == 0 {
		stride = kernel
	}
	if kernel <= 0 || stride <= 0 || padding < 0 || padding > kernel/2 {
		panic(fmt.Sprintf("trainer: maxpool2d: kernel %d, stride %d, padding %d", kernel, stride, padding))
	}
	return &MaxPool2D[T]{Kernel: kernel, Stride: stride, Pad: padding}
}

func (l *MaxPool2D[T]) Kind() string        { return "maxpool2d" }
func (l *MaxPool2D[T]) Params() []*Param[T] { return nil }

func (l *MaxPool2D[T]) OutShape(in []int) ([]int, error) {
	if len(in) != 3 {
		return nil, fmt.Errorf("maxpool2d: input shape %v, want [C H W]", in)
	}
	if in[1]+2*l.Pad < l.Kernel || in[2]+2*l.Pad < l.Kernel {
		return nil, fmt.Errorf("maxpool2d: input %dx%d with padding %d is smaller than kernel_size %d", in[1], in[2], l.Pad, l.Kernel)
	}
	return []int{in[0], convOut(in[1], l.Kernel, l.Stride, l.Pad), convOut(in[2], l.Kernel, l.Stride, l.Pad)}, nil
}

// Forward pools x [N, C, H, W] into [N, C, OH, OW] and records where each
// maximum came from. It panics if x is not 4-D or is smaller than the
// kernel.
func (l *MaxPool2D[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	if len(x.Shape) != 4 {
		panic(fmt.Sprintf("trainer: maxpool2d: input shape %v, want [N C H W]", x.Shape))
	}
	n, c, h, w := x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]
	k, s, p := l.Kernel, l.Stride, l.Pad
	oh, ow := convOut(h, k, s, p), convOut(w, k, s, p)
	if oh <= 0 || ow <= 0 {
		panic(fmt.Sprintf("trainer: maxpool2d: input shape %v is smaller than kernel %d", x.Shape, k))
	}
	l.inShape = append(l.inShape[:0], x.Shape...)
	y := ensure(&l.y, n, c, oh, ow)
	if cap(l.argmax) < y.Len() {
		l.argmax = make([]int32, y.Len())
	}
	l.argmax = l.argmax[:y.Len()]
	if k == 2 && s == 2 && p == 0 {
		if x32, ok := any(x.Data).([]float32); ok {
			kernel.MaxPool2x2(x32, any(y.Data).([]float32), l.argmax, n*c, h, w, oh, ow)
			return y
		}
		l.forward2x2(x.Data, y.Data, n*c, h, w, oh, ow)
		return y
	}
	negInf := T(math.Inf(-1))
	for pl := 0; pl < n*c; pl++ {
		src := x.Data[pl*h*w:][:h*w]
		dst := y.Data[pl*oh*ow:][:oh*ow]
		arg := l.argmax[pl*oh*ow:][:oh*ow]
		for oy := 0; oy < oh; oy++ {
			y0, y1 := max(oy*s-p, 0), min(oy*s-p+k, h)
			for ox := 0; ox < ow; ox++ {
				x0, x1 := max(ox*s-p, 0), min(ox*s-p+k, w)
				best, at := negInf, y0*w+x0
				for iy := y0; iy < y1; iy++ {
					for ix := x0; ix < x1; ix++ {
						// PyTorch's rule: a larger value or a NaN takes over,
						// so NaN propagates.
						if v := src[iy*w+ix]; v > best || v != v {
							best, at = v, iy*w+ix
						}
					}
				}
				dst[oy*ow+ox] = best
				arg[oy*ow+ox] = int32(at)
			}
		}
	}
	return y
}

// forward2x2 is Forward for the common 2×2 window with stride 2 and no
// padding, with the window unrolled; it follows the same rule and order.
func (l *MaxPool2D[T]) forward2x2(x, y []T, planes, h, w, oh, ow int) {
	for pl := 0; pl < planes; pl++ {
		src := x[pl*h*w:][:h*w]
		dst := y[pl*oh*ow:][:oh*ow]
		arg := l.argmax[pl*oh*ow:][:oh*ow]
		for oy := 0; oy < oh; oy++ {
			r0 := src[2*oy*w:][:w]
			r1 := src[(2*oy+1)*w:][:w]
			for ox := 0; ox < ow; ox++ {
				best, at := r0[2*ox], 2*oy*w+2*ox
				if v := r0[2*ox+1]; v > best || v != v {
					best, at = v, 2*oy*w+2*ox+1
				}
				if v := r1[2*ox]; v > best || v != v {
					best, at = v, (2*oy+1)*w+2*ox
				}
				if v := r1[2*ox+1]; v > best || v != v {
					best, at = v, (2*oy+1)*w+2*ox+1
				}
				dst[oy*ow+ox] = best
				arg[oy*ow+ox] = int32(at)
			}
		}
	}
}

// Backward routes each output gradient to the input element that was the
// window's maximum.
func (l *MaxPool2D[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	if !needDX {
		return nil
	}
	if !sameShape(dy.Shape, l.y.Shape) {
		panic(fmt.Sprintf("trainer: maxpool2d: gradient shape %v, want %v", dy.Shape, l.y.Shape))
	}
	dx := ensure(&l.dx, l.inShape...)
	clear(dx.Data)
	hw := l.inShape[2] * l.inShape[3]
	ohw := l.y.Shape[2] * l.y.Shape[3]
	if l.masked {
		l.backwardMasked(dx.Data, dy.Data, hw, ohw)
		return dx
	}
	for pl := 0; pl < l.inShape[0]*l.inShape[1]; pl++ {
		d := dx.Data[pl*hw:][:hw]
		g := dy.Data[pl*ohw:][:ohw]
		for j, a := range l.argmax[pl*ohw:][:ohw] {
			d[a] += g[j]
		}
	}
	return dx
}

// backwardMasked is Backward followed by the ReLU's mask (gradient where
// the ReLU's output, here the pooled output at the winner, is positive, +0
// elsewhere), in one pass: the same bits as the two passes.
func (l *MaxPool2D[T]) backwardMasked(dx, dy []T, hw, ohw int) {
	planes := l.inShape[0] * l.inShape[1]
	if dx32, ok := any(dx).([]float32); ok {
		dy32, y32 := any(dy).([]float32), any(l.y.Data).([]float32)
		for pl := 0; pl < planes; pl++ {
			d := dx32[pl*hw:][:hw]
			g := dy32[pl*ohw:][:ohw]
			y := y32[pl*ohw:][:ohw]
			for j, a := range l.argmax[pl*ohw:][:ohw] {
				// Masking the bits rather than branching: the signs of
				// real activations are not predictable.
				var m uint32
				if y[j] > 0 {
					m = ^uint32(0)
				}
				d[a] += math.Float32frombits(math.Float32bits(g[j]) & m)
			}
		}
		return
	}
	for pl := 0; pl < planes; pl++ {
		d := dx[pl*hw:][:hw]
		g := dy[pl*ohw:][:ohw]
		y := l.y.Data[pl*ohw:][:ohw]
		for j, a := range l.argmax[pl*ohw:][:ohw] {
			if y[j] > 0 {
				d[a] += g[j]
			}
		}
	}
}
