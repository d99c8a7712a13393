package kernel

// CopyRows copies rows rows of cols elements from src (row stride lds) to
// dst (row stride ldd), as a copy per row would, in one call: a
// convolution moves its planes between the padded grid and the dense
// layout a few dozen elements a row, where a call per row costs as much as
// the copying. It panics if a row falls outside src or dst.
func CopyRows(dst []float32, ldd int, src []float32, lds int, rows, cols int) {
	if rows <= 0 || cols <= 0 {
		return
	}
	if ldd < cols || lds < cols || (rows-1)*ldd+cols > len(dst) || (rows-1)*lds+cols > len(src) {
		panic("kernel: CopyRows: a row falls outside src or dst")
	}
	if useAsm && cols >= 8 {
		copyRows(&dst[0], ldd, &src[0], lds, rows, cols)
		return
	}
	for r := 0; r < rows; r++ {
		copy(dst[r*ldd:][:cols], src[r*lds:][:cols])
	}
}
