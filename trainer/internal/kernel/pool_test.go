package kernel

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// maxPool2x2Ref is MaxPool2x2 written out with branches, the rule as
// stated.
func maxPool2x2Ref(x, y []float32, argmax []int32, planes, h, w, oh, ow int) {
	for pl := 0; pl < planes; pl++ {
		for oy := 0; oy < oh; oy++ {
			for ox := 0; ox < ow; ox++ {
				at := 2*oy*w + 2*ox
				best := x[pl*h*w+at]
				for _, i := range []int{at + 1, at + w, at + w + 1} {
					if v := x[pl*h*w+i]; v > best || v != v {
						best, at = v, i
					}
				}
				y[pl*oh*ow+oy*ow+ox] = best
				argmax[pl*oh*ow+oy*ow+ox] = int32(at)
			}
		}
	}
}

func checkMaxPool2x2(t *testing.T, planes, h, w int, rng *rand.Rand) {
	t.Helper()
	oh, ow := h/2, w/2
	x := randFloats(rng, planes*h*w+rng.IntN(20))
	for i := range x {
		switch rng.IntN(12) {
		case 0:
			x[i] = 0
		case 1:
			x[i] = float32(math.Copysign(0, -1))
		case 2:
			x[i] = 1
		case 3:
			x[i] = float32(math.NaN())
		case 4:
			x[i] = float32(math.Inf(-1))
		}
	}
	n := planes * oh * ow
	want, wantArg := make([]float32, n), make([]int32, n)
	maxPool2x2Ref(x, want, wantArg, planes, h, w, oh, ow)
	// Room past the result, which must stay untouched.
	got, gotArg := randFloats(rng, n+9), make([]int32, n+9)
	for i := range gotArg {
		gotArg[i] = -7
	}
	tail := slices.Clone(got[n:])
	MaxPool2x2(x, got, gotArg, planes, h, w, oh, ow)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) || gotArg[i] != wantArg[i] {
			t.Fatalf("%d planes %dx%d: y[%d] = %g at %d, want %g at %d", planes, h, w, i, got[i], gotArg[i], want[i], wantArg[i])
		}
	}
	for i, v := range tail {
		if math.Float32bits(got[n+i]) != math.Float32bits(v) || gotArg[n+i] != -7 {
			t.Fatalf("%d planes %dx%d: wrote y[%d], past the result", planes, h, w, n+i)
		}
	}
}

// TestMaxPool2x2 checks every plane size from 2×2 to 40×40, odd ones
// included, with ties, signed zeros, NaN and −Inf, bit for bit and index
// for index, on every kernel path.
func TestMaxPool2x2(t *testing.T) {
	for name, asm := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, asm, func() {
				rng := rand.New(rand.NewPCG(31, 32))
				for h := 2; h <= 40; h++ {
					for w := 2; w <= 40; w++ {
						checkMaxPool2x2(t, 1+rng.IntN(4), h, w, rng)
					}
				}
			})
		})
	}
}

func FuzzMaxPool2x2(f *testing.F) {
	f.Add(uint8(3), uint8(28), uint8(28), uint64(1))
	f.Add(uint8(1), uint8(15), uint8(3), uint64(2))
	f.Fuzz(func(t *testing.T, planes, h, w uint8, seed uint64) {
		for name, asm := range kernelPaths() {
			t.Run(name, func(t *testing.T) {
				withKernel(t, asm, func() {
					checkMaxPool2x2(t, 1+int(planes%6), 2+int(h%60), 2+int(w%60), rand.New(rand.NewPCG(seed, 33)))
				})
			})
		}
	})
}

// BenchmarkMaxPool2x2 pools conv1's output of digits-cnn for one
// evaluation batch (256 samples of 8 planes of 28×28), on the kernel in
// use and on the generic loop:
//
//	go test -run XXX -bench MaxPool2x2 ./trainer/internal/kernel/
func BenchmarkMaxPool2x2(b *testing.B) {
	planes, h, w := 256*8, 28, 28
	x := randFloats(rand.New(rand.NewPCG(1, 1)), planes*h*w)
	y := make([]float32, planes*(h/2)*(w/2))
	arg := make([]int32, len(y))
	for name, asm := range kernelPaths() {
		b.Run(name, func(b *testing.B) {
			withKernel(b, asm, func() {
				b.SetBytes(int64(len(x) * 4))
				for b.Loop() {
					MaxPool2x2(x, y, arg, planes, h, w, h/2, w/2)
				}
			})
		})
	}
}
