package export

import (
	"fmt"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Metric draws one metric of runs, the series called name (such as "lr",
// "samples_per_sec" or "block/conv1/grad_norm"), as a single panel to w in
// format f, which may also be FormatCSV to write that series of each run
// as CSV does.
//
// It looks like the loss panel of Curves: stage boundaries labelled above
// the panel, one run in one colour with its stages shaded alternately,
// several runs each in its own colour, dash and marker with a legend entry,
// a branch beginning at its BranchStep. The metric is smoothed only when
// opts.Smoothing is set (a learning rate, say, must not be), with the raw
// series faint behind; opts.LogY puts the panel on a log scale.
//
// It returns notes on points left out and an error if opts is invalid, no
// run has a drawable point of name (ErrNoData), or writing fails.
func Metric(w io.Writer, f Format, runs []Run, name string, opts Options) ([]string, error) {
	if f == FormatCSV {
		return nil, CSV(w, onlySeries(runs, name))
	}
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	var n notes
	fig, err := buildMetric(runs, name, o, &n)
	if err != nil {
		return n, err
	}
	return n, writeFigure(w, f, o, fig)
}

// onlySeries returns runs with only their series called name.
func onlySeries(runs []Run, name string) []Run {
	out := make([]Run, len(runs))
	for i, r := range runs {
		out[i] = r
		out[i].Series = nil
		if s := r.series(name); s != nil {
			out[i].Series = []Series{*s}
		}
	}
	return out
}

func buildMetric(runs []Run, name string, o Options, n *notes) (*curvesFig, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("%s: no runs: %w", name, ErrNoData)
	}
	cs := make([]runCurves, len(runs))
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for i, r := range runs {
		c := &cs[i]
		c.run = r
		s := r.series(name)
		c.raw = extract(r, s, o, o.LogY, n)
		c.smooth = smoothed(r, s, c.raw, o)
		c.spans, c.marks = stageSpans(r, newStepAxis(r, o))
		xlo, xhi = xExtent(xlo, xhi, c.raw)
	}
	if xlo > xhi {
		return nil, fmt.Errorf("%s: no run has a point to draw: %w", name, ErrNoData)
	}
	for _, c := range cs {
		xlo, xhi = spanExtent(xlo, xhi, c.spans)
	}
	if xlo == xhi {
		xlo, xhi = xlo-0.5, xhi+0.5
	}
	single := len(runs) == 1
	for i := range cs {
		c := &cs[i]
		// Markers on a sparse series (evaluations) show where the values
		// are; in an overlay they also tell the runs apart in greyscale.
		if single && len(c.raw) <= maxMarkers || !single {
			c.valMarks = sample(c.raw)
		}
		c.raw = decimate(c.raw, xlo, xhi, o.Width)
		c.smooth = decimate(c.smooth, xlo, xhi, o.Width)
	}

	bg := boundaryLines(cs, single)
	if single {
		bg = append([]plot.Plotter{bands{spans: alternate(cs[0].spans), fill: bandGrey}}, bg...)
	}
	var sets [][]xy
	for _, c := range cs {
		sets = append(sets, c.raw)
	}
	lo, hi, _ := yRange(o.LogY, sets...)
	p := newPlot()
	p.Add(bg...)
	p.Y.Label.Text = name
	if o.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	p.X.Label.Text = "step"
	if o.X == XEpoch {
		p.X.Label.Text = "epoch"
	}

	leg := newLegend()
	smooth := o.Smoothing > 0
	if smooth && !o.HideRaw {
		// Raw curves first, so every main curve lies on top of them all.
		for i, c := range cs {
			col, alpha := palette[0], uint8(rawAlpha)
			if !single {
				col, alpha = runColor(i), rawAlphaOverlay
			}
			raw := line(c.raw, draw.LineStyle{Color: faint(col, alpha), Width: vg.Points(0.6)})
			p.Add(raw)
			if single {
				leg.Add(runLegendName(c.run)+", raw", rawKey(col, alpha))
			}
		}
	}
	for i, c := range cs {
		main := c.raw
		if smooth {
			main = c.smooth
		}
		sty := draw.LineStyle{Color: palette[0], Width: vg.Points(1.5)}
		glyph := draw.GlyphStyle{Color: palette[0], Radius: vg.Points(2.2), Shape: draw.CircleGlyph{}}
		if !single {
			sty, glyph = overlayVal(i), overlayGlyph(i)
		}
		l, s := line(main, sty), scatter(c.valMarks, glyph)
		p.Add(l, s)
		label := runLegendName(c.run)
		if smooth {
			label += fmt.Sprintf(" (EMA %g)", o.Smoothing)
		}
		leg.Add(label, l, s)
	}
	p.X.Min, p.X.Max = xlo, xhi
	p.Y.Min, p.Y.Max = lo, hi
	return &curvesFig{
		panels:  []*plot.Plot{p},
		legends: []plot.Legend{leg},
		weights: []float64{1},
		marks:   rulerMarks(cs, single),
	}, nil
}
