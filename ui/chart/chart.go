package chart

import (
	"math"
	"slices"
	"sort"
	"strings"
)

// Kind is how a series is drawn.
type Kind int

// The kinds of series.
const (
	// Line joins the points, decimated to the min and max of each dot
	// column.
	Line Kind = iota
	// Points joins the points and marks each one with a glyph, as
	// validation evaluations are drawn; past one point per two cells only
	// the line is drawn.
	Points
)

// Mark is a vertical line at X with a label above the plot, such as a
// stage boundary.
type Mark struct {
	X     float64
	Label string
}

// Reading is one series' value at an inspected step.
type Reading struct {
	Name string
	X, Y float64
	OK   bool // false when the series has no point at or before the step
}

// column is the aggregate of the points of one series falling into one
// dot column: enough to draw a line through all of them pixel for pixel
// (M4 aggregation, as ui/export decimates for its figures).
type column struct {
	first, last, lo, hi float64
	n                   int32
	// brk: a non-finite value fell into the column, so the line is not
	// joined to it from the left (see Chart.Append).
	brk bool
}

// series is one line's full history and its per-column aggregate for the
// current view.
type series struct {
	name   string
	kind   Kind
	style  Style
	fit    bool // takes part in fitting the y range
	hidden bool // kept and aggregated, not drawn (SetHidden)
	xs, ys []float64
	cols   []column
	stIdx  uint8
}

// Chart is a braille line chart with axes, stage marks, a best-point
// marker and an inspect cursor. Points are appended as they arrive and
// folded into one aggregate per dot column at once, so drawing costs the
// same for ten points or a million. Render rasterises into a cached
// string that View returns; a Chart is not safe for concurrent use.
type Chart struct {
	w, h   int
	series []*series

	// domain is the full x range (SetDomain, or grown from the data);
	// view, when zoomed, the shown part of it.
	domLo, domHi float64
	domFixed     bool
	zoomed       bool
	viewLo       float64
	viewHi       float64

	logY, ignoreOutliers bool
	yLo, yHi             float64 // fixed y range when yFixed
	yFixed               bool

	marks                  []Mark
	markStyle, labelStyle  Style
	axisStyle, cursorStyle Style
	bestStyle              Style
	bestX, bestY           float64
	hasBest                bool
	cursorX                float64
	hasCursor              bool
	// YFormat, when set, writes the y labels; the chart then thins its
	// ticks until adjacent labels differ, since it cannot give the format
	// more precision. YPercent writes them as percentages of 1 (0.25 is
	// 25%) with the decimals the ticks' step needs.
	YFormat  func(float64) string
	YPercent bool
	// XFractional lets x ticks fall between whole numbers; by default x
	// counts steps, and ticks are whole.
	XFractional bool
	// ToReal and FromReal map the data's x to the quantity the x axis
	// labels and back; nil labels x itself. A chart whose x leaves out
	// ranges (the steps a skipped stage never trained) labels the real
	// steps, at round real values.
	ToReal, FromReal       func(float64) float64
	cv                     canvas
	out                    string
	dirty                  bool
	plotCols, plotRows, lw int // plot area in cells and y-label width
	aggLo, aggHi           float64
	aggCols                int
	lastYLo, lastYHi       float64
	lastTicks              []float64
}

// New returns an empty chart of w×h cells, outliers ignored when fitting
// the y range.
func New(w, h int) *Chart {
	c := &Chart{w: w, h: h, ignoreOutliers: true, dirty: true}
	c.axisStyle = Style{Faint: true}
	c.markStyle = Style{Faint: true}
	c.labelStyle = Style{}
	c.cursorStyle = Style{Bold: true}
	c.bestStyle = Style{Bold: true}
	return c
}

// AddSeries adds a series drawn in style and returns its index. Series
// are drawn in the order they were added, so add faint ones first. fit
// says whether its values take part in fitting the y range.
func (c *Chart) AddSeries(name string, kind Kind, style Style, fit bool) int {
	c.series = append(c.series, &series{name: name, kind: kind, style: style, fit: fit})
	c.aggCols = -1 // the new series needs its aggregate
	c.dirty = true
	return len(c.series) - 1
}

