package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func randTensor(rng *rand.Rand, shape ...int) *Tensor[float64] {
	x := NewTensor[float64](shape...)
	for i := range x.Data {
		x.Data[i] = rng.NormFloat64()
	}
	return x
}

func TestConv2DMatchesDirectConvolution(t *testing.T) {
	// Summation order differs between the GEMM and the direct loop; at most
	// 75 products of N(0,1)·U(-1,1) terms in float64 agree to ~1e-14.
	const tol = 1e-12
	for _, c := range []struct {
		in                  []int
		out, k, stride, pad int
	}{
		{[]int{2, 3, 7, 6}, 4, 3, 1, 0},
		{[]int{2, 3, 7, 6}, 4, 3, 2, 1},
		{[]int{1, 2, 9, 5}, 3, 5, 1, 2},
		{[]int{3, 1, 28, 28}, 8, 5, 1, 0},
		{[]int{2, 2, 6, 8}, 2, 4, 3, 2},
		{[]int{5, 2, 6, 5}, 3, 3, 1, 1}, // lowered in chunks of two samples
	} {
		rng := rand.New(rand.NewPCG(5, 6))
		l := NewConv2D[float64]("c", c.in[1], c.out, c.k, c.stride, c.pad)
		if c.in[0] == 5 {
			l.maxCol = 2 * c.in[1] * c.k * c.k * c.in[2] * c.in[3]
		}
		l.Reset(rng)
		x := randTensor(rng, c.in...)
		got := l.Forward(x, true)
		n, ci, h, w := c.in[0], c.in[1], c.in[2], c.in[3]
		oh, ow := (h+2*c.pad-c.k)/c.stride+1, (w+2*c.pad-c.k)/c.stride+1
		if want := []int{n, c.out, oh, ow}; !slices.Equal(got.Shape, want) {
			t.Fatalf("%+v: output shape %v, want %v", c, got.Shape, want)
		}
		wt, b := l.Weight.Value.Data, l.Bias.Value.Data
		for i := range n {
			for o := range c.out {
				for oy := range oh {
					for ox := range ow {
						s := b[o]
						for cc := range ci {
							for ki := range c.k {
								for kj := range c.k {
									iy, ix := oy*c.stride+ki-c.pad, ox*c.stride+kj-c.pad
									if iy < 0 || iy >= h || ix < 0 || ix >= w {
										continue
									}
									s += wt[((o*ci+cc)*c.k+ki)*c.k+kj] * x.Data[((i*ci+cc)*h+iy)*w+ix]
								}
							}
						}
						if g := got.Data[((i*c.out+o)*oh+oy)*ow+ox]; math.Abs(g-s) > tol {
							t.Fatalf("%+v: y[%d,%d,%d,%d] = %v, want %v", c, i, o, oy, ox, g, s)
						}
					}
				}
			}
		}
	}
}

func TestOutputSizes(t *testing.T) {
	// Expected sizes are ⌊(size + 2p − k)/s⌋ + 1, worked by hand and checked
	// against torch.nn.Conv2d / MaxPool2d's documented formula.
	for _, c := range []struct {
		name  string
		layer Layer[float64]
		in    []int
		want  []int
	}{
		{"conv k5 28x28", NewConv2D[float64]("c", 1, 8, 5, 1, 0), []int{1, 28, 28}, []int{8, 24, 24}},
		{"conv k3 s2 p1 7x6", NewConv2D[float64]("c", 3, 4, 3, 2, 1), []int{3, 7, 6}, []int{4, 4, 3}},
		{"conv k4 s3 p2 8x7", NewConv2D[float64]("c", 2, 2, 4, 3, 2), []int{2, 8, 7}, []int{2, 3, 3}},
		{"conv k3 5x3 (kernel fills width)", NewConv2D[float64]("c", 1, 1, 3, 1, 0), []int{1, 5, 3}, []int{1, 3, 1}},
		{"pool k2 24x24", NewMaxPool2D[float64](2, 0, 0), []int{8, 24, 24}, []int{8, 12, 12}},
		{"pool k2 5x7 (floor)", NewMaxPool2D[float64](2, 0, 0), []int{3, 5, 7}, []int{3, 2, 3}},
		{"pool k3 s2 p1 7x7", NewMaxPool2D[float64](3, 2, 1), []int{1, 7, 7}, []int{1, 4, 4}},
		{"pool k3 s1 5x6", NewMaxPool2D[float64](3, 1, 0), []int{2, 5, 6}, []int{2, 3, 4}},
		{"flatten", &Flatten[float64]{}, []int{16, 5, 3}, []int{240}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.layer.OutShape(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("OutShape(%v) = %v, want %v", c.in, got, c.want)
			}
			y := c.layer.Forward(NewTensor[float64](append([]int{2}, c.in...)...), false)
			if want := append([]int{2}, c.want...); !slices.Equal(y.Shape, want) {
				t.Errorf("Forward shape %v, want %v", y.Shape, want)
			}
		})
	}
}

