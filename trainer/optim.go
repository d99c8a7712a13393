package trainer

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
)

// Optimizer updates the trainable parameters of a model from their
// gradients. SGD and AdamW implement it.
//
// Freezing is real: a parameter that is not Trainable (its block is frozen),
// a buffer (BatchNorm's running statistics) and a parameter without a
// gradient are skipped entirely: no optimizer state is allocated for them,
// no weight decay is applied, and their values stay bit-identical. State is
// created the first time a parameter is updated. When a block is frozen
// again its parameters keep their state, as PyTorch keeps the state of a
// parameter whose requires_grad is turned off, so a block that is unfrozen
// later resumes with its old momentum.
//
// An optimizer follows the model's blocks as they are when Step is called:
// after ReplaceHead the new head's parameters start with fresh state and the
// state of the replaced head is dropped.
type Optimizer[T Float] interface {
	// Step applies one update with base learning rate lr; each block's
	// parameters use lr·LRMult (an LRMult of 0 means 1). Schedules drive lr
	// step by step.
	Step(lr float64)
	// ClipGradNorm scales the gradients of the trainable parameters so that
	// their global L2 norm is at most maxNorm and returns the norm before
	// clipping, as torch.nn.utils.clip_grad_norm_.
	ClipGradNorm(maxNorm float64) float64
	// Stats returns per-block diagnostics of the last Step that collected
	// them.
	Stats() []BlockStats
	// SkipStats(true) lets the following Steps skip the diagnostics, which
	// cost about as much as the update itself; SkipStats(false) collects
	// them again. A run loop collects them only on steps it reports.
	SkipStats(skip bool)
	// State returns a copy of the optimizer state, for checkpoints.
	State() map[string]*Tensor[T]
	// LoadState replaces the optimizer state with one returned by State.
	LoadState(state map[string]*Tensor[T]) error
}

// BlockStats are the diagnostics of one block for the last Step, in the
// order of Model.Blocks. Norms are L2 norms over the block's parameters that
// the step updated, accumulated in float64 inside the update pass.
type BlockStats struct {
	Block string
	// Updated reports whether the step changed any parameter of the block;
	// for a frozen block it is false and the norms are zero.
	Updated bool
	// LR is the block's learning rate in the step: the base rate times the
	// block's LRMult; 0 for a block the step did not update.
	LR float64
	// GradNorm is ‖g‖ of the gradient the step used: after clipping, before
	// weight decay.
	GradNorm float64
	// WeightNorm is ‖w‖ before the step.
	WeightNorm float64
	// UpdateNorm is ‖Δw‖, the change the step made (weight decay included).
	UpdateNorm float64
	// UpdateRatio is UpdateNorm / WeightNorm, the usual health gauge (around
	// 1e-3 is typical). It is 0 when nothing changed and +Inf when a zero
	// weight moved.
	UpdateRatio float64
}

// slot is one parameter as the optimizer sees it, with its state. a and b
// are nil until the parameter is first updated.
type slot[T Float] struct {
	p    *Param[T]
	a, b []T // SGD: momentum buffer; AdamW: exp_avg and exp_avg_sq
	step int // updates applied to this parameter (AdamW's t)
}

// active reports whether the parameter takes part in a step.
func (s *slot[T]) active() bool {
	p := s.p
	if !p.Trainable || p.Buffer || p.Grad == nil {
		return false
	}
	if !p.Grad.SameShape(p.Value) {
		panic(fmt.Sprintf("trainer: optimizer: %s has gradient shape %v, value shape %v", p.Name, p.Grad.Shape, p.Value.Shape))
	}
	return true
}

// blockSlots caches one block's parameters; layers records the layer
// values they came from, so a change of the model's structure is noticed
// without calling Params (which allocates) on every step.
type blockSlots[T Float] struct {
	b      *Block[T]
	layers []Layer[T]
	slots  []*slot[T]
}

// paramSet is what both optimizers share: the model's learnable parameters
// grouped by block, their state, gradient clipping and the diagnostics.
type paramSet[T Float] struct {
	m      *Model[T]
	blocks []blockSlots[T]
	stats  []BlockStats
	// noStats skips the diagnostics in Step (see SkipStats).
	noStats bool
	// suffixes names the state tensors of a slot in State (a, b, step).
	suffixes [3]string
}

