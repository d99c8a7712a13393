package trainer

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas/blas32"

	"thaw/trainer/internal/kernel"
)

// blas32Want says which blas32 implementation a build installs.
type blas32Want struct {
	name string
	is   func() bool
}

// TestBLAS32Implementation checks that the build installed its float32
// backend as gonum's blas32 implementation: thaw's kernel in the default
// build, OpenBLAS under the openblas tag (the expectation is set per build
// in blas_gonum_test.go and blas_openblas_test.go).
func TestBLAS32Implementation(t *testing.T) {
	if !wantBLAS32.is() {
		t.Errorf("blas32.Implementation() is %T, want %s", blas32.Implementation(), wantBLAS32.name)
	}
}

// TestGemmThroughBLAS32 checks that gemm's float32 products are the blas32
// implementation's, bit for bit, on each transpose combination; in the
// default build they are also package kernel's direct call, so moving the
// layers' plain products onto gonum's interface changed no result.
func TestGemmThroughBLAS32(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 6))
	fill := func(n int) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
		}
		return x
	}
	const m, n, k = 37, 29, 300 // k crosses the kernel's k-block of 256
	for _, tt := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		tA, tB := tt[0], tt[1]
		lda, ldb := k, n
		if tA {
			lda = m
		}
		if tB {
			ldb = k
		}
		a, b, c := fill(m*k), fill(k*n), fill(m*n)
		got := append([]float32(nil), c...)
		gemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, got, n)
		want := append([]float32(nil), c...)
		blas32.Implementation().Sgemm(blasTrans(tA), blasTrans(tB), m, n, k, 0.5, a, lda, b, ldb, 0.25, want, n)
		direct := append([]float32(nil), c...)
		kernel.Sgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, direct, n, nil, false)
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("tA=%v tB=%v: c[%d] = %g, blas32 %g", tA, tB, i, got[i], want[i])
			}
			if backend == "gonum" && math.Float32bits(got[i]) != math.Float32bits(direct[i]) {
				t.Fatalf("tA=%v tB=%v: c[%d] = %g, kernel.Sgemm %g", tA, tB, i, got[i], direct[i])
			}
		}
	}
}
