package trainer

import (
	"cmp"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"thaw/trainer/internal/kernel"
)

// Conv2D is a 2-D convolution over NCHW input with a square kernel, as
// torch.nn.Conv2d with groups=1 and dilation=1: weight [Out, In, K, K],
// bias [Out], zero padding on every side.
//
// The whole batch is lowered to one column matrix (im2col) of shape
// [In·K·K, N·OH·OW], so a forward pass is a single GEMM W·col and the
// backward pass two more (dW = dY·colᵀ, dcol = Wᵀ·dY, then col2im). One
// large product beats N small per-sample ones: the per-sample products of a
// small CNN are too thin (a few hundred columns) for BLAS to reach speed.
//
// The column matrix holds In·K·K copies of the input, so a large batch (an
// evaluation pass) is lowered in chunks of samples that keep it within
// colLimit elements; Backward then lowers each chunk again. A training
// batch that fits in one chunk is lowered once and kept.
//
// That is the float64 path. float32 goes one sample at a time through
// package kernel without a column matrix (forward32, backward32).
type Conv2D[T Float] struct {
	In, Out             int
	Kernel, Stride, Pad int
	Weight              *Param[T] // [Out, In, Kernel, Kernel]
	Bias                *Param[T] // [Out]

	// Geometry of the last Forward.
	n, h, w, oh, ow int
	chunk           int // samples lowered at a time
	maxCol          int // bound on the column matrix in elements; 0 means colLimit (tests lower it)

	x     *Tensor[T] // input of the last Forward, lowered again by Backward when chunked
	col   []T        // [In·K·K, chunk·OH·OW], the lowered input of the last chunk
	prod  []T        // [Out, chunk·OH·OW]: W·col in Forward, dY rearranged in Backward
	dcol  []T        // [In·K·K, chunk·OH·OW]
	y, dx *Tensor[T]

	// relu is set when a ReLU follows in the same block: Forward then
	// returns max(conv, 0) and the ReLU passes it on (see fuseReLUs).
	relu   bool
	packed convPacked // the float32 path's tables and buffers
}

// NewConv2D returns a Conv2D layer with in input and out output channels, a
// kernel×kernel kernel, the given stride and zero padding, and parameters
// named prefix+".weight" and prefix+".bias" holding zeros; call Reset to
// initialise them. It panics if a size is not positive or padding is
// negative.
func NewConv2D[T Float](prefix string, in, out, kernel, stride, padding int) *Conv2D[T] {
	if in <= 0 || out <= 0 || kernel <= 0 || stride <= 0 || padding < 0 {
		panic(fmt.Sprintf("trainer: conv2d %s: in %d, out %d, kernel %d, stride %d, padding %d", prefix, in, out, kernel, stride, padding))
	}
	return &Conv2D[T]{
		In: in, Out: out, Kernel: kernel, Stride: stride, Pad: padding,
		Weight: &Param[T]{Name: prefix + ".weight", Value: NewTensor[T](out, in, kernel, kernel)},
		Bias:   &Param[T]{Name: prefix + ".bias", Value: NewTensor[T](out), NoDecay: true},
	}
}

// colLimit bounds the column matrix, in elements (32 MiB of float64). A
// training batch of a small CNN is far below it (conv5x5 on 28×28 at batch
// 64: 0.9M), so the bound only splits large evaluation batches.
const colLimit = 1 << 22

func (l *Conv2D[T]) Kind() string        { return "conv2d" }
func (l *Conv2D[T]) fuseReLU()           { l.relu = true }
func (l *Conv2D[T]) Params() []*Param[T] { return []*Param[T]{l.Weight, l.Bias} }

// convOut is PyTorch's output size for one spatial dimension:
// ⌊(size + 2·pad − kernel) / stride⌋ + 1 (dilation 1, floor mode).
func convOut(size, kernel, stride, pad int) int {
	return (size+2*pad-kernel)/stride + 1
}

func (l *Conv2D[T]) OutShape(in []int) ([]int, error) {
	name := trimSuffix(l.Weight.Name)
	if len(in) != 3 || in[0] != l.In {
		return nil, fmt.Errorf("conv2d %s: input shape %v, want [%d H W] (in_channels %d)", name, in, l.In, l.In)
	}
	if in[1]+2*l.Pad < l.Kernel || in[2]+2*l.Pad < l.Kernel {
		return nil, fmt.Errorf("conv2d %s: input %dx%d with padding %d is smaller than kernel_size %d", name, in[1], in[2], l.Pad, l.Kernel)
	}
	return []int{l.Out, convOut(in[1], l.Kernel, l.Stride, l.Pad), convOut(in[2], l.Kernel, l.Stride, l.Pad)}, nil
}

