package trainer

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Head replacement and the source head.
//
// When the target task has other classes than the base model, the head is
// replaced by a fresh block of the same layout whose last Linear has one
// output per target class. The forgetting gauge then needs the source task's
// accuracy through the backbone as it is now: the caller keeps the source
// head as a separate, frozen *Block (m.Head() taken before ReplaceHead, or
// CloneHead for a snapshot) and evaluates with ForwardWithHead. The source
// head is not part of the model, so it is neither trained nor saved.

// ReplaceHead gives the model a new head for classes: a new block with the
// old head's name, LRMult and layer layout, in which the last Linear has
// out_features = len(classes). Every layer of the new head is
// re-initialised from rng, in order, the way PyTorch initialises a freshly
// built module (nn.Linear: weight and bias from U(±1/√in)); so a head of
// Linear–ReLU–Linear gets both Linear layers fresh, which is what replacing
// model.classifier with a new nn.Sequential does. Dropout layers in the new
// head get their own streams drawn from rng afterwards. The new head is
// trainable whatever the old head's Frozen flag.
//
// Config.Classes and the head's layer config are updated (on copies: the
// config the model was built from is not changed), so saving the model
// writes a config.json that matches its weights.
//
// The old head block is detached and left with its weights: a caller that
// took m.Head() before the call can use it as the source head. Its
// parameters are marked non-trainable and their gradients dropped.
// Optimizers drop the old head's state at their next Step.
//
// It returns an error, and leaves the model unchanged, if there are fewer
// than two classes (ErrTooFewClasses), a class name is empty or repeated or
// prints like another (ErrClassNames), or the head has no Linear layer.
func (m *Model[T]) ReplaceHead(classes []string, rng *rand.Rand) error {
	if len(classes) < 2 {
		return fmt.Errorf("replace head: %s: %w", nClasses(len(classes)), ErrTooFewClasses)
	}
	seen := map[string]bool{}
	for i, c := range classes {
		if c == "" {
			return fmt.Errorf("replace head: class %d has no name", i)
		}
		if seen[c] {
			return fmt.Errorf("replace head: class %q appears twice", c)
		}
		seen[c] = true
	}
	if err := checkClassNames(classes); err != nil {
		return fmt.Errorf("replace head: %w", err)
	}
	hi := len(m.Blocks) - 1
	bc := m.Config.Blocks[hi]
	bc.Layers = slices.Clone(bc.Layers)
	last := -1
	for j := len(bc.Layers) - 1; j >= 0 && last < 0; j-- {
		if bc.Layers[j].Type == "linear" {
			last = j
		}
	}
	if last < 0 {
		return fmt.Errorf("replace head: head %q has no linear layer to resize", bc.Name)
	}
	bc.Layers[last].OutFeatures = len(classes)
	old := m.Blocks[hi]
	nb, out, err := buildBlock[T](bc, m.headInput())
	if err != nil {
		return fmt.Errorf("replace head: %w", err)
	}
	if len(out) != 1 || out[0] != len(classes) {
		return fmt.Errorf("replace head: head %q outputs shape %v, want [%d]", bc.Name, out, len(classes))
	}
	nb.LRMult = old.LRMult
	resetBlock(nb, rng)
	for _, l := range nb.Layers {
		if s, ok := l.(stochastic); ok {
			s.SetRand(rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())))
		}
	}

	blocks := slices.Clone(m.Config.Blocks)
	blocks[hi] = bc
	m.Config.Blocks = blocks
	m.Config.Classes = slices.Clone(classes)
	m.Blocks = slices.Clone(m.Blocks)
	m.Blocks[hi] = nb
	detach(old)
	m.applyFreeze()
	return nil
}

// CloneHead returns a deep copy of the current head block: same layers,
// parameter and buffer values copied, frozen and without gradients. It is
// the source head for ForwardWithHead when the head itself is about to be
// fine-tuned in place; it is meant for evaluation only.
func (m *Model[T]) CloneHead() *Block[T] {
	hi := len(m.Blocks) - 1
	src := m.Blocks[hi]
	nb, _, err := buildBlock[T](m.Config.Blocks[hi], m.headInput())
	if err != nil {
		// The config built this head once already.
		panic(fmt.Sprintf("trainer: clone head: %v", err))
	}
	nb.LRMult = src.LRMult
	for li, l := range nb.Layers {
		from := src.Layers[li].Params()
		for pi, p := range l.Params() {
			copy(p.Value.Data, from[pi].Value.Data)
		}
	}
	detach(nb)
	return nb
}

