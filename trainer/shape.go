package trainer

import "fmt"

// Flatten reshapes [N, d1, d2, ...] into [N, d1·d2·...], as torch.nn.Flatten
// with its default start_dim=1. It copies nothing: the output shares the
// input's data and the input gradient shares the output gradient's.
type Flatten[T Float] struct {
	inShape []int
	y, dx   Tensor[T]
}

func (l *Flatten[T]) Kind() string        { return "flatten" }
func (l *Flatten[T]) Params() []*Param[T] { return nil }

func (l *Flatten[T]) OutShape(in []int) ([]int, error) {
	if len(in) == 0 {
		return nil, fmt.Errorf("flatten: input shape %v, want at least one dimension per sample", in)
	}
	return []int{numel(in)}, nil
}

// Forward returns a view of x as [N, rest]. It panics if x has no batch
// dimension.
func (l *Flatten[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	if len(x.Shape) < 1 {
		panic(fmt.Sprintf("trainer: flatten: input shape %v has no batch dimension", x.Shape))
	}
	l.inShape = append(l.inShape[:0], x.Shape...)
	n := x.Shape[0]
	l.y.Shape = append(l.y.Shape[:0], n, x.Len()/max(n, 1))
	l.y.Data = x.Data
	return &l.y
}

// Backward returns a view of dy in the shape of the last input.
func (l *Flatten[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	if !needDX {
		return nil
	}
	if !sameShape(dy.Shape, l.y.Shape) {
		panic(fmt.Sprintf("trainer: flatten: gradient shape %v, want %v", dy.Shape, l.y.Shape))
	}
	l.dx.Shape = append(l.dx.Shape[:0], l.inShape...)
	l.dx.Data = dy.Data
	return &l.dx
}
