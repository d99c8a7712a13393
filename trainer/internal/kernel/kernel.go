// Package kernel is thaw's float32 matrix product: a cache-blocked GEMM with
// an AVX2+FMA micro-kernel in Go assembly on amd64 and a portable Go one
// elsewhere, chosen at start-up, plus the packing routines a convolution
// uses to lower its input straight into the product's panels.
package kernel

import (
	"os"
	"runtime"
	"sync"
)

// The float32 matrix product of the default build: a cache-blocked GEMM in
// the structure of GotoBLAS and BLIS (Goto and van de Geijn, "Anatomy of
// High-Performance Matrix Multiplication", ACM TOMS 34(3), 2008; Van Zee and
// van de Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS
// Functionality", ACM TOMS 41(3), 2015). op(b) is cut into column blocks of
// ncBlock and row blocks of at most KC, each packed into panels NR
// columns wide; op(a) is cut into row blocks of mcBlock packed into panels
// MR rows high; a micro-kernel multiplies one A panel by one B panel
// into a MR×NR tile of c held in registers.
//
// Every element of c is computed the same way wherever it lies: a sum over
// k in ascending order, one fused or unfused multiply-add per term as the
// kernel path dictates, restarted from zero at the same k-block boundaries
// (which depend on k alone) and added to c at the end of each block. So a
// row of the result does not depend on the other rows of a, on its position
// in the batch, or on how the work is split between goroutines: the
// frozen-prefix cache and parallel evaluation rely on that.
const (
	MR      = 4    // rows of a micro-tile
	NR      = 24   // columns of a micro-tile: three 8-wide vectors
	KC      = 256  // longest k-block: a KC×NR panel of b stays in L1
	mcBlock = 160  // rows of a packed block of a (MC×KC, 160 KiB, in L2)
	ncBlock = 3072 // columns of a packed block of b (KC×NC, 3 MiB, in L3)
)

// Epilogue flags of a micro-kernel call.
const (
	kernBeta = 1 << iota // c = beta·c + tile, instead of c = tile
	kernBias             // add bias[r] to row r of the tile first
	kernReLU             // then replace values below zero by zero
)

// kernelPath names the micro-kernel chosen at start-up; useAsm selects the
// assembly kernel4x24 over kernelGeneric. (kernel4x24 is called directly,
// not through a function value, so that the scratch tile stays on the
// stack.)
var (
	kernelPath = "generic"
	useAsm     bool
)

func init() {
	// THAW_KERNEL=generic forces the portable kernel, so that both paths
	// can be tested on one machine.
	if os.Getenv("THAW_KERNEL") == "generic" {
		return
	}
	if p := detectKernel(); p != "" {
		kernelPath, useAsm = p, true
	}
}

// Path names the micro-kernel in use: "avx2-fma" (Go assembly, amd64 with
// AVX2 and FMA) or "generic" (portable Go, forced by the purego build tag
// or THAW_KERNEL=generic). The two give results that differ in the last
// bits; each is deterministic.
func Path() string { return kernelPath }

// SetGeneric makes the package use the portable kernel when on is set and
// the one chosen at start-up otherwise, and returns a function that
// restores the previous choice. It is for tests that check both paths in
// one process; it must not race with products in progress.
func SetGeneric(on bool) (restore func()) {
	saved := useAsm
	useAsm = !on && kernelPath != "generic"
	return func() { useAsm = saved }
}