// sync rebuilds the cache when the model's blocks or layers changed since
// the last call, carrying over the state of parameters that are still
// there. Layers are compared as interface values, so layers must be
// pointer types (all of this package's are).
func (o *paramSet[T]) sync() {
	if o.current() {
		return
	}
	old := map[*Param[T]]*slot[T]{}
	for _, bs := range o.blocks {
		for _, s := range bs.slots {
			old[s.p] = s
		}
	}
	o.blocks = o.blocks[:0]
	o.stats = o.stats[:0]
	for _, b := range o.m.Blocks {
		bs := blockSlots[T]{b: b, layers: slices.Clone(b.Layers)}
		for _, l := range b.Layers {
			for _, p := range l.Params() {
				if p.Buffer {
					continue
				}
				s := old[p]
				if s == nil {
					s = &slot[T]{p: p}
				}
				bs.slots = append(bs.slots, s)
			}
		}
		o.blocks = append(o.blocks, bs)
		o.stats = append(o.stats, BlockStats{Block: b.Name})
	}
}

func (o *paramSet[T]) current() bool {
	if len(o.blocks) != len(o.m.Blocks) {
		return false
	}
	for i, b := range o.m.Blocks {
		bs := &o.blocks[i]
		if bs.b != b || len(bs.layers) != len(b.Layers) {
			return false
		}
		for j, l := range b.Layers {
			if bs.layers[j] != l {
				return false
			}
		}
	}
	return true
}

// ClipGradNorm scales the gradients of the trainable parameters by
// maxNorm/(total+1e-6) when that is below 1, where total is the L2 norm of
// all those gradients together, and returns total (torch 1.13's
// clip_grad_norm_ with norm_type 2). Frozen parameters are neither counted
// nor touched. The norm is accumulated in float64. A non-finite total is
// returned with the gradients left as they are, for the caller to stop the
// run as diverged. It panics if maxNorm is not positive.
func (o *paramSet[T]) ClipGradNorm(maxNorm float64) float64 {
	if !(maxNorm > 0) {
		panic(fmt.Sprintf("trainer: ClipGradNorm: max norm %v is not positive", maxNorm))
	}
	o.sync()
	var sum float64
	for _, bs := range o.blocks {
		for _, s := range bs.slots {
			if s.active() {
				sum += sumSq(s.p.Grad.Data)
			}
		}
	}
	total := math.Sqrt(sum)
	coef := maxNorm / (total + 1e-6)
	if coef < 1 {
		c := T(coef)
		for _, bs := range o.blocks {
			for _, s := range bs.slots {
				if s.active() {
					g := s.p.Grad.Data
					for i := range g {
						g[i] *= c
					}
				}
			}
		}
	}
	return total
}

// Stats returns the per-block diagnostics of the last Step, one entry per
// block in model order. The slice is reused by the next Step; copy it to
// keep it.
func (o *paramSet[T]) Stats() []BlockStats { return o.stats }

// SkipStats turns the diagnostics off (skip) or on for the following steps.
func (o *paramSet[T]) SkipStats(skip bool) { o.noStats = skip }

// step runs update over every active parameter, block by block, and fills
// the diagnostics. update applies the fused rule to one slot with the
// block's learning rate and returns Σg², Σw² and Σ(Δw)².
func (o *paramSet[T]) step(lr float64, update func(s *slot[T], lr float64, stats bool) (gg, ww, dd float64)) {
	o.sync()
	stats := !o.noStats
	for i, bs := range o.blocks {
		blr := lr
		if bs.b.LRMult != 0 {
			blr *= bs.b.LRMult
		}
		st := BlockStats{Block: bs.b.Name, LR: blr}
		var gg, ww, dd float64
		for _, s := range bs.slots {
			if !s.active() {
				continue
			}
			g, w, d := update(s, blr, stats)
			gg, ww, dd = gg+g, ww+w, dd+d
			s.step++
			st.Updated = true
		}
		if st.Updated {
			st.GradNorm, st.WeightNorm, st.UpdateNorm = math.Sqrt(gg), math.Sqrt(ww), math.Sqrt(dd)
			switch {
			case st.UpdateNorm == 0:
				st.UpdateRatio = 0
			case st.WeightNorm == 0:
				st.UpdateRatio = math.Inf(1)
			default:
				st.UpdateRatio = st.UpdateNorm / st.WeightNorm
			}
		} else {
			st.LR = 0
		}
		if stats {
			o.stats[i] = st
		}
	}
}

