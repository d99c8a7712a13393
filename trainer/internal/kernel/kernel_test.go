package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// kernelPaths returns the micro-kernels this machine can run, by name, so a
// test can check each: the one chosen at start-up and the portable one.
func kernelPaths() map[string]bool {
	paths := map[string]bool{"generic": false}
	if useAsm {
		paths[kernelPath] = true
	}
	return paths
}

// withKernel runs f on the assembly kernel or the portable one.
func withKernel(t testing.TB, asm bool, f func()) {
	saved := useAsm
	useAsm = asm
	defer func() { useAsm = saved }()
	f()
}

// gemmCase is one product c = alpha·op(a)·op(b) + beta·c.
type gemmCase struct {
	tA, tB      bool
	m, n, k     int
	alpha, beta float32
	// Extra leading-dimension padding, so strides differ from widths.
	padA, padB, padC int
}

func (g gemmCase) String() string {
	return fmt.Sprintf("tA=%v tB=%v m=%d n=%d k=%d alpha=%g beta=%g", g.tA, g.tB, g.m, g.n, g.k, g.alpha, g.beta)
}

// operands returns random a, b and c for the case with their strides.
func (g gemmCase) operands(rng *rand.Rand) (a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	ar, ac := g.m, g.k
	if g.tA {
		ar, ac = g.k, g.m
	}
	br, bc := g.k, g.n
	if g.tB {
		br, bc = g.n, g.k
	}
	lda, ldb, ldc = ac+g.padA, bc+g.padB, g.n+g.padC
	a = randFloats(rng, max(0, (ar-1)*lda+ac))
	b = randFloats(rng, max(0, (br-1)*ldb+bc))
	c = randFloats(rng, max(0, (g.m-1)*ldc+g.n))
	return
}

func randFloats(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// checkGemm compares Sgemm with gonum's Sgemm on one case. The tolerance
// is 1e-5 relative to the size of the terms: |got − want| ≤
// 1e-5·(|alpha|·Σ_p |a_ip·b_pj| + |beta·c_ij|) + 1e-30. Relative to the sum
// of magnitudes rather than to |want|, because the two implementations
// round differently and cancellation can make |want| arbitrarily small;
// float32's unit roundoff is 6e-8, so 1e-5 leaves room for sums of a few
// hundred terms in either order.
func checkGemm(t *testing.T, g gemmCase, rng *rand.Rand) {
	t.Helper()
	a, lda, b, ldb, c, ldc := g.operands(rng)
	want := append([]float32(nil), c...)
	tA, tB := blas.NoTrans, blas.NoTrans
	if g.tA {
		tA = blas.Trans
	}
	if g.tB {
		tB = blas.Trans
	}
	gonum.Implementation{}.Sgemm(tA, tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, want, ldc)
	got := append([]float32(nil), c...)
	Sgemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, g.beta, got, ldc, nil, false)
	// op(a) and op(b) as dense float64 matrices, for the tolerance.
	oa := make([]float64, g.m*g.k)
	for i := 0; i < g.m; i++ {
		for p := 0; p < g.k; p++ {
			if g.tA {
				oa[i*g.k+p] = math.Abs(float64(a[p*lda+i]))
			} else {
				oa[i*g.k+p] = math.Abs(float64(a[i*lda+p]))
			}
		}
	}
	ob := make([]float64, g.n*g.k) // transposed: row j is column j of op(b)
	for p := 0; p < g.k; p++ {
		for j := 0; j < g.n; j++ {
			if g.tB {
				ob[j*g.k+p] = math.Abs(float64(b[j*ldb+p]))
			} else {
				ob[j*g.k+p] = math.Abs(float64(b[p*ldb+j]))
			}
		}
	}
	for i := 0; i < g.m; i++ {
		ra := oa[i*g.k:][:g.k]
		for j := 0; j < g.n; j++ {
			var mag float64
			for p, v := range ob[j*g.k:][:g.k] {
				mag += ra[p] * v
			}
			tol := 1e-5*(math.Abs(float64(g.alpha))*mag+math.Abs(float64(g.beta)*float64(c[i*ldc+j]))) + 1e-30
			if d := math.Abs(float64(got[i*ldc+j]) - float64(want[i*ldc+j])); d > tol || math.IsNaN(d) {
				t.Fatalf("%v: c[%d][%d] = %g, gonum %g (difference %g, tolerance %g)", g, i, j, got[i*ldc+j], want[i*ldc+j], d, tol)
			}
		}
	}
	// Padding between rows of c is not part of c and must be untouched.
	for i := 0; i+1 < g.m; i++ {
		for j := g.n; j < ldc; j++ {
			if got[i*ldc+j] != c[i*ldc+j] {
				t.Fatalf("%v: wrote c[%d][%d], outside the %d×%d result", g, i, j, g.m, g.n)
			}
		}
	}
}

