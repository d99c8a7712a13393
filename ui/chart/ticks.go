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

// ticksStep returns the multiples of step within [lo, hi].
func ticksStep(lo, hi, step float64) []float64 {
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step*1e-9; t += step {
		// Snap to the step's grid so labels do not read 0.30000000000000004.
		// And no -0.
		v := math.Round(t/step) * step
		if v == 0 {
			v = 0
		}
		out = append(out, v)
	}
	return out
}

// ticks returns the multiples of a nice step within [lo, hi], about n of
// them, and the step.
func ticks(lo, hi float64, n int) ([]float64, float64) {
	if !(hi > lo) {
		return nil, 0
	}
	step := niceStep(hi-lo, n)
	return ticksStep(lo, hi, step), step
}

// xTicks places about one tick per 12 cells, on whole numbers unless the
// chart's x is fractional (a step count is whole), and returns the step.
func (c *Chart) xTicks(lo, hi float64, cols int) ([]float64, float64) {
	n := max(cols/12, 2)
	step := niceStep(hi-lo, n)
	if !c.XFractional {
		step = max(step, 1)
	}
	if !(hi > lo) {
		return nil, step
	}
	return ticksStep(lo, hi, step), step
}

// yTicks returns tick positions in axis space (log10 of the value on a
// log axis) and their labels, about one per three rows: nice values (1,
// 2 or 5 times a power of ten, whole decades on a log axis) written with
// the precision their step needs, so that no two labels read alike. A
// YFormat of the caller's cannot add precision: with it the ticks thin
// out until adjacent labels differ.
func (c *Chart) yTicks(lo, hi float64, rows int) ([]float64, []string) {
	n := max(rows/3, 2)
	for {
		ts, labels := c.yTicksN(lo, hi, n)
		if n <= 1 || !repeats(labels) {
			return ts, labels
		}
		n--
	}
}

func (c *Chart) yTicksN(lo, hi float64, n int) ([]float64, []string) {
	var ts []float64
	var step float64 // of the values, on a linear scale; 0 for log ticks
	if c.logY {
		ts, step = logTicks(lo, hi, n)
	} else {
		ts, step = ticks(lo, hi, n)
	}
	labels := make([]string, len(ts))
	for i, t := range ts {
		v := t
		if c.logY {
			v = math.Pow(10, t)
		}
		switch {
		case c.YFormat != nil:
			labels[i] = c.YFormat(v)
		case c.YPercent && step > 0:
			labels[i] = formatTick(100*v, 100*step) + "%"
		case c.YPercent:
			labels[i] = FormatValue(100*v) + "%"
		case step > 0:
			labels[i] = formatTick(v, step)
		default:
			labels[i] = FormatValue(v)
		}
	}
	return ts, labels
}

// logTicks returns ticks in log10 space for [lo, hi]: the whole decades
// within it, thinned to about n; where fewer than two decades fall
// within, 1, 2 and 5 times each power of ten; where fewer than two of
// those do (less than a factor of 2.5), nice values on a linear scale,
// which over so short a range look evenly spaced, and their step.
func logTicks(lo, hi float64, n int) (ts []float64, step float64) {
	if !(hi > lo) {
		return nil, 0
	}
	// log10 of a decade may miss its whole number by an ulp.
	const eps = 1e-9
	if math.Floor(hi+eps)-math.Ceil(lo-eps) >= 1 {
		s := math.Max(1, math.Ceil((hi-lo)/float64(n)-eps))
		for t := math.Ceil(lo/s-eps) * s; t <= hi+eps; t += s {
			ts = append(ts, t)
		}
		if len(ts) >= 2 {
			return ts, 0
		}
		ts = ts[:0]
	}
	for k := math.Floor(lo); k <= math.Ceil(hi); k++ {
		for _, f := range []float64{1, 2, 5} {
			if t := k + math.Log10(f); t >= lo-eps && t <= hi+eps {
				ts = append(ts, t)
			}
		}
	}
	if len(ts) >= 2 && len(ts) <= n+1 {
		return ts, 0
	}
	vs, step := ticks(math.Pow(10, lo), math.Pow(10, hi), n)
	ts = ts[:0]
	for _, v := range vs {
		if v > 0 {
			ts = append(ts, math.Log10(v))
		}
	}
	return ts, step
}

// repeats reports whether two adjacent labels read alike.
func repeats(labels []string) bool {
	for i := 1; i < len(labels); i++ {
		if labels[i] == labels[i-1] {
			return true
		}
	}
	return false
}

// formatTick writes v, a multiple of step, with the decimals step needs
// and no more, in thousands (k) or millions (M) when large, in
// scientific notation when tiny: 0.25, 1.50, 12.5k, 2M, 1.5e-05. Two
// multiples of step never read alike.
func formatTick(v, step float64) string {
	if step <= 0 || math.IsNaN(step) || math.IsInf(step, 0) {
		return FormatValue(v)
	}
	// The larger of v and step sets the magnitude, so that the labels of
	// one axis share their unit.
	a := math.Max(math.Abs(v), step)
	unit, suffix := 1.0, ""
	switch {
	case a >= 1e6:
		unit, suffix = 1e6, "M"
	case a >= 1e4:
		unit, suffix = 1e3, "k"
	case math.Abs(v) < 1e-3 && v != 0:
		// The mantissa's decimals: the digits between v's leading one
		// and the step's.
		d := max(int(math.Floor(math.Log10(math.Abs(v))))-decade(step), 0)
		return strconv.FormatFloat(v, 'e', d, 64)
	}
	d := max(-decade(step/unit), 0)
	return strconv.FormatFloat(v/unit, 'f', d, 64) + suffix
}

// decade is the power of ten of step's leading digit, robust to rounding
// (0.1 is -1, 0.2 is -1, 1 is 0).
func decade(step float64) int { return int(math.Floor(math.Log10(step) + 1e-9)) }

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

// formatX writes an x tick, a multiple of step: 0, 250, 1.5k, 2M.
func formatX(v, step float64) string { return formatTick(v, step) }

// widen returns a span around x for a range with nothing in it but x:
// about a tenth of x either side (at least 1), as a nice number, not
// below 0 for an x that is not, so that a lone point (one evaluation, an
// overlay of runs of one point each) gets an axis of whole, nice steps.
func widen(x float64) (lo, hi float64) {
	s := niceCeil(math.Max(1, math.Abs(x)/10))
	lo, hi = x-s, x+s
	if x >= 0 && lo < 0 {
		lo, hi = 0, 2*s
	}
	return lo, hi
}
