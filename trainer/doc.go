// Package trainer is thaw's numerical core: tensors, layers with their forward
// and backward passes side by side, losses, optimizers, freezing, and the
// models that are built from a base model's config.json.
//
// Numbers are float32 in normal use (what users compare against in PyTorch);
// every type is generic over [Float] so that the same code runs in float64 for
// gradient checks against finite differences and for bit-tight comparisons.
//
// Every matrix product goes through gonum's BLAS interfaces (blas32 and
// blas64). The default backend is gonum's pure-Go implementation; building
// with the tag openblas swaps in OpenBLAS through gonum.org/v1/netlib.
//
// Data layout follows PyTorch: a batch is the leading dimension, images are
// NCHW, Linear weights are [out, in] and Conv2d weights [out, in, kh, kw], so a
// state dict moves between thaw and torch.nn unchanged.
//
// The package imports only the standard library and gonum. It never prints and
// never reads global state: randomness is passed in as a *rand.Rand.
package trainer