// TestSgemmMatchesGonum checks every tail case: each of m, n and k runs
// through 1…300 (which crosses every remainder of the 4×24 tile, the k-block
// boundaries at 256 and the row blocks of 160) with the other two sizes
// random, each transpose combination and beta 0, 1 or other, on every kernel
// path this machine has.
func TestSgemmMatchesGonum(t *testing.T) {
	for name, k := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, k, func() {
				rng := rand.New(rand.NewPCG(1, 2))
				step := 1
				if testing.Short() {
					step = 7
				}
				for d := 1; d <= 300; d += step {
					for dim := 0; dim < 3; dim++ {
						g := gemmCase{
							tA: rng.IntN(2) == 1, tB: rng.IntN(2) == 1,
							m: 1 + rng.IntN(40), n: 1 + rng.IntN(60), k: 1 + rng.IntN(40),
							alpha: []float32{1, 1, -0.5}[rng.IntN(3)],
							beta:  []float32{0, 1, 0.75}[rng.IntN(3)],
							padA:  rng.IntN(3), padB: rng.IntN(3), padC: rng.IntN(3),
						}
						switch dim {
						case 0:
							g.m = d
						case 1:
							g.n = d
						case 2:
							g.k = d
						}
						checkGemm(t, g, rng)
					}
				}
				// The network's shapes, and ones past every block size.
				for _, s := range [][3]int{{128, 256, 784}, {256, 784, 128}, {128, 784, 256}, {8, 784, 25}, {16, 196, 200}, {8, 25, 3136}, {161, 3100, 513}} {
					for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
						checkGemm(t, gemmCase{tA: tr[0], tB: tr[1], m: s[0], n: s[1], k: s[2], alpha: 1, beta: 0.5}, rng)
					}
				}
			})
		})
	}
}

// TestSgemmEpilogue checks the fused output pass, bit for bit, against its
// steps done in Go after a plain product: the raw sum plus the row bias,
// then beta·c, then ReLU. k stays within one k-block, where the raw sum is
// what a plain product with beta 0 returns.
func TestSgemmEpilogue(t *testing.T) {
	for name, k := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, k, func() {
				rng := rand.New(rand.NewPCG(3, 4))
				for _, s := range [][3]int{{8, 784, 25}, {16, 196, 200}, {5, 30, 256}, {1, 1, 1}, {7, 50, 0}} {
					for _, beta := range []float32{0, 1, 0.5} {
						g := gemmCase{m: s[0], n: s[1], k: s[2], alpha: 1, beta: beta, padC: 1}
						a, lda, b, ldb, c, ldc := g.operands(rng)
						bias := randFloats(rng, g.m)
						acc := make([]float32, len(c))
						Sgemm(false, false, g.m, g.n, g.k, 1, a, lda, b, ldb, 0, acc, ldc, nil, false)
						got := append([]float32(nil), c...)
						Sgemm(false, false, g.m, g.n, g.k, 1, a, lda, b, ldb, beta, got, ldc, bias, true)
						for i := 0; i < g.m; i++ {
							for j := 0; j < g.n; j++ {
								w := acc[i*ldc+j] + bias[i]
								if beta != 0 {
									w = float32(beta*c[i*ldc+j]) + w
								}
								if 0 > w {
									w = 0
								}
								if got := got[i*ldc+j]; got != w {
									t.Fatalf("%v beta %g: c[%d][%d] = %g, want %g", s, beta, i, j, got, w)
								}
							}
						}
					}
				}
			})
		})
	}
}

// TestSgemmRowIndependence checks that a row of the product does not depend
// on the other rows, its position, the batch size or the number of
// goroutines: each row computed alone, and the rows computed in reverse
// order inside a larger batch, equal the batch's rows bit for bit.
func TestSgemmRowIndependence(t *testing.T) {
	for name, k := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, k, func() {
				rng := rand.New(rand.NewPCG(5, 6))
				for _, s := range [][3]int{{128, 256, 784}, {37, 30, 300}, {333, 64, 520}} {
					for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
						m, n, kk := s[0], s[1], s[2]
						g := gemmCase{tA: tr[0], tB: tr[1], m: m, n: n, k: kk, alpha: 1}
						a, lda, b, ldb, _, _ := g.operands(rng)
						row := func(i int, x []float32) []float32 {
							if !g.tA {
								return append([]float32(nil), a[i*lda:][:kk]...)
							}
							r := make([]float32, kk)
							for p := range r {
								r[p] = a[p*lda+i]
							}
							return r
						}
						batch := make([]float32, m*n)
						Sgemm(g.tA, g.tB, m, n, kk, 1, a, lda, b, ldb, 0, batch, n, nil, false)
						// Each row alone.
						for i := 0; i < m; i += 1 + i/8 {
							one := make([]float32, n)
							Sgemm(false, g.tB, 1, n, kk, 1, row(i, nil), kk, b, ldb, 0, one, n, nil, false)
							for j := range one {
								if one[j] != batch[i*n+j] {
									t.Fatalf("%v %v: row %d alone, c[%d] = %g, in the batch %g", s, tr, i, j, one[j], batch[i*n+j])
								}
							}
						}
						// Reversed, after 3 extra rows, on one and on
						// several goroutines.
						big := make([]float32, (m+3)*kk)
						copy(big, randFloats(rng, 3*kk))
						for i := 0; i < m; i++ {
							copy(big[(3+m-1-i)*kk:][:kk], row(i, nil))
						}
						for _, procs := range []int{1, 2, 3} {
							old := runtime.GOMAXPROCS(procs)
							out := make([]float32, (m+3)*n)
							Sgemm(false, g.tB, m+3, n, kk, 1, big, kk, b, ldb, 0, out, n, nil, false)
							runtime.GOMAXPROCS(old)
							for i := 0; i < m; i++ {
								for j := 0; j < n; j++ {
									if got := out[(3+m-1-i)*n+j]; got != batch[i*n+j] {
										t.Fatalf("%v %v GOMAXPROCS %d: row %d moved to %d, c[%d] = %g, want %g", s, tr, procs, i, 3+m-1-i, j, got, batch[i*n+j])
									}
								}
							}
						}
					}
				}
			})
		})
	}
}

