package trainer

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// BatchNorm normalises each channel (feature) of its input with batch
// statistics while training and with running statistics in evaluation,
// then applies a learned per-channel affine map, as torch.nn.BatchNorm1d
// (input [N, C] or [N, C, L]) and torch.nn.BatchNorm2d (input [N, C, H, W])
// with affine and track_running_stats set (Ioffe and Szegedy 2015, "Batch
// Normalization").
//
// In training mode the running statistics move towards the batch's by
// Momentum: running = (1−Momentum)·running + Momentum·batch, with the
// unbiased variance (divisor M−1 for M values per channel) as PyTorch uses,
// while the normalisation itself uses the biased one; NumBatchesTracked
// counts the updates.
type BatchNorm[T Float] struct {
	Features int
	Eps      float64
	Momentum float64
	spatial  bool // BatchNorm2d

	Weight            *Param[T] // γ, [Features]
	Bias              *Param[T] // β, [Features]
	RunningMean       *Param[T] // buffer, [Features]
	RunningVar        *Param[T] // buffer, [Features]
	NumBatchesTracked *Param[T] // buffer, shape [], stored as int64

	train  bool      // mode of the last Forward
	shape  []int     // of the last input
	invStd []float64 // per channel, of the last Forward
	xhat   []T       // normalised input of the last Forward
	y, dx  *Tensor[T]
}

// NewBatchNorm1D returns a BatchNorm1d over features channels with
// parameters and buffers named prefix+".weight", ".bias", ".running_mean",
// ".running_var" and ".num_batches_tracked". Zero eps means 1e-5 and zero
// momentum 0.1, PyTorch's defaults. The layer starts in its reset state
// (γ = 1, β = 0, running mean 0, running variance 1). It panics if features
// is not positive or eps or momentum is negative.
func NewBatchNorm1D[T Float](prefix string, features int, eps, momentum float64) *BatchNorm[T] {
	return newBatchNorm[T](prefix, features, eps, momentum, false)
}

// NewBatchNorm2D is NewBatchNorm1D for NCHW input, as torch.nn.BatchNorm2d.
func NewBatchNorm2D[T Float](prefix string, features int, eps, momentum float64) *BatchNorm[T] {
	return newBatchNorm[T](prefix, features, eps, momentum, true)
}

func newBatchNorm[T Float](prefix string, features int, eps, momentum float64, spatial bool) *BatchNorm[T] {
	if features <= 0 || eps < 0 || momentum < 0 || momentum > 1 {
		panic(fmt.Sprintf("trainer: batchnorm %s: num_features %d, eps %v, momentum %v", prefix, features, eps, momentum))
	}
	if eps == 0 {
		eps = 1e-5
	}
	if momentum == 0 {
		momentum = 0.1
	}
	l := &BatchNorm[T]{
		Features: features, Eps: eps, Momentum: momentum, spatial: spatial,
		Weight:            &Param[T]{Name: prefix + ".weight", Value: NewTensor[T](features), NoDecay: true},
		Bias:              &Param[T]{Name: prefix + ".bias", Value: NewTensor[T](features), NoDecay: true},
		RunningMean:       &Param[T]{Name: prefix + ".running_mean", Value: NewTensor[T](features), Buffer: true},
		RunningVar:        &Param[T]{Name: prefix + ".running_var", Value: NewTensor[T](features), Buffer: true},
		NumBatchesTracked: &Param[T]{Name: prefix + ".num_batches_tracked", Value: NewTensor[T](), Buffer: true, Int64: true},
	}
	l.Reset(nil)
	return l
}

func (l *BatchNorm[T]) isBatchNorm() {}

func (l *BatchNorm[T]) Kind() string {
	if l.spatial {
		return "batchnorm2d"
	}
	return "batchnorm1d"
}

func (l *BatchNorm[T]) Params() []*Param[T] {
	return []*Param[T]{l.Weight, l.Bias, l.RunningMean, l.RunningVar, l.NumBatchesTracked}
}

func (l *BatchNorm[T]) OutShape(in []int) ([]int, error) {
	name := trimSuffix(l.Weight.Name)
	if l.spatial {
		if len(in) != 3 || in[0] != l.Features {
			return nil, fmt.Errorf("batchnorm2d %s: input shape %v, want [%d H W] (num_features %d)", name, in, l.Features, l.Features)
		}
	} else if (len(in) != 1 && len(in) != 2) || in[0] != l.Features {
		return nil, fmt.Errorf("batchnorm1d %s: input shape %v, want [%d] or [%d L] (num_features %d)", name, in, l.Features, l.Features, l.Features)
	}
	return in, nil
}

// Reset restores PyTorch's initial state: γ = 1, β = 0, running mean 0,
// running variance 1, no batches tracked. It draws nothing from rng, which
// may be nil.
func (l *BatchNorm[T]) Reset(*rand.Rand) {
	fill(l.Weight.Value.Data, 1)
	fill(l.Bias.Value.Data, 0)
	fill(l.RunningMean.Value.Data, 0)
	fill(l.RunningVar.Value.Data, 1)
	fill(l.NumBatchesTracked.Value.Data, 0)
}

func fill[T Float](x []T, v T) {
	for i := range x {
		x[i] = v
	}
}

