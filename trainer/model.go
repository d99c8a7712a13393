package trainer

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Block is the unit of freezing: a named, ordered group of layers.
type Block[T Float] struct {
	Name   string
	Layers []Layer[T]
	// Frozen blocks get no gradients, no optimizer state and no weight
	// decay; their BatchNorm layers run in inference mode unless the model's
	// TrainBN is set.
	Frozen bool
	// LRMult scales the optimizer's learning rate for this block's
	// parameters (discriminative learning rates). Zero means 1.
	LRMult float64

	// config and in are what the block was built from (its layers and
	// their per-sample input shape), so that parallel evaluation can build
	// a twin sharing its parameters; a block assembled by hand has none.
	config *BlockConfig
	in     []int
}

// Model is a network built from a Config: blocks of layers from input to
// head, with freezing per block.
type Model[T Float] struct {
	Config Config
	Blocks []*Block[T]
	// TrainBN keeps BatchNorm layers trainable, in training mode, inside
	// frozen blocks (fastai's train_bn).
	TrainBN bool

	norm  *Tensor[T] // normalised input buffer
	inDim []int
}

// New builds a model from cfg and initialises its parameters from rng the
// way PyTorch initialises each layer. The model starts with every block
// trainable. It returns an error if cfg is invalid.
func New[T Float](cfg *Config, rng *rand.Rand) (*Model[T], error) {
	m, err := build[T](cfg)
	if err != nil {
		return nil, err
	}
	m.Reset(rng)
	return m, nil
}

// build constructs the layers of cfg with zero parameters, checking that
// each layer accepts its input shape.
func build[T Float](cfg *Config) (*Model[T], error) {
	m := &Model[T]{Config: *cfg, inDim: slices.Clone(cfg.InputShape)}
	shape := slices.Clone(cfg.InputShape)
	seenBlock := map[string]bool{}
	seenParam := map[string]string{}
	for bi, bc := range cfg.Blocks {
		if bc.Name == "" {
			return nil, fmt.Errorf("config: block %d has no name", bi)
		}
		if seenBlock[bc.Name] {
			return nil, fmt.Errorf("config: block %q appears twice", bc.Name)
		}
		seenBlock[bc.Name] = true
		if len(bc.Layers) == 0 {
			return nil, fmt.Errorf("config: block %q has no layers", bc.Name)
		}
		b := &Block[T]{Name: bc.Name, config: &bc, in: slices.Clone(shape)}
		for li, lc := range bc.Layers {
			l, err := newLayer[T](lc, shape)
			if err != nil {
				return nil, fmt.Errorf("config: block %q, layer %d (%s): %w", bc.Name, li, lc.Type, err)
			}
			out, err := l.OutShape(shape)
			if err != nil {
				return nil, fmt.Errorf("config: block %q, layer %d (%s): %w", bc.Name, li, lc.Type, err)
			}
			for _, p := range l.Params() {
				if other, dup := seenParam[p.Name]; dup {
					return nil, fmt.Errorf("config: block %q: parameter %q is also in block %q", bc.Name, p.Name, other)
				}
				seenParam[p.Name] = bc.Name
			}
			shape = out
			b.Layers = append(b.Layers, l)
		}
		fuseReLUs(b)
		m.Blocks = append(m.Blocks, b)
	}
	if numel(shape) != len(cfg.Classes) || len(shape) != 1 {
		return nil, fmt.Errorf("config: head %q outputs shape %v, want [%d] (one per class)", cfg.Blocks[len(cfg.Blocks)-1].Name, shape, len(cfg.Classes))
	}
	m.applyFreeze()
	return m, nil
}

