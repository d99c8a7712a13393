package kernel

import "math"

// MaxPool2x2 pools each of planes h×w planes of x into an oh×ow plane of y
// with 2×2 windows at stride 2 (oh ≤ h/2, ow ≤ w/2) and records in argmax
// the index within its input plane of each window's winner. The rule is
// PyTorch's: the window's elements are taken in row-major order and a
// larger value or a NaN takes over, so the first of equal maxima wins and
// NaN propagates. On the avx2-fma path eight windows go at once; the result
// is the same bit for bit.
func MaxPool2x2(x, y []float32, argmax []int32, planes, h, w, oh, ow int) {
	if oh > h/2 || ow > w/2 || len(x) < planes*h*w || len(y) < planes*oh*ow || len(argmax) < planes*oh*ow {
		panic("kernel: MaxPool2x2: sizes do not match")
	}
	chunks := (ow + 7) / 8
	for pl := 0; pl < planes; pl++ {
		xb, yb := pl*h*w, pl*oh*ow
		// The vector loop writes whole blocks of eight windows; the lanes
		// past a row's end land on later windows, which are computed
		// afterwards, and read past the row. Only the blocks that stay
		// inside x and the result can go that way.
		if useAsm && oh > 0 && ow > 0 &&
			xb+(2*oh-1)*w+16*chunks <= len(x) && yb+(oh-1)*ow+8*chunks <= planes*oh*ow {
			maxPool2x2Plane(&x[xb], &y[yb], &argmax[yb], oh, chunks, w, ow)
			continue
		}
		maxPool2x2Generic(x[xb:][:h*w], y[yb:][:oh*ow], argmax[yb:][:oh*ow], w, oh, ow)
	}
}

// maxPool2x2Generic pools one plane without branches: which element of a
// window wins depends on the data, so a branch per comparison is
// mispredicted about half the time on real activations; here each step
// selects with a mask instead.
func maxPool2x2Generic(src, dst []float32, arg []int32, w, oh, ow int) {
	for oy := 0; oy < oh; oy++ {
		r0 := src[2*oy*w:][:2*ow]
		r1 := src[(2*oy+1)*w:][:2*ow]
		d := dst[oy*ow:][:ow]
		a := arg[oy*ow:][:ow]
		i0 := int32(2 * oy * w)
		for ox := range d {
			i := i0 + int32(2*ox)
			best, at := math.Float32bits(r0[2*ox]), i
			best, at = takeMax(best, at, r0[2*ox+1], i+1)
			best, at = takeMax(best, at, r1[2*ox], i+int32(w))
			best, at = takeMax(best, at, r1[2*ox+1], i+int32(w)+1)
			d[ox] = math.Float32frombits(best)
			a[ox] = at
		}
	}
}

// takeMax returns (v, i) if v is larger than the float32 whose bits are
// best, or NaN, and (best, at) otherwise, without a branch.
func takeMax(best uint32, at int32, v float32, i int32) (uint32, int32) {
	b := math.Float32frombits(best)
	var m uint32
	if v > b {
		m = 1
	}
	if v != v {
		m = 1
	}
	m = -m
	vb := math.Float32bits(v)
	return best ^ ((best ^ vb) & m), at ^ ((at ^ i) & int32(m))
}