// SetSeriesStyle changes how series i is drawn.
func (c *Chart) SetSeriesStyle(i int, st Style) {
	if c.series[i].style != st {
		c.series[i].style = st
		c.dirty = true
	}
}

// SetStyles sets how marks and their labels, axes, the cursor and the
// best-point marker are drawn.
func (c *Chart) SetStyles(mark, label, axis, cursor, best Style) {
	c.markStyle, c.labelStyle, c.axisStyle, c.cursorStyle, c.bestStyle = mark, label, axis, cursor, best
	c.dirty = true
}

// Append adds points to series i; xs must be non-decreasing and at or
// after the series' last x. Non-finite y values are kept (the inspect
// cursor shows them) but not drawn, and break the line: the points on
// either side of one are not joined (a diverged loss, or a block's
// learning rate while it is frozen). It costs O(len(xs)) unless the
// points fall beyond the domain, which then grows by at least a quarter
// and is re-aggregated.
func (c *Chart) Append(i int, xs, ys []float64) {
	s := c.series[i]
	s.xs = append(s.xs, xs...)
	s.ys = append(s.ys, ys...)
	if len(xs) == 0 {
		return
	}
	// A hidden series' points change nothing drawn, unless they grow the
	// domain.
	if !s.hidden {
		c.dirty = true
	}
	last := xs[len(xs)-1]
	if !c.domFixed && (last > c.domHi || len(s.xs) == len(xs) && c.domLo == c.domHi) {
		c.growDomain(last)
		c.dirty = true
	}
	if c.aggCols != c.plotDots() || c.aggLo != c.lo() || c.aggHi != c.hi() {
		return // the next Render re-aggregates everything
	}
	c.fold(s, xs, ys)
}

// SetHidden hides series i or shows it again: a hidden series keeps
// taking points but is not drawn, does not fit the y range and is left
// out of Inspect, so that a chart can switch between sets of series
// without losing their history.
func (c *Chart) SetHidden(i int, hidden bool) {
	if c.series[i].hidden != hidden {
		c.series[i].hidden = hidden
		c.dirty = true
	}
}

// Reset replaces series i's points.
func (c *Chart) Reset(i int, xs, ys []float64) {
	s := c.series[i]
	s.xs, s.ys = s.xs[:0], s.ys[:0]
	c.aggCols = -1
	c.Append(i, xs, ys)
}

// Len returns how many points series i holds.
func (c *Chart) Len(i int) int { return len(c.series[i].xs) }

// Points returns series i's points; the slices are the chart's own.
func (c *Chart) Points(i int) (xs, ys []float64) { return c.series[i].xs, c.series[i].ys }

func (c *Chart) growDomain(x float64) {
	lo := c.domLo
	for _, s := range c.series {
		if len(s.xs) > 0 {
			lo = min(lo, s.xs[0])
		}
	}
	if c.domLo == c.domHi {
		lo = x
		for _, s := range c.series {
			if len(s.xs) > 0 {
				lo = min(lo, s.xs[0])
			}
		}
	}
	span := x - lo
	if span <= 0 {
		c.domLo, c.domHi = widen(x)
		return
	}
	c.domLo = lo
	c.domHi = lo + niceCeil(span*1.25)
}

// SetDomain fixes the full x range, such as 0 to a run's total steps;
// an empty range (hi ≤ lo) widens around lo to whole, nice steps.
func (c *Chart) SetDomain(lo, hi float64) {
	if hi <= lo {
		lo, hi = widen(lo)
	}
	c.domLo, c.domHi, c.domFixed = lo, hi, true
	c.dirty = true
}

// Zoom shows only [lo, hi] of the domain; Unzoom shows all of it again.
func (c *Chart) Zoom(lo, hi float64) {
	if hi <= lo {
		hi = lo + 1
	}
	c.viewLo, c.viewHi, c.zoomed = lo, hi, true
	c.dirty = true
}