// Reset initialises the weight and bias from U(-1/√fan_in, 1/√fan_in) with
// fan_in = In·K·K, which is what PyTorch's kaiming_uniform_(a=√5) and its
// bias rule give for nn.Conv2d (torch/nn/modules/conv.py,
// _ConvNd.reset_parameters).
func (l *Conv2D[T]) Reset(rng *rand.Rand) {
	bound := 1 / math.Sqrt(float64(l.In*l.Kernel*l.Kernel))
	uniform(rng, l.Weight.Value.Data, bound)
	uniform(rng, l.Bias.Value.Data, bound)
}

// Forward computes the convolution of x [N, In, H, W] and returns
// [N, Out, OH, OW]. It panics if x is not 4-D with In channels or is smaller
// than the kernel.
func (l *Conv2D[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	if len(x.Shape) != 4 || x.Shape[1] != l.In {
		panic(fmt.Sprintf("trainer: conv2d %s: input shape %v, want [N %d H W]", trimSuffix(l.Weight.Name), x.Shape, l.In))
	}
	l.n, l.h, l.w = x.Shape[0], x.Shape[2], x.Shape[3]
	l.oh, l.ow = convOut(l.h, l.Kernel, l.Stride, l.Pad), convOut(l.w, l.Kernel, l.Stride, l.Pad)
	if l.oh <= 0 || l.ow <= 0 {
		panic(fmt.Sprintf("trainer: conv2d %s: input shape %v is smaller than the kernel", trimSuffix(l.Weight.Name), x.Shape))
	}
	l.x = x
	kk := l.In * l.Kernel * l.Kernel
	plane := l.oh * l.ow
	y := ensure(&l.y, l.n, l.Out, l.oh, l.ow)
	if c, ok := any(l).(*Conv2D[float32]); ok && packedKernels {
		c.forward32(any(x).(*Tensor[float32]).Data, any(y).(*Tensor[float32]).Data)
		return y
	}
	l.chunk = max(1, min(l.n, cmp.Or(l.maxCol, colLimit)/(kk*plane)))
	for s0 := 0; s0 < l.n; s0 += l.chunk {
		s1 := min(s0+l.chunk, l.n)
		cols := (s1 - s0) * plane
		l.col = grow(l.col, kk*cols)
		l.im2col(l.col, x.Data, s0, s1)
		l.prod = grow(l.prod, l.Out*cols)
		gemm(false, false, l.Out, cols, kk, 1, l.Weight.Value.Data, kk, l.col, cols, 0, l.prod, cols)
		// prod is [Out, samples, OH·OW]; y is [N, Out, OH·OW]. The bias is
		// added while the planes are moved.
		for o := 0; o < l.Out; o++ {
			b := l.Bias.Value.Data[o]
			for i := s0; i < s1; i++ {
				src := l.prod[o*cols+(i-s0)*plane:][:plane]
				dst := y.Data[(i*l.Out+o)*plane:][:plane]
				for j, v := range src {
					t := v + b
					if l.relu && 0 > t {
						t = 0
					}
					dst[j] = t
				}
			}
		}
	}
	return y
}

// im2col lowers samples [s0, s1) of x into col: row (c, ki, kj), column
// (n−s0, oy, ox) holds x[n, c, oy·s+ki−p, ox·s+kj−p], or 0 in the padding.
func (l *Conv2D[T]) im2col(col, x []T, s0, s1 int) {
	k, s, p := l.Kernel, l.Stride, l.Pad
	plane := l.oh * l.ow
	cols := (s1 - s0) * plane
	for c := 0; c < l.In; c++ {
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := col[((c*k+ki)*k+kj)*cols:][:cols]
				lo, hi := validRange(l.ow, l.w, kj, s, p)
				for n := s0; n < s1; n++ {
					src := x[(n*l.In+c)*l.h*l.w:][:l.h*l.w]
					for oy := 0; oy < l.oh; oy++ {
						dst := row[(n-s0)*plane+oy*l.ow:][:l.ow]
						iy := oy*s + ki - p
						if iy < 0 || iy >= l.h || lo >= hi {
							clear(dst)
							continue
						}
						clear(dst[:lo])
						clear(dst[hi:])
						srow := src[iy*l.w:][:l.w]
						if s == 1 {
							copy(dst[lo:hi], srow[lo+kj-p:])
						} else {
							for ox := lo; ox < hi; ox++ {
								dst[ox] = srow[ox*s+kj-p]
							}
						}
					}
				}
			}
		}
	}
}