func TestOutShapeErrors(t *testing.T) {
	for _, c := range []struct {
		layer Layer[float64]
		in    []int
		want  string
	}{
		{NewConv2D[float64]("features.0", 3, 8, 3, 1, 0), []int{1, 28, 28}, "want [3 H W]"},
		{NewConv2D[float64]("features.0", 1, 8, 3, 1, 0), []int{784}, "features.0"},
		{NewConv2D[float64]("features.0", 1, 8, 5, 1, 1), []int{1, 2, 9}, "smaller than kernel_size 5"},
		{NewMaxPool2D[float64](2, 0, 0), []int{10}, "want [C H W]"},
		{NewMaxPool2D[float64](3, 0, 0), []int{1, 2, 2}, "smaller than kernel_size 3"},
		{NewBatchNorm1D[float64]("fc.bn", 16, 0, 0), []int{8}, "want [16] or [16 L]"},
		{NewBatchNorm2D[float64]("bn", 4, 0, 0), []int{8, 3, 3}, "want [4 H W]"},
		{NewBatchNorm2D[float64]("bn", 4, 0, 0), []int{4}, "num_features 4"},
	} {
		_, err := c.layer.OutShape(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s OutShape(%v): error %v, want one containing %q", c.layer.Kind(), c.in, err, c.want)
		}
	}
}

func TestNewLayerErrors(t *testing.T) {
	for _, c := range []struct {
		lc   LayerConfig
		in   []int
		want string
	}{
		{LayerConfig{Type: "conv2d", Name: "f.0", InChannels: 1, OutChannels: 0, KernelSize: 3}, []int{1, 8, 8}, "f.0: out_channels 0"},
		{LayerConfig{Type: "conv2d", Name: "f.0", InChannels: 1, OutChannels: 2}, []int{1, 8, 8}, "f.0: kernel_size 0"},
		{LayerConfig{Type: "conv2d", Name: "f.0", InChannels: 1, OutChannels: 2, KernelSize: 3, Stride: -1}, []int{1, 8, 8}, "f.0: stride -1"},
		{LayerConfig{Type: "conv2d", Name: "f.0", InChannels: 1, OutChannels: 2, KernelSize: 3, Padding: -2}, []int{1, 8, 8}, "f.0: padding -2"},
		{LayerConfig{Type: "conv2d", InChannels: 1, OutChannels: 2, KernelSize: 3}, []int{1, 8, 8}, "needs a name"},
		{LayerConfig{Type: "maxpool2d", Name: "f.2", KernelSize: 2, Padding: 2}, []int{1, 8, 8}, "f.2: padding 2"},
		{LayerConfig{Type: "maxpool2d"}, []int{1, 8, 8}, "maxpool2d: kernel_size 0"},
		{LayerConfig{Type: "dropout", Name: "d", P: 1.5}, []int{4}, "d: p 1.5"},
		{LayerConfig{Type: "batchnorm1d", Name: "bn"}, []int{4}, "bn: num_features 0"},
		{LayerConfig{Type: "batchnorm2d", Name: "bn", NumFeatures: 4, Momentum: 2}, []int{4, 2, 2}, "bn: momentum 2"},
		{LayerConfig{Type: "batchnorm2d", Name: "bn", NumFeatures: 4, Eps: -1}, []int{4, 2, 2}, "bn: eps -1"},
	} {
		_, err := newLayer[float64](c.lc, c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("newLayer(%+v): error %v, want one containing %q", c.lc, err, c.want)
		}
	}
}