// Unzoom undoes Zoom.
func (c *Chart) Unzoom() { c.zoomed = false; c.dirty = true }

// Zoomed reports whether the chart shows part of its domain.
func (c *Chart) Zoomed() bool { return c.zoomed }

// XRange returns the shown x range.
func (c *Chart) XRange() (lo, hi float64) { return c.lo(), c.hi() }

// SetLogY draws the y axis in log scale; values ≤ 0 are then not drawn.
func (c *Chart) SetLogY(on bool) { c.logY = on; c.dirty = true }

// LogY reports whether the y axis is logarithmic.
func (c *Chart) LogY() bool { return c.logY }

// SetIgnoreOutliers makes the y range fit the 5th to 95th percentile of
// the shown data rather than all of it, as TensorBoard's "ignore outliers
// in chart scaling" does, so one diverging spike does not flatten the
// curve.
func (c *Chart) SetIgnoreOutliers(on bool) { c.ignoreOutliers = on; c.dirty = true }

// IgnoreOutliers reports whether the y range ignores outliers.
func (c *Chart) IgnoreOutliers() bool { return c.ignoreOutliers }

// SetYRange fixes the y range (as [0, 1] for accuracy); SetYAuto fits it
// to the data again.
func (c *Chart) SetYRange(lo, hi float64) { c.yLo, c.yHi, c.yFixed = lo, hi, true; c.dirty = true }

// SetYAuto fits the y range to the data.
func (c *Chart) SetYAuto() { c.yFixed = false; c.dirty = true }

// SetMarks sets the vertical marks, such as stage boundaries.
func (c *Chart) SetMarks(m []Mark) {
	if slices.Equal(m, c.marks) {
		return
	}
	c.marks = append(c.marks[:0], m...)
	c.dirty = true
}

// SetBest marks the point (x, y), or clears the marker when ok is false.
func (c *Chart) SetBest(x, y float64, ok bool) {
	if c.bestX == x && c.bestY == y && c.hasBest == ok {
		return
	}
	c.bestX, c.bestY, c.hasBest = x, y, ok
	c.dirty = true
}

// SetCursor draws the inspect cursor at x, or hides it when ok is false.
func (c *Chart) SetCursor(x float64, ok bool) {
	if c.cursorX == x && c.hasCursor == ok {
		return
	}
	c.cursorX, c.hasCursor = x, ok
	c.dirty = true
}

// SetSize resizes the chart to w×h cells.
func (c *Chart) SetSize(w, h int) {
	if w == c.w && h == c.h {
		return
	}
	c.w, c.h = w, h
	c.dirty = true
}

// Size returns the chart's size in cells.
func (c *Chart) Size() (w, h int) { return c.w, c.h }

// Inspect returns, for every series shown, its last point at or before
// x.
func (c *Chart) Inspect(x float64) []Reading {
	out := make([]Reading, 0, len(c.series))
	for _, s := range c.series {
		if s.hidden {
			continue
		}
		r := Reading{Name: s.name}
		j := sort.Search(len(s.xs), func(k int) bool { return s.xs[k] > x }) - 1
		if j >= 0 {
			r.X, r.Y, r.OK = s.xs[j], s.ys[j], true
		}
		out = append(out, r)
	}
	return out
}

// Dirty reports whether something changed since the last Render.
func (c *Chart) Dirty() bool { return c.dirty }

// View returns the chart as rendered by the last Render.
func (c *Chart) View() string { return c.out }

func (c *Chart) lo() float64 {
	if c.zoomed {
		return c.viewLo
	}
	return c.domLo
}

func (c *Chart) hi() float64 {
	if c.zoomed {
		return c.viewHi
	}
	if c.domHi <= c.domLo {
		return c.domLo + 1
	}
	return c.domHi
}

// layout computes the plot area from the size and the y labels.
const (
	topRows    = 1 // mark labels
	bottomRows = 2 // x axis and its labels
)

func (c *Chart) plotDots() int { return 2 * c.plotCols }

