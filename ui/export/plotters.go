package export

import (
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The plotters here span the full height of a panel whatever its y range,
// so they do not implement plot.DataRanger: they leave the axis ranges to
// the data, and a log axis never sees their y.

// vlines draws vertical lines across the panel at the given x values.
type vlines struct {
	xs    []float64
	style draw.LineStyle
}

func (v vlines) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, x := range v.xs {
		// A line at the left edge (the first stage starting with the
		// figure) bounds nothing and would double the axis.
		if x <= p.X.Min || x > p.X.Max {
			continue
		}
		X := trX(x)
		c.StrokeLine2(v.style, X, c.Min.Y, X, c.Max.Y)
	}
}

// span is an x interval [from, to).
type span struct{ from, to float64 }

// bands fills the given x spans over the panel's full height, and writes
// label half way up each span wide enough to hold it, centred in the
// widest stretch between the lines at avoid (stage boundaries crossing a
// span that joins several frozen stages).
type bands struct {
	spans []span
	fill  color.Color
	label string
	style text.Style
	avoid []float64
}

func (b bands) Plot(c draw.Canvas, p *plot.Plot) {
	trX, _ := p.Transforms(&c)
	for _, s := range b.spans {
		x0, x1 := max(s.from, p.X.Min), min(s.to, p.X.Max)
		if !(x1 > x0) {
			continue
		}
		X0, X1 := trX(x0), trX(x1)
		c.FillPolygon(b.fill, []vg.Point{
			{X: X0, Y: c.Min.Y}, {X: X1, Y: c.Min.Y},
			{X: X1, Y: c.Max.Y}, {X: X0, Y: c.Max.Y},
		})
		if b.label == "" {
			continue
		}
		// Half way up: a frozen block's curve lies flat along the bottom,
		// and the panel's top left holds its name.
		var g0, g1 float64
		cuts := append([]float64{x0, x1}, b.avoid...)
		slices.Sort(cuts)
		for i := 1; i < len(cuts); i++ {
			if a, z := max(cuts[i-1], x0), min(cuts[i], x1); z-a > g1-g0 {
				g0, g1 = a, z
			}
		}
		G0, G1 := trX(g0), trX(g1)
		if w := b.style.Width(b.label); G1-G0 > w+vg.Points(6) {
			sty := b.style
			sty.XAlign = draw.XCenter
			sty.YAlign = draw.YCenter
			c.FillText(sty, vg.Point{X: (G0 + G1) / 2, Y: (c.Min.Y + c.Max.Y) / 2}, b.label)
		}
	}
}

// mark is one labelled x position of the stage ruler above the panels.
type mark struct {
	x     float64
	label string
	color color.Color
}

// ruler lays out stage labels in rows above the panels so that none
// overlap: each label goes in the lowest row with room for it.
type ruler struct {
	marks []mark
	rows  []int // row of each mark
	right []bool
	nrows int
	style text.Style
}

// layoutRuler assigns rows to marks for a data area spanning X0..X1 in
// canvas units, mapping x with tr.
func layoutRuler(marks []mark, sty text.Style, X0, X1 vg.Length, tr func(float64) vg.Length) ruler {
	r := ruler{marks: marks, rows: make([]int, len(marks)), right: make([]bool, len(marks)), style: sty}
	gap := vg.Points(6)
	var ends []vg.Length // right edge of the last label in each row
	for i, m := range marks {
		X := tr(m.x)
		w := sty.Width(m.label)
		lo, hi := X+pad, X+pad+w
		if hi > X1 {
			// Too close to the right edge: end the label at its line.
			lo, hi = X-pad-w, X-pad
			r.right[i] = true
		}
		row := 0
		for row < len(ends) && lo < ends[row]+gap {
			row++
		}
		if row == len(ends) {
			ends = append(ends, 0)
		}
		ends[row] = hi
		r.rows[i] = row
	}
	r.nrows = len(ends)
	return r
}

const pad = vg.Length(3) // points between a ruler label and its line

// height returns the height the ruler needs.
func (r ruler) height() vg.Length {
	if r.nrows == 0 {
		return 0
	}
	return vg.Length(r.nrows)*r.rowHeight() + vg.Points(3)
}

func (r ruler) rowHeight() vg.Length {
	e := r.style.FontExtents()
	return e.Height + vg.Points(1)
}

