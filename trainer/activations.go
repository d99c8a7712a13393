package trainer

import (
	"cmp"
	"fmt"
	"math"
)

// DefaultActivationBudget is the memory, in bytes, that the activations of
// one batch may hold unless a caller gives another budget: 2 GiB, beyond
// anything thaw's CPU training is useful for. Config.Validate checks one
// sample against it, so a config.json that implies gigabytes per sample (a
// convolution padded by 20,000 on a 2×2 input) is refused before anything
// is allocated.
const DefaultActivationBudget = 2 << 30

// ActivationBytes returns the bytes that a forward and backward pass over a
// batch of batch samples holds in float32 (twice as much for a float64
// model), beyond the parameters: every layer's output and input gradient,
// the masks and saved values of dropout, batch normalisation and max
// pooling, and a convolution's column matrices (chunked as Conv2D.Forward
// lowers them). It returns an error if c does not build, and panics if
// batch is not positive.
func (c *Config) ActivationBytes(batch int) (int64, error) {
	m, err := build[float32](c)
	if err != nil {
		return 0, err
	}
	var total float64
	walkActivations(m, batch, func(_, _ int, bytes float64) bool {
		total += bytes
		return true
	})
	return int64(min(total, math.MaxInt64)), nil
}

// CheckActivations returns an error naming the block and layer at which
// the activations of a batch of batch samples (see ActivationBytes) pass
// budget bytes; budget ≤ 0 means DefaultActivationBudget. A caller that
// knows its batch size (a training job) calls it with that size and the
// memory it can spare; Validate calls it for one sample. It returns an
// error if c does not build, and panics if batch is not positive.
func (c *Config) CheckActivations(batch int, budget int64) error {
	m, err := build[float32](c)
	if err != nil {
		return err
	}
	return checkActivations(m, batch, budget)
}

func checkActivations(m *Model[float32], batch int, budget int64) error {
	budget = cmp.Or(max(budget, 0), DefaultActivationBudget)
	var total float64
	var err error
	walkActivations(m, batch, func(bi, li int, bytes float64) bool {
		total += bytes
		if total <= float64(budget) {
			return true
		}
		bc := m.Config.Blocks[bi]
		lc := bc.Layers[li]
		err = fmt.Errorf("config: block %q, layer %d (%s): activations of a batch of %d need %s from the input to here, over the %s budget",
			bc.Name, li, layerLabel(lc), batch, formatFloatBytes(total), formatBytes(budget))
		return false
	})
	return err
}

// layerLabel names a layer for a message: its type and PyTorch name.
func layerLabel(lc LayerConfig) string {
	if lc.Name == "" {
		return lc.Type
	}
	return lc.Type + " " + lc.Name
}

// formatFloatBytes is formatBytes for a count that may pass int64.
func formatFloatBytes(b float64) string {
	if b < math.MaxInt64/2 {
		return formatBytes(int64(b))
	}
	return fmt.Sprintf("%.3g bytes", b)
}

// walkActivations calls f with each layer's activation bytes for a batch,
// block by block from the input, until f returns false. Sizes are counted
// in float64 so that a hostile config cannot overflow them.
func walkActivations(m *Model[float32], batch int, f func(block, layer int, bytes float64) bool) {
	if batch <= 0 {
		panic(fmt.Sprintf("trainer: batch size %d is not positive", batch))
	}
	const elem = 4 // float32, and int32 for max pooling's argmax
	n := float64(batch)
	shape := m.inDim
	for bi, b := range m.Blocks {
		for li, l := range b.Layers {
			out, err := l.OutShape(shape)
			if err != nil {
				// build checked every shape; nothing to count past here.
				return
			}
			in, o := numelF(shape), numelF(out)
			// The output and the gradient of the input.
			v := n * (in + o)
			switch l := l.(type) {
			case *Conv2D[float32]:
				// col and dcol ([In·K·K, chunk·OH·OW]) and prod
				// ([Out, chunk·OH·OW]), chunk samples at a time.
				plane := float64(out[1]) * float64(out[2])
				kk := float64(l.In) * float64(l.Kernel) * float64(l.Kernel)
				chunk := min(n, max(1, math.Floor(colLimit/(kk*plane))))
				v += chunk * plane * (2*kk + float64(l.Out))
			case *MaxPool2D[float32]:
				v += n * o // argmax
			case *Dropout[float32]:
				v += n * in // mask
			case *BatchNorm[float32]:
				v += n * in // normalised input
			}
			if !f(bi, li, v*elem) {
				return
			}
			shape = out
		}
	}
}

// numelF multiplies dimensions as float64, which cannot overflow here.
func numelF(shape []int) float64 {
	p := 1.0
	for _, d := range shape {
		p *= float64(d)
	}
	return p
}
