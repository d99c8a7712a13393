// Package trainer is thaw's numerical core: tensors, layers with their
// forward and backward passes side by side, losses, optimizers, freezing,
// plans and the run loop, and the files models and data come in.
//
// # Numbers
//
// Numbers are float32 in normal use (what users compare against in
// PyTorch); the numerical types are generic over [Float] so that the same
// code runs in float64 for gradient checks against finite differences and
// for bit-tight comparisons with PyTorch. Every matrix product goes through
// gonum's BLAS interfaces (blas32 and blas64): gonum's pure-Go
// implementation by default, OpenBLAS through gonum.org/v1/netlib when
// built with the tag openblas (see [Backend] and [SetThreads]).
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
// The package imports only the standard library and gonum, and its own
// sub-packages: safetensors (the weights' file format), atomicfile (files
// written whole or not at all) and termtext. It never prints
// and never reads global state: randomness flows from a seed passed in.
package trainer
