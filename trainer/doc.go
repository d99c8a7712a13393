// Package trainer is thaw's numerical core: tensors, layers with their
// forward and backward passes side by side, losses, optimizers, freezing,
// plans and the run loop, and the files models and data come in.
//
// # Numbers
//
// Numbers are float32 in normal use (what users compare against in
// PyTorch); the numerical types are generic over [Float] so that the same
// code runs in float64 for gradient checks against finite differences and
// for bit-tight comparisons with PyTorch. float32 products run on thaw's
// own cache-blocked GEMM (trainer/internal/kernel): an AVX2+FMA micro-kernel
// in Go assembly where the CPU has one, portable Go otherwise (forced by
// the purego build tag or THAW_KERNEL=generic; see [KernelPath]). Plain
// products go through gonum's BLAS interfaces, where the kernel is
// installed as the blas32 implementation (gonum's, with thaw's Sgemm);
// the forms BLAS lacks call the kernel directly: convolutions lower their
// input straight into its packed panels, or read it in place at stride 1,
// and bias and ReLU are fused into the output pass. float64 products go to
// gonum's blas64. Built with the tag openblas, OpenBLAS through
// gonum.org/v1/netlib is installed as both, so the fully connected layers'
// float32 products go to it (see [Backend] and [SetThreads]). Each row of
// a product is computed the same way wherever it sits in the batch and
// however the work is split between goroutines, so results are
// bit-identical on one machine and kernel path.
//
// # Models
//
// A base model is a config.json ([Config]: input shape, normalisation,
// classes, and named blocks of layers) and a model.safetensors holding its
// weights under PyTorch's names and shapes, so a state dict moves between
// thaw and torch.nn unchanged ([LoadModel], [SaveModel]; the file format
// itself is package thaw/trainer/safetensors, and [ToTensor] and
// [FromTensor] convert its tensors). A [Model] freezes per [Block]: a frozen parameter gets
// no gradient, no optimizer state and no weight decay, a frozen BatchNorm
// runs in inference mode, and the backward pass stops below the lowest
// trainable block. [Model.ReplaceHead] gives a model a new head for other
// classes.
//
// # Training
//
// A [Plan] is a list of stages, each saying which blocks train, for how
// long, at what peak learning rate and schedule, with what discriminative
// factor; [Preset] expands the usual recipes (head, fine-tune, gradual,
// chain-thaw, full, lp-ft). [Run] executes a resolved plan on a model and a
// [Dataset] (loaded from IDX, CSV or image folders), reporting [Progress] at
// a bounded rate: losses, evaluations, per-block diagnostics and the
// forgetting gauge. It is synchronous and cancellable; the caller adds the
// goroutine. [FindLR] is fastai's learning-rate range test.
//
// The package imports only the standard library, gonum and
// golang.org/x/sys/cpu (to pick the kernel), and its own sub-packages:
// safetensors (the weights' file format), atomicfile (files written whole
// or not at all), termtext and internal/kernel (the float32 GEMM). It
// never prints and never reads global state: randomness flows from a seed
// passed in.
package trainer
