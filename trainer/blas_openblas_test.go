//go:build openblas

package trainer

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/netlib/blas/netlib"
)

// wantBLAS32 is the blas32 implementation the openblas build installs.
var wantBLAS32 blas32Want = blas32Want{"OpenBLAS through netlib", func() bool {
	_, ok := blas32.Implementation().(netlib.Implementation)
	return ok
}}
