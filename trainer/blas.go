package trainer

import (
	"sync"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"

	"thaw/trainer/internal/kernel"
)

// gemm computes c = alpha·op(a)·op(b) + beta·c for row-major matrices, where
// op(x) is x or xᵀ as tA and tB say; op(a) is m×k, op(b) k×n and c m×n.
// It is the layers' one door to a plain matrix product, and it goes
// through gonum's BLAS interfaces, so the backend is chosen in one place,
// with blas32.Use and blas64.Use: float32 products go to the blas32
// implementation in use — package kernel's blocked GEMM in the default
// build (see blas_gonum.go), OpenBLAS under the openblas build tag — and
// float64 products, which only gradient checks and reference comparisons
// use, to the blas64 one. The fused (bias, ReLU) and packed products the
// layers need have no BLAS form and call package kernel directly.
func gemm[T Float](tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	// Both float32 implementations thaw installs handle transposed operands
	// themselves.
	if a32, ok := any(a).([]float32); ok {
		blas32.Implementation().Sgemm(blasTrans(tA), blasTrans(tB), m, n, k, float32(alpha), a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
		return
	}
	// gonum's pure-Go kernels are fastest, by a wide margin, when neither
	// operand is transposed: that case streams rows through AXPY and skips
	// zero entries of a (half of a ReLU's output or gradient), while the
	// transposed cases fall back to dot products. An explicit transposed
	// copy costs O(size) against the product's O(m·n·k), so make one.
	// OpenBLAS handles transposed operands natively.
	if transposeOperands {
		if tA {
			at := getScratch[T](m * k)
			defer putScratch(at)
			transpose(*at, a, k, m, lda)
			a, lda, tA = *at, k, false
		}
		// Except for long, narrow products (a convolution's weight gradient:
		// a few outputs, each a sum over every pixel of the batch), where
		// the dot-product form runs over long vectors and the AXPY form
		// would run over very short ones.
		if tB && !(k >= 4*n && !tA) {
			bt := getScratch[T](k * n)
			defer putScratch(bt)
			transpose(*bt, b, n, k, ldb)
			b, ldb, tB = *bt, n, false
		}
	}
	blas64.Implementation().Dgemm(blasTrans(tA), blasTrans(tB), m, n, k, float64(alpha), any(a).([]float64), lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
}

// blasTrans is BLAS's name for a transpose flag.
func blasTrans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemmReLU is gemm with alpha 1 followed by max(c, 0) when relu is set,
// fused into the output pass of package kernel's float32 product, called
// directly since BLAS has no fused form; in the openblas build and for
// float64 the clamp is a pass of its own after gemm.
func gemmReLU[T Float](tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int, relu bool) {
	if a32, ok := any(a).([]float32); ok && backend != "openblas" {
		kernel.Sgemm(tA, tB, m, n, k, 1, a32, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc, nil, relu)
		return
	}
	gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
	if relu {
		for i := 0; i < m; i++ {
			for j, v := range c[i*ldc:][:n] {
				if 0 > v {
					c[i*ldc+j] = 0
				}
			}
		}
	}
}

// Backend names the build's BLAS backend: "gonum" in the default build
// (gonum's BLAS interfaces, with thaw's float32 kernel installed as the
// blas32 implementation) or "openblas" (OpenBLAS installed as both).
func Backend() string { return backend }

// KernelPath names the float32 kernels a run computes with, which decide its
// last bits: "avx2-fma" (Go assembly, on amd64 with AVX2 and FMA) or
// "generic" (portable Go, forced by the purego build tag or the environment
// variable THAW_KERNEL=generic) in the default build; in the openblas build
// "openblas+" and the kernel its convolutions use. The same path on the
// same machine gives bit-identical runs; another path may differ in the
// last bits.
func KernelPath() string {
	if backend == "openblas" {
		return "openblas+" + kernel.Path()
	}
	return kernel.Path()
}

// transpose writes the transpose of the rows×cols matrix src (row stride
// lds) into dst as a cols×rows matrix. It reads eight source rows at a
// time so that each write fills eight consecutive destination elements:
// about 3× faster than a tiled element-by-element copy.
func transpose[T Float](dst, src []T, rows, cols, lds int) {
	const b = 8
	i := 0
	for ; i+b <= rows; i += b {
		s0, s1 := src[i*lds:][:cols], src[(i+1)*lds:][:cols]
		s2, s3 := src[(i+2)*lds:][:cols], src[(i+3)*lds:][:cols]
		s4, s5 := src[(i+4)*lds:][:cols], src[(i+5)*lds:][:cols]
		s6, s7 := src[(i+6)*lds:][:cols], src[(i+7)*lds:][:cols]
		for j := 0; j < cols; j++ {
			d := dst[j*rows+i:][:b]
			d[0], d[1], d[2], d[3] = s0[j], s1[j], s2[j], s3[j]
			d[4], d[5], d[6], d[7] = s4[j], s5[j], s6[j], s7[j]
		}
	}
	for ; i < rows; i++ {
		s := src[i*lds:][:cols]
		for j, v := range s {
			dst[j*rows+i] = v
		}
	}
}

// Scratch buffers for transposed copies, shared by concurrent runs.
var scratch32, scratch64 sync.Pool

func getScratch[T Float](n int) *[]T {
	pool := &scratch64
	if _, ok := any([]T(nil)).([]float32); ok {
		pool = &scratch32
	}
	p, _ := pool.Get().(*[]T)
	if p == nil {
		p = new([]T)
	}
	if cap(*p) < n {
		*p = make([]T, n)
	}
	*p = (*p)[:n]
	return p
}

func putScratch[T Float](p *[]T) {
	if _, ok := any([]T(nil)).([]float32); ok {
		scratch32.Put(p)
	} else {
		scratch64.Put(p)
	}
}
