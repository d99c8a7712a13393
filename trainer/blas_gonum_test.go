//go:build !openblas

package trainer

import (
	"gonum.org/v1/gonum/blas/blas32"

	"thaw/trainer/internal/kernel"
)

// wantBLAS32 is the blas32 implementation the default build installs.
var wantBLAS32 blas32Want = blas32Want{"thaw's kernel", func() bool {
	_, ok := blas32.Implementation().(kernel.Implementation)
	return ok
}}
