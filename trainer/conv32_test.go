package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"thaw/trainer/internal/kernel"
)

// kernelPaths names the float32 kernel paths this machine can run, each
// with whether it is the portable one, so a test can check both.
func kernelPaths() map[string]bool {
	paths := map[string]bool{"generic": true}
	if p := kernel.Path(); p != "generic" {
		paths[p] = false
	}
	return paths
}

// withKernel runs f on the portable kernel or on the one chosen at
// start-up.
func withKernel(t testing.TB, generic bool, f func()) {
	defer kernel.SetGeneric(generic)()
	f()
}

// TestConv2DFloat32MatchesFloat64 checks the float32 convolution (lowered
// into packed panels, bias and ReLU fused into the GEMM's output pass, one
// sample at a time) against the float64 one, whose gradients
// TestGradients checks by finite differences: output, weight, bias and
// input gradients, on every kernel path, on one goroutine and on two.
func TestConv2DFloat32MatchesFloat64(t *testing.T) {
	for name, kern := range kernelPaths() {
		for _, procs := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/procs=%d", name, procs), func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				withKernel(t, kern, func() { checkConv32(t) })
			})
		}
	}
}

func checkConv32(t *testing.T) {
	for _, c := range []struct {
		in                  []int
		out, k, stride, pad int
		relu                bool
	}{
		{[]int{2, 3, 7, 6}, 4, 3, 1, 0, false},
		{[]int{2, 3, 7, 6}, 4, 3, 2, 1, true},
		{[]int{3, 1, 28, 28}, 8, 5, 1, 2, true},
		{[]int{2, 2, 6, 8}, 2, 4, 3, 2, false},
		{[]int{40, 8, 14, 14}, 16, 5, 1, 2, true}, // enough work for two goroutines
		{[]int{2, 12, 5, 5}, 5, 5, 1, 2, true},    // In·K·K = 300: two k-blocks
	} {
		rng := rand.New(rand.NewPCG(7, 8))
		l64 := NewConv2D[float64]("c", c.in[1], c.out, c.k, c.stride, c.pad)
		l64.Reset(rng)
		l64.relu = c.relu
		l32 := NewConv2D[float32]("c", c.in[1], c.out, c.k, c.stride, c.pad)
		l32.Weight.Value = Convert[float32](l64.Weight.Value)
		l32.Bias.Value = Convert[float32](l64.Bias.Value)
		l32.relu = c.relu
		for _, p := range l64.Params() {
			p.Trainable = true
		}
		for _, p := range l32.Params() {
			p.Trainable = true
		}
		x64 := randTensor(rng, c.in...)
		x32 := Convert[float32](x64)
		y64 := l64.Forward(x64, true)
		y32 := l32.Forward(x32, true)
		// The sums have at most 300 terms of size ~1; float32 keeps ~7
		// digits, so 1e-5 of the terms' magnitude, with room to spare.
		const tol = 2e-4
		compare := func(what string, got []float32, want []float64) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%+v: %s has %d elements, want %d", c, what, len(got), len(want))
			}
			for i := range want {
				if d := math.Abs(float64(got[i]) - want[i]); d > tol*(1+math.Abs(want[i])) || math.IsNaN(d) {
					t.Fatalf("%+v: %s[%d] = %g, float64 %g", c, what, i, got[i], want[i])
				}
			}
		}
		compare("y", y32.Data, y64.Data)
		if c.relu {
			for i, v := range y32.Data {
				if v < 0 {
					t.Fatalf("%+v: y[%d] = %g below zero with the ReLU fused", c, i, v)
				}
			}
		}
		dy64 := randTensor(rng, y64.Shape...)
		if c.relu {
			// What the ReLU after the layer passes back.
			for i, v := range y64.Data {
				if !(v > 0) {
					dy64.Data[i] = 0
				}
			}
		}
		dy32 := Convert[float32](dy64)
		dx64 := l64.Backward(dy64, true)
		dx32 := l32.Backward(dy32, true)
		compare("dx", dx32.Data, dx64.Data)
		compare("dW", l32.Weight.Grad.Data, l64.Weight.Grad.Data)
		compare("db", l32.Bias.Grad.Data, l64.Bias.Grad.Data)
	}
}

