package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// TestImplementationSgemmBits checks that the blas.Float32 form gives the
// bits of the direct call, on every transpose combination (ConjTrans
// meaning Trans), alpha 1 or other and beta 0, 1 or other, on each kernel
// path: the layers' plain products moved from one to the other and no
// stored result may change.
func TestImplementationSgemmBits(t *testing.T) {
	flags := []blas.Transpose{blas.NoTrans, blas.Trans, blas.ConjTrans}
	rng := rand.New(rand.NewPCG(19, 6))
	for name, asm := range kernelPaths() {
		withKernel(t, asm, func() {
			for _, tA := range flags {
				for _, tB := range flags {
					for _, size := range [][3]int{{1, 1, 1}, {7, 30, 5}, {128, 10, 128}, {33, 257, 300}} {
						for _, ab := range [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.25}} {
							g := gemmCase{tA: tA != blas.NoTrans, tB: tB != blas.NoTrans, m: size[0], n: size[1], k: size[2], alpha: ab[0], beta: ab[1], padA: 1, padB: 2, padC: 3}
							a, lda, b, ldb, c, ldc := g.operands(rng)
							want := append([]float32(nil), c...)
							Sgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc, nil, false)
							got := append([]float32(nil), c...)
							Implementation{}.Sgemm(tA, tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, got, ldc)
							for i := range got {
								if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
									t.Fatalf("%s: %v (flags %c %c): c[%d] = %g, direct call %g", name, g, tA, tB, i, got[i], want[i])
								}
							}
						}
					}
				}
			}
		})
	}
}

// TestImplementationSgemmPanics checks that bad arguments panic with the
// message gonum's Sgemm gives for them, so that swapping implementations
// does not change what a caller's mistake looks like.
func TestImplementationSgemmPanics(t *testing.T) {
	no, tr := blas.NoTrans, blas.Trans
	buf := func(n int) []float32 { return make([]float32, n) }
	cases := []struct {
		name    string
		tA, tB  blas.Transpose
		m, n, k int
		a       []float32
		lda     int
		b       []float32
		ldb     int
		c       []float32
		ldc     int
		panics  bool
	}{
		{"ok", no, no, 2, 3, 4, buf(8), 4, buf(12), 3, buf(6), 3, false},
		{"ok transposed", tr, tr, 2, 3, 4, buf(8), 2, buf(12), 4, buf(6), 3, false},
		{"ok empty", no, no, 0, 3, 4, nil, 4, buf(12), 3, nil, 3, false},
		{"bad tA", 'x', no, 2, 3, 4, buf(8), 4, buf(12), 3, buf(6), 3, true},
		{"bad tB", no, 'x', 2, 3, 4, buf(8), 4, buf(12), 3, buf(6), 3, true},
		{"m<0", no, no, -1, 3, 4, buf(8), 4, buf(12), 3, buf(6), 3, true},
		{"n<0", no, no, 2, -1, 4, buf(8), 4, buf(12), 3, buf(6), 3, true},
		{"k<0", no, no, 2, 3, -1, buf(8), 4, buf(12), 3, buf(6), 3, true},
		{"lda", no, no, 2, 3, 4, buf(8), 3, buf(12), 3, buf(6), 3, true},
		{"lda transposed", tr, no, 2, 3, 4, buf(8), 1, buf(12), 3, buf(6), 3, true},
		{"ldb", no, no, 2, 3, 4, buf(8), 4, buf(12), 2, buf(6), 3, true},
		{"ldb transposed", no, tr, 2, 3, 4, buf(8), 4, buf(12), 3, buf(6), 3, true},
		{"ldc", no, no, 2, 3, 4, buf(8), 4, buf(12), 3, buf(6), 2, true},
		{"short a", no, no, 2, 3, 4, buf(7), 4, buf(12), 3, buf(6), 3, true},
		{"short b", no, no, 2, 3, 4, buf(8), 4, buf(11), 3, buf(6), 3, true},
		{"short c", no, no, 2, 3, 4, buf(8), 4, buf(12), 3, buf(5), 3, true},
	}
	call := func(f func()) (msg string) {
		defer func() {
			if r := recover(); r != nil {
				msg = fmt.Sprint(r)
			}
		}()
		f()
		return ""
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := call(func() {
				Implementation{}.Sgemm(c.tA, c.tB, c.m, c.n, c.k, 1, c.a, c.lda, c.b, c.ldb, 0, c.c, c.ldc)
			})
			want := call(func() {
				gonum.Implementation{}.Sgemm(c.tA, c.tB, c.m, c.n, c.k, 1, c.a, c.lda, c.b, c.ldb, 0, c.c, c.ldc)
			})
			if got != want {
				t.Errorf("panic %q, gonum's %q", got, want)
			}
			if (got != "") != c.panics {
				t.Errorf("panic %q, want a panic: %v", got, c.panics)
			}
		})
	}
}
