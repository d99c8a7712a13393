//go:build amd64 && !purego

package kernel

import "golang.org/x/sys/cpu"

// kernel4x24 computes a gemmMR×gemmNR tile from a packed panel of a (k
// groups of gemmMR) and one of b (k groups of gemmNR), then its output pass
// (see finishTile) into c with row stride ldc. k must be at least 1. It is
// written in AVX2 and FMA (sgemm_amd64.s).
//
//go:noescape
func kernel4x24(k int, a, b, c *float32, ldc int, beta float32, bias *float32, flags int)

// kernel4x24ind is kernel4x24 with row p of the b panel read at b +
// offs[p] (in elements); k must be at least 1.
//
//go:noescape
func kernel4x24ind(k int, a, b *float32, offs *int32, c *float32, ldc int, beta float32, bias *float32, flags int)

// detectKernel names the assembly kernel when the CPU and the operating
// system support AVX2 and FMA (x/sys/cpu checks that the OS saves the YMM
// registers), or returns "".
func detectKernel() string {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return "avx2-fma"
	}
	return ""
}

// tapGrad16 is TapGrad for one group with width 16; k ≥ 1. flags is
// kernBeta to add to the tile, 0 to store it.
//
//go:noescape
func tapGrad16(k int, x *float32, offs *int32, b, tile *float32, flags int)

// tapGrad8 is TapGrad for one group with width 8, like tapGrad16.
//
//go:noescape
func tapGrad8(k int, x *float32, offs *int32, b, tile *float32, flags int)

// sumShifted is SumShifted for the first n elements of dst, n a positive
// multiple of 8, with nt ≥ 1 offsets.
//
//go:noescape
func sumShifted(n int, dst, src *float32, offs *int32, nt int)

// maxPool2x2Plane is MaxPool2x2 for one plane, chunks blocks of eight
// windows a row, every block read and written whole.
//
//go:noescape
func maxPool2x2Plane(x, y *float32, arg *int32, oh, chunks, w, ow int)

// transposeSum8 is TransposeSum for eight rows of src (stride ld) and the
// first 8·blocks columns, into dst (stride width); with dosum 1 it adds
// each row to sum[0…7] in order.
//
//go:noescape
func transposeSum8(blocks int, src *float32, ld int, dst *float32, width int, sum *float64, dosum int)

// tapGrad8x2 is tapGrad8 for two groups, at x and x2, whose tiles follow
// each other.
//
//go:noescape
func tapGrad8x2(k int, x, x2 *float32, offs *int32, b, tile *float32, flags int)

// tapGrad16r5 is tapGrad16 for rows 0…4 only; row 5 of the tile is left
// as it was.
//
//go:noescape
func tapGrad16r5(k int, x *float32, offs *int32, b, tile *float32, flags int)

// copyRows is CopyRows for cols ≥ 8.
//
//go:noescape
func copyRows(dst *float32, ldd int, src *float32, lds int, rows, cols int)
