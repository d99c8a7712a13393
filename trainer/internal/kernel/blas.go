package kernel

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Implementation is gonum's pure-Go BLAS with this package's float32 matrix
// product in place of its Sgemm, so that thaw's kernel can be installed
// with blas32.Use like any other implementation (OpenBLAS through
// gonum.org/v1/netlib is the other one thaw installs). Every other routine
// is gonum's.
//
// Its Sgemm gives the bits of [Sgemm] with no bias and no ReLU: the same
// sums in the same order, whatever the build installs around it.
type Implementation struct {
	gonum.Implementation
}

var _ blas.Float32 = Implementation{}

// Sgemm computes c = alpha·op(a)·op(b) + beta·c for row-major matrices,
// where op(a) is m×k, op(b) k×n and c m×n, with [Sgemm]'s blocked kernel.
// It panics, with gonum's messages, where gonum's Sgemm does: on a
// transpose flag other than NoTrans, Trans or ConjTrans (which means Trans
// for real matrices), a negative dimension, a leading dimension shorter
// than a row, or a slice too short for its matrix. beta 0 ignores c's
// previous contents, NaN included.
func (Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	aT, bT := transposed(tA), transposed(tB)
	switch {
	case m < 0:
		panic("blas: m < 0")
	case n < 0:
		panic("blas: n < 0")
	case k < 0:
		panic("blas: k < 0")
	case aT && lda < max(1, m), !aT && lda < max(1, k):
		panic("blas: bad leading dimension of A")
	case bT && ldb < max(1, k), !bT && ldb < max(1, n):
		panic("blas: bad leading dimension of B")
	case ldc < max(1, n):
		panic("blas: bad leading dimension of C")
	}
	if m == 0 || n == 0 {
		return
	}
	switch {
	case aT && len(a) < (k-1)*lda+m, !aT && len(a) < (m-1)*lda+k:
		panic("blas: insufficient length of a")
	case bT && len(b) < (n-1)*ldb+k, !bT && len(b) < (k-1)*ldb+n:
		panic("blas: insufficient length of b")
	case len(c) < (m-1)*ldc+n:
		panic("blas: insufficient length of c")
	}
	Sgemm(aT, bT, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil, false)
}

// transposed reports whether t transposes its operand, panicking as gonum
// does on an invalid flag.
func transposed(t blas.Transpose) bool {
	switch t {
	case blas.NoTrans:
		return false
	case blas.Trans, blas.ConjTrans:
		return true
	}
	panic("blas: illegal transpose")
}