// fold adds points to s's column aggregates.
func (c *Chart) fold(s *series, xs, ys []float64) {
	lo, hi := c.aggLo, c.aggHi
	n := len(s.cols)
	if n == 0 {
		return
	}
	scale := float64(n) / (hi - lo)
	for k, x := range xs {
		if x < lo || x > hi {
			continue
		}
		y := ys[k]
		ci := int((x - lo) * scale)
		if ci >= n {
			ci = n - 1
		}
		col := &s.cols[ci]
		if math.IsNaN(y) || math.IsInf(y, 0) {
			col.brk = true
			continue
		}
		if col.n == 0 {
			col.first, col.lo, col.hi = y, y, y
		} else {
			col.lo = min(col.lo, y)
			col.hi = max(col.hi, y)
		}
		col.last = y
		col.n++
	}
}

// aggregate rebuilds every series' column aggregates for the current view
// and width: O(points in view), done only when those change.
func (c *Chart) aggregate() {
	lo, hi, n := c.lo(), c.hi(), c.plotDots()
	c.aggLo, c.aggHi, c.aggCols = lo, hi, n
	for _, s := range c.series {
		if cap(s.cols) < n {
			s.cols = make([]column, n)
		}
		s.cols = s.cols[:n]
		clear(s.cols)
		a := sort.SearchFloat64s(s.xs, lo)
		b := sort.Search(len(s.xs), func(k int) bool { return s.xs[k] > hi })
		if a < b {
			c.fold(s, s.xs[a:b], s.ys[a:b])
		}
	}
}

// ty maps a value to the y axis' space (log10 on a log axis); ok is false
// for values that cannot be drawn.
func (c *Chart) ty(v float64) (float64, bool) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false
	}
	if c.logY {
		if v <= 0 {
			return 0, false
		}
		return math.Log10(v), true
	}
	return v, true
}

