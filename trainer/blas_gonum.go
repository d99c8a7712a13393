//go:build !openblas

package trainer

const backend = "gonum"

// transposeOperands makes gemm hand gonum's kernels untransposed operands.
const transposeOperands = true

// SetThreads sets the number of threads the BLAS backend may use for one
// matrix product. gonum's pure-Go backend follows GOMAXPROCS instead and
// ignores it. n below 1 counts as 1.
func SetThreads(n int) {}