// newLayer constructs the layer lc describes for a per-sample input shape.
func newLayer[T Float](lc LayerConfig, in []int) (Layer[T], error) {
	needName := func() error {
		if lc.Name == "" {
			return fmt.Errorf("layer needs a name (its PyTorch module path)")
		}
		return nil
	}
	switch lc.Type {
	case "linear":
		if err := needName(); err != nil {
			return nil, err
		}
		if lc.InFeatures <= 0 || lc.OutFeatures <= 0 {
			return nil, fmt.Errorf("%s: in_features %d and out_features %d must be positive", lc.Name, lc.InFeatures, lc.OutFeatures)
		}
		return NewLinear[T](lc.Name, lc.InFeatures, lc.OutFeatures), nil
	case "relu":
		return &ReLU[T]{}, nil
	case "gelu":
		return &GELU[T]{}, nil
	case "flatten":
		return &Flatten[T]{}, nil
	case "conv2d":
		if err := needName(); err != nil {
			return nil, err
		}
		switch {
		case lc.InChannels <= 0:
			return nil, fmt.Errorf("%s: in_channels %d must be positive", lc.Name, lc.InChannels)
		case lc.OutChannels <= 0:
			return nil, fmt.Errorf("%s: out_channels %d must be positive", lc.Name, lc.OutChannels)
		case lc.KernelSize <= 0:
			return nil, fmt.Errorf("%s: kernel_size %d must be positive", lc.Name, lc.KernelSize)
		case lc.Stride < 0:
			return nil, fmt.Errorf("%s: stride %d must be positive (0 means 1)", lc.Name, lc.Stride)
		case lc.Padding < 0:
			return nil, fmt.Errorf("%s: padding %d must not be negative", lc.Name, lc.Padding)
		}
		stride := lc.Stride
		if stride == 0 {
			stride = 1
		}
		return NewConv2D[T](lc.Name, lc.InChannels, lc.OutChannels, lc.KernelSize, stride, lc.Padding), nil
	case "maxpool2d":
		label := cmp.Or(lc.Name, "maxpool2d")
		switch {
		case lc.KernelSize <= 0:
			return nil, fmt.Errorf("%s: kernel_size %d must be positive", label, lc.KernelSize)
		case lc.Stride < 0:
			return nil, fmt.Errorf("%s: stride %d must be positive (0 means kernel_size)", label, lc.Stride)
		case lc.Padding < 0 || lc.Padding > lc.KernelSize/2:
			return nil, fmt.Errorf("%s: padding %d must be between 0 and half of kernel_size %d", label, lc.Padding, lc.KernelSize)
		}
		return NewMaxPool2D[T](lc.KernelSize, lc.Stride, lc.Padding), nil
	case "dropout":
		if !(lc.P >= 0 && lc.P <= 1) {
			return nil, fmt.Errorf("%s: p %v must be in [0, 1]", cmp.Or(lc.Name, "dropout"), lc.P)
		}
		return NewDropout[T](lc.P), nil
	case "batchnorm1d", "batchnorm2d":
		if err := needName(); err != nil {
			return nil, err
		}
		switch {
		case lc.NumFeatures <= 0:
			return nil, fmt.Errorf("%s: num_features %d must be positive", lc.Name, lc.NumFeatures)
		case lc.Eps < 0:
			return nil, fmt.Errorf("%s: eps %v must be positive (0 means 1e-5)", lc.Name, lc.Eps)
		case !(lc.Momentum >= 0 && lc.Momentum <= 1):
			return nil, fmt.Errorf("%s: momentum %v must be in (0, 1] (0 means 0.1)", lc.Name, lc.Momentum)
		}
		if lc.Type == "batchnorm2d" {
			return NewBatchNorm2D[T](lc.Name, lc.NumFeatures, lc.Eps, lc.Momentum), nil
		}
		return NewBatchNorm1D[T](lc.Name, lc.NumFeatures, lc.Eps, lc.Momentum), nil
	}
	return nil, fmt.Errorf("unknown layer type %q", lc.Type)
}

// Reset re-initialises every parameter from rng, block by block in order,
// and resets buffers to their initial values.
func (m *Model[T]) Reset(rng *rand.Rand) {
	for _, b := range m.Blocks {
		resetBlock(b, rng)
	}
}

func resetBlock[T Float](b *Block[T], rng *rand.Rand) {
	for _, l := range b.Layers {
		if r, ok := l.(initializer); ok {
			r.Reset(rng)
		}
	}
}

// SetRand gives every stochastic layer (Dropout) its own stream, derived in
// order from rng, so a run's randomness all flows from its seed.
func (m *Model[T]) SetRand(rng *rand.Rand) {
	for _, b := range m.Blocks {
		for _, l := range b.Layers {
			if s, ok := l.(stochastic); ok {
				s.SetRand(rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())))
			}
		}
	}
}

// Block returns the block with the given name, or nil.
func (m *Model[T]) Block(name string) *Block[T] {
	for _, b := range m.Blocks {
		if b.Name == name {
			return b
		}
	}
	return nil
}

// Head returns the top block.
func (m *Model[T]) Head() *Block[T] { return m.Blocks[len(m.Blocks)-1] }

// SetFrozen freezes or unfreezes the named block. It returns an error naming
// the block if there is none by that name.
func (m *Model[T]) SetFrozen(name string, frozen bool) error {
	b := m.Block(name)
	if b == nil {
		return fmt.Errorf("no block named %q (blocks: %v)", name, m.Config.BlockNames())
	}
	b.Frozen = frozen
	m.applyFreeze()
	return nil
}

// FreezeBelow freezes every block below index k and unfreezes the rest:
// FreezeBelow(len(Blocks)-1) trains the head only, FreezeBelow(0) trains
// everything.
func (m *Model[T]) FreezeBelow(k int) {
	for i, b := range m.Blocks {
		b.Frozen = i < k
	}
	m.applyFreeze()
}

// SetTrainBN sets fastai's train_bn behaviour and updates the parameters'
// trainable flags.
func (m *Model[T]) SetTrainBN(on bool) {
	m.TrainBN = on
	m.applyFreeze()
}

