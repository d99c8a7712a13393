//go:build !amd64 || purego || openblas

package trainer

// detectKernel reports no assembly kernel: this build uses the portable Go
// one.
func detectKernel() (string, func(k int, a, b, c *float32, ldc int, beta float32, bias *float32, flags int)) {
	return "", nil
}