// Sgemm computes c = alpha·op(a)·op(b) + beta·c for row-major float32
// matrices, then, as its output pass, adds bias[i] to every element of row i
// when bias is not nil and clamps the result at zero when relu is set.
// op(a) is m×k, op(b) k×n, c m×n; tA and tB transpose a and b. beta 0
// ignores c's previous contents (NaN included), as BLAS does. alpha other
// than 1 scales a while it is packed.
func Sgemm(tA, tB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int, bias []float32, relu bool) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 || alpha == 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc:][:n]
			for j := range row {
				var t float32
				if beta != 0 {
					t = float32(beta * row[j])
				}
				if bias != nil {
					t += bias[i]
				}
				if relu && 0 > t {
					t = 0
				}
				row[j] = t
			}
		}
		return
	}
	// k-blocks of equal length at most KC: the boundaries depend on k
	// alone, never on m, n or the thread count.
	nblk := (k + KC - 1) / KC
	kcb := (k + nblk - 1) / nblk
	bp := getPack(min(kcb, k) * min(RoundUp(n, NR), ncBlock))
	defer putPack(bp)
	for jc := 0; jc < n; jc += ncBlock {
		nb := min(ncBlock, n-jc)
		for pc := 0; pc < k; pc += kcb {
			kb := min(kcb, k-pc)
			PackB(*bp, b, ldb, tB, pc, kb, jc, nb)
			ep := epilogue{beta: 1, flags: kernBeta}
			if pc == 0 {
				ep.beta = beta
				if beta != 0 {
					ep.flags = kernBeta
				} else {
					ep.flags = 0
				}
				if bias != nil {
					ep.flags |= kernBias
				}
			}
			if relu && pc+kb >= k {
				ep.flags |= kernReLU
			}
			blocks := (m + mcBlock - 1) / mcBlock
			work := func(ic int, ap []float32) {
				mb := min(mcBlock, m-ic)
				PackA(ap, a, lda, tA, ic, mb, pc, kb, alpha)
				var bb []float32
				if ep.flags&kernBias != 0 {
					bb = bias[ic:][:mb]
				}
				macroKernel(kb, mb, nb, ap, kb, *bp, kb, c[ic*ldc+jc:], ldc, ep, bb)
			}
			if w := gemmWorkers(blocks, m, nb, kb); w > 1 {
				parallelBlocks(blocks, w, kb, work)
			} else {
				ap := getPack(RoundUp(min(m, mcBlock), MR) * kb)
				for ic := 0; ic < m; ic += mcBlock {
					work(ic, *ap)
				}
				putPack(ap)
			}
		}
	}
}

// SgemmPacked computes c = ap·bp + beta·c, then adds bias[i] to row i when
// bias is not nil and clamps at zero when relu is set, like Sgemm, for
// operands packed whole: ap by PackA over all m rows and k steps, bp by
// PackB over all k steps and n columns. A convolution lowers its input
// straight into bp and packs its weights once for the whole batch. The
// result is bit for bit what Sgemm gives for the same operands.
func SgemmPacked(m, n, k int, ap, bp []float32, beta float32, c []float32, ldc int, bias []float32, relu bool) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		Sgemm(false, false, m, n, 0, 1, nil, 1, nil, 1, beta, c, ldc, bias, relu)
		return
	}
	nblk := (k + KC - 1) / KC
	kcb := (k + nblk - 1) / nblk
	for pc := 0; pc < k; pc += kcb {
		kb := min(kcb, k-pc)
		ep := epilogue{beta: 1, flags: kernBeta}
		if pc == 0 {
			ep = epilogue{beta: beta}
			if beta != 0 {
				ep.flags = kernBeta
			}
			if bias != nil {
				ep.flags |= kernBias
			}
		}
		if relu && pc+kb >= k {
			ep.flags |= kernReLU
		}
		for ic := 0; ic < m; ic += mcBlock {
			mb := min(mcBlock, m-ic)
			var bb []float32
			if ep.flags&kernBias != 0 {
				bb = bias[ic:][:mb]
			}
			macroKernel(kb, mb, n, ap[ic*k+pc*MR:], k, bp[pc*NR:], k, c[ic*ldc:], ldc, ep, bb)
		}
	}
}

