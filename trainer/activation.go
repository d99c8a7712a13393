package trainer

import "fmt"

// ReLU is max(0, x), element-wise.
type ReLU[T Float] struct {
	y, dx *Tensor[T]
}

func (l *ReLU[T]) Kind() string                     { return "relu" }
func (l *ReLU[T]) Params() []*Param[T]              { return nil }
func (l *ReLU[T]) OutShape(in []int) ([]int, error) { return in, nil }

func (l *ReLU[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
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
	dx := ensure(&l.dx, dy.Shape...)
	for i, y := range l.y.Data {
		if y > 0 {
			dx.Data[i] = dy.Data[i]
		} else {
			dx.Data[i] = 0
		}
	}
	return dx
}