// col2im accumulates the column gradient dcol of samples [s0, s1) into
// dx, which must be zero there: the adjoint of im2col.
func (l *Conv2D[T]) col2im(dx, dcol []T, s0, s1 int) {
	k, s, p := l.Kernel, l.Stride, l.Pad
	plane := l.oh * l.ow
	cols := (s1 - s0) * plane
	for c := 0; c < l.In; c++ {
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				row := dcol[((c*k+ki)*k+kj)*cols:][:cols]
				lo, hi := validRange(l.ow, l.w, kj, s, p)
				if lo >= hi {
					continue
				}
				for n := s0; n < s1; n++ {
					dst := dx[(n*l.In+c)*l.h*l.w:][:l.h*l.w]
					for oy := 0; oy < l.oh; oy++ {
						iy := oy*s + ki - p
						if iy < 0 || iy >= l.h {
							continue
						}
						src := row[(n-s0)*plane+oy*l.ow:][:l.ow]
						drow := dst[iy*l.w:][:l.w]
						if s == 1 {
							d := drow[lo+kj-p:][:hi-lo]
							for j, v := range src[lo:hi] {
								d[j] += v
							}
						} else {
							for ox := lo; ox < hi; ox++ {
								drow[ox*s+kj-p] += src[ox]
							}
						}
					}
				}
			}
		}
	}
}

// validRange returns the output columns [lo, hi) whose input column
// ox·s+kj−p lies inside [0, w) for a kernel column kj.
func validRange(ow, w, kj, s, p int) (lo, hi int) {
	off := kj - p
	// Smallest ox with ox·s + off ≥ 0.
	if off < 0 {
		lo = (-off + s - 1) / s
	}
	// Largest ox with ox·s + off ≤ w−1, plus one.
	if w-1-off < 0 {
		return lo, lo
	}
	hi = min(ow, (w-1-off)/s+1)
	return lo, max(lo, hi)
}

