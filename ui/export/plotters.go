package export

import (
	"image/color"

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
		if x < p.X.Min || x > p.X.Max {
			continue
		}
		X := trX(x)
		c.StrokeLine2(v.style, X, c.Min.Y, X, c.Max.Y)
	}
}

// span is an x interval [from, to).
type span struct{ from, to float64 }

// bands fills the given x spans over the panel's full height, and writes
// label centred near the top of each span wide enough to hold it.
type bands struct {
	spans []span
	fill  color.Color
	label string
	style text.Style
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
		if w := b.style.Width(b.label); X1-X0 > w+vg.Points(6) {
			sty := b.style
			sty.XAlign = draw.XCenter
			sty.YAlign = draw.YTop
			c.FillText(sty, vg.Point{X: (X0 + X1) / 2, Y: c.Max.Y - vg.Points(4)}, b.label)
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
