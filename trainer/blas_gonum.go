//go:build !openblas

package trainer

const backend = "gonum"