// TestMaxPool2x2Float32 checks the branch-free float32 2×2 pooling against
// the general loop in float64, values and the routing of the gradient,
// with ties (a window of equal values, zeros after a ReLU) and NaN.
func TestMaxPool2x2Float32(t *testing.T) {
	for name, generic := range kernelPaths() {
		for _, shape := range [][]int{{3, 2, 6, 8}, {2, 8, 28, 28}, {2, 16, 14, 14}, {1, 3, 9, 7}} {
			t.Run(fmt.Sprint(name, shape), func(t *testing.T) {
				withKernel(t, generic, func() { checkMaxPool2x2Float32(t, shape) })
			})
		}
	}
}

func checkMaxPool2x2Float32(t *testing.T, shape []int) {
	rng := rand.New(rand.NewPCG(9, 10))
	x64 := randTensor(rng, shape...)
	for i := range x64.Data {
		switch rng.IntN(6) {
		case 0:
			x64.Data[i] = 0
		case 1:
			x64.Data[i] = 1
		}
	}
	x64.Data[5] = math.NaN()
	x64.Data[17] = math.NaN()
	x32 := Convert[float32](x64)
	l64 := NewMaxPool2D[float64](2, 2, 0)
	l32 := NewMaxPool2D[float32](2, 2, 0)
	// float64 takes forward2x2, whose branches follow the rule as written.
	want := l64.Forward(x64, true)
	got := l32.Forward(x32, true)
	for i := range want.Data {
		w, g := float64(float32(want.Data[i])), float64(got.Data[i])
		if !(w == g || math.IsNaN(w) && math.IsNaN(g)) {
			t.Fatalf("y[%d] = %g, want %g", i, g, w)
		}
	}
	if !slices.Equal(l32.argmax, l64.argmax) {
		t.Fatalf("argmax %v, want %v", l32.argmax, l64.argmax)
	}
	// Backward routes without arithmetic beyond +0 + g, so float32 and
	// float64 agree bit for bit, signed zeros included, with and without
	// the ReLU's mask.
	for _, masked := range []bool{false, true} {
		l32.masked, l64.masked = masked, masked
		g64 := randTensor(rng, want.Shape...)
		for i := range g64.Data {
			if i%5 == 0 {
				g64.Data[i] = math.Copysign(0, -1)
			}
		}
		g32 := Convert[float32](g64)
		dw := l64.Backward(g64, true)
		dg := l32.Backward(g32, true)
		for i := range dw.Data {
			if math.Float32bits(float32(dw.Data[i])) != math.Float32bits(dg.Data[i]) {
				t.Fatalf("masked %v: dx[%d] = %g, want %g", masked, i, dg.Data[i], dw.Data[i])
			}
		}
	}
}

// TestConv2DFloat32ThreadsSameBits checks that sharing a batch's samples
// between goroutines changes no bit of the output or the gradients.
func TestConv2DFloat32ThreadsSameBits(t *testing.T) {
	run := func(procs int) (y, dx, dw []float32) {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		rng := rand.New(rand.NewPCG(11, 12))
		l := NewConv2D[float32]("c", 8, 16, 5, 1, 2)
		l.Reset(rng)
		l.relu = true
		for _, p := range l.Params() {
			p.Trainable = true
		}
		x := Convert[float32](randTensor(rng, 64, 8, 14, 14))
		out := l.Forward(x, true)
		g := Convert[float32](randTensor(rng, out.Shape...))
		d := l.Backward(g, true)
		return slices.Clone(out.Data), slices.Clone(d.Data), slices.Clone(l.Weight.Grad.Data)
	}
	y1, dx1, dw1 := run(1)
	y2, dx2, dw2 := run(2)
	for _, c := range []struct {
		name     string
		one, two []float32
	}{{"y", y1, y2}, {"dx", dx1, dx2}, {"dW", dw1, dw2}} {
		for i := range c.one {
			if math.Float32bits(c.one[i]) != math.Float32bits(c.two[i]) {
				t.Fatalf("%s[%d] = %g on one goroutine, %g on two", c.name, i, c.one[i], c.two[i])
			}
		}
	}
}

