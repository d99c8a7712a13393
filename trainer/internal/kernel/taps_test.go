package kernel

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// tapCase is one TapGrad call on random operands: groups bases, kb offsets
// into x, width columns.
type tapCase struct {
	groups, kb, width int
	rows              int // wanted rows of each tile, 1…TapRows
	xLen              int
}

// checkTapGrad compares TapGrad with Sgemm on the gathered operands, bit
// for bit: row (g, r), column p of the dense a is x[bases[g]+offs[p]+r].
// Sgemm sums in one k-block up to KC, so kb stays within it.
func checkTapGrad(t *testing.T, c tapCase, rng *rand.Rand) {
	t.Helper()
	x := randFloats(rng, c.xLen)
	bases := make([]int32, c.groups)
	for g := range bases {
		bases[g] = int32(rng.IntN(c.xLen/2 + 1))
	}
	offs := make([]int32, c.kb)
	for p := range offs {
		offs[p] = int32(rng.IntN(c.xLen/2 - TapRows + 1))
	}
	b := randFloats(rng, c.kb*c.width)
	m := c.groups * TapRows
	a := make([]float32, m*c.kb)
	for g, base := range bases {
		for r := 0; r < TapRows; r++ {
			for p, o := range offs {
				a[(g*TapRows+r)*c.kb+p] = x[int(base)+int(o)+r]
			}
		}
	}
	for _, acc := range []bool{false, true} {
		// With acc the tiles start from c0 as a GEMM's c with beta 1.
		c0 := randFloats(rng, m*c.width+3)
		want := slices.Clone(c0)
		beta := float32(0)
		if acc {
			beta = 1
		}
		Sgemm(false, false, m, c.width, c.kb, 1, a, c.kb, b, c.width, beta, want, c.width, nil, false)
		got := slices.Clone(c0)
		TapGrad(x, bases, offs, b, c.width, c.rows, got, acc)
		for i := range want {
			if (i/c.width)%TapRows >= c.rows {
				continue // not wanted
			}
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v acc %v: tile[%d] = %g, gathered product %g", c, acc, i, got[i], want[i])
			}
		}
	}
}

// TestTapGrad checks TapGrad against the product of the gathered operands
// on every kernel path, for both widths, one and several groups and every
// length of the sum from 1 to KC.
func TestTapGrad(t *testing.T) {
	for name, asm := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, asm, func() {
				rng := rand.New(rand.NewPCG(21, 22))
				for kb := 1; kb <= KC; kb++ {
					for _, width := range []int{8, 16} {
						checkTapGrad(t, tapCase{groups: 1 + kb%3, kb: kb, width: width, rows: 1 + kb%TapRows, xLen: 64 + rng.IntN(400)}, rng)
					}
				}
			})
		})
	}
}

// TestTapGradLong checks a sum longer than one k-block against float64 sums.
func TestTapGradLong(t *testing.T) {
	for name, asm := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, asm, func() {
				rng := rand.New(rand.NewPCG(23, 24))
				x := randFloats(rng, 2000)
				bases := []int32{0, 7, 900}
				offs := make([]int32, 784)
				for p := range offs {
					offs[p] = int32(rng.IntN(1000))
				}
				b := randFloats(rng, len(offs)*16)
				got := make([]float32, len(bases)*TapRows*16)
				TapGrad(x, bases, offs, b, 16, TapRows, got, false)
				for g, base := range bases {
					for r := 0; r < TapRows; r++ {
						for o := 0; o < 16; o++ {
							var s, mag float64
							for p, off := range offs {
								v := float64(x[int(base)+int(off)+r]) * float64(b[p*16+o])
								s += v
								mag += math.Abs(v)
							}
							if d := math.Abs(float64(got[(g*TapRows+r)*16+o]) - s); d > 1e-5*mag {
								t.Fatalf("group %d row %d column %d: %g, want %g", g, r, o, got[(g*TapRows+r)*16+o], s)
							}
						}
					}
				}
			})
		})
	}
}

func TestTapGradBounds(t *testing.T) {
	x := make([]float32, 100)
	b := make([]float32, 16)
	tiles := make([]float32, TapRows*16)
	for _, c := range []struct {
		name  string
		bases []int32
		offs  []int32
	}{
		{"past the end", []int32{0}, []int32{95}},
		{"negative", []int32{-1}, []int32{0}},
		{"base past the end", []int32{90}, []int32{5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			TapGrad(x, c.bases, c.offs, b, 16, TapRows, tiles, false)
		})
	}
}

// sumShiftedRef is SumShifted written out.
func sumShiftedRef(dst, src []float32, offs []int32) {
	for j := range dst {
		var s float32
		for _, o := range offs {
			s += src[int(o)+j]
		}
		dst[j] = s
	}
}