// State returns copies of the state tensors, named "<param>.<suffix>", for
// every parameter that has state, frozen ones included.
func (o *paramSet[T]) State() map[string]*Tensor[T] {
	o.sync()
	out := map[string]*Tensor[T]{}
	for _, bs := range o.blocks {
		for _, s := range bs.slots {
			if s.a == nil {
				continue
			}
			shape := s.p.Value.Shape
			out[s.p.Name+"."+o.suffixes[0]] = &Tensor[T]{Shape: slices.Clone(shape), Data: slices.Clone(s.a)}
			if o.suffixes[1] != "" {
				out[s.p.Name+"."+o.suffixes[1]] = &Tensor[T]{Shape: slices.Clone(shape), Data: slices.Clone(s.b)}
			}
			if o.suffixes[2] != "" {
				out[s.p.Name+"."+o.suffixes[2]] = &Tensor[T]{Shape: []int{}, Data: []T{T(s.step)}}
			}
		}
	}
	return out
}

// LoadState replaces the state of every parameter with the entries of
// state, which uses State's names; parameters without entries start afresh.
// It returns an error, and changes nothing, if a name does not belong to a
// learnable parameter of the model, a shape differs from the parameter's,
// a parameter's entries are incomplete, or a step count is not a positive
// integer.
func (o *paramSet[T]) LoadState(state map[string]*Tensor[T]) error {
	o.sync()
	byName := map[string]*slot[T]{}
	for _, bs := range o.blocks {
		for _, s := range bs.slots {
			byName[s.p.Name] = s
		}
	}
	type loaded struct {
		a, b []T
		step int
		seen [3]bool
	}
	next := map[*slot[T]]*loaded{}
	keys := make([]string, 0, len(state))
	for k := range state {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t := state[k]
		kind := -1
		var name string
		for i, suf := range o.suffixes {
			if suf != "" && strings.HasSuffix(k, "."+suf) {
				kind, name = i, strings.TrimSuffix(k, "."+suf)
				break
			}
		}
		if kind < 0 {
			return fmt.Errorf("optimizer state: unexpected entry %q", k)
		}
		s := byName[name]
		if s == nil {
			return fmt.Errorf("optimizer state: %q names no learnable parameter of the model", k)
		}
		l := next[s]
		if l == nil {
			l = &loaded{}
			next[s] = l
		}
		l.seen[kind] = true
		switch kind {
		case 2:
			if t.Len() != 1 {
				return fmt.Errorf("optimizer state: %q has %d elements, want 1", k, t.Len())
			}
			f := float64(t.Data[0])
			if !(f >= 1) || f != math.Trunc(f) || f > 1<<53 {
				return fmt.Errorf("optimizer state: %q is %v, want a positive integer", k, f)
			}
			l.step = int(f)
		default:
			if !t.SameShape(s.p.Value) {
				return fmt.Errorf("optimizer state: %q has shape %v, parameter has %v", k, t.Shape, s.p.Value.Shape)
			}
			if kind == 0 {
				l.a = t.Data
			} else {
				l.b = t.Data
			}
		}
	}
	for s, l := range next {
		for i, suf := range o.suffixes {
			if suf != "" && !l.seen[i] {
				return fmt.Errorf("optimizer state: %s has no %q entry", s.p.Name, s.p.Name+"."+suf)
			}
		}
	}
	for _, bs := range o.blocks {
		for _, s := range bs.slots {
			s.a, s.b, s.step = nil, nil, 0
			if l := next[s]; l != nil {
				s.a, s.b, s.step = slices.Clone(l.a), slices.Clone(l.b), l.step
			}
		}
	}
	return nil
}

// sumSq returns Σx² accumulated in float64.
func sumSq[T Float](x []T) float64 {
	var s float64
	for _, v := range x {
		s += float64(v) * float64(v)
	}
	return s
}

