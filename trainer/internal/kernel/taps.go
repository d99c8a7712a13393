package kernel

// Kernels for the two halves of a convolution's backward pass that are not
// a plain product: the weight gradient, whose second operand is the lowered
// input read transposed, and the adjoint of lowering (col2im), which sums
// the column gradient of every tap back onto the input. Both read the
// padded input or its gradient in place through offset tables instead of
// gathering a lowered copy, and both keep the order of every sum the
// lowered form had, so they give its bits.

// TapRows is how many consecutive elements of x one TapGrad group covers:
// the kernel columns kj … kj+TapRows−1 of one kernel row.
const TapRows = 6

// TapGrad computes, for every group g, row r < rows (at most TapRows) and
// column o < width,
//
//	tiles[(g·TapRows + r)·width + o] = Σ_p x[bases[g] + offs[p] + r] · b[p·width + o]
//
// summed over p = 0, 1, … in ascending order from zero, one multiply-add per
// term as the micro-kernel of the path in use does (fused on avx2-fma), so
// every element is what the product of the gathered operands gives. A
// convolution's weight gradient dW = dY·colᵀ is this with x its padded
// input, bases the first tap of each run of kernel columns, offs the
// output pixels and b its output gradient transposed (pixels × channels).
// width is 8 or 16; bases and offs are not negative. The rows of a tile
// from rows to TapRows−1 are unspecified (they may be computed or left as
// they were). When acc is set the sums are added to tiles instead (tiles +
// sum, rounded once), as a GEMM's output pass with beta 1 adds a k-block's
// sums to c. It panics if an index falls outside x, b or tiles.
func TapGrad(x []float32, bases, offs []int32, b []float32, width, rows int, tiles []float32, acc bool) {
	if width != 8 && width != 16 {
		panic("kernel: TapGrad: width must be 8 or 16")
	}
	if rows < 1 || rows > TapRows {
		panic("kernel: TapGrad: rows out of range")
	}
	kb := len(offs)
	if len(bases) == 0 {
		return
	}
	if len(tiles) < len(bases)*TapRows*width {
		panic("kernel: TapGrad: tiles too short")
	}
	if kb == 0 {
		if !acc {
			clear(tiles[:len(bases)*TapRows*width])
		}
		return
	}
	if len(b) < kb*width {
		panic("kernel: TapGrad: b too short")
	}
	lo, hi := offs[0], offs[0]
	for _, o := range offs {
		lo, hi = min(lo, o), max(hi, o)
	}
	for _, base := range bases {
		if base < 0 || lo < 0 || int(base)+int(hi)+TapRows > len(x) {
			panic("kernel: TapGrad: an offset reads outside x")
		}
	}
	var flags int
	if acc {
		flags = kernBeta
	}
	g := 0
	if useAsm && width == 8 {
		// Two groups a call: six sums per group leave the FMA units
		// waiting on their latency.
		for ; g+2 <= len(bases); g += 2 {
			t := tiles[g*TapRows*width:][:2*TapRows*width]
			tapGrad8x2(kb, &x[bases[g]], &x[bases[g+1]], &offs[0], &b[0], &t[0], flags)
		}
	}
	for ; g < len(bases); g++ {
		base := bases[g]
		t := tiles[g*TapRows*width:][:TapRows*width]
		xs := x[base:]
		switch {
		case useAsm && width == 16 && rows <= 5:
			tapGrad16r5(kb, &xs[0], &offs[0], &b[0], &t[0], flags)
		case useAsm && width == 16:
			tapGrad16(kb, &xs[0], &offs[0], &b[0], &t[0], flags)
		case useAsm:
			tapGrad8(kb, &xs[0], &offs[0], &b[0], &t[0], flags)
		default:
			tapGradGeneric(xs, offs, b, width, rows, t, acc)
		}
	}
}

// tapGradGeneric is TapGrad's portable kernel for one group, four columns
// at a time with the same expression as kernelGeneric.
func tapGradGeneric(x []float32, offs []int32, b []float32, width, rows int, tile []float32, acc bool) {
	b = b[:len(offs)*width]
	for r := 0; r < rows; r++ {
		for o := 0; o < width; o += 4 {
			var c0, c1, c2, c3 float32
			for p, off := range offs {
				a := x[int(off)+r]
				bb := b[p*width+o:][:4]
				c0 += a * bb[0]
				c1 += a * bb[1]
				c2 += a * bb[2]
				c3 += a * bb[3]
			}
			t := tile[r*width+o:][:4]
			if acc {
				t[0] += c0
				t[1] += c1
				t[2] += c2
				t[3] += c3
				continue
			}
			t[0], t[1], t[2], t[3] = c0, c1, c2, c3
		}
	}
}