// SgemmIndirect is SgemmPacked (beta 0) with b read in place instead of
// packed: row p of op(b) is b[offs[p] : offs[p]+n]. A stride-1
// convolution passes its zero-padded input and the offsets of its taps, and
// computes its output on the padded grid, so it needs no lowered copy of
// the input at all. b must hold RoundUp(n, NR) elements from every offset,
// since the last tile reads past n; it panics otherwise. The result is bit
// for bit what SgemmPacked gives for the same operands.
func SgemmIndirect(m, n, k int, ap, b []float32, offs []int32, c []float32, ldc int, bias []float32, relu bool) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		Sgemm(false, false, m, n, 0, 1, nil, 1, nil, 1, 0, c, ldc, bias, relu)
		return
	}
	offs = offs[:k]
	for _, o := range offs {
		if o < 0 || int(o)+RoundUp(n, NR) > len(b) {
			panic("kernel: SgemmIndirect: an offset reads past b")
		}
	}
	nblk := (k + KC - 1) / KC
	kcb := (k + nblk - 1) / nblk
	var tile [MR * NR]float32
	for pc := 0; pc < k; pc += kcb {
		kb := min(kcb, k-pc)
		ep := epilogue{beta: 1, flags: kernBeta}
		if pc == 0 {
			ep = epilogue{}
			if bias != nil {
				ep.flags |= kernBias
			}
		}
		if relu && pc+kb >= k {
			ep.flags |= kernReLU
		}
		of := offs[pc:][:kb]
		for jr := 0; jr < n; jr += NR {
			nr := min(NR, n-jr)
			bj := b[jr:]
			for ir := 0; ir < m; ir += MR {
				mr := min(MR, m-ir)
				a := ap[ir*k+pc*MR:][:kb*MR]
				var bias4 []float32
				if ep.flags&kernBias != 0 {
					bias4 = bias[ir:][:mr]
				}
				if mr == MR && nr == NR {
					cc := c[ir*ldc+jr:][:(MR-1)*ldc+NR]
					if useAsm {
						var pb *float32
						if bias4 != nil {
							pb = &bias4[0]
						}
						kernel4x24ind(kb, &a[0], &bj[0], &of[0], &cc[0], ldc, ep.beta, pb, ep.flags)
					} else {
						kernelGenericInd(kb, a, bj, of, tile[:])
						finishTile(tile[:], cc, ldc, MR, NR, ep, bias4)
					}
					continue
				}
				if useAsm {
					kernel4x24ind(kb, &a[0], &bj[0], &of[0], &tile[0], NR, 0, nil, 0)
				} else {
					kernelGenericInd(kb, a, bj, of, tile[:])
				}
				finishTile(tile[:], c[ir*ldc+jr:], ldc, mr, nr, ep, bias4)
			}
		}
	}
}

// kernelGenericInd is kernelGeneric with row p of the b panel at
// b[offs[p]:].
func kernelGenericInd(kb int, ap, b []float32, offs []int32, tile []float32) {
	ap = ap[:kb*MR]
	offs = offs[:kb]
	for j := 0; j < NR; j += 4 {
		var c00, c01, c02, c03, c10, c11, c12, c13 float32
		var c20, c21, c22, c23, c30, c31, c32, c33 float32
		for p, o := range offs {
			a := ap[p*MR:][:4]
			b := b[int(o)+j:][:4]
			a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
			b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			c20 += a2 * b0
			c21 += a2 * b1
			c22 += a2 * b2
			c23 += a2 * b3
			c30 += a3 * b0
			c31 += a3 * b1
			c32 += a3 * b2
			c33 += a3 * b3
		}
		t := tile[j:]
		t[0], t[1], t[2], t[3] = c00, c01, c02, c03
		t = tile[NR+j:]
		t[0], t[1], t[2], t[3] = c10, c11, c12, c13
		t = tile[2*NR+j:]
		t[0], t[1], t[2], t[3] = c20, c21, c22, c23
		t = tile[3*NR+j:]
		t[0], t[1], t[2], t[3] = c30, c31, c32, c33
	}
}

// epilogue is what a micro-kernel does with its tile.
type epilogue struct {
	beta  float32
	flags int
}

// gemmWorkers returns how many goroutines share the row blocks of one
// packed block of b: one unless there are several row blocks and enough
// work for each to outweigh starting a goroutine.
func gemmWorkers(blocks, m, n, k int) int {
	if blocks < 2 || m*n*k < 1<<22 {
		return 1
	}
	return min(blocks, runtime.GOMAXPROCS(0))
}

// parallelBlocks runs work on row blocks 0, mcBlock, 2·mcBlock, … on w
// goroutines, each with its own packing buffer. Which goroutine computes a
// block does not change its result.
func parallelBlocks(blocks, w, kb int, work func(ic int, ap []float32)) {
	var wg sync.WaitGroup
	for g := 0; g < w; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ap := getPack(mcBlock * kb)
			defer putPack(ap)
			for blk := g; blk < blocks; blk += w {
				work(blk*mcBlock, *ap)
			}
		}()
	}
	wg.Wait()
}

