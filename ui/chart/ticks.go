package chart

import (
	"math"
	"strconv"
	"strings"
)

// niceStep returns a step of 1, 2 or 5 times a power of ten close to
// span/n.
func niceStep(span float64, n int) float64 {
	if span <= 0 || n < 1 {
		return 1
	}
	raw := span / float64(n)
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	switch f := raw / p; {
	case f < 1.5:
		return p
	case f < 3.5:
		return 2 * p
	case f < 7.5:
		return 5 * p
	default:
		return 10 * p
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, f := range []float64{1, 2, 5, 10} {
		if f*p >= v {
			return f * p
		}
	}
	return 10 * p
}

// ticks returns the multiples of a nice step within [lo, hi], about n of
// them.
func ticks(lo, hi float64, n int) []float64 {
	if !(hi > lo) {
		return nil
	}
	step := niceStep(hi-lo, n)
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		// Snap to the step's grid so labels do not read 0.30000000000000004.
		out = append(out, math.Round(t/step)*step)
	}
	return out
}

// xTicks places about one tick per 12 cells.
func xTicks(lo, hi float64, cols int) []float64 {
	return ticks(lo, hi, max(cols/12, 2))
}

// yTicks returns tick positions in axis space (log10 of the value on a
// log axis) and their labels, about one per three rows.
func (c *Chart) yTicks(lo, hi float64, rows int) ([]float64, []string) {
	n := max(rows/3, 2)
	var ts []float64
	if c.logY && hi-lo >= 1 {
		// Whole decades, thinned to fit.
		step := math.Max(1, math.Ceil((hi-lo)/float64(n)))
		for t := math.Ceil(lo/step) * step; t <= hi; t += step {
			ts = append(ts, t)
		}
	} else if c.logY {
		for _, v := range ticks(math.Pow(10, lo), math.Pow(10, hi), n) {
			if v > 0 {
				ts = append(ts, math.Log10(v))
			}
		}
	} else {
		ts = ticks(lo, hi, n)
	}
	labels := make([]string, len(ts))
	for i, t := range ts {
		v := t
		if c.logY {
			v = math.Pow(10, t)
		}
		if c.YFormat != nil {
			labels[i] = c.YFormat(v)
		} else {
			labels[i] = FormatValue(v)
		}
	}
	return ts, labels
}

// FormatValue writes v in at most about six characters: 0.25, 1.2e-05,
// 3400, 1.2M.
func FormatValue(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 1e6:
		return trimZeros(strconv.FormatFloat(v/1e6, 'f', 1, 64)) + "M"
	case a >= 1e4:
		return trimZeros(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	case a >= 1e-3:
		return strconv.FormatFloat(v, 'g', 3, 64)
	default:
		return strconv.FormatFloat(v, 'g', 2, 64)
	}
}

func trimZeros(s string) string {
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// formatX writes a step: 0, 250, 1.5k, 2M.
func formatX(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trimZeros(strconv.FormatFloat(v/1e6, 'f', 2, 64)) + "M"
	case a >= 1e4:
		return trimZeros(strconv.FormatFloat(v/1e3, 'f', 1, 64)) + "k"
	default:
		return trimZeros(strconv.FormatFloat(v, 'f', 2, 64))
	}
}