// Backward: with dY rearranged to [Out, N·OH·OW], dW = dY·colᵀ,
// db = Σ dY over batch and positions, and dcol = Wᵀ·dY scattered back into
// dx by col2im.
func (l *Conv2D[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	if !sameShape(dy.Shape, l.y.Shape) {
		panic(fmt.Sprintf("trainer: conv2d %s: gradient shape %v, want %v", trimSuffix(l.Weight.Name), dy.Shape, l.y.Shape))
	}
	if !l.Weight.Trainable && !l.Bias.Trainable && !needDX {
		return nil
	}
	kk := l.In * l.Kernel * l.Kernel
	plane := l.oh * l.ow
	var dw, db []T
	if l.Weight.Trainable {
		dw = l.Weight.grad().Data
	}
	if l.Bias.Trainable {
		db = l.Bias.grad().Data
		clear(db)
	}
	var dx *Tensor[T]
	if needDX {
		dx = ensure(&l.dx, l.n, l.In, l.h, l.w)
		clear(dx.Data)
	}
	if c, ok := any(l).(*Conv2D[float32]); ok && packedKernels {
		var dx32 []float32
		if dx != nil {
			dx32 = any(dx).(*Tensor[float32]).Data
		}
		c.backward32(any(dy).(*Tensor[float32]).Data, any(dw).([]float32), any(db).([]float32), dx32)
		return dx
	}
	for s0 := 0; s0 < l.n; s0 += l.chunk {
		s1 := min(s0+l.chunk, l.n)
		cols := (s1 - s0) * plane
		l.prod = grow(l.prod, l.Out*cols)
		for o := 0; o < l.Out; o++ {
			for i := s0; i < s1; i++ {
				copy(l.prod[o*cols+(i-s0)*plane:][:plane], dy.Data[(i*l.Out+o)*plane:][:plane])
			}
		}
		if dw != nil {
			if l.chunk < l.n {
				// Forward kept only the last chunk's columns.
				l.col = grow(l.col, kk*cols)
				l.im2col(l.col, l.x.Data, s0, s1)
			}
			beta := T(1)
			if s0 == 0 {
				beta = 0
			}
			gemm(false, true, l.Out, kk, cols, 1, l.prod, cols, l.col, cols, beta, dw, kk)
		}
		for o := range db {
			// Summed in float64: a float32 sum over N·OH·OW terms (tens of
			// thousands) would lose digits.
			var s float64
			for _, v := range l.prod[o*cols : (o+1)*cols] {
				s += float64(v)
			}
			db[o] += T(s)
		}
		if needDX {
			l.dcol = grow(l.dcol, kk*cols)
			gemm(true, false, kk, cols, l.Out, 1, l.Weight.Value.Data, kk, l.prod, cols, 0, l.dcol, cols)
			l.col2im(dx.Data, l.dcol, s0, s1)
		}
	}
	return dx
}

// grow returns s resized to n elements, reusing its storage when it is
// large enough: the one helper for every scratch buffer, of any element
// type. The contents are unspecified.
func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// packedKernels routes float32 convolutions through forward32 and
// backward32, which lower straight into the blocked GEMM's packed panels
// (package kernel), in every build: the openblas build hands OpenBLAS the
// fully connected layers' products, where it is fastest, and the
// convolutions to these, which waste less around the product than a
// column matrix handed to any BLAS.
const packedKernels = true

// convInPlace lets the float32 path read the padded input in place instead
// of lowering it first: the stride-1 forward pass (kernel.SgemmIndirect),
// the weight gradient (kernel.TapGrad) and the stride-1 input gradient
// (kernel.SumShifted). Both ways give the same bits, which tests check by
// turning it off.
var convInPlace = true

// convPacked is the state of the float32 path: index tables of the
// geometry of the last Forward and buffers reused between calls.
type convPacked struct {
	// With the sample copied into a zero-padded [In, H+2p, W+2p] array,
	// row q = (c, ki, kj) of the lowered input at output pixel i is
	// xpad[base[q] + off[i]]: lowering is a gather through two tables.
	off, base []int32
	hp, wp    int
	wp32      []float32 // the weights packed as the A operand (forward)
	wt        []float32 // Wᵀ packed as the A operand (dx)
	scratch   []float32 // one sample's buffers on one goroutine

	// Backward's tables and buffers (see backward32).
	groups                          []int32
	dbSum                           []float64
	dcolS                           []float32
	col                             colGrad
	dyvBuf, dypBuf, dcolBuf, sumBuf []float32
	colOffs                         []int32
}

// tables32 fills the gather tables for the geometry of the last Forward.
func (l *Conv2D[T]) tables32() {
	p := &l.packed
	k, s := l.Kernel, l.Stride
	p.hp, p.wp = l.h+2*l.Pad, l.w+2*l.Pad
	p.off = grow(p.off, l.oh*l.ow)
	for oy := 0; oy < l.oh; oy++ {
		for ox := 0; ox < l.ow; ox++ {
			p.off[oy*l.ow+ox] = int32(oy*s*p.wp + ox*s)
		}
	}
	p.base = grow(p.base, l.In*k*k)
	for c := 0; c < l.In; c++ {
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj++ {
				p.base[(c*k+ki)*k+kj] = int32(c*p.hp*p.wp + ki*p.wp + kj)
			}
		}
	}
}

// pad32 copies sample n of x into the zero-padded xpad.
func (l *Conv2D[T]) pad32(xpad, x []float32, n int) {
	p := &l.packed
	clear(xpad)
	for c := 0; c < l.In; c++ {
		kernel.CopyRows(xpad[c*p.hp*p.wp+l.Pad*p.wp+l.Pad:], p.wp, x[(n*l.In+c)*l.h*l.w:][:l.h*l.w], l.w, l.h, l.w)
	}
}

