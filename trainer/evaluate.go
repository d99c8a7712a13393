package trainer

import (
	"context"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// evaluator runs a model over fixed evaluation sets (validation, the
// forgetting gauge's source set) in inference mode. It uses every core:
// the batches are shared out among workers, each with its own twin of the
// model (its own layer buffers, the model's parameters), and the per-batch
// sums are added in batch order, so the numbers do not depend on the
// number of cores. And it keeps a frozen-prefix cache: the output of the
// blocks below the lowest one that can change, per set, reused while
// those blocks' versions stay the same. A batch's suffix computed from a
// cached prefix is the same arithmetic on the same numbers as the whole
// forward pass, so the results are bit-identical with the cache on and
// off.
type evaluator struct {
	m *Model[float32]
	// version counts the changes of each block of m (weights or
	// BatchNorm statistics); a cache is valid while the versions of the
	// blocks it covers are those it was computed with.
	version []uint64
	// noCache turns the frozen-prefix cache off (tests compare both).
	noCache bool
	// maxWorkers, when positive, caps the workers below GOMAXPROCS.
	maxWorkers int
	// maxBytes, when positive, replaces maxCacheBytes.
	maxBytes int
	// hits counts the passes that started from a cached prefix;
	// trainHits the training steps that did.
	hits, trainHits int
	// ctx, when set, ends a pass early once cancelled; the pass's numbers
	// are then meaningless and its cache is dropped.
	ctx context.Context

	workers []*evalWorker
	caches  map[*Dataset]*prefixCache
	batches map[*Dataset][][]int
	// train is the training set's cache (see trainPrefix), nil when
	// there is none.
	train *trainCache
	// shared, when set, shares the caches' prefix outputs with other
	// runs (see Prefixes); dataKeys memoises the sets' keys for it.
	shared   *Prefixes
	dataKeys map[*Dataset][32]byte
	// progress, when set, is told how far each pass has got (see
	// EvalProgress); nil costs nothing.
	progress *EvalProgress
	// smoothing is ε of the loss a pass sums: the stage's training loss
	// (Stage.LabelSmoothing), as Keras and fastai measure the validation
	// loss with the loss the model trains on.
	smoothing float64
}

// EvalSet names the set an evaluation pass goes through.
type EvalSet uint8

// The sets a run's passes go through.
const (
	EvalNone       EvalSet = iota // no pass under way
	EvalValidation                // the validation set
	EvalGauge                     // the forgetting gauge's source set
	// EvalPrefix is the training set through the frozen prefix, computed
	// once when a stage starts and reused by its steps.
	EvalPrefix
)

// String names the set as a status line does: "validating".
func (s EvalSet) String() string {
	switch s {
	case EvalValidation:
		return "validating"
	case EvalGauge:
		return "gauging source"
	case EvalPrefix:
		return "caching prefix"
	}
	return ""
}

// EvalProgress is how far the evaluation pass under way has got: its set
// and how many of its samples are done. A run's evaluator updates it with
// one atomic add per batch of a pass (a few hundred samples), so that a
// viewer can show a pass that lasts seconds moving without the trainer
// reporting more often; any goroutine may read it, at any rate, and a run
// nobody watches pays the adds alone. The zero value reads as no pass.
type EvalProgress struct {
	// v packs the set (top 4 bits), the pass's total (30 bits) and the
	// samples done (30 bits), so that one load reads a consistent triple.
	v atomic.Uint64
}

// evalField is the width of the total and the done count in
// EvalProgress.v; a set of 2³⁰ samples or more is not shown.
const evalField = 30

// Load returns the set of the pass under way, the samples done and its
// total; EvalNone and zeros when no pass is under way.
func (p *EvalProgress) Load() (set EvalSet, done, total int) {
	if p == nil {
		return EvalNone, 0, 0
	}
	v := p.v.Load()
	const mask = 1<<evalField - 1
	return EvalSet(v >> (2 * evalField)), int(v & mask), int(v >> evalField & mask)
}

// start announces a pass of total samples through set and returns the
// function that counts a batch of n samples done; end says no pass is
// under way. On a nil p both do nothing.
func (p *EvalProgress) start(set EvalSet, total int) (add func(n int)) {
	if p == nil || total <= 0 || total >= 1<<evalField {
		return func(int) {}
	}
	p.v.Store(uint64(set)<<(2*evalField) | uint64(total)<<evalField)
	return func(n int) { p.v.Add(uint64(n)) }
}

func (p *EvalProgress) end() {
	if p != nil {
		p.v.Store(0)
	}
}

// maxCacheBytes bounds one set's cached prefix outputs; a set whose
// prefix output is larger is evaluated from its input every time.
const maxCacheBytes = 256 << 20

// prefixCache is the output of blocks [0, k) for every evaluation batch
// of one set, and the outputs of lower blocks as well while they fit the
// cache's limit: when a block thaws, the output of the blocks below it,
// which it feeds, is still good.
type prefixCache struct {
	k       int
	version []uint64 // of blocks [0, k) when computed
	// out[j][i] is the output of block j for batch i; out[j] is nil for
	// a block whose output is not kept. out[k-1] is always kept.
	out [][]*Tensor[float32]
}

// at returns the outputs of block k-1 if c holds them as they are with
// the block versions ver, or nil.
func (c *prefixCache) at(k int, ver []uint64) []*Tensor[float32] {
	if c == nil || k == 0 || c.k < k || c.out[k-1] == nil || !slices.Equal(c.version[:k], ver[:k]) {
		return nil
	}
	return c.out[k-1]
}

// evalWorker is one worker's model twin and buffers.
type evalWorker struct {
	m     *Model[float32]
	heads map[*Block[float32]]*Block[float32] // twins of other heads (the source head)
	x     *Tensor[float32]
	y     []int
	ce    CrossEntropy[float32]
}

func newEvaluator(m *Model[float32]) *evaluator {
	return &evaluator{
		m:       m,
		version: make([]uint64, len(m.Blocks)),
		caches:  map[*Dataset]*prefixCache{},
		batches: map[*Dataset][][]int{},
	}
}

// changed records that blocks may have changed: every block that trains
// (or whose BatchNorm statistics do) after an optimizer step; all blocks
// when none are given (weights loaded or restored).
func (e *evaluator) changed(blocks ...int) {
	if len(blocks) == 0 {
		for i := range e.version {
			e.version[i]++
		}
		return
	}
	for _, b := range blocks {
		e.version[b]++
	}
}

// changing returns the blocks an optimizer step (and the forward pass
// before it) may change: those that are not frozen, and frozen ones whose
// BatchNorm layers train.
func changing[T Float](m *Model[T]) []int {
	var out []int
	for i, b := range m.Blocks {
		if !b.Frozen || (m.TrainBN && hasBatchNorm(b)) {
			out = append(out, i)
		}
	}
	return out
}

func hasBatchNorm[T Float](b *Block[T]) bool {
	for _, l := range b.Layers {
		if _, ok := l.(batchNorm); ok {
			return true
		}
	}
	return false
}

// stablePrefix is the number of leading blocks that nothing changes while
// the current stage trains, capped below the head: what a cache covers.
func (e *evaluator) stablePrefix() int {
	k := 0
	low := changing(e.m)
	if len(low) == 0 {
		k = len(e.m.Blocks)
	} else {
		k = low[0]
	}
	return min(k, len(e.m.Blocks)-1)
}

// pass evaluates ds through the model, with head in place of the model's
// own head when not nil, and returns the summed cross-entropy with labels
// smoothed by e.smoothing (NaN when wantLoss is false) and the number of
// correct predictions.
func (e *evaluator) pass(ds *Dataset, head *Block[float32], wantLoss bool) (lossSum float64, correct int) {
	batches := e.batches[ds]
	if batches == nil {
		batches = ds.Batches(nil, evalBatchSize)
		e.batches[ds] = batches
	}
	n := len(batches)
	if n == 0 {
		return 0, 0
	}

	// The cache: reuse it when it holds the output of the stable prefix
	// with the same versions, else fill a new one during this pass. The
	// pass starts at block start: k from a cache, 0 from the input, or in
	// between from the output of a shorter prefix that another run shares.
	k, start := 0, 0
	var use []*Tensor[float32]
	var fill *prefixCache
	if !e.noCache {
		k = e.stablePrefix()
		if use = e.caches[ds].at(k, e.version); use != nil {
			e.hits++
			start = k
		} else if need := e.prefixBytes(ds, k); k > 0 && need <= e.cacheLimit() {
			// Another run's outputs of the same prefix on the same set
			// serve as this run's own; else this pass computes them, and
			// shares them once it has.
			keys, ent, owner := e.sharedPrefix(ds, k, false)
			if ent != nil && !owner {
				use, start = ent.eval, k
				c := &prefixCache{k: k, version: slices.Clone(e.version[:k]), out: make([][]*Tensor[float32], k)}
				c.out[k-1] = use
				e.caches[ds] = c
			} else {
				fill = &prefixCache{k: k, version: slices.Clone(e.version[:k]), out: make([][]*Tensor[float32], k)}
				fill.out[k-1] = make([]*Tensor[float32], n)
				// The lower blocks' outputs too, from the top, while they fit.
				for j := k - 2; j >= 0; j-- {
					if need += e.prefixBytes(ds, j+1); need > e.cacheLimit() {
						break
					}
					fill.out[j] = make([]*Tensor[float32], n)
				}
				// Start from the longest shorter prefix shared, if any.
				if keys != nil {
					use, start = e.shared.longest(keys[:k-1])
				}
				if use != nil {
					for j := range start - 1 {
						fill.out[j] = nil
					}
					fill.out[start-1] = use
				}
				if owner {
					defer func() {
						done := !e.cancelled()
						if done {
							ent.eval = fill.out[k-1]
							// The lower outputs this pass computed serve
							// shorter prefixes.
							for j := start; j < k-1; j++ {
								if o := fill.out[j]; o != nil {
									e.shared.offer(keys[j], &prefixEntry{eval: o})
								}
							}
						}
						e.shared.release(keys[k-1], ent, done)
					}()
				}
			}
		} else {
			k = 0
			delete(e.caches, ds)
		}
	}

	ws := e.workersFor(n, head)
	losses := make([]float64, n)
	corrects := make([]int, n)
	// A pass without the loss is the forgetting gauge's.
	set := EvalValidation
	if !wantLoss {
		set = EvalGauge
	}
	done := e.progress.start(set, ds.Len())
	defer e.progress.end()
	var next atomic.Int64
	work := func(w *evalWorker) {
		for {
			i := int(next.Add(1)) - 1
			if i >= n || (e.ctx != nil && e.ctx.Err() != nil) {
				return
			}
			var h *Tensor[float32]
			if use != nil {
				// Only the labels: the inputs are not read.
				h = use[i]
				w.y = w.y[:0]
				for _, j := range batches[i] {
					w.y = append(w.y, ds.Y[j])
				}
			} else {
				w.y = ds.Batch(w.x, w.y, batches[i])
			}
			var pre []*Tensor[float32]
			if fill != nil {
				pre = make([]*Tensor[float32], k)
				// The blocks from start on; those below are not run.
				for j := start; j < k; j++ {
					if o := fill.out[j]; o != nil {
						pre[j] = &Tensor[float32]{}
						o[i] = pre[j]
					}
				}
			}
			logits := w.forward(w.x, h, start, pre, head)
			if wantLoss {
				w.ce.Smoothing = e.smoothing
				losses[i] = w.ce.Forward(logits, w.y) * float64(len(w.y))
			}
			corrects[i] = countCorrect(logits, w.y)
			done(len(batches[i]))
		}
	}
	runWorkers(ws, work)
	if e.ctx != nil && e.ctx.Err() != nil {
		return math.NaN(), 0
	}
	if fill != nil {
		e.caches[ds] = fill
	}

	// The reduction, in batch order whatever the workers.
	lossSum = math.NaN()
	if wantLoss {
		lossSum = 0
		for _, l := range losses {
			lossSum += l
		}
	}
	for _, c := range corrects {
		correct += c
	}
	return lossSum, correct
}

// cacheLimit is the most one set's cache may hold.
func (e *evaluator) cacheLimit() int {
	if e.maxBytes > 0 {
		return e.maxBytes
	}
	return maxCacheBytes
}

// prefixBytes is the size of the output of blocks [0, k) for all of ds.
func (e *evaluator) prefixBytes(ds *Dataset, k int) int {
	shape := slices.Clone(e.m.inDim)
	for _, b := range e.m.Blocks[:k] {
		for _, l := range b.Layers {
			out, err := l.OutShape(shape)
			if err != nil {
				return math.MaxInt
			}
			shape = out
		}
	}
	return numel(shape) * ds.Len() * 4
}

// workersFor returns the workers for a pass of n batches: up to
// GOMAXPROCS, each with twins of the model and of head sharing their
// parameters. A head that cannot be twinned (built by hand) runs on one
// worker, the model itself.
func (e *evaluator) workersFor(n int, head *Block[float32]) []*evalWorker {
	if len(e.workers) == 0 {
		e.workers = append(e.workers, &evalWorker{m: e.m, x: &Tensor[float32]{}})
	}
	nw := min(runtime.GOMAXPROCS(0), n)
	if e.maxWorkers > 0 {
		nw = min(nw, e.maxWorkers)
	}
	if head != nil && head.config == nil {
		nw = 1
	}
	for _, b := range e.m.Blocks {
		if b.config == nil {
			nw = 1
		}
	}
	for len(e.workers) < nw {
		tw, err := e.m.twin()
		if err != nil {
			// The config built the model once already.
			nw = len(e.workers)
			break
		}
		e.workers = append(e.workers, &evalWorker{m: tw, x: &Tensor[float32]{}})
	}
	ws := e.workers[:nw]
	for _, w := range ws[1:] {
		w.m.share(e.m)
		if head != nil {
			th := w.heads[head]
			if th == nil {
				var err error
				if th, _, err = buildBlock[float32](*head.config, head.in); err != nil {
					return ws[:1]
				}
				if w.heads == nil {
					w.heads = map[*Block[float32]]*Block[float32]{}
				}
				w.heads[head] = th
			}
			shareBlock(th, head)
		}
	}
	return ws
}

// forward runs a batch through the worker's model, from block from on
// (h is then the output of block from-1; from 0 starts at the input x),
// with head in place of the model's head when not nil, in inference mode.
// Each tensor of pre that is not nil receives a copy of the output of
// its block.
func (w *evalWorker) forward(x, h *Tensor[float32], from int, pre []*Tensor[float32], head *Block[float32]) *Tensor[float32] {
	m := w.m
	if from == 0 {
		h = m.normalize(x)
	}
	last := len(m.Blocks) - 1
	for bi := from; bi <= last; bi++ {
		b := m.Blocks[bi]
		if bi == last && head != nil {
			b = head
			if th := w.heads[head]; th != nil {
				b = th
			}
		}
		for _, l := range b.Layers {
			h = l.Forward(h, false)
		}
		if bi < len(pre) && pre[bi] != nil {
			pre[bi].Shape = append(pre[bi].Shape[:0], h.Shape...)
			pre[bi].Data = append(pre[bi].Data[:0], h.Data...)
		}
	}
	return h
}

// twin returns a model built from m's config whose parameters and buffers
// are m's own tensors: the same weights, its own layer buffers.
func (m *Model[T]) twin() (*Model[T], error) {
	t, err := build[T](&m.Config)
	if err != nil {
		return nil, err
	}
	t.share(m)
	return t, nil
}

// share points t's parameters at m's tensors.
func (t *Model[T]) share(m *Model[T]) {
	for i, b := range t.Blocks {
		shareBlock(b, m.Blocks[i])
	}
}

func shareBlock[T Float](dst, src *Block[T]) {
	dp, sp := blockParams(dst), blockParams(src)
	for i, p := range dp {
		p.Value = sp[i].Value
	}
}

// trainCache is the output of blocks [0, k) for every sample of the
// training set, in sample order: the frozen-prefix cache of the training
// steps.
type trainCache struct {
	ds      *Dataset
	k       int
	version []uint64 // of blocks [0, k) when computed
	shape   []int    // per sample
	out     []float32
}

// rowwise reports whether a training forward pass through block b gives
// each sample the bits it gives in any other batch: b draws nothing at
// random (no active Dropout) and each of its layers computes a sample's
// output alone. Every layer does but a linear layer on OpenBLAS, whose
// matrix products pick their kernels by the matrix sizes, so that a row's
// sums depend on how many rows come with it; package kernel's products
// and convolutions sum each output in one order whatever the batch.
func rowwise[T Float](b *Block[T]) bool {
	for _, l := range b.Layers {
		if _, ok := l.(*Linear[T]); ok && backend == "openblas" {
			return false
		}
		if _, ok := l.(stochastic); !ok {
			continue
		}
		if d, ok := l.(*Dropout[T]); !ok || d.P > 0 {
			return false
		}
	}
	return true
}

// trainPrefix returns the number k of leading blocks whose output a
// training step on ds may take from the cache, and that output for every
// sample of ds (k per-sample values of shape), computing it when the
// cache does not hold it. Those blocks are frozen, do not change (no
// BatchNorm training in them) and are rowwise, so a training forward pass
// through them gives each sample the numbers it gives here. It
// returns 0 when no block qualifies, when the cache is off, when the
// output would pass the cache limit (maxCacheBytes), or when a stop request cut the
// computation short.
func (e *evaluator) trainPrefix(ds *Dataset) (k int, shape []int, out []float32) {
	if e.noCache {
		return 0, nil, nil
	}
	k = e.stablePrefix()
	for bi := range k {
		if !rowwise(e.m.Blocks[bi]) {
			k = bi
			break
		}
	}
	if c := e.train; c != nil && c.ds == ds && c.k == k && slices.Equal(c.version, e.version[:k]) {
		e.trainHits++
		return k, c.shape, c.out
	}
	e.train = nil
	if k == 0 || e.prefixBytes(ds, k) > e.cacheLimit() {
		return 0, nil, nil
	}
	c := &trainCache{ds: ds, k: k, version: slices.Clone(e.version[:k])}
	// Another run's outputs of the same prefix serve as this run's own;
	// else they are computed, from those of a shorter prefix another run
	// shares when there are some, and shared.
	keys, ent, owner := e.sharedPrefix(ds, k, true)
	if ent != nil && !owner {
		c.shape, c.out = ent.shape, ent.out
	} else {
		from, lower := 0, (*prefixEntry)(nil)
		if keys != nil {
			from, lower = e.shared.longestTrain(keys[:k-1])
		}
		c.shape, c.out = e.prefix(ds, k, from, lower)
		if owner {
			ent.shape, ent.out = c.shape, c.out
			e.shared.release(keys[k-1], ent, c.out != nil)
		}
		if c.out == nil {
			return 0, nil, nil
		}
	}
	e.train = c
	e.trainHits++
	return k, c.shape, c.out
}

// dropTrain empties the training set's cache.
func (e *evaluator) dropTrain() { e.train = nil }

// prune lets go of the cached outputs that can no longer serve: those of
// blocks at or above the lowest one that changed since they were
// computed.
func (e *evaluator) prune() {
	for ds, c := range e.caches {
		j := 0
		for j < c.k && c.version[j] == e.version[j] {
			j++
		}
		for i := j; i < c.k; i++ {
			c.out[i] = nil
		}
		if j == 0 {
			delete(e.caches, ds)
		}
	}
}

// prefix runs every sample of ds through blocks [0, k) as a training
// forward pass runs them (each layer in the mode Model.Forward gives it),
// its batches spread over the workers, and returns the per-sample output
// shape and the outputs in sample order; nil if a stop request cut it
// short.
//
// With from above 0, lower holds the outputs of blocks [0, from) for
// every sample of ds, computed the same way, and only blocks [from, k)
// run: on the same batches, the same arithmetic on the same numbers.
func (e *evaluator) prefix(ds *Dataset, k, from int, lower *prefixEntry) (shape []int, out []float32) {
	batches := e.batches[ds]
	if batches == nil {
		batches = ds.Batches(nil, evalBatchSize)
		e.batches[ds] = batches
	}
	n := len(batches)
	if n == 0 {
		return nil, nil
	}
	// The modes come from the model, not from the twins, whose blocks
	// are not frozen.
	var modes [][]bool
	for _, b := range e.m.Blocks[:k] {
		bm := make([]bool, len(b.Layers))
		for li, l := range b.Layers {
			bm[li] = e.m.layerTrains(b, l)
		}
		modes = append(modes, bm)
	}
	shape = slices.Clone(e.m.inDim)
	for _, b := range e.m.Blocks[:k] {
		for _, l := range b.Layers {
			shape, _ = l.OutShape(shape)
		}
	}
	per := numel(shape)
	out = make([]float32, ds.Len()*per)

	ws := e.workersFor(n, nil)
	done := e.progress.start(EvalPrefix, ds.Len())
	defer e.progress.end()
	var next atomic.Int64
	work := func(w *evalWorker) {
		in := &Tensor[float32]{}
		for {
			i := int(next.Add(1)) - 1
			if i >= n || (e.ctx != nil && e.ctx.Err() != nil) {
				return
			}
			var h *Tensor[float32]
			if from > 0 {
				// The batches are consecutive runs of samples.
				lp := numel(lower.shape)
				first, rows := batches[i][0], len(batches[i])
				in.Shape = append(append(in.Shape[:0], rows), lower.shape...)
				in.Data = append(in.Data[:0], lower.out[first*lp:(first+rows)*lp]...)
				h = in
			} else {
				w.y = ds.Batch(w.x, w.y, batches[i])
				h = w.m.normalize(w.x)
			}
			for bi := from; bi < k; bi++ {
				b := w.m.Blocks[bi]
				for li, l := range b.Layers {
					h = l.Forward(h, modes[bi][li])
				}
			}
			// The batches are consecutive runs of samples.
			copy(out[batches[i][0]*per:], h.Data[:len(batches[i])*per])
			done(len(batches[i]))
		}
	}
	runWorkers(ws, work)
	if e.ctx != nil && e.ctx.Err() != nil {
		return nil, nil
	}
	return shape, out
}

// runWorkers calls work once per worker, on a goroutine of its own when
// there is more than one, and returns when all have returned.
func runWorkers(ws []*evalWorker, work func(*evalWorker)) {
	if len(ws) == 1 {
		work(ws[0])
		return
	}
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() { work(w) })
	}
	wg.Wait()
}