func TestBatchNormRunningStats(t *testing.T) {
	const momentum = 0.2
	// Channel 0 holds 1, 2, 3, 4, 6, 8 across the batch: mean 4,
	// Σ(x−mean)² = 9+4+1+0+4+16 = 34, biased variance 34/6, unbiased 34/5 =
	// 6.8. Channel 1 is constant 5: mean 5, variance 0.
	x := &Tensor[float64]{Shape: []int{3, 2, 1, 2}, Data: []float64{
		1, 2, 5, 5,
		3, 4, 5, 5,
		6, 8, 5, 5,
	}}
	l := NewBatchNorm2D[float64]("bn", 2, 0, momentum)
	y := l.Forward(x, true)
	wantMean := []float64{(1-momentum)*0 + momentum*4, (1-momentum)*0 + momentum*5}
	wantVar := []float64{(1-momentum)*1 + momentum*6.8, (1-momentum)*1 + momentum*0}
	for c := range 2 {
		if got := l.RunningMean.Value.Data[c]; math.Abs(got-wantMean[c]) > 1e-15 {
			t.Errorf("running_mean[%d] = %v, want %v", c, got, wantMean[c])
		}
		if got := l.RunningVar.Value.Data[c]; math.Abs(got-wantVar[c]) > 1e-15 {
			t.Errorf("running_var[%d] = %v, want %v", c, got, wantVar[c])
		}
	}
	if got := l.NumBatchesTracked.Value.Data[0]; got != 1 {
		t.Errorf("num_batches_tracked = %v, want 1", got)
	}
	// The output uses the biased variance 34/6.
	if got, want := y.Data[0], (1-4)/math.Sqrt(34.0/6+1e-5); math.Abs(got-want) > 1e-12 {
		t.Errorf("y[0] = %v, want %v", got, want)
	}
	l.Forward(x, true)
	if got := l.NumBatchesTracked.Value.Data[0]; got != 2 {
		t.Errorf("after two batches num_batches_tracked = %v, want 2", got)
	}
	// Reset restores the buffers too.
	l.Reset(nil)
	if l.RunningMean.Value.Data[0] != 0 || l.RunningVar.Value.Data[0] != 1 || l.NumBatchesTracked.Value.Data[0] != 0 {
		t.Errorf("after Reset: running_mean %v, running_var %v, num_batches_tracked %v", l.RunningMean.Value.Data, l.RunningVar.Value.Data, l.NumBatchesTracked.Value.Data)
	}
	for _, p := range l.Params() {
		if p.Name == "bn.num_batches_tracked" && (!p.Int64 || !p.Buffer || len(p.Value.Shape) != 0 || p.Value.Len() != 1) {
			t.Errorf("num_batches_tracked: %+v, want a scalar int64 buffer", p)
		}
	}
}

func TestBatchNormEvalUsesRunningStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	l := NewBatchNorm1D[float64]("bn", 3, 1e-3, 0)
	copy(l.Weight.Value.Data, []float64{2, 0.5, -1})
	copy(l.Bias.Value.Data, []float64{0.1, 0, 3})
	copy(l.RunningMean.Value.Data, []float64{1, -2, 0.5})
	copy(l.RunningVar.Value.Data, []float64{4, 0.25, 9})
	x := randTensor(rng, 5, 3)
	y := l.Forward(x, false)
	for i := range 5 {
		for c := range 3 {
			want := l.Weight.Value.Data[c]*(x.Data[i*3+c]-l.RunningMean.Value.Data[c])/math.Sqrt(l.RunningVar.Value.Data[c]+1e-3) + l.Bias.Value.Data[c]
			if got := y.Data[i*3+c]; math.Abs(got-want) > 1e-12 {
				t.Errorf("y[%d,%d] = %v, want %v", i, c, got, want)
			}
		}
	}
	if got := l.RunningMean.Value.Data; !slices.Equal(got, []float64{1, -2, 0.5}) {
		t.Errorf("eval changed running_mean to %v", got)
	}
	if got := l.NumBatchesTracked.Value.Data[0]; got != 0 {
		t.Errorf("eval changed num_batches_tracked to %v", got)
	}
}