// FuzzSgemm compares Sgemm with gonum's Sgemm on fuzzed shapes.
func FuzzSgemm(f *testing.F) {
	f.Add(uint16(1), uint16(1), uint16(1), false, false, uint64(1))
	f.Add(uint16(5), uint16(25), uint16(257), true, false, uint64(2))
	f.Add(uint16(161), uint16(49), uint16(3), false, true, uint64(3))
	f.Fuzz(func(t *testing.T, m, n, k uint16, tA, tB bool, seed uint64) {
		g := gemmCase{tA: tA, tB: tB, m: int(m%300) + 1, n: int(n%300) + 1, k: int(k%600) + 1, alpha: 1, beta: float32(seed%3) / 2}
		rng := rand.New(rand.NewPCG(seed, 7))
		g.padA, g.padB, g.padC = rng.IntN(3), rng.IntN(3), rng.IntN(3)
		for _, kern := range kernelPaths() {
			withKernel(t, kern, func() { checkGemm(t, g, rng) })
		}
	})
}

// BenchmarkSgemm reports GFLOP/s of the float32 product on the network's
// shapes (m×k times k×n), for the kernel in use and, for comparison,
// gonum's pure-Go Sgemm:
//
//	go test -run XXX -bench Sgemm -cpu 1 ./trainer/internal/kernel/
func BenchmarkSgemm(b *testing.B) {
	shapes := []struct {
		name    string
		tA, tB  bool
		m, n, k int
	}{
		{"128x784x256", false, true, 128, 256, 784}, // MLP fc1 forward, x·Wᵀ
		{"dW-256x784x128", true, false, 256, 784, 128},
		{"dx-128x256x784", false, false, 128, 784, 256},
		{"conv2-16x196x200", false, false, 16, 196, 200},
	}
	for _, s := range shapes {
		g := gemmCase{tA: s.tA, tB: s.tB, m: s.m, n: s.n, k: s.k, alpha: 1}
		a, lda, bb, ldb, c, ldc := g.operands(rand.New(rand.NewPCG(1, 1)))
		flops := 2 * float64(s.m*s.n*s.k)
		b.Run(s.name+"/"+Path(), func(b *testing.B) {
			for b.Loop() {
				Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, ldc, nil, false)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(s.name+"/gonum", func(b *testing.B) {
			tA, tB := blas.NoTrans, blas.NoTrans
			if s.tA {
				tA = blas.Trans
			}
			if s.tB {
				tB = blas.Trans
			}
			for b.Loop() {
				gonum.Implementation{}.Sgemm(tA, tB, s.m, s.n, s.k, 1, a, lda, bb, ldb, 0, c, ldc)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestSgemmIndirect checks the in-place form against SgemmPacked on the
// same operands, bit for bit, with tails in m and n, two k-blocks, bias
// and ReLU, on every kernel path.
func TestSgemmIndirect(t *testing.T) {
	for name, asm := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, asm, func() {
				rng := rand.New(rand.NewPCG(13, 14))
				for _, s := range [][3]int{{8, 892, 25}, {16, 248, 200}, {5, 30, 300}, {1, 1, 1}, {3, 47, 9}} {
					m, n, k := s[0], s[1], s[2]
					b := randFloats(rng, 2000+RoundUp(n, NR))
					offs := make([]int32, k)
					for p := range offs {
						offs[p] = int32(rng.IntN(2001))
					}
					dense := make([]float32, k*n)
					for p := 0; p < k; p++ {
						copy(dense[p*n:][:n], b[offs[p]:])
					}
					a := randFloats(rng, m*k)
					ap := make([]float32, RoundUp(m, MR)*k)
					PackA(ap, a, k, false, 0, m, 0, k, 1)
					bp := make([]float32, RoundUp(n, NR)*k)
					PackB(bp, dense, n, false, 0, k, 0, n)
					bias := randFloats(rng, m)
					for _, relu := range []bool{false, true} {
						want := make([]float32, m*n)
						SgemmPacked(m, n, k, ap, bp, 0, want, n, bias, relu)
						got := make([]float32, m*n)
						SgemmIndirect(m, n, k, ap, b, offs, got, n, bias, relu)
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("%v relu %v: c[%d] = %g, packed %g", s, relu, i, got[i], want[i])
							}
						}
					}
				}
			})
		})
	}
}