// ForwardWithHead runs a batch x through every block but the head, then
// through head, in inference mode (BatchNorm uses running statistics,
// Dropout is off), and returns head's logits. A nil head means the model's
// own head. It measures the source task through the current backbone (the
// forgetting gauge).
//
// Like any Forward it overwrites the activations the backbone keeps for
// Backward, so call it between training steps, not between a Forward and
// its Backward. It panics if x's shape does not match the config's input
// shape or head does not accept the backbone's output, which are programmer
// errors.
func (m *Model[T]) ForwardWithHead(x *Tensor[T], head *Block[T]) *Tensor[T] {
	if head == nil {
		return m.Forward(x, false)
	}
	if len(x.Shape) != len(m.inDim)+1 || !sameShape(x.Shape[1:], m.inDim) {
		panic(fmt.Sprintf("trainer: model %s: input shape %v, want [N %v]", m.Config.Name, x.Shape, m.inDim))
	}
	h := m.normalize(x)
	for _, b := range m.Blocks[:len(m.Blocks)-1] {
		for _, l := range b.Layers {
			h = l.Forward(h, false)
		}
	}
	for _, l := range head.Layers {
		h = l.Forward(h, false)
	}
	return h
}

// headInput returns the per-sample shape that enters the head.
func (m *Model[T]) headInput() []int {
	shape := slices.Clone(m.inDim)
	for _, b := range m.Blocks[:len(m.Blocks)-1] {
		for _, l := range b.Layers {
			out, err := l.OutShape(shape)
			if err != nil {
				panic(fmt.Sprintf("trainer: model %s: %v", m.Config.Name, err))
			}
			shape = out
		}
	}
	return shape
}

// buildBlock constructs the layers of bc, with zero parameters, for a
// per-sample input shape, and returns the block with its output shape.
func buildBlock[T Float](bc BlockConfig, in []int) (*Block[T], []int, error) {
	b := &Block[T]{Name: bc.Name, config: &bc, in: slices.Clone(in)}
	shape := in
	for li, lc := range bc.Layers {
		l, err := newLayer[T](lc, shape)
		if err == nil {
			shape, err = l.OutShape(shape)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("block %q, layer %d (%s): %w", bc.Name, li, lc.Type, err)
		}
		b.Layers = append(b.Layers, l)
	}
	fuseReLUs(b)
	return b, shape, nil
}

// detach marks a block that is no longer part of a model frozen, with no
// trainable parameters and no gradient memory.
func detach[T Float](b *Block[T]) {
	b.Frozen = true
	for _, p := range blockParams(b) {
		p.Trainable = false
		p.Grad = nil
	}
}

// CutModel returns m's blocks 0..k, with copies of their weights, topped
// by a fresh linear head named "probe" (after a flatten when block k's
// output has more than one dimension) from block k's output to m's
// classes, initialised from rng as [New] initialises a model. The probe
// of block k is this model trained with everything below the head frozen.
// k = -1 keeps no block: the head alone on the raw input, the probe of
// the input itself. m is not changed.
//
// It returns an error when block k's output shape cannot be computed or
// the cut model cannot be built. It panics if k is neither -1 nor the
// index of one of m's blocks.
func CutModel[T Float](m *Model[T], k int, rng *rand.Rand) (*Model[T], error) {
	if k < -1 || k >= len(m.Blocks) {
		panic(fmt.Sprintf("trainer: cut at block %d of %d", k, len(m.Blocks)))
	}
	cfg := m.Config
	cfg.Blocks = slices.Clone(cfg.Blocks[:k+1])
	// The output shape of block k, through the layers' own shape rules.
	shape := slices.Clone(cfg.InputShape)
	for _, b := range m.Blocks[:k+1] {
		for _, l := range b.Layers {
			out, err := l.OutShape(shape)
			if err != nil {
				return nil, err
			}
			shape = out
		}
	}
	var layers []LayerConfig
	if len(shape) > 1 {
		layers = append(layers, LayerConfig{Type: "flatten"})
	}
	layers = append(layers, LayerConfig{Type: "linear", Name: "probe", InFeatures: numel(shape), OutFeatures: len(cfg.Classes)})
	cfg.Blocks = append(cfg.Blocks, BlockConfig{Name: "probe", Layers: layers})
	cut, err := New[T](&cfg, rng)
	if err != nil {
		at := "the input"
		if k >= 0 {
			at = m.Blocks[k].Name
		}
		return nil, fmt.Errorf("cut above %s: %w", at, err)
	}
	for i := range k + 1 {
		src, dst := m.Blocks[i].Layers, cut.Blocks[i].Layers
		for j := range src {
			sp, dp := src[j].Params(), dst[j].Params()
			for pi := range sp {
				copy(dp[pi].Value.Data, sp[pi].Value.Data)
			}
		}
	}
	return cut, nil
}