// macroKernel multiplies the packed mb×kb block ap by the packed kb×nb
// block bp into c (row stride ldc), tile by tile. The panels of ap hold ak
// steps of k and those of bp bk (ak = bk = kb when the block was packed on
// its own; more when whole panels were packed and ap and bp start at the
// block's first step). Tiles that overhang c are computed into a scratch
// tile and the part inside c is finished in Go with the same operations as
// the kernel's output pass.
func macroKernel(kb, mb, nb int, ap []float32, ak int, bp []float32, bk int, c []float32, ldc int, ep epilogue, bias []float32) {
	var tile [MR * NR]float32
	for jr := 0; jr < nb; jr += NR {
		nr := min(NR, nb-jr)
		b := bp[jr*bk:][:kb*NR]
		for ir := 0; ir < mb; ir += MR {
			mr := min(MR, mb-ir)
			a := ap[ir*ak:][:kb*MR]
			var bias4 []float32
			if ep.flags&kernBias != 0 {
				bias4 = bias[ir:][:mr]
			}
			if mr == MR && nr == NR {
				cc := c[ir*ldc+jr:][:(MR-1)*ldc+NR]
				if useAsm {
					var pb *float32
					if bias4 != nil {
						pb = &bias4[0]
					}
					kernel4x24(kb, &a[0], &b[0], &cc[0], ldc, ep.beta, pb, ep.flags)
				} else {
					kernelGeneric(kb, a, b, tile[:])
					finishTile(tile[:], cc, ldc, MR, NR, ep, bias4)
				}
				continue
			}
			if useAsm {
				kernel4x24(kb, &a[0], &b[0], &tile[0], NR, 0, nil, 0)
			} else {
				kernelGeneric(kb, a, b, tile[:])
			}
			finishTile(tile[:], c[ir*ldc+jr:], ldc, mr, nr, ep, bias4)
		}
	}
}

// finishTile is the kernels' output pass in Go: it writes the mr×nr corner
// of the raw tile (row stride NR) into c. The order of operations is
// the assembly kernel's, so both give the same bits: bias, then beta·c
// (rounded before the sum, which the conversion guarantees), then ReLU.
func finishTile(tile, c []float32, ldc, mr, nr int, ep epilogue, bias []float32) {
	for r := 0; r < mr; r++ {
		src := tile[r*NR:][:nr]
		dst := c[r*ldc:][:nr]
		for j, t := range src {
			if ep.flags&kernBias != 0 {
				t += bias[r]
			}
			if ep.flags&kernBeta != 0 {
				t = float32(ep.beta*dst[j]) + t
			}
			if ep.flags&kernReLU != 0 && 0 > t {
				t = 0
			}
			dst[j] = t
		}
	}
}

// kernelGeneric is the portable micro-kernel: tile = ap·bp for one packed
// MR×kb panel of a and one kb×NR panel of b, summing over k in
// ascending order, four columns at a time so the sixteen sums stay in
// registers.
func kernelGeneric(kb int, ap, bp, tile []float32) {
	ap = ap[:kb*MR]
	bp = bp[:kb*NR]
	for j := 0; j < NR; j += 4 {
		var c00, c01, c02, c03, c10, c11, c12, c13 float32
		var c20, c21, c22, c23, c30, c31, c32, c33 float32
		for p := 0; p < kb; p++ {
			a := ap[p*MR:][:4]
			b := bp[p*NR+j:][:4]
			a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
			b0, b1, b2, b3 := b[0], b[1], b[2], b[3]
			c00 += a0 * b0
			c01 += a0 * b1
			c02 += a0 * b2
			c03 += a0 * b3
			c10 += a1 * b0
			c11 += a1 * b1
			c12 += a1 * b2
			c13 += a1 * b3
			c20 += a2 * b0
			c21 += a2 * b1
			c22 += a2 * b2
			c23 += a2 * b3
			c30 += a3 * b0
			c31 += a3 * b1
			c32 += a3 * b2
			c33 += a3 * b3
		}
		t := tile[j:]
		t[0], t[1], t[2], t[3] = c00, c01, c02, c03
		t = tile[NR+j:]
		t[0], t[1], t[2], t[3] = c10, c11, c12, c13
		t = tile[2*NR+j:]
		t[0], t[1], t[2], t[3] = c20, c21, c22, c23
		t = tile[3*NR+j:]
		t[0], t[1], t[2], t[3] = c30, c31, c32, c33
	}
}

