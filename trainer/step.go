package trainer

import (
	"math"
	"math/rand/v2"
)

// stepper is the training step that Run and FindLR share, so that the
// determinism contract lives in one place: the batch of a global step is
// drawn from one permutation per epoch seeded by (seed, epoch), so it
// depends only on the seed and the step and a resumed run sees the same
// batches; dropout draws from a stream seeded by (seed, step); then
// forward, cross-entropy, backward, gradient clipping and the optimizer's
// update. It keeps the buffers that consecutive steps reuse.
//
// With an evaluator, a step starts from the training set's frozen-prefix
// cache (evaluator.trainPrefix) when it holds one: the batch is gathered
// from the cached outputs of the frozen blocks and only the blocks above
// run, to the same bits as the whole forward pass.
type stepper struct {
	m     *Model[float32]
	train *Dataset
	seed  uint64
	batch int
	spe   int
	ev    *evaluator // nil: no cache

	ce    CrossEntropy[float32]
	x     *Tensor[float32]
	h     *Tensor[float32] // a batch of cached prefix outputs
	y     []int
	order [][]int // the current epoch's batches
	epoch int
}

func newStepper(m *Model[float32], train *Dataset, seed uint64, batch int) *stepper {
	return &stepper{
		m: m, train: train, seed: seed, batch: batch,
		spe: StepsPerEpoch(train.Len(), batch),
		x:   &Tensor[float32]{}, h: &Tensor[float32]{}, epoch: -1,
	}
}

// dropoutSalt separates the dropout streams from the batch-order streams
// drawn from the same seed.
const dropoutSalt = 0x9e3779b97f4a7c15

// step trains m on the batch of global step step (counting from 0) with
// opt at learning rate lr, clipping the gradients' global norm to clip
// when it is positive. stats says whether the optimizer collects its
// per-block diagnostics (see Optimizer.SkipStats). It returns the batch's
// loss and its size; when the loss is not finite it returns at once and
// nothing is updated.
func (s *stepper) step(step int, opt Optimizer[float32], lr, clip float64, stats bool) (loss float64, n int) {
	// Batch and dropout stream.
	if e := step / s.spe; e != s.epoch {
		s.order = s.train.Batches(rand.New(rand.NewPCG(s.seed, uint64(e))), s.batch)
		s.epoch = e
	}
	idx := s.order[step%s.spe]
	k, shape, pre := 0, []int(nil), []float32(nil)
	if s.ev != nil {
		k, shape, pre = s.ev.trainPrefix(s.train)
	}
	if k > 0 {
		s.y = gatherRows(s.h, s.y, pre, shape, s.train.Y, idx)
	} else {
		s.y = s.train.Batch(s.x, s.y, idx)
	}
	s.m.SetRand(rand.New(rand.NewPCG(s.seed^dropoutSalt, uint64(step))))

	// Forward.
	var logits *Tensor[float32]
	if k > 0 {
		logits = s.m.forwardFrom(s.h, k, true)
	} else {
		logits = s.m.Forward(s.x, true)
	}
	loss = s.ce.Forward(logits, s.y)
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, len(s.y)
	}

	// Backward.
	s.m.Backward(s.ce.Backward())

	// Clip.
	if clip > 0 {
		opt.ClipGradNorm(clip)
	}

	// Step.
	opt.SkipStats(!stats)
	opt.Step(lr)
	return loss, len(s.y)
}

// gatherRows copies the rows of src (per-sample values of shape) named by
// indices into dst, shaped [len(indices), shape...], and their labels from
// labels into dstY, reusing both buffers as Dataset.Batch does.
func gatherRows(dst *Tensor[float32], dstY []int, src []float32, shape []int, labels []int, indices []int) []int {
	n := numel(shape)
	b := len(indices)
	if cap(dst.Data) < b*n {
		dst.Data = make([]float32, b*n)
	}
	dst.Data = dst.Data[:b*n]
	dst.Shape = append(append(dst.Shape[:0], b), shape...)
	dstY = dstY[:0]
	for j, i := range indices {
		copy(dst.Data[j*n:(j+1)*n], src[i*n:(i+1)*n])
		dstY = append(dstY, labels[i])
	}
	return dstY
}

// forwardFrom runs h, the output of block k-1 for a batch, through blocks
// k and above as Forward runs them, and returns the logits.
func (m *Model[T]) forwardFrom(h *Tensor[T], k int, train bool) *Tensor[T] {
	for _, b := range m.Blocks[k:] {
		for _, l := range b.Layers {
			h = l.Forward(h, train && m.layerTrains(b, l))
		}
	}
	return h
}
