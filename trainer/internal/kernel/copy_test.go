package kernel

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func checkCopyRows(t *testing.T, rows, cols, ldd, lds int, rng *rand.Rand) {
	t.Helper()
	src := randFloats(rng, (rows-1)*lds+cols+rng.IntN(3))
	dst := randFloats(rng, (rows-1)*ldd+cols+rng.IntN(3))
	want := slices.Clone(dst)
	for r := 0; r < rows; r++ {
		copy(want[r*ldd:][:cols], src[r*lds:][:cols])
	}
	CopyRows(dst, ldd, src, lds, rows, cols)
	if !slices.Equal(dst, want) {
		t.Fatalf("%d rows of %d, strides %d and %d: got %v, want %v", rows, cols, ldd, lds, dst, want)
	}
}

// TestCopyRows checks every row length from 1 to 40 (each tail of the
// eight-wide moves) with strides equal to and longer than the rows, and
// that nothing between or after the rows is written, on every path.
func TestCopyRows(t *testing.T) {
	for name, asm := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, asm, func() {
				rng := rand.New(rand.NewPCG(41, 42))
				for cols := 1; cols <= 40; cols++ {
					for rows := 1; rows <= 4; rows++ {
						checkCopyRows(t, rows, cols, cols+rng.IntN(5), cols+rng.IntN(5), rng)
					}
				}
			})
		})
	}
}

func TestCopyRowsBounds(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	CopyRows(make([]float32, 20), 10, make([]float32, 30), 10, 3, 10)
}

func FuzzCopyRows(f *testing.F) {
	f.Add(uint8(14), uint8(28), uint8(4), uint8(2), uint64(1))
	f.Fuzz(func(t *testing.T, rows, cols, padD, padS uint8, seed uint64) {
		r, c := 1+int(rows%32), 1+int(cols%100)
		for name, asm := range kernelPaths() {
			t.Run(name, func(t *testing.T) {
				withKernel(t, asm, func() {
					checkCopyRows(t, r, c, c+int(padD%16), c+int(padS%16), rand.New(rand.NewPCG(seed, 43)))
				})
			})
		}
	})
}