// forward32 is Forward for float32 on the blocked GEMM, one sample at a
// time so everything it touches stays in cache: the sample is padded,
// gathered straight into the packed panels of the B operand (im2col
// without a column matrix), multiplied by the weights packed once per call,
// and the product written into the sample's output planes with the bias
// added and, when a ReLU follows, clamped at zero in the kernel's output
// pass. Samples are independent, so they are shared between goroutines
// when the batch is large enough to pay.
func (l *Conv2D[T]) forward32(x, y []float32) {
	c := any(l).(*Conv2D[float32])
	p := &l.packed
	l.tables32()
	kk := l.In * l.Kernel * l.Kernel
	plane := l.oh * l.ow
	p.wp32 = grow(p.wp32, kernel.RoundUp(l.Out, kernel.MR)*kk)
	kernel.PackA(p.wp32, c.Weight.Value.Data, kk, false, 0, l.Out, 0, kk, 1)
	bias := c.Bias.Value.Data
	padLen := l.In * p.hp * p.wp
	if l.Stride == 1 && convInPlace {
		// At stride 1 the taps of consecutive pixels of the padded grid
		// are consecutive in the padded input: compute the output on that
		// grid (OH rows of W+2p, the last p·2 columns of each discarded)
		// straight from the padded input, with no lowered copy.
		// The grid is rounded up to whole tiles (the extra columns are
		// discarded too), so that every tile is stored by the kernel.
		nv := kernel.RoundUp((l.oh-1)*p.wp+l.ow, kernel.NR)
		xLen := max(padLen, int(p.base[kk-1])+nv)
		sample := func(n int, scratch []float32) {
			xpad, cv := scratch[:xLen], scratch[xLen:][:l.Out*nv]
			l.pad32(xpad, x, n)
			kernel.SgemmIndirect(l.Out, nv, kk, p.wp32, xpad, p.base, cv, nv, bias, l.relu)
			for o := 0; o < l.Out; o++ {
				kernel.CopyRows(y[(n*l.Out+o)*plane:][:plane], l.ow, cv[o*nv:], p.wp, l.oh, l.ow)
			}
		}
		forSamples(l.n, 2*l.Out*kk*plane, xLen+l.Out*nv, &p.scratch, sample)
		return
	}
	sample := func(n int, scratch []float32) {
		xpad, bp := scratch[:padLen], scratch[padLen:]
		l.pad32(xpad, x, n)
		l.lowerPanels(bp, xpad)
		kernel.SgemmPacked(l.Out, plane, kk, p.wp32, bp, 0, y[n*l.Out*plane:], plane, bias, l.relu)
	}
	forSamples(l.n, 2*l.Out*kk*plane, padLen+kernel.RoundUp(plane, kernel.NR)*kk, &p.scratch, sample)
}

// lowerPanels gathers the lowered sample into packed B panels (see kernel.PackB):
// k = In·K·K rows, n = OH·OW columns.
func (l *Conv2D[T]) lowerPanels(bp, xpad []float32) {
	gatherPanels(bp, xpad, l.packed.base, l.packed.off)
}

// lowerPanelsT gathers the transposed lowered sample into packed B panels:
// k = OH·OW rows, n = In·K·K columns, for dW = dY·colᵀ.
func (l *Conv2D[T]) lowerPanelsT(bp, xpad []float32) {
	gatherPanels(bp, xpad, l.packed.off, l.packed.base)
}

// gatherPanels packs the matrix whose element (r, c) is xpad[rows[r] +
// cols[c]] into B panels of kernel.NR columns, a short last panel padded
// with zeros. The lowered sample is that matrix with rows = base (the
// offset of each input channel and tap) and cols = off (the offset of
// each output position); its transpose swaps the two tables.
func gatherPanels(bp, xpad []float32, rows, cols []int32) {
	k, n := len(rows), len(cols)
	for j := 0; j < n; j += kernel.NR {
		nr := min(kernel.NR, n-j)
		cs := cols[j:][:nr]
		dst := bp[j*k:][:k*kernel.NR]
		for q, r := range rows {
			d := dst[q*kernel.NR:][:kernel.NR]
			src := xpad[r:]
			for i, c := range cs {
				d[i] = src[c]
			}
			clear(d[nr:])
		}
	}
}

