package export

import (
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// margin is the white space around a figure.
const margin = vg.Length(6)

// frame paints the figure's background, draws its title if any, and
// returns the canvas left for the panels.
func frame(dc draw.Canvas, title string) draw.Canvas {
	// PNG canvases start white but SVG and PDF start transparent; paint all
	// alike so a figure looks the same on a dark slide.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	dc = draw.Crop(dc, margin, -margin, margin, -margin)
	if title != "" {
		sty := textStyle(titleSize, color.Black)
		sty.XAlign = draw.XCenter
		sty.YAlign = draw.YTop
		dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y}, title)
		dc.Max.Y -= sty.Height(title) + vg.Points(4)
	}
	return dc
}

// stack splits c into rows from the top, row i getting the fraction
// weights[i] of the height left after the gaps between rows.
func stack(c draw.Canvas, weights []float64, gap vg.Length) []draw.Canvas {
	var total float64
	for _, w := range weights {
		total += w
	}
	h := c.Max.Y - c.Min.Y - gap*vg.Length(len(weights)-1)
	out := make([]draw.Canvas, len(weights))
	top := c.Max.Y
	for i, w := range weights {
		ri := c
		ri.Max.Y = top
		ri.Min.Y = top - h*vg.Length(w/total)
		out[i] = ri
		top = ri.Min.Y - gap
	}
	return out
}

// alignColumn crops the canvases of plots stacked in one column so that
// their data areas share left and right edges: the x axes then line up
// whatever the width of each panel's y tick labels. (plot.Align does the
// same for equal-sized tiles; the curves figure wants unequal heights.)
func alignColumn(plots []*plot.Plot, cs []draw.Canvas) {
	// Two passes: cropping can change a panel's glyph padding slightly.
	for range 2 {
		left, right := vg.Length(math.Inf(-1)), vg.Length(math.Inf(1))
		for i, p := range plots {
			d := p.DataCanvas(cs[i])
			left, right = max(left, d.Min.X), min(right, d.Max.X)
		}
		for i, p := range plots {
			d := p.DataCanvas(cs[i])
			cs[i] = draw.Crop(cs[i], left-d.Min.X, right-d.Max.X, 0, 0)
		}
	}
}

// transformX returns the map from x data values to canvas X for plot p
// drawn on c.
func transformX(p *plot.Plot, c draw.Canvas) func(float64) vg.Length {
	d := p.DataCanvas(c)
	trX, _ := p.Transforms(&d)
	return trX
}

// legendWidth returns the width a legend needs, or 0 if it is empty.
func legendWidth(l *plot.Legend) vg.Length {
	r := l.Rectangle(draw.Canvas{})
	return r.Max.X - r.Min.X
}

// yRange returns a padded y range covering every value in sets: 5% of the
// span beyond the data on each side, or the same ratio on a log axis.
func yRange(log bool, sets ...[]xy) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range sets {
		for _, p := range s {
			lo = math.Min(lo, p.y)
			hi = math.Max(hi, p.y)
		}
	}
	if lo > hi {
		return 0, 0, false
	}
	if log {
		if lo == hi {
			return lo / 2, hi * 2, true
		}
		f := math.Pow(hi/lo, 0.05)
		return lo / f, hi * f, true
	}
	if lo == hi {
		d := math.Max(math.Abs(lo)*0.1, 0.5)
		return lo - d, hi + d, true
	}
	d := (hi - lo) * 0.05
	return lo - d, hi + d, true
}

// spanExtent widens the x range lo..hi, if it holds data, to cover the
// stage spans: a run's first stage starts at step 0, before its first
// recorded point, and its boundary belongs on the figure.
func spanExtent(lo, hi float64, spans []span) (float64, float64) {
	if lo > hi {
		return lo, hi
	}
	for _, s := range spans {
		lo = math.Min(lo, s.from)
		if !math.IsInf(s.to, 0) {
			hi = math.Max(hi, s.to)
		}
	}
	return lo, hi
}

// xExtent returns the x range covered by sets.
func xExtent(lo, hi float64, sets ...[]xy) (float64, float64) {
	for _, s := range sets {
		if len(s) > 0 {
			lo = math.Min(lo, s[0].x)
			hi = math.Max(hi, s[len(s)-1].x)
		}
	}
	return lo, hi
}