func TestDropout(t *testing.T) {
	const p = 0.3
	rng := rand.New(rand.NewPCG(11, 12))
	x := NewTensor[float64](100, 100)
	for i := range x.Data {
		x.Data[i] = 1 + rng.Float64()
	}
	l := NewDropout[float64](p)

	if y := l.Forward(x, false); !slices.Equal(y.Data, x.Data) {
		t.Error("eval: output differs from input")
	}

	l.SetRand(rand.New(rand.NewPCG(1, 1)))
	y := l.Forward(x, true).Clone()
	zeros := 0
	for i, v := range y.Data {
		switch {
		case v == 0:
			zeros++
		case math.Abs(v-x.Data[i]/(1-p)) > 1e-12:
			t.Fatalf("y[%d] = %v, want 0 or %v", i, v, x.Data[i]/(1-p))
		}
	}
	// 10,000 Bernoulli(0.3) draws: standard deviation √(n·p·(1−p)) ≈ 46, so
	// ±200 is over four standard deviations.
	if n := len(y.Data); math.Abs(float64(zeros)-p*float64(n)) > 200 {
		t.Errorf("zeroed %d of %d, want about %v", zeros, n, p*float64(n))
	}

	// The mask is a function of the stream alone.
	l.SetRand(rand.New(rand.NewPCG(1, 1)))
	if again := l.Forward(x, true); !slices.Equal(again.Data, y.Data) {
		t.Error("same stream gave a different mask")
	}

	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "SetRand") {
			t.Errorf("training without a stream: recovered %v, want a panic naming SetRand", r)
		}
	}()
	NewDropout[float64](0.5).Forward(x, true)
}

func TestMaxPoolFirstMaxWinsTies(t *testing.T) {
	// A constant window: PyTorch gives the gradient to the first element.
	l := NewMaxPool2D[float64](2, 0, 0)
	x := &Tensor[float64]{Shape: []int{1, 1, 2, 2}, Data: []float64{3, 3, 3, 3}}
	l.Forward(x, true)
	dx := l.Backward(&Tensor[float64]{Shape: []int{1, 1, 1, 1}, Data: []float64{1}}, true)
	if want := []float64{1, 0, 0, 0}; !slices.Equal(dx.Data, want) {
		t.Errorf("dx = %v, want %v", dx.Data, want)
	}
}

// TestReLUPoolFusionSameBits checks that a max-pool applying the ReLU's mask
// in its own Backward (fuseReLUs) gives the gradients of the two layers
// run one after the other, bit for bit, in float32 and float64, with
// windows that overlap (stride 1) and windows that do not.
func TestReLUPoolFusionSameBits(t *testing.T) {
	for _, stride := range []int{2, 1} {
		t.Run(fmt.Sprint("stride ", stride), func(t *testing.T) {
			cfg := benchCNN()
			cfg.Blocks[0].Layers[2].Stride = stride
			if stride == 1 {
				cfg.Blocks[1].Layers[0].Padding = 0 // pool 27×27, conv 23×23, pool 11×11
				cfg.Blocks[2].Layers[0].InFeatures = 16 * 11 * 11
			}
			checkReLUPoolFusion[float32](t, cfg)
			checkReLUPoolFusion[float64](t, cfg)
		})
	}
}

func checkReLUPoolFusion[T Float](t *testing.T, cfg *Config) {
	t.Helper()
	run := func(fused bool) []*Param[T] {
		m, err := New[T](cfg, rand.New(rand.NewPCG(41, 42)))
		if err != nil {
			t.Fatal(err)
		}
		fusedAny := false
		for _, b := range m.Blocks {
			for _, l := range b.Layers {
				switch l := l.(type) {
				case *MaxPool2D[T]:
					fusedAny = fusedAny || l.masked
					l.masked = l.masked && fused
				case *ReLU[T]:
					l.pooled = l.pooled && fused
				}
			}
		}
		if !fusedAny {
			t.Fatal("no max-pool takes over a ReLU's mask")
		}
		rng := rand.New(rand.NewPCG(43, 44))
		x := Convert[T](randTensor(rng, 5, 1, 28, 28))
		labels := []int{1, 2, 3, 4, 5}
		ce := &CrossEntropy[T]{}
		ce.Forward(m.Forward(x, true), labels)
		m.Backward(ce.Backward())
		return m.Params()
	}
	fused, plain := run(true), run(false)
	for i, p := range fused {
		for j, v := range p.Grad.Data {
			if w := plain[i].Grad.Data[j]; math.Float64bits(float64(v)) != math.Float64bits(float64(w)) {
				t.Fatalf("%T: %s grad[%d] = %g fused, %g unfused", v, p.Name, j, v, w)
			}
		}
	}
}