func checkSumShifted(t *testing.T, n, nt int, rng *rand.Rand) {
	t.Helper()
	src := randFloats(rng, n+300)
	// Some exact zeros and negative zeros, whose sums must match too.
	for i := range src {
		switch rng.IntN(8) {
		case 0:
			src[i] = 0
		case 1:
			src[i] = float32(math.Copysign(0, -1))
		}
	}
	offs := make([]int32, nt)
	for i := range offs {
		offs[i] = int32(rng.IntN(301))
	}
	want := make([]float32, n)
	sumShiftedRef(want, src, offs)
	got := randFloats(rng, n+5)
	tail := append([]float32(nil), got[n:]...)
	SumShifted(got[:n], src, offs)
	for j := range want {
		if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
			t.Fatalf("n %d, %d offsets: dst[%d] = %g, want %g", n, nt, j, got[j], want[j])
		}
	}
	for j, v := range tail {
		if got[n+j] != v {
			t.Fatalf("n %d: wrote dst[%d], past its end", n, n+j)
		}
	}
}

// TestSumShifted checks every length from 0 to 100 (each tail of the
// 32- and 8-wide blocks) and 0 to 30 offsets, bit for bit, on every path.
func TestSumShifted(t *testing.T) {
	for name, asm := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, asm, func() {
				rng := rand.New(rand.NewPCG(25, 26))
				for n := 0; n <= 100; n++ {
					for _, nt := range []int{0, 1, 2, 5, 25, 30} {
						checkSumShifted(t, n, nt, rng)
					}
				}
			})
		})
	}
}

func TestSumShiftedBounds(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	SumShifted(make([]float32, 10), make([]float32, 20), []int32{0, 11})
}

func FuzzTapGrad(f *testing.F) {
	f.Add(uint8(1), uint16(25), false, uint64(1))
	f.Add(uint8(3), uint16(196), true, uint64(2))
	f.Fuzz(func(t *testing.T, groups uint8, kb uint16, wide bool, seed uint64) {
		c := tapCase{groups: 1 + int(groups%8), kb: 1 + int(kb)%KC, width: 8, rows: 1 + int(groups/8)%TapRows}
		if wide {
			c.width = 16
		}
		rng := rand.New(rand.NewPCG(seed, 27))
		c.xLen = 2*TapRows + rng.IntN(1000)
		for name, asm := range kernelPaths() {
			t.Run(name, func(t *testing.T) {
				withKernel(t, asm, func() { checkTapGrad(t, c, rand.New(rand.NewPCG(seed, 28))) })
			})
		}
	})
}

func FuzzSumShifted(f *testing.F) {
	f.Add(uint16(248), uint8(25), uint64(1))
	f.Fuzz(func(t *testing.T, n uint16, nt uint8, seed uint64) {
		for name, asm := range kernelPaths() {
			t.Run(name, func(t *testing.T) {
				withKernel(t, asm, func() { checkSumShifted(t, int(n%2000), int(nt), rand.New(rand.NewPCG(seed, 29))) })
			})
		}
	})
}

func checkTransposeSum(t *testing.T, rows, plane, width int, withSum bool, rng *rand.Rand) {
	t.Helper()
	src := randFloats(rng, rows*plane)
	for i := range src {
		if rng.IntN(10) == 0 {
			src[i] = float32(math.Copysign(0, -1))
		}
	}
	want := make([]float32, plane*width)
	var wantSum, gotSum []float64
	if withSum {
		wantSum = make([]float64, rows)
		for r := range wantSum {
			wantSum[r] = rng.NormFloat64()
		}
		gotSum = slices.Clone(wantSum)
	}
	for r := 0; r < rows; r++ {
		for i := 0; i < plane; i++ {
			want[i*width+r] = src[r*plane+i]
			if withSum {
				wantSum[r] += float64(src[r*plane+i])
			}
		}
	}
	got := randFloats(rng, plane*width)
	TransposeSum(got, src, rows, plane, width, gotSum)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("rows %d plane %d width %d: dst[%d] = %g, want %g", rows, plane, width, i, got[i], want[i])
		}
	}
	for r := range wantSum {
		if math.Float64bits(gotSum[r]) != math.Float64bits(wantSum[r]) {
			t.Fatalf("rows %d plane %d width %d: sum[%d] = %g, want %g", rows, plane, width, r, gotSum[r], wantSum[r])
		}
	}
}

// TestTransposeSum checks every row count up to the width, planes from 1
// to 70 (each tail of the 8×8 blocks), with and without sums, bit for bit,
// on every path.
func TestTransposeSum(t *testing.T) {
	for name, asm := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, asm, func() {
				rng := rand.New(rand.NewPCG(35, 36))
				for _, width := range []int{8, 16} {
					for rows := 1; rows <= width; rows++ {
						for plane := 1; plane <= 70; plane++ {
							checkTransposeSum(t, rows, plane, width, plane%2 == 0, rng)
						}
					}
				}
				checkTransposeSum(t, 16, 784, 16, true, rng)
			})
		})
	}
}

func FuzzTransposeSum(f *testing.F) {
	f.Add(uint8(16), uint16(196), true, true, uint64(1))
	f.Fuzz(func(t *testing.T, rows uint8, plane uint16, wide, withSum bool, seed uint64) {
		width := 8
		if wide {
			width = 16
		}
		for name, asm := range kernelPaths() {
			t.Run(name, func(t *testing.T) {
				withKernel(t, asm, func() {
					checkTransposeSum(t, 1+int(rows)%width, 1+int(plane)%1000, width, withSum, rand.New(rand.NewPCG(seed, 37)))
				})
			})
		}
	})
}