// backward32Lowered is backward32 on the lowered form, one sample at a
// time: dW accumulates dYₙ·colₙᵀ over the samples in order, with colₙᵀ
// gathered again from the padded sample, and dcolₙ = Wᵀ·dYₙ is scattered
// back through the same tables. backward32 reads the padded sample in
// place instead and gives the same bits, which a test checks against this.
func (l *Conv2D[T]) backward32Lowered(dy, dw, db, dx []float32) {
	c := any(l).(*Conv2D[float32])
	p := &l.packed
	kk := l.In * l.Kernel * l.Kernel
	plane := l.oh * l.ow
	for o := range db {
		// Summed in float64: a float32 sum over N·OH·OW terms (tens of
		// thousands) would lose digits.
		var s float64
		for n := 0; n < l.n; n++ {
			for _, v := range dy[(n*l.Out+o)*plane:][:plane] {
				s += float64(v)
			}
		}
		db[o] = float32(s)
	}
	if dw == nil && dx == nil {
		return
	}
	padLen := l.In * p.hp * p.wp
	apLen := kernel.RoundUp(l.Out, kernel.MR) * plane
	btLen := kernel.RoundUp(kk, kernel.NR) * plane
	dypLen := kernel.RoundUp(plane, kernel.NR) * l.Out
	p.scratch = grow(p.scratch, padLen+max(apLen+btLen, dypLen+kk*plane))
	xpad := p.scratch[:padLen]
	rest := p.scratch[padLen:]
	if dx != nil {
		p.wt = grow(p.wt, kernel.RoundUp(kk, kernel.MR)*l.Out)
		kernel.PackA(p.wt, c.Weight.Value.Data, kk, true, 0, kk, 0, l.Out, 1)
	}
	for n := 0; n < l.n; n++ {
		g := dy[n*l.Out*plane:][:l.Out*plane]
		if dw != nil {
			ap, bt := rest[:apLen], rest[apLen:][:btLen]
			l.pad32(xpad, c.x.Data, n)
			l.lowerPanelsT(bt, xpad)
			kernel.PackA(ap, g, plane, false, 0, l.Out, 0, plane, 1)
			beta := float32(1)
			if n == 0 {
				beta = 0
			}
			kernel.SgemmPacked(l.Out, kk, plane, ap, bt, beta, dw, kk, nil, false)
		}
		if dx != nil {
			dyp, dcol := rest[:dypLen], rest[dypLen:][:kk*plane]
			kernel.PackB(dyp, g, plane, false, 0, l.Out, 0, plane)
			kernel.SgemmPacked(kk, plane, l.Out, p.wt, dyp, 0, dcol, plane, nil, false)
			// col2im through the tables, into the padded sample.
			clear(xpad)
			for q, b := range p.base {
				dst := xpad[b:]
				for i, v := range dcol[q*plane:][:plane] {
					dst[p.off[i]] += v
				}
			}
			for ch := 0; ch < l.In; ch++ {
				d := dx[(n*l.In+ch)*l.h*l.w:][:l.h*l.w]
				for y := 0; y < l.h; y++ {
					copy(d[y*l.w:][:l.w], xpad[ch*p.hp*p.wp+(y+l.Pad)*p.wp+l.Pad:][:l.w])
				}
			}
		}
	}
}

