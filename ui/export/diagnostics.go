package export

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Diagnostics draws the per-block drift figure of run to w in format f,
// which may also be FormatCSV to write the run's data as CSV does.
//
// Each series named by DriftSeries, in the order of run.Series, gets a
// panel of its own (small multiples sharing the x range, each with its own
// y range, as blocks drift by different orders of magnitude). Spans in which
// a block was frozen, known from Stage.Trainable, are shaded and labelled
// "frozen"; stage boundaries cross every panel and are labelled above each
// column.
//
// It returns notes on points left out, and an error if opts is invalid,
// the run has no drift series with a drawable point (ErrNoData), or writing
// fails.
func Diagnostics(w io.Writer, f Format, run Run, opts Options) ([]string, error) {
	if f == FormatCSV {
		return nil, CSV(w, []Run{run})
	}
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	var n notes
	fig, err := buildDiagnostics(run, o, &n)
	if err != nil {
		return n, err
	}
	return n, writeFigure(w, f, o, fig)
}

// gridFig is a grid of small multiples, row-major, nil where a cell is empty.
type gridFig struct {
	plots [][]*plot.Plot
	marks []mark
}

func buildDiagnostics(r Run, o Options, n *notes) (*gridFig, error) {
	type block struct {
		name string
		pts  []xy
	}
	var blocks []block
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for i := range r.Series {
		name, ok := driftBlock(r.Series[i].Name)
		if !ok {
			continue
		}
		pts := extract(r, &r.Series[i], o, o.LogY, n)
		if len(pts) == 0 {
			n.addf("run %q: %s: nothing to draw", r.label(), r.Series[i].Name)
			continue
		}
		xlo, xhi = xExtent(xlo, xhi, pts)
		blocks = append(blocks, block{name, pts})
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("block drift: run %q has no %s series: %w", r.label(), DriftSeries("<block>"), ErrNoData)
	}
	ax := newStepAxis(r, o)
	spans, marks := stageSpans(r, ax)
	xlo, xhi = spanExtent(xlo, xhi, spans)
	if xlo == xhi {
		xlo, xhi = xlo-0.5, xhi+0.5
	}
	cols := gridCols(len(blocks))
	rows := (len(blocks) + cols - 1) / cols
	fig := &gridFig{plots: make([][]*plot.Plot, rows)}
	for i := range fig.plots {
		fig.plots[i] = make([]*plot.Plot, cols)
	}
	var bounds []float64
	for _, m := range marks {
		bounds = append(bounds, m.x)
		m.color = color.Black
		fig.marks = append(fig.marks, m)
	}
	sortMarks(fig.marks)
	lineSty := draw.LineStyle{Color: grey, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
	frozenText := textStyle(stageSize, color.NRGBA{0x44, 0x55, 0x66, 0xff})
	xlabel := "step"
	if o.X == XEpoch {
		xlabel = "epoch"
	}
	// Columns each hold one per pixel of a column's share of the width.
	pxCols := o.Width / cols
	for k, b := range blocks {
		p := newPlot()
		p.Add(bands{spans: frozenSpans(r, b.name, ax), fill: frozenFill, label: "frozen", style: frozenText, avoid: bounds})
		p.Add(vlines{xs: bounds, style: lineSty})
		pts := decimate(b.pts, xlo, xhi, pxCols)
		p.Add(line(pts, draw.LineStyle{Color: palette[0], Width: vg.Points(1.3)}))
		// The block's name goes inside the panel, top left, where a drift
		// curve (zero until the block trains, growing after) rarely is; a
		// title above would collide with the stage ruler.
		p.Add(corner{text: b.name, style: textStyle(labelSize, color.Black)})
		lo, hi, _ := yRange(o.LogY, pts)
		if !o.LogY && !slices.ContainsFunc(pts, func(p xy) bool { return p.y < 0 }) {
			// Drift is a norm, 0 at the pretrained weights: start the axis
			// there, so that panels read as how far each block moved.
			lo = 0
		}
		p.X.Min, p.X.Max = xlo, xhi
		p.Y.Min, p.Y.Max = lo, hi
		if o.LogY {
			p.Y.Scale = plot.LogScale{}
			p.Y.Tick.Marker = logTicks{}
		}
		row, col := k/cols, k%cols
		if col == 0 {
			p.Y.Label.Text = "drift"
		}
		// Only the lowest panel of each column labels the x axis.
		if k+cols >= len(blocks) {
			p.X.Label.Text = xlabel
		} else {
			p.X.Tick.Marker = unlabelled{p.X.Tick.Marker}
		}
		fig.plots[row][col] = p
	}
	return fig, nil
}

// gridCols returns the number of columns for n small multiples.
func gridCols(n int) int {
	switch {
	case n <= 1:
		return 1
	case n <= 4:
		return 2
	case n <= 9:
		return 3
	}
	return 4
}

// frozenSpans returns the x spans in which block was not trainable. Stages
// that do not record what was trainable add nothing.
func frozenSpans(r Run, block string, ax stepAxis) []span {
	var out []span
	for _, s := range r.Stages {
		if s.Trainable == nil || slices.Contains(s.Trainable, block) {
			continue
		}
		from, to := ax.x(s.StartStep), math.Inf(1)
		if s.EndStep > s.StartStep {
			to = ax.x(s.EndStep)
		}
		if k := len(out); k > 0 && out[k-1].to == from {
			out[k-1].to = to // one band across consecutive frozen stages
			continue
		}
		out = append(out, span{from, to})
	}
	return out
}

func (f *gridFig) draw(dc draw.Canvas, title string) {
	dc = frame(dc, title)
	rows, cols := len(f.plots), len(f.plots[0])
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(14), PadY: vg.Points(8)}
	cs := plot.Align(f.plots, tiles, dc)
	sty := textStyle(stageSize, color.Black)
	rulers := make([]ruler, cols)
	var h vg.Length
	for j := 0; j < cols; j++ {
		p := f.plots[0][j]
		if p == nil {
			continue
		}
		d := p.DataCanvas(cs[0][j])
		rulers[j] = layoutRuler(f.marks, sty, d.Min.X, d.Max.X, transformX(p, cs[0][j]))
		h = max(h, rulers[j].height())
	}
	if h > 0 {
		dc.Max.Y -= h
		cs = plot.Align(f.plots, tiles, dc)
	}
	for i, row := range f.plots {
		for j, p := range row {
			if p != nil {
				p.Draw(cs[i][j])
			}
		}
	}
	for j, p := range f.plots[0] {
		if p == nil {
			continue
		}
		d := p.DataCanvas(cs[0][j])
		strip := d
		strip.Min.Y, strip.Max.Y = d.Max.Y, d.Max.Y+h
		rulers[j].draw(strip, transformX(p, cs[0][j]))
	}
}