// SumShifted sets dst[j] = Σ_t src[offs[t] + j] for every j < len(dst),
// summing over t = 0, 1, … in ascending order from +0:
// ((0 + src[offs[0]+j]) + src[offs[1]+j]) + …. It is a convolution's col2im
// when src holds the column gradient of each tap on the padded grid and
// offs shifts each tap onto the input: the sum for each input element is
// the scatter-add of the lowered form in the same order. It panics if an
// index falls outside src.
func SumShifted(dst, src []float32, offs []int32) {
	n := len(dst)
	for _, o := range offs {
		if o < 0 || int(o)+n > len(src) {
			panic("kernel: SumShifted: an offset reads past src")
		}
	}
	if len(offs) == 0 {
		clear(dst)
		return
	}
	n8 := 0
	if useAsm {
		n8 = n &^ 7
		if n8 > 0 {
			sumShifted(n8, &dst[0], &src[0], &offs[0], len(offs))
		}
	}
	for j := n8; j < n; j++ {
		var s float32
		for _, o := range offs {
			s += src[int(o)+j]
		}
		dst[j] = s
	}
}

// TransposeSum writes the rows×plane matrix src (row stride plane) into
// dst as plane×width (row stride width): row i of dst holds column i of
// src in its first rows elements and zeros after them. When sum is not
// nil it also adds the elements of each row of src, in order, to sum[row]
// in float64. It is the form TapGrad's b takes from a convolution's output
// gradient, with the bias gradient summed on the way. rows ≤ width.
func TransposeSum(dst, src []float32, rows, plane, width int, sum []float64) {
	if rows > width || len(dst) < plane*width || len(src) < rows*plane || sum != nil && len(sum) < rows {
		panic("kernel: TransposeSum: sizes do not match")
	}
	r := 0
	if useAsm && plane >= 8 {
		i8 := plane &^ 7
		var s [8]float64
		for ; r+8 <= rows; r += 8 {
			dosum := 0
			if sum != nil {
				copy(s[:], sum[r:r+8])
				dosum = 1
			}
			transposeSum8(i8/8, &src[r*plane], plane, &dst[r], width, &s[0], dosum)
			for o := 0; o < 8; o++ {
				row := src[(r+o)*plane:][:plane]
				t := s[o]
				for i := i8; i < plane; i++ {
					dst[i*width+r+o] = row[i]
					t += float64(row[i])
				}
				if sum != nil {
					sum[r+o] = t
				}
			}
		}
	}
	transposeSumGeneric(dst, src, r, rows, plane, width, sum)
}

// transposeSumGeneric is TransposeSum for rows r0 … rows−1, four rows at
// a time so that their sums overlap, then zeros the columns past rows.
func transposeSumGeneric(dst, src []float32, r0, rows, plane, width int, sum []float64) {
	t := dst[:plane*width]
	r := r0
	for ; r+4 <= rows; r += 4 {
		g0 := src[r*plane:][:plane]
		g1 := src[(r+1)*plane:][:plane]
		g2 := src[(r+2)*plane:][:plane]
		g3 := src[(r+3)*plane:][:plane]
		if sum != nil {
			s0, s1, s2, s3 := sum[r], sum[r+1], sum[r+2], sum[r+3]
			for i := range plane {
				v0, v1, v2, v3 := g0[i], g1[i], g2[i], g3[i]
				d := t[i*width+r:][:4]
				d[0], d[1], d[2], d[3] = v0, v1, v2, v3
				s0 += float64(v0)
				s1 += float64(v1)
				s2 += float64(v2)
				s3 += float64(v3)
			}
			sum[r], sum[r+1], sum[r+2], sum[r+3] = s0, s1, s2, s3
			continue
		}
		for i := range plane {
			d := t[i*width+r:][:4]
			d[0], d[1], d[2], d[3] = g0[i], g1[i], g2[i], g3[i]
		}
	}
	for ; r < rows; r++ {
		var s float64
		if sum != nil {
			s = sum[r]
		}
		for i, v := range src[r*plane:][:plane] {
			t[i*width+r] = v
			s += float64(v)
		}
		if sum != nil {
			sum[r] = s
		}
	}
	for ; r < width; r++ {
		for i := range plane {
			t[i*width+r] = 0
		}
	}
}