// decay returns the weight decay that applies to p.
func decay[T Float](p *Param[T], wd float64) float64 {
	if p.NoDecay {
		return 0
	}
	return wd
}

// SGD is stochastic gradient descent with momentum, Nesterov momentum and L2
// weight decay, with PyTorch 1.13's update (torch/optim/sgd.py,
// _single_tensor_sgd, dampening 0), so runs compare step by step:
//
//	g ← g + wd·w
//	buf ← g on a parameter's first step, else momentum·buf + g
//	g ← g + momentum·buf (Nesterov) or buf
//	w ← w − lr·g
//
// Nesterov momentum follows Sutskever et al. 2013, "On the importance of
// initialization and momentum in deep learning", in PyTorch's formulation.
// Parameters marked NoDecay (biases) get no weight decay.
type SGD[T Float] struct {
	Momentum    float64 // 0 disables momentum and its state
	WeightDecay float64 // L2 coefficient added to the gradient
	Nesterov    bool

	paramSet[T]
}

// NewSGD returns SGD over the parameters of m. momentum and weightDecay
// must be non-negative; nesterov needs momentum > 0. It returns an error
// naming the bad value otherwise.
func NewSGD[T Float](m *Model[T], momentum, weightDecay float64, nesterov bool) (*SGD[T], error) {
	switch {
	case !(momentum >= 0):
		return nil, fmt.Errorf("sgd: momentum %v is negative", momentum)
	case !(weightDecay >= 0):
		return nil, fmt.Errorf("sgd: weight decay %v is negative", weightDecay)
	case nesterov && momentum == 0:
		return nil, fmt.Errorf("sgd: nesterov momentum needs momentum > 0")
	}
	o := &SGD[T]{Momentum: momentum, WeightDecay: weightDecay, Nesterov: nesterov}
	o.m = m
	o.suffixes = [3]string{"momentum_buffer"}
	o.sync()
	return o, nil
}

// Step applies one SGD update with base learning rate lr.
func (o *SGD[T]) Step(lr float64) {
	o.step(lr, o.update)
}

func (o *SGD[T]) update(s *slot[T], lr float64, stats bool) (gg, ww, dd float64) {
	w, g := s.p.Value.Data, s.p.Grad.Data
	negLR, wd, mom := T(-lr), T(decay(s.p, o.WeightDecay)), T(o.Momentum)
	if o.Momentum == 0 {
		return sgdPlain(w, g, negLR, wd, stats)
	}
	// The buffer's existence, not the step count, marks the first step, so
	// a buffer restored by LoadState is continued.
	first := s.a == nil
	if first {
		s.a = make([]T, len(w))
	}
	return sgdMomentum(w, g, s.a, negLR, wd, mom, first, o.Nesterov, stats)
}

// sgdPlain is w ← w − lr·(g + wd·w) in one pass, returning Σg², Σw², Σ(Δw)².
func sgdPlain[T Float](w, g []T, negLR, wd T, stats bool) (gg, ww, dd float64) {
	g = g[:len(w)]
	for i, wi := range w {
		gi := g[i]
		nw := wi + negLR*(gi+wd*wi)
		w[i] = nw
		if stats {
			d := float64(nw) - float64(wi)
			gg += float64(gi) * float64(gi)
			ww += float64(wi) * float64(wi)
			dd += d * d
		}
	}
	return gg, ww, dd
}

// sgdMomentum is the momentum update in one pass; first initialises buf
// with the gradient, as PyTorch does on a parameter's first step.
func sgdMomentum[T Float](w, g, buf []T, negLR, wd, mom T, first, nesterov, stats bool) (gg, ww, dd float64) {
	g, buf = g[:len(w)], buf[:len(w)]
	for i, wi := range w {
		gi := g[i]
		dp := gi + wd*wi
		var b T
		if first {
			b = dp
		} else {
			b = buf[i]*mom + dp
		}
		buf[i] = b
		if nesterov {
			dp += mom * b
		} else {
			dp = b
		}
		nw := wi + negLR*dp
		w[i] = nw
		if stats {
			d := float64(nw) - float64(wi)
			gg += float64(gi) * float64(gi)
			ww += float64(wi) * float64(wi)
			dd += d * d
		}
	}
	return gg, ww, dd
}

