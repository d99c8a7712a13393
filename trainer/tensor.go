package trainer

import (
	"fmt"
	"math"
)

// Float is the element type of a tensor: float32 for training, float64 for
// gradient checks and reference comparisons.
type Float interface {
	float32 | float64
}

// Tensor is a dense, row-major array with a shape. Data has exactly
// the product of Shape elements.
type Tensor[T Float] struct {
	Shape []int
	Data  []T
}

// NewTensor returns a zeroed tensor of the given shape. It panics if a
// dimension is negative.
func NewTensor[T Float](shape ...int) *Tensor[T] {
	n := numel(shape)
	return &Tensor[T]{Shape: append([]int(nil), shape...), Data: make([]T, n)}
}

// numel is the number of elements of a shape; it panics on a negative
// dimension, which is a programmer error.
func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("trainer: negative dimension in shape %v", shape))
		}
		n *= d
	}
	return n
}

// Len returns the number of elements.
func (t *Tensor[T]) Len() int { return len(t.Data) }

// Clone returns a deep copy.
func (t *Tensor[T]) Clone() *Tensor[T] {
	return &Tensor[T]{Shape: append([]int(nil), t.Shape...), Data: append([]T(nil), t.Data...)}
}

// SameShape reports whether t and u have identical shapes.
func (t *Tensor[T]) SameShape(u *Tensor[T]) bool { return sameShape(t.Shape, u.Shape) }

func sameShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// ensure makes *dst a tensor of the given shape, reusing its storage when it
// is large enough. The contents are unspecified afterwards: callers overwrite
// every element (destination-first, as in gonum's mat).
func ensure[T Float](dst **Tensor[T], shape ...int) *Tensor[T] {
	n := numel(shape)
	t := *dst
	if t == nil {
		t = &Tensor[T]{}
		*dst = t
	}
	if cap(t.Data) < n {
		t.Data = make([]T, n)
	}
	t.Data = t.Data[:n]
	t.Shape = append(t.Shape[:0], shape...)
	return t
}

// Convert returns a copy of src with elements converted to U.
func Convert[U, T Float](src *Tensor[T]) *Tensor[U] {
	dst := &Tensor[U]{Shape: append([]int(nil), src.Shape...), Data: make([]U, len(src.Data))}
	for i, v := range src.Data {
		dst.Data[i] = U(v)
	}
	return dst
}

// allFinite reports whether every element of x is finite.
func allFinite[T Float](x []T) bool {
	for _, v := range x {
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}
