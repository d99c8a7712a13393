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
type stepper struct {
	m     *Model[float32]
	train *Dataset
	seed  uint64
	batch int
	spe   int

	ce    CrossEntropy[float32]
	x     *Tensor[float32]
	y     []int
	order [][]int // the current epoch's batches
	epoch int
}

func newStepper(m *Model[float32], train *Dataset, seed uint64, batch int) *stepper {
	return &stepper{
		m: m, train: train, seed: seed, batch: batch,
		spe: StepsPerEpoch(train.Len(), batch),
		x:   &Tensor[float32]{}, epoch: -1,
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
	s.y = s.train.Batch(s.x, s.y, s.order[step%s.spe])
	s.m.SetRand(rand.New(rand.NewPCG(s.seed^dropoutSalt, uint64(step))))

	// Forward.
	loss = s.ce.Forward(s.m.Forward(s.x, true), s.y)
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
