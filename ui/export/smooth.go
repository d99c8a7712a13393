package export

import "math"

// Smooth writes into dst the debiased exponential moving average of src
// with the given weight in [0, 1), and returns dst, grown if it is too
// short. dst may be src. A weight of 0 copies src.
//
// It is TensorBoard's scalar smoothing, resmoothDataset in
// tensorboard/components/vz_line_chart2/line-chart.ts:
//
//	last = last·w + (1 − w)·v;  smoothed = last / (1 − w^n)
//
// where n counts the finite values so far. Starting last at 0 and dividing
// by 1 − w^n removes the pull towards that 0 start (after n constant
// values c the average is c·(1 − w^n)). As there, a constant series is
// returned unchanged (tensorboard#786), and a non-finite value is passed
// through without entering the average.
func Smooth(dst, src []float64, weight float64) []float64 {
	if cap(dst) < len(src) {
		dst = make([]float64, len(src))
	}
	dst = dst[:len(src)]
	constant := true
	for _, v := range src {
		if v != src[0] {
			constant = false
			break
		}
	}
	if constant || weight == 0 {
		copy(dst, src)
		return dst
	}
	last, debias := 0.0, 1.0
	for i, v := range src {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			dst[i] = v
			continue
		}
		last = last*weight + (1-weight)*v
		// debias is w^n, kept as a running product rather than calling
		// math.Pow once per point.
		debias *= weight
		dst[i] = last / (1 - debias)
	}
	return dst
}