// draw draws the ruler into c, whose bottom edge meets the top of the
// panels, with a thin line from each label down to its boundary.
func (r ruler) draw(c draw.Canvas, tr func(float64) vg.Length) {
	rh := r.rowHeight()
	desc := r.style.FontExtents().Descent
	for i, m := range r.marks {
		X := tr(m.x)
		// Row 0 sits nearest the panels.
		base := c.Min.Y + vg.Points(2) + vg.Length(r.rows[i])*rh + desc
		sty := r.style
		sty.Color = m.color
		sty.YAlign = draw.YAlignment(0)
		pt := vg.Point{X: X + pad, Y: base}
		if r.right[i] {
			sty.XAlign = draw.XRight
			pt.X = X - pad
		}
		c.FillText(sty, pt, m.label)
		c.StrokeLine2(draw.LineStyle{Color: m.color, Width: vg.Points(0.5)}, X, c.Min.Y, X, base+rh-desc-vg.Points(1))
	}
}

// corner writes a label inside the top-left corner of a panel.
type corner struct {
	text  string
	style text.Style
}

func (k corner) Plot(c draw.Canvas, _ *plot.Plot) {
	sty := k.style
	sty.YAlign = draw.YTop
	c.FillText(sty, vg.Point{X: c.Min.X + vg.Points(5), Y: c.Max.Y - vg.Points(3)}, k.text)
}

// polyline is a line through points, drawn for speed. Unlike
// plotter.Line it reports no glyph boxes (one per point, which plot's
// layout walks on every DataCanvas call).
//
// A solid line with more points than the canvas has room for (a noisy
// training loss, decimated to a few points per pixel column but still a
// zig-zag from each column's minimum to its maximum) is drawn as what it
// looks like: the band between the per-column extremes, widened by half
// the line's width on each side, filled in one pass (so a translucent line
// is blended once, as a stroke would be). freetype's rasterizer behind vgimg
// spends its time in a per-scan-line cell list that such a zig-zag makes
// long; the band covers the same pixels at a tenth of the cost. Dashed
// lines are always stroked, as dashes are their point.
type polyline struct {
	pts   []xy
	style draw.LineStyle
}

// bandCol is the column width of the band drawing: about one pixel at the
// default 160 DPI (72/160 = 0.45 pt).
const bandCol = vg.Length(0.5)

func (l *polyline) Plot(c draw.Canvas, p *plot.Plot) {
	if len(l.pts) == 0 || l.style.Width == 0 {
		return
	}
	trX, trY := p.Transforms(&c)
	ps := make([]vg.Point, len(l.pts))
	for i, q := range l.pts {
		ps[i] = vg.Point{X: trX(q.x), Y: trY(q.y)}
	}
	cols := float64((ps[len(ps)-1].X - ps[0].X) / bandCol)
	if len(l.style.Dashes) == 0 && float64(len(ps)) > 2*cols && cols > 2 {
		l.band(c, ps)
		return
	}
	c.StrokeLines(l.style, c.ClipLinesXY(ps)...)
}

// band draws ps, sorted by X, as the band between each column's lowest
// and highest point, widened by half the line width every way: each
// column's extremes are taken over the columns within half a width of it
// too, or a steep stretch of the line (a learning-rate warm-up, say)
// would be drawn thinner than the rest.
func (l *polyline) band(c draw.Canvas, ps []vg.Point) {
	type column struct{ x, lo, hi vg.Length }
	var cols []column
	half := l.style.Width / 2
	for i := 0; i < len(ps); {
		col := math.Floor(float64(ps[i].X / bandCol))
		lo, hi := ps[i].Y, ps[i].Y
		x0, x1 := ps[i].X, ps[i].X
		for i++; i < len(ps) && math.Floor(float64(ps[i].X/bandCol)) == col; i++ {
			lo, hi = min(lo, ps[i].Y), max(hi, ps[i].Y)
			x1 = ps[i].X
		}
		cols = append(cols, column{(x0 + x1) / 2, lo, hi})
	}
	top := make([]vg.Point, len(cols))
	bot := make([]vg.Point, len(cols))
	for i, ci := range cols {
		lo, hi := ci.lo, ci.hi
		for j := i - 1; j >= 0 && ci.x-cols[j].x <= half; j-- {
			lo, hi = min(lo, cols[j].lo), max(hi, cols[j].hi)
		}
		for j := i + 1; j < len(cols) && cols[j].x-ci.x <= half; j++ {
			lo, hi = min(lo, cols[j].lo), max(hi, cols[j].hi)
		}
		top[i] = vg.Point{X: ci.x, Y: hi + half}
		bot[i] = vg.Point{X: ci.x, Y: lo - half}
	}
	poly := make([]vg.Point, 0, 2*len(top))
	poly = append(poly, top...)
	for i := len(bot) - 1; i >= 0; i-- {
		poly = append(poly, bot[i])
	}
	c.FillPolygon(l.style.Color, c.ClipPolygonXY(poly))
}

// Thumbnail draws the line's style in a legend entry.
func (l *polyline) Thumbnail(c *draw.Canvas) {
	y := c.Center().Y
	c.StrokeLine2(l.style, c.Min.X, y, c.Max.X, y)
}