// PackA copies rows [ic, ic+mb) and columns [pc, pc+kb) of op(a), scaled by
// alpha, into ap as panels of MR rows: panel i holds, for each p in
// order, the MR elements of column p. Rows past mb are zero.
func PackA(ap, a []float32, lda int, tA bool, ic, mb, pc, kb int, alpha float32) {
	for i := 0; i < mb; i += MR {
		mr := min(MR, mb-i)
		dst := ap[i*kb:][:kb*MR]
		if tA {
			// op(a)[r][p] = a[p][r]: each p is a contiguous run of rows.
			for p := 0; p < kb; p++ {
				src := a[(pc+p)*lda+ic+i:][:mr]
				d := dst[p*MR:][:MR]
				copy(d, src)
				clear(d[mr:])
			}
		} else if mr == MR {
			r0 := a[(ic+i)*lda+pc:][:kb]
			r1 := a[(ic+i+1)*lda+pc:][:kb]
			r2 := a[(ic+i+2)*lda+pc:][:kb]
			r3 := a[(ic+i+3)*lda+pc:][:kb]
			for p := range kb {
				d := dst[p*MR:][:4]
				d[0], d[1], d[2], d[3] = r0[p], r1[p], r2[p], r3[p]
			}
		} else {
			clear(dst)
			for r := 0; r < mr; r++ {
				src := a[(ic+i+r)*lda+pc:][:kb]
				for p, v := range src {
					dst[p*MR+r] = v
				}
			}
		}
		if alpha != 1 {
			for p := range dst {
				dst[p] *= alpha
			}
		}
	}
}

// PackB copies rows [pc, pc+kb) and columns [jc, jc+nb) of op(b) into bp as
// panels of NR columns: panel j holds, for each p in order, the NR
// elements of row p. Columns past nb are zero.
func PackB(bp, b []float32, ldb int, tB bool, pc, kb, jc, nb int) {
	for j := 0; j < nb; j += NR {
		nr := min(NR, nb-j)
		dst := bp[j*kb:][:kb*NR]
		if !tB {
			for p := 0; p < kb; p++ {
				d := dst[p*NR:][:NR]
				copy(d, b[(pc+p)*ldb+jc+j:][:nr])
				clear(d[nr:])
			}
			continue
		}
		// op(b)[p][c] = b[c][p]: gather columns, eight at a time so that
		// each write fills eight consecutive elements.
		c := 0
		for ; c+8 <= nr; c += 8 {
			s0 := b[(jc+j+c)*ldb+pc:][:kb]
			s1 := b[(jc+j+c+1)*ldb+pc:][:kb]
			s2 := b[(jc+j+c+2)*ldb+pc:][:kb]
			s3 := b[(jc+j+c+3)*ldb+pc:][:kb]
			s4 := b[(jc+j+c+4)*ldb+pc:][:kb]
			s5 := b[(jc+j+c+5)*ldb+pc:][:kb]
			s6 := b[(jc+j+c+6)*ldb+pc:][:kb]
			s7 := b[(jc+j+c+7)*ldb+pc:][:kb]
			for p := range kb {
				d := dst[p*NR+c:][:8]
				d[0], d[1], d[2], d[3] = s0[p], s1[p], s2[p], s3[p]
				d[4], d[5], d[6], d[7] = s4[p], s5[p], s6[p], s7[p]
			}
		}
		for ; c < nr; c++ {
			src := b[(jc+j+c)*ldb+pc:][:kb]
			for p, v := range src {
				dst[p*NR+c] = v
			}
		}
		if nr < NR {
			for p := 0; p < kb; p++ {
				clear(dst[p*NR+nr : (p+1)*NR])
			}
		}
	}
}

func RoundUp(x, to int) int { return (x + to - 1) / to * to }

// Packing buffers, shared by concurrent runs.
var packPool sync.Pool

func getPack(n int) *[]float32 {
	p, _ := packPool.Get().(*[]float32)
	if p == nil {
		p = new([]float32)
	}
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

func putPack(p *[]float32) { packPool.Put(p) }
