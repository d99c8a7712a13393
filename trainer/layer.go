package trainer

import "math/rand/v2"

// Param is a named tensor of a layer: a learnable parameter (weight, bias)
// or, when Buffer is set, state that is saved but not learned (BatchNorm's
// running statistics).
type Param[T Float] struct {
	// Name is the PyTorch-style state-dict key, such as "features.0.weight".
	Name  string
	Value *Tensor[T]
	// Grad holds ∂loss/∂Value after a backward pass in which the parameter
	// was trainable. It is nil for buffers and for parameters that have
	// never been trainable: a frozen parameter costs no gradient memory.
	Grad *Tensor[T]
	// Trainable is set by the model from its block's frozen state. Backward
	// computes Grad only for trainable parameters.
	Trainable bool
	// Buffer marks non-learned state (running_mean, running_var,
	// num_batches_tracked).
	Buffer bool
	// NoDecay excludes the parameter from weight decay (biases and
	// normalisation weights, as is usual in PyTorch recipes).
	NoDecay bool
	// Int64 marks a buffer that PyTorch stores as int64
	// (num_batches_tracked); it is written to safetensors as I64.
	Int64 bool
}

// grad returns p.Grad, allocating it on first use.
func (p *Param[T]) grad() *Tensor[T] {
	if p.Grad == nil || !p.Grad.SameShape(p.Value) {
		p.Grad = NewTensor[T](p.Value.Shape...)
	}
	return p.Grad
}

// Layer is one step of a block. Forward and Backward are a pair: Backward
// takes ∂loss/∂y for the output of the most recent Forward.
//
// Implementations keep their output and gradient buffers between calls, so
// the tensors they return are only valid until the next call; a layer
// panics if Backward is given a gradient whose shape differs from its last
// output, which is a programmer error.
type Layer[T Float] interface {
	// Kind is the layer's config type, such as "linear" or "conv2d".
	Kind() string
	// OutShape returns the per-sample output shape for a per-sample input
	// shape (without the batch dimension), or an error naming the mismatch.
	OutShape(in []int) ([]int, error)
	// Forward computes the layer's output for a batch x. train selects
	// training behaviour (batch statistics, dropout).
	Forward(x *Tensor[T], train bool) *Tensor[T]
	// Backward computes the gradients of the trainable parameters from dy
	// and, when needDX is set, returns ∂loss/∂x; otherwise it returns nil
	// and does no work for the input gradient.
	Backward(dy *Tensor[T], needDX bool) *Tensor[T]
	// Params returns the layer's parameters and buffers in state-dict order.
	Params() []*Param[T]
}

// initializer is implemented by layers with parameters: Reset draws fresh
// parameters from rng the way PyTorch initialises that layer.
type initializer interface {
	Reset(rng *rand.Rand)
}

// stochastic is implemented by layers that draw random numbers while
// training (Dropout). The model hands each such layer its own stream derived
// from the run's seed.
type stochastic interface {
	SetRand(rng *rand.Rand)
}

// batchNorm is implemented by the normalisation layers, which the model runs
// in inference mode when their block is frozen (unless TrainBN is set).
type batchNorm interface {
	isBatchNorm()
}