// backward32 is Backward for float32, one sample at a time, without
// lowering anything. dW accumulates dYₙ·colₙᵀ over the samples in order,
// each term computed by kernel.TapGrad straight from the padded sample
// (col is never formed) in the k-blocks SgemmPacked would use, so the sums
// are those of the lowered product. db is summed while dYₙ is transposed
// for it. At stride 1, dcolₙ = Wᵀ·dYₙ is computed on the padded grid
// with zeros in its extra columns and kernel.SumShifted adds each input
// element's taps in order, which is col2im without a scatter; other strides
// scatter as backward32Lowered does. dw, db and dx may be nil when not
// wanted.
func (l *Conv2D[T]) backward32(dy, dw, db, dx []float32) {
	if !convInPlace {
		l.backward32Lowered(dy, dw, db, dx)
		return
	}
	c := any(l).(*Conv2D[float32])
	p := &l.packed
	k := l.Kernel
	kk := l.In * k * k
	plane := l.oh * l.ow
	if dw == nil {
		l.biasGrad32(dy, db)
		if dx == nil {
			return
		}
	}
	padLen := l.In * p.hp * p.wp
	xLen := padLen + kernel.TapRows
	width := 8
	if l.Out > 8 {
		width = 16
	}
	oblocks := (l.Out + width - 1) / width
	// One group per run of up to TapRows kernel columns of a kernel row.
	p.groups = p.groups[:0]
	for ch := 0; ch < l.In; ch++ {
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj += kernel.TapRows {
				p.groups = append(p.groups, p.base[(ch*k+ki)*k+kj])
			}
		}
	}
	tileLen := len(p.groups) * kernel.TapRows * width
	dyTLen := oblocks * plane * width
	p.scratch = grow(p.scratch, xLen+dyTLen+oblocks*tileLen)
	xpad := p.scratch[:xLen]
	dyT := p.scratch[xLen:][:dyTLen]
	// dW accumulates in TapGrad's layout, [o-block][group][row][o], and
	// is put in place once at the end.
	tiles := p.scratch[xLen+dyTLen:][:oblocks*tileLen]
	nblk := (plane + kernel.KC - 1) / kernel.KC
	kcb := (plane + nblk - 1) / nblk
	var dbSum []float64
	if db != nil {
		p.dbSum = grow(p.dbSum, l.Out)
		dbSum = p.dbSum
		clear(dbSum)
	}
	stride1 := l.Stride == 1
	var col *colGrad
	if dx != nil {
		p.wt = grow(p.wt, kernel.RoundUp(kk, kernel.MR)*l.Out)
		kernel.PackA(p.wt, c.Weight.Value.Data, kk, true, 0, kk, 0, l.Out, 1)
		if stride1 {
			col = l.colGrad32()
		} else {
			p.dcolS = grow(p.dcolS, kernel.RoundUp(plane, kernel.NR)*l.Out+kk*plane)
		}
	}
	for n := 0; n < l.n; n++ {
		g := dy[n*l.Out*plane:][:l.Out*plane]
		if dw != nil {
			clear(xpad[padLen:])
			l.pad32(xpad[:padLen], c.x.Data, n)
			transposeSum(dyT, g, l.Out, plane, width, dbSum)
			for pc := 0; pc < plane; pc += kcb {
				kb := min(kcb, plane-pc)
				acc := n > 0 || pc > 0
				for ob := 0; ob < oblocks; ob++ {
					kernel.TapGrad(xpad, p.groups, p.off[pc:][:kb], dyT[(ob*plane+pc)*width:], width, min(kernel.TapRows, k), tiles[ob*tileLen:][:tileLen], acc)
				}
			}
		}
		if dx == nil {
			continue
		}
		d := dx[n*l.In*l.h*l.w:][:l.In*l.h*l.w]
		if stride1 {
			col.sample(c, g, d)
			continue
		}
		dyp, dcol := p.dcolS[:kernel.RoundUp(plane, kernel.NR)*l.Out], p.dcolS[kernel.RoundUp(plane, kernel.NR)*l.Out:]
		kernel.PackB(dyp, g, plane, false, 0, l.Out, 0, plane)
		kernel.SgemmPacked(kk, plane, l.Out, p.wt, dyp, 0, dcol, plane, nil, false)
		xp := xpad[:padLen]
		clear(xp)
		for q, b := range p.base {
			dst := xp[b:]
			for i, v := range dcol[q*plane:][:plane] {
				dst[p.off[i]] += v
			}
		}
		for ch := 0; ch < l.In; ch++ {
			dc := d[ch*l.h*l.w:][:l.h*l.w]
			for y := 0; y < l.h; y++ {
				copy(dc[y*l.w:][:l.w], xp[ch*p.hp*p.wp+(y+l.Pad)*p.wp+l.Pad:][:l.w])
			}
		}
	}
	for o := range db {
		db[o] = float32(dbSum[o])
	}
	switch {
	case dw != nil && l.n == 0:
		clear(dw) // a sum over no samples
	case dw != nil:
		for ob := 0; ob < oblocks; ob++ {
			l.untile(dw, tiles[ob*tileLen:][:tileLen], ob*width, width)
		}
	}
}

// biasGrad32 sets db to the sum of dy over the batch and positions, per
// channel, in float64 (a float32 sum over N·OH·OW terms, tens of
// thousands, would lose digits), samples and positions in ascending order.
func (l *Conv2D[T]) biasGrad32(dy, db []float32) {
	plane := l.oh * l.ow
	for o := range db {
		var s float64
		for n := 0; n < l.n; n++ {
			for _, v := range dy[(n*l.Out+o)*plane:][:plane] {
				s += float64(v)
			}
		}
		db[o] = float32(s)
	}
}

// transposeSum writes the out×plane matrix g into dyT as o-blocks of
// plane×width (columns past out zero), kernel.TapGrad's b, and adds each
// row's elements, in order, to sum[row] in float64 when sum is not nil.
func transposeSum(dyT, g []float32, out, plane, width int, sum []float64) {
	for o0 := 0; o0 < out; o0 += width {
		var s []float64
		if sum != nil {
			s = sum[o0:]
		}
		kernel.TransposeSum(dyT[o0*plane:][:plane*width], g[o0*plane:], min(width, out-o0), plane, width, s)
	}
}

// untile copies dW for output channels o0 … o0+width−1 from TapGrad's
// layout into dw [Out, In·K·K].
func (l *Conv2D[T]) untile(dw, tiles []float32, o0, width int) {
	k := l.Kernel
	kk := l.In * k * k
	outs := min(width, l.Out-o0)
	gi := 0
	for ch := 0; ch < l.In; ch++ {
		for ki := 0; ki < k; ki++ {
			for kj := 0; kj < k; kj += kernel.TapRows {
				for r := 0; r < min(kernel.TapRows, k-kj); r++ {
					q := (ch*k+ki)*k + kj + r
					for o, v := range tiles[(gi*kernel.TapRows+r)*width:][:outs] {
						dw[(o0+o)*kk+q] = v
					}
				}
				gi++
			}
		}
	}
}

