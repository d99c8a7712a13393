package export

import "math"

// xy is a point in data coordinates, x being a step or an epoch.
type xy struct{ x, y float64 }

// decimate reduces pts, sorted by x, to at most four points per pixel
// column of the span [x0, x1] split into cols columns: the first, the
// lowest, the highest and the last point of each column, in their original
// order. A line through them covers the same pixels as a line through every
// point, so the figure looks the same while the renderer strokes a few
// thousand segments instead of hundreds of thousands. This is M4
// aggregation (Jugel et al., "M4: A Visualization-Oriented Time Series Data
// Aggregation", PVLDB 7(10), 2014). The very first and last points are
// always kept. Series already within four points per column are returned
// as they are.
func decimate(pts []xy, x0, x1 float64, cols int) []xy {
	if cols < 1 || len(pts) <= 4*cols || !(x1 > x0) {
		return pts
	}
	out := make([]xy, 0, 4*cols+2)
	scale := float64(cols) / (x1 - x0)
	col := func(x float64) int {
		c := int(math.Floor((x - x0) * scale))
		return min(max(c, 0), cols-1)
	}
	start := 0
	for start < len(pts) {
		c := col(pts[start].x)
		end := start + 1
		lo, hi := start, start
		for end < len(pts) && col(pts[end].x) == c {
			if pts[end].y < pts[lo].y {
				lo = end
			}
			if pts[end].y > pts[hi].y {
				hi = end
			}
			end++
		}
		last := end - 1
		// Emit first, min, max, last in index order, each once.
		idx := [4]int{start, lo, hi, last}
		if idx[1] > idx[2] {
			idx[1], idx[2] = idx[2], idx[1]
		}
		prev := -1
		for _, i := range idx {
			if i != prev {
				out = append(out, pts[i])
				prev = i
			}
		}
		start = end
	}
	return out
}