// AdamW is Adam with decoupled weight decay (Loshchilov & Hutter 2019,
// "Decoupled Weight Decay Regularization"; Adam: Kingma & Ba 2015), with
// PyTorch 1.13's update (torch/optim/adamw.py, _single_tensor_adamw,
// amsgrad off), t counting the updates of each parameter:
//
//	w ← w·(1 − lr·wd)
//	m ← β1·m + (1−β1)·g
//	v ← β2·v + (1−β2)·g²
//	w ← w − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)
//
// Parameters marked NoDecay (biases) get no weight decay.
type AdamW[T Float] struct {
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64

	paramSet[T]
}

// NewAdamW returns AdamW over the parameters of m. PyTorch's defaults are
// beta1 0.9, beta2 0.999, eps 1e-8, weightDecay 1e-2. The betas must lie in
// [0, 1), eps and weightDecay must be non-negative; it returns an error
// naming the bad value otherwise.
func NewAdamW[T Float](m *Model[T], beta1, beta2, eps, weightDecay float64) (*AdamW[T], error) {
	switch {
	case !(beta1 >= 0 && beta1 < 1):
		return nil, fmt.Errorf("adamw: beta1 %v is outside [0, 1)", beta1)
	case !(beta2 >= 0 && beta2 < 1):
		return nil, fmt.Errorf("adamw: beta2 %v is outside [0, 1)", beta2)
	case !(eps >= 0):
		return nil, fmt.Errorf("adamw: eps %v is negative", eps)
	case !(weightDecay >= 0):
		return nil, fmt.Errorf("adamw: weight decay %v is negative", weightDecay)
	}
	o := &AdamW[T]{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay}
	o.m = m
	o.suffixes = [3]string{"exp_avg", "exp_avg_sq", "step"}
	o.sync()
	return o, nil
}

// Step applies one AdamW update with base learning rate lr.
func (o *AdamW[T]) Step(lr float64) {
	o.step(lr, o.update)
}

func (o *AdamW[T]) update(s *slot[T], lr float64, stats bool) (gg, ww, dd float64) {
	w, g := s.p.Value.Data, s.p.Grad.Data
	if s.a == nil {
		s.a, s.b = make([]T, len(w)), make([]T, len(w))
	}
	// Scalars are formed in float64 and rounded once to T, as PyTorch does
	// with Python floats.
	t := float64(s.step + 1)
	bc1 := 1 - math.Pow(o.Beta1, t)
	bc2 := 1 - math.Pow(o.Beta2, t)
	k := adamConsts[T]{
		decay:   T(1 - lr*decay(s.p, o.WeightDecay)),
		b1:      T(o.Beta1),
		c1:      T(1 - o.Beta1),
		b2:      T(o.Beta2),
		c2:      T(1 - o.Beta2),
		negStep: T(-lr / bc1),
		bc2Sqrt: T(math.Sqrt(bc2)),
		eps:     T(o.Eps),
	}
	return adamwUpdate(w, g, s.a, s.b, k, stats)
}

type adamConsts[T Float] struct {
	decay, b1, c1, b2, c2, negStep, bc2Sqrt, eps T
}

// adamwUpdate is the AdamW update in one pass over a parameter, with the
// operations in PyTorch's order so that rounding matches.
func adamwUpdate[T Float](w, g, m, v []T, k adamConsts[T], stats bool) (gg, ww, dd float64) {
	g, m, v = g[:len(w)], m[:len(w)], v[:len(w)]
	for i, wi := range w {
		gi := g[i]
		p := wi * k.decay
		mi := m[i]*k.b1 + k.c1*gi
		vi := v[i]*k.b2 + k.c2*gi*gi
		m[i], v[i] = mi, vi
		den := T(math.Sqrt(float64(vi)))/k.bc2Sqrt + k.eps
		nw := p + k.negStep*mi/den
		w[i] = nw
		if stats {
			d := float64(nw) - float64(wi)
			gg += float64(gi) * float64(gi)
			ww += float64(wi) * float64(wi)
			dd += d * d
		}
	}
	return gg, ww, dd
}