// TestConv2DInPlaceSameBits checks that the stride-1 convolution computed
// in place on the padded input gives the bits of the lowered one.
func TestConv2DInPlaceSameBits(t *testing.T) {
	for name, generic := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, generic, func() {
				for _, c := range []struct{ in, out, k, pad, hw int }{{1, 8, 5, 2, 28}, {8, 16, 5, 2, 14}, {3, 5, 3, 0, 9}, {13, 6, 5, 1, 7}} {
					rng := rand.New(rand.NewPCG(15, 16))
					l := NewConv2D[float32]("c", c.in, c.out, c.k, 1, c.pad)
					l.Reset(rng)
					l.relu = c.in%2 == 1
					x := Convert[float32](randTensor(rng, 3, c.in, c.hw, c.hw))
					got := slices.Clone(l.Forward(x, false).Data)
					convInPlace = false
					want := l.Forward(x, false).Data
					convInPlace = true
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%+v: y[%d] = %g in place, %g lowered", c, i, got[i], want[i])
						}
					}
				}
			})
		})
	}
}

// TestConv2DBackwardSameBits checks that the float32 backward pass reading
// the padded input in place (kernel.TapGrad for dW, kernel.SumShifted for
// dx at stride 1) gives the bits of the lowered one, on every kernel path:
// channel counts on both sides of the 8- and 16-wide tiles, kernels shorter
// and longer than a TapGrad group, strides 1 and 2, planes over one k-block,
// and each of dW, db and dx wanted alone.
func TestConv2DBackwardSameBits(t *testing.T) {
	cases := []struct{ in, out, k, stride, pad, hw int }{
		{1, 8, 5, 1, 2, 28}, {8, 16, 5, 1, 2, 14}, {3, 5, 3, 1, 0, 9}, {13, 6, 5, 1, 1, 7},
		{2, 20, 7, 1, 3, 11}, {4, 33, 1, 1, 0, 6}, {3, 9, 3, 2, 1, 10}, {2, 17, 5, 2, 2, 13},
		{1, 4, 2, 1, 0, 17}, {5, 16, 4, 1, 3, 8},
	}
	for name, generic := range kernelPaths() {
		t.Run(name, func(t *testing.T) {
			withKernel(t, generic, func() {
				for _, c := range cases {
					for _, want := range []struct{ w, b, x bool }{{true, true, true}, {true, false, false}, {false, true, false}, {false, false, true}} {
						run := func(inPlace bool) (dw, db, dx []float32) {
							defer func(saved bool) { convInPlace = saved }(convInPlace)
							convInPlace = inPlace
							rng := rand.New(rand.NewPCG(17, 18))
							l := NewConv2D[float32]("c", c.in, c.out, c.k, c.stride, c.pad)
							l.Reset(rng)
							l.relu = c.out%2 == 0
							l.Weight.Trainable, l.Bias.Trainable = want.w, want.b
							x := Convert[float32](randTensor(rng, 3, c.in, c.hw, c.hw))
							y := l.Forward(x, true)
							g := Convert[float32](randTensor(rng, y.Shape...))
							// Exact zeros, as a ReLU's mask leaves them.
							for i := range g.Data {
								if i%3 == 0 {
									g.Data[i] = 0
								}
							}
							d := l.Backward(g, want.x)
							if want.w {
								dw = slices.Clone(l.Weight.Grad.Data)
							}
							if want.b {
								db = slices.Clone(l.Bias.Grad.Data)
							}
							if want.x {
								dx = slices.Clone(d.Data)
							}
							return
						}
						dw1, db1, dx1 := run(true)
						dw2, db2, dx2 := run(false)
						for _, r := range []struct {
							name       string
							got, lower []float32
						}{{"dW", dw1, dw2}, {"db", db1, db2}, {"dx", dx1, dx2}} {
							if len(r.got) != len(r.lower) {
								t.Fatalf("%+v %+v: %s has %d elements in place, %d lowered", c, want, r.name, len(r.got), len(r.lower))
							}
							for i := range r.got {
								if math.Float32bits(r.got[i]) != math.Float32bits(r.lower[i]) {
									t.Fatalf("%+v %+v: %s[%d] = %g in place, %g lowered", c, want, r.name, i, r.got[i], r.lower[i])
								}
							}
						}
					}
				}
			})
		})
	}
}