// applyFreeze sets each parameter's Trainable flag from its block and
// TrainBN. Gradients of parameters that become frozen are dropped so that a
// frozen parameter holds no gradient memory.
func (m *Model[T]) applyFreeze() {
	for _, b := range m.Blocks {
		for _, l := range b.Layers {
			on := !b.Frozen
			if _, isBN := l.(batchNorm); isBN && m.TrainBN {
				on = true
			}
			for _, p := range l.Params() {
				p.Trainable = on && !p.Buffer
				if !p.Trainable {
					p.Grad = nil
				}
			}
		}
	}
}

// layerTrains reports whether a layer runs in training mode during a
// training forward pass: BatchNorm in a frozen block runs in inference mode
// unless TrainBN.
func (m *Model[T]) layerTrains(b *Block[T], l Layer[T]) bool {
	if _, isBN := l.(batchNorm); isBN {
		return !b.Frozen || m.TrainBN
	}
	return true
}

// Forward runs a batch x of shape [N, InputShape...] through the model and
// returns the logits [N, classes]. x is normalised into an internal buffer,
// so the caller's tensor is left as it was. It panics if x's shape does not
// match the config's input shape.
func (m *Model[T]) Forward(x *Tensor[T], train bool) *Tensor[T] {
	if len(x.Shape) != len(m.inDim)+1 || !sameShape(x.Shape[1:], m.inDim) {
		panic(fmt.Sprintf("trainer: model %s: input shape %v, want [N %v]", m.Config.Name, x.Shape, m.inDim))
	}
	h := m.normalize(x)
	for _, b := range m.Blocks {
		for _, l := range b.Layers {
			h = l.Forward(h, train && m.layerTrains(b, l))
		}
	}
	return h
}

// normalize applies the config's normalisation to x, or returns x as it is.
func (m *Model[T]) normalize(x *Tensor[T]) *Tensor[T] {
	nz := m.Config.Normalize
	if nz == nil {
		return x
	}
	out := ensure(&m.norm, x.Shape...)
	n := x.Shape[0]
	per := x.Len() / max(n, 1)
	ch := m.inDim[0]
	inner := per / ch
	for i := 0; i < n; i++ {
		for c := 0; c < ch; c++ {
			k := c
			if len(nz.Mean) == 1 {
				k = 0
			}
			mean, inv := nz.Mean[k], 1/nz.Std[k]
			off := i*per + c*inner
			for j := off; j < off+inner; j++ {
				out.Data[j] = T((float64(x.Data[j]) - mean) * inv)
			}
		}
	}
	return out
}

// Backward propagates ∂loss/∂logits through the model, filling the
// gradients of trainable parameters. It stops below the lowest layer with a
// trainable parameter: frozen blocks beneath it cost no backward work.
func (m *Model[T]) Backward(dlogits *Tensor[T]) {
	lowB, lowL := m.lowestTrainable()
	if lowB < 0 {
		return
	}
	d := dlogits
	for bi := len(m.Blocks) - 1; bi >= lowB; bi-- {
		b := m.Blocks[bi]
		for li := len(b.Layers) - 1; li >= 0; li-- {
			if bi == lowB && li < lowL {
				return
			}
			needDX := bi > lowB || li > lowL
			d = b.Layers[li].Backward(d, needDX)
		}
	}
}

// lowestTrainable returns the block and layer index of the lowest layer
// with a trainable parameter, or -1, -1 if nothing is trainable.
func (m *Model[T]) lowestTrainable() (block, layer int) {
	for bi, b := range m.Blocks {
		for li, l := range b.Layers {
			for _, p := range l.Params() {
				if p.Trainable {
					return bi, li
				}
			}
		}
	}
	return -1, -1
}

// Params returns every parameter and buffer in state-dict order (blocks from
// input to output, layers in order).
func (m *Model[T]) Params() []*Param[T] {
	var ps []*Param[T]
	for _, b := range m.Blocks {
		ps = append(ps, blockParams(b)...)
	}
	return ps
}

func blockParams[T Float](b *Block[T]) []*Param[T] {
	var ps []*Param[T]
	for _, l := range b.Layers {
		ps = append(ps, l.Params()...)
	}
	return ps
}

// Count returns the number of learnable parameter elements in total and
// those currently trainable (Keras' summary figures). Buffers are not
// counted.
func (m *Model[T]) Count() (total, trainable int) {
	for _, p := range m.Params() {
		if p.Buffer {
			continue
		}
		total += p.Value.Len()
		if p.Trainable {
			trainable += p.Value.Len()
		}
	}
	return total, trainable
}

// BlockCount returns the number of learnable parameter elements of a block.
func BlockCount[T Float](b *Block[T]) int {
	n := 0
	for _, p := range blockParams(b) {
		if !p.Buffer {
			n += p.Value.Len()
		}
	}
	return n
}
