//go:build !openblas

package trainer

import (
	"gonum.org/v1/gonum/blas/blas32"

	"thaw/trainer/internal/kernel"
)

const backend = "gonum"

// transposeOperands makes gemm hand gonum's float64 kernels untransposed
// operands.
const transposeOperands = true

// thaw's float32 kernel is the blas32 implementation of the default build:
// gonum's, with package kernel's blocked GEMM for Sgemm. (blas64 keeps
// gonum's own.)
func init() { blas32.Use(kernel.Implementation{}) }

// SetThreads sets the number of threads the BLAS backend may use for one
// matrix product. gonum's pure-Go backend follows GOMAXPROCS instead and
// ignores it. n below 1 counts as 1.
func SetThreads(n int) {}
