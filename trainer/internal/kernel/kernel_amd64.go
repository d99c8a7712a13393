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