// colGrad is the stride-1 input gradient's layout: dcol on the padded grid
// (OH rows of W+2p) with each tap's row at stride rowLen, between zero
// margins wide enough that every shifted read of SumShifted stays within
// its tap's row.
type colGrad struct {
	nv, margin, rowLen  int
	span, start         int // input elements summed per channel, from padded index start
	dyv, dyp, dcol, sum []float32
	offs                []int32 // per channel, In·K·K in all
}

// colGrad32 prepares the stride-1 input gradient for the last Forward's
// geometry, reusing the float32 path's buffers.
func (l *Conv2D[T]) colGrad32() *colGrad {
	p := &l.packed
	k := l.Kernel
	kk := l.In * k * k
	g := &p.col
	g.nv = (l.oh-1)*p.wp + l.ow
	g.margin = (k - 1) * (p.wp + 1)
	g.start = l.Pad*p.wp + l.Pad
	g.span = (l.h-1)*p.wp + l.w
	// The product is computed on whole tiles: the columns past nv come from
	// the zero columns PackB adds, so they are +0 and land in the margin.
	g.rowLen = g.margin + max(g.start+g.span, kernel.RoundUp(g.nv, kernel.NR))
	// The extra columns of dyv and the margins of dcol are zero and stay
	// so: only the real pixels and the first nv of each row are written.
	p.dyvBuf = grow(p.dyvBuf, l.Out*g.nv)
	clear(p.dyvBuf)
	g.dyv = p.dyvBuf
	p.dypBuf = grow(p.dypBuf, kernel.RoundUp(g.nv, kernel.NR)*l.Out)
	g.dyp = p.dypBuf
	p.dcolBuf = grow(p.dcolBuf, kk*g.rowLen)
	clear(p.dcolBuf)
	g.dcol = p.dcolBuf
	p.sumBuf = grow(p.sumBuf, g.span)
	g.sum = p.sumBuf
	p.colOffs = grow(p.colOffs, kk)
	g.offs = p.colOffs
	for q := range kk {
		lb := int(p.base[q]) % (p.hp * p.wp) // the tap's shift within its channel
		g.offs[q] = int32(q*g.rowLen + g.margin - lb + g.start)
	}
	return g
}

// sample computes the input gradient d [In, H, W] of one sample from its
// output gradient g [Out, OH·OW].
func (g *colGrad) sample(l *Conv2D[float32], dy, d []float32) {
	p := &l.packed
	k := l.Kernel
	kk := l.In * k * k
	plane := l.oh * l.ow
	for o := 0; o < l.Out; o++ {
		kernel.CopyRows(g.dyv[o*g.nv:][:g.nv], p.wp, dy[o*plane:][:plane], l.ow, l.oh, l.ow)
	}
	kernel.PackB(g.dyp, g.dyv, g.nv, false, 0, l.Out, 0, g.nv)
	kernel.SgemmPacked(kk, kernel.RoundUp(g.nv, kernel.NR), l.Out, p.wt, g.dyp, 0, g.dcol[g.margin:], g.rowLen, nil, false)
	for ch := 0; ch < l.In; ch++ {
		kernel.SumShifted(g.sum, g.dcol, g.offs[ch*k*k:][:k*k])
		kernel.CopyRows(d[ch*l.h*l.w:][:l.h*l.w], l.w, g.sum, p.wp, l.h, l.w)
	}
}

// forSamples calls f for samples 0…n−1, each with a scratch buffer of
// scratchLen elements, on several goroutines when the batch carries enough
// work (flops per sample) to pay for starting them. Each sample's result
// depends on that sample alone, so the split changes no bits. *keep holds
// the scratch of the one-goroutine case between calls.
func forSamples(n, flops, scratchLen int, keep *[]float32, f func(n int, scratch []float32)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w < 2 || n*flops < 1<<23 {
		*keep = grow(*keep, scratchLen)
		for i := 0; i < n; i++ {
			f(i, *keep)
		}
		return
	}
	var wg sync.WaitGroup
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, _ := scratchPool.Get().(*[]float32)
			if p == nil {
				p = new([]float32)
			}
			defer scratchPool.Put(p)
			*p = grow(*p, scratchLen)
			for i := g; i < n; i += w {
				f(i, *p)
			}
		}()
	}
	wg.Wait()
}

// scratchPool holds the per-goroutine buffers of forSamples.
var scratchPool sync.Pool
