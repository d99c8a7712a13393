//go:build !amd64 || purego

package kernel

// detectKernel reports no assembly kernel: this build uses the portable Go
// one.
func detectKernel() string { return "" }

// kernel4x24 is never called in this build (useAsm stays false).
func kernel4x24(k int, a, b, c *float32, ldc int, beta float32, bias *float32, flags int) {
	panic("kernel: no assembly kernel in this build")
}

// kernel4x24ind is never called in this build (useAsm stays false).
func kernel4x24ind(k int, a, b *float32, offs *int32, c *float32, ldc int, beta float32, bias *float32, flags int) {
	panic("kernel: no assembly kernel in this build")
}

func tapGrad16(k int, x *float32, offs *int32, b, tile *float32, flags int) {
	panic("kernel: no assembly kernel in this build")
}

func tapGrad8(k int, x *float32, offs *int32, b, tile *float32, flags int) {
	panic("kernel: no assembly kernel in this build")
}

func sumShifted(n int, dst, src *float32, offs *int32, nt int) {
	panic("kernel: no assembly kernel in this build")
}

func maxPool2x2Plane(x, y *float32, arg *int32, oh, chunks, w, ow int) {
	panic("kernel: no assembly kernel in this build")
}

func transposeSum8(blocks int, src *float32, ld int, dst *float32, width int, sum *float64, dosum int) {
	panic("kernel: no assembly kernel in this build")
}

func tapGrad8x2(k int, x, x2 *float32, offs *int32, b, tile *float32, flags int) {
	panic("kernel: no assembly kernel in this build")
}

func tapGrad16r5(k int, x *float32, offs *int32, b, tile *float32, flags int) {
	panic("kernel: no assembly kernel in this build")
}

func copyRows(dst *float32, ldd int, src *float32, lds int, rows, cols int) {
	panic("kernel: no assembly kernel in this build")
}