// Forward normalises x. In training mode it uses the batch's statistics
// and updates the running ones; it panics if a channel has a single value
// (batch of one without spatial extent), where the unbiased variance is
// undefined, as PyTorch raises. It panics if x's channels differ from
// Features.
func (l *BatchNorm[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	name := trimSuffix(l.Weight.Name)
	if len(x.Shape) < 2 || x.Shape[1] != l.Features || (l.spatial && len(x.Shape) != 4) {
		panic(fmt.Sprintf("trainer: %s %s: input shape %v, want [N %d ...]", l.Kind(), name, x.Shape, l.Features))
	}
	n, c := x.Shape[0], l.Features
	inner := x.Len() / max(n*c, 1)
	m := n * inner
	if train && m < 2 {
		panic(fmt.Sprintf("trainer: %s %s: training needs more than one value per channel, input shape %v", l.Kind(), name, x.Shape))
	}
	l.train = train
	l.shape = append(l.shape[:0], x.Shape...)
	if cap(l.invStd) < c {
		l.invStd = make([]float64, c)
	}
	l.invStd = l.invStd[:c]
	l.xhat = grow(l.xhat, x.Len())
	y := ensure(&l.y, x.Shape...)
	for ch := 0; ch < c; ch++ {
		var mean, invStd float64
		if train {
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range x.Data[(i*c+ch)*inner:][:inner] {
					s += float64(v)
				}
			}
			mean = s / float64(m)
			// Second pass for the variance: exact where Σx² − M·mean²
			// would cancel.
			var ss float64
			for i := 0; i < n; i++ {
				for _, v := range x.Data[(i*c+ch)*inner:][:inner] {
					d := float64(v) - mean
					ss += d * d
				}
			}
			invStd = 1 / math.Sqrt(ss/float64(m)+l.Eps)
			mom := l.Momentum
			rm, rv := &l.RunningMean.Value.Data[ch], &l.RunningVar.Value.Data[ch]
			*rm = T((1-mom)*float64(*rm) + mom*mean)
			*rv = T((1-mom)*float64(*rv) + mom*ss/float64(m-1))
		} else {
			mean = float64(l.RunningMean.Value.Data[ch])
			invStd = 1 / math.Sqrt(float64(l.RunningVar.Value.Data[ch])+l.Eps)
		}
		l.invStd[ch] = invStd
		g, b := float64(l.Weight.Value.Data[ch]), float64(l.Bias.Value.Data[ch])
		for i := 0; i < n; i++ {
			off := (i*c + ch) * inner
			xs, hs, ys := x.Data[off:][:inner], l.xhat[off:][:inner], y.Data[off:][:inner]
			for j, v := range xs {
				h := (float64(v) - mean) * invStd
				hs[j] = T(h)
				ys[j] = T(g*h + b)
			}
		}
	}
	if train {
		l.NumBatchesTracked.Value.Data[0]++
	}
	return y
}

// Backward: dγ = Σ dy·x̂ and dβ = Σ dy per channel. In training mode, where
// the statistics depend on x,
// dx = γ·invstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M);
// in evaluation mode the layer is a per-channel affine map and
// dx = γ·invstd·dy.
func (l *BatchNorm[T]) Backward(dy *Tensor[T], needDX bool) *Tensor[T] {
	if !sameShape(dy.Shape, l.shape) {
		panic(fmt.Sprintf("trainer: %s %s: gradient shape %v, want %v", l.Kind(), trimSuffix(l.Weight.Name), dy.Shape, l.shape))
	}
	if !needDX && !l.Weight.Trainable && !l.Bias.Trainable {
		return nil
	}
	n, c := l.shape[0], l.Features
	inner := dy.Len() / max(n*c, 1)
	m := float64(n * inner)
	var dg, db []T
	if l.Weight.Trainable {
		dg = l.Weight.grad().Data
	}
	if l.Bias.Trainable {
		db = l.Bias.grad().Data
	}
	var dx *Tensor[T]
	if needDX {
		dx = ensure(&l.dx, l.shape...)
	}
	for ch := 0; ch < c; ch++ {
		var sdy, sdyh float64
		for i := 0; i < n; i++ {
			off := (i*c + ch) * inner
			hs := l.xhat[off:][:inner]
			for j, g := range dy.Data[off:][:inner] {
				sdy += float64(g)
				sdyh += float64(g) * float64(hs[j])
			}
		}
		if dg != nil {
			dg[ch] = T(sdyh)
		}
		if db != nil {
			db[ch] = T(sdy)
		}
		if !needDX {
			continue
		}
		k := float64(l.Weight.Value.Data[ch]) * l.invStd[ch]
		meanDy, meanDyh := sdy/m, sdyh/m
		if !l.train {
			meanDy, meanDyh = 0, 0
		}
		for i := 0; i < n; i++ {
			off := (i*c + ch) * inner
			hs, ds := l.xhat[off:][:inner], dx.Data[off:][:inner]
			for j, g := range dy.Data[off:][:inner] {
				ds[j] = T(k * (float64(g) - meanDy - float64(hs[j])*meanDyh))
			}
		}
	}
	if !needDX {
		return nil
	}
	return dx
}