// yRange fits the y range in axis space to the shown data: all of it, or
// its 5th to 95th percentile, padded by a tenth of the span on each side.
func (c *Chart) yRange() (lo, hi float64) {
	if c.yFixed {
		a, oka := c.ty(c.yLo)
		b, okb := c.ty(c.yHi)
		if oka && okb && b > a {
			return a, b
		}
	}
	var vals []float64
	for _, s := range c.series {
		if !s.fit || s.hidden {
			continue
		}
		for _, col := range s.cols {
			if col.n == 0 {
				continue
			}
			if v, ok := c.ty(col.lo); ok {
				vals = append(vals, v)
			}
			if v, ok := c.ty(col.hi); ok && col.hi != col.lo {
				vals = append(vals, v)
			}
		}
	}
	if len(vals) == 0 {
		if c.logY {
			return -1, 0
		}
		return 0, 1
	}
	if c.ignoreOutliers && len(vals) >= 20 {
		sort.Float64s(vals)
		lo, hi = quantile(vals, 0.05), quantile(vals, 0.95)
	} else {
		lo, hi = vals[0], vals[0]
		for _, v := range vals {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	pad := (hi - lo) * 0.1
	if pad == 0 {
		pad = math.Abs(lo)*0.1 + 0.1
	}
	return lo - pad, hi + pad
}

// quantile is the linear-interpolation quantile of sorted values (d3's,
// which TensorBoard uses).
func quantile(sorted []float64, p float64) float64 {
	i := p * float64(len(sorted)-1)
	j := int(i)
	if j+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	return sorted[j] + (i-float64(j))*(sorted[j+1]-sorted[j])
}

// Render rasterises the chart into the string View returns, when
// anything changed since the last call. It reports whether it drew.
func (c *Chart) Render() bool {
	if !c.dirty {
		return false
	}
	c.dirty = false
	if c.w < 8 || c.h < 4 {
		c.out = strings.Repeat("\n", max(c.h-1, 0))
		return true
	}
	// Fit the y range with the aggregates of the previous width first,
	// then size the labels, then re-aggregate if the width changed.
	rows := c.h - topRows - bottomRows
	c.plotRows = rows
	if c.lw == 0 {
		c.lw = 6
	}
	c.plotCols = max(c.w-c.lw-1, 1)
	if c.aggCols != c.plotDots() || c.aggLo != c.lo() || c.aggHi != c.hi() {
		c.aggregate()
	}
	ylo, yhi := c.yRange()
	ticks, labels := c.yTicks(ylo, yhi, rows)
	lw := 0
	for _, l := range labels {
		lw = max(lw, len([]rune(l)))
	}
	if lw != c.lw {
		c.lw = lw
		c.plotCols = max(c.w-c.lw-1, 1)
		c.aggregate()
		ylo, yhi = c.yRange()
		ticks, labels = c.yTicks(ylo, yhi, rows)
	}
	c.lastYLo, c.lastYHi, c.lastTicks = ylo, yhi, ticks

	cv := &c.cv
	cv.reset(c.w, c.h)
	x0 := c.lw + 1 // first plot cell
	W, H := c.plotDots(), 4*rows
	lo, hi := c.lo(), c.hi()
	xdot := func(x float64) int { return int(math.Floor((x - lo) / (hi - lo) * float64(W))) }
	ydot := func(v float64) (int, bool) {
		t, ok := c.ty(v)
		if !ok {
			return 0, false
		}
		return int(math.Round((yhi - t) / (yhi - ylo) * float64(H-1))), true
	}
	// Plot dots are drawn into a sub-canvas view: offset by x0 cells and
	// topRows rows.
	ox, oy := 2*x0, 4*topRows
	plotDot := func(x, y int, st uint8) {
		if x < 0 || x >= W || y < 0 || y >= H {
			return
		}
		cv.dot(ox+x, oy+y, st)
	}

	// Marks first, so curves draw over them.
	mst, lst := cv.addStyle(c.markStyle), cv.addStyle(c.labelStyle)
	// A label never vanishes: one that would run into the next mark is
	// shortened to the room before it (to one cell, at least), and one
	// that starts under the previous label moves right past it.
	type placed struct {
		col   int
		label string
	}
	var shown []placed
	for _, m := range c.marks {
		if m.X < lo || m.X > hi {
			continue
		}
		x := min(xdot(m.X), W-1)
		for y := 0; y < H; y += 2 {
			plotDot(x, y, mst)
		}
		if m.Label != "" {
			shown = append(shown, placed{x0 + x/2, m.Label})
		}
	}
	nextFree := x0
	for i, p := range shown {
		start := max(p.col, nextFree)
		end := c.w
		if i+1 < len(shown) {
			end = min(end, max(shown[i+1].col-1, start+1))
		}
		if start >= c.w {
			break
		}
		n := cv.text(start, 0, shorten(p.label, end-start), lst)
		nextFree = start + n + 1
	}

	// Series, in order.
	for _, s := range c.series {
		if s.hidden {
			continue
		}
		st := cv.addStyle(s.style)
		prevX, prevY, have := 0, 0, false
		markers := s.kind == Points && len(s.xs) <= c.plotCols/2
		for xi, col := range s.cols {
			if col.brk {
				have = false // a gap: no segment across it
			}
			if col.n == 0 {
				continue
			}
			yf, ok1 := ydot(col.first)
			yl, ok2 := ydot(col.last)
			ya, ok3 := ydot(col.lo)
			yb, ok4 := ydot(col.hi)
			if !(ok1 && ok2 && ok3 && ok4) {
				have = false
				continue
			}
			if have {
				c.segment(prevX, prevY, xi, yf, st)
			}
			for y := clampDot(yb, H); y <= clampDot(ya, H); y++ {
				plotDot(xi, y, st)
			}
			prevX, prevY, have = xi, yl, true
		}
		if markers {
			a := sort.SearchFloat64s(s.xs, lo)
			for k := a; k < len(s.xs) && s.xs[k] <= hi; k++ {
				y, ok := ydot(s.ys[k])
				if !ok || y < 0 || y >= H {
					continue
				}
				cv.put(x0+min(xdot(s.xs[k]), W-1)/2, topRows+y/4, '•', st)
			}
		}
	}

	// Best point and cursor on top.
	if c.hasBest && c.bestX >= lo && c.bestX <= hi {
		if y, ok := ydot(c.bestY); ok && y >= 0 && y < H {
			cv.put(x0+min(xdot(c.bestX), W-1)/2, topRows+y/4, '◆', cv.addStyle(c.bestStyle))
		}
	}
	if c.hasCursor && c.cursorX >= lo && c.cursorX <= hi {
		cst := cv.addStyle(c.cursorStyle)
		x := min(xdot(c.cursorX), W-1)
		for y := 0; y < H; y++ {
			plotDot(x, y, cst)
		}
	}

	// Axes: y labels and axis line, x axis and labels.
	ast := cv.addStyle(c.axisStyle)
	for r := 0; r < rows; r++ {
		cv.put(c.lw, topRows+r, '│', ast)
	}
	labelled := -1 // the last row given a label
	for i, t := range ticks {
		r := int(math.Round((yhi - t) / (yhi - ylo) * float64(H-1)))
		if r < 0 || r >= H {
			continue
		}
		row := topRows + r/4
		l := labels[i]
		if row == labelled {
			// Ticks closer than a row (a chart a row or two high): the
			// higher one's label replaces the lower's whole, rather than
			// over it ("0.01" over "0.005" read "00.01").
			cv.text(0, row, strings.Repeat(" ", c.lw), ast)
		}
		cv.text(c.lw-len([]rune(l)), row, l, ast)
		cv.put(c.lw, row, '┤', ast)
		labelled = row
	}
	axisRow := topRows + rows
	cv.put(c.lw, axisRow, '└', ast)
	for x := x0; x < c.w; x++ {
		cv.put(x, axisRow, '─', ast)
	}
	nextFree = 0
	ts, xstep := c.axisTicks(lo, hi)
	for _, t := range ts {
		col := x0 + min(xdot(t.x), W-1)/2
		cv.put(col, axisRow, '┬', ast)
		l := formatX(t.label, xstep)
		start := col - len(l)/2
		start = min(max(start, 0), c.w-len(l))
		if start < nextFree {
			continue
		}
		cv.text(start, axisRow+1, l, ast)
		nextFree = start + len(l) + 1
	}

	var b strings.Builder
	b.Grow(c.w*c.h*3 + 64)
	for r := 0; r < c.h; r++ {
		if r > 0 {
			b.WriteByte('\n')
		}
		cv.writeRow(&b, r)
	}
	c.out = b.String()
	return true
}

// segment joins two dots of the plot.
func (c *Chart) segment(x0, y0, x1, y1 int, st uint8) {
	ox, oy := 2*(c.lw+1), 4*topRows
	H := 4 * c.plotRows
	c.cv.line(ox+x0, oy+y0, ox+x1, oy+y1, oy, oy+H-1, st)
}

func clampDot(y, H int) int { return min(max(y, -1), H) }

// tick is a position on the x axis and the value its label says.
type tick struct{ x, label float64 }

// axisTicks places the x axis' ticks in [lo, hi] (see xTicks) and
// returns them with their step: at round values of what the axis labels
// (see ToReal), leaving out those in a range the chart leaves out.
func (c *Chart) axisTicks(lo, hi float64) ([]tick, float64) {
	var out []tick
	if c.ToReal == nil || c.FromReal == nil {
		xs, step := c.xTicks(lo, hi, c.plotCols)
		for _, x := range xs {
			out = append(out, tick{x, x})
		}
		return out, step
	}
	rs, step := c.xTicks(c.ToReal(lo), c.ToReal(hi), c.plotCols)
	for _, r := range rs {
		x := c.FromReal(r)
		if x < lo || x > hi || c.ToReal(x) != r {
			continue
		}
		out = append(out, tick{x, r})
	}
	return out, step
}

// shorten cuts s to n cells, ending in "…" when it cut and there is
// room for more than the ellipsis.
func shorten(s string, n int) string {
	r := []rune(s)
	switch {
	case len(r) <= n:
		return s
	case n <= 0:
		return ""
	case n == 1:
		return string(r[:1])
	}
	return string(r[:n-1]) + "…"
}
