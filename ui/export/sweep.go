package export

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"thaw/store/engine"
	"thaw/trainer"
)

// Sweep is a freeze-depth sweep's table as its figure draws it: one
// point per freeze point, in the block table's order (input to output).
type Sweep struct {
	// Name says what was swept ("digits-cnn on digits-5to9, 5 shots").
	Name   string
	Seeds  int
	Points []SweepPoint
	// Note says what was picked and why.
	Note string
}

// SweepPoint is one freeze point's figures over the seeds.
type SweepPoint struct {
	// Point is the lowest block trained; Trainable the parameters trained.
	Point     string
	Trainable int
	Seeds     int
	// The lowest validation loss and the accuracy there: mean and sample
	// standard deviation over the seeds (NaN where there are too few).
	LossMean, LossSD, AccMean, AccSD float64
	Picked                           bool
	// ProbeBlock is the block whose linear probe measures the features
	// this point trains on (the block just below it), empty for none;
	// ProbeMean and ProbeSD are its accuracy over the seeds.
	ProbeBlock         string
	ProbeMean, ProbeSD float64
}

// SweepFigure is group g of a sweep's table as its figure draws it, with
// the probes of the blocks below its points: thaw export --sweep and the
// Blocks screen's e draw the same figure. It panics if g is not a group
// of tb.
func SweepFigure(tb engine.SweepTable, g int, probes []engine.SweepProbe) Sweep {
	grp := tb.Groups[g]
	fig := Sweep{Name: tb.Sweep.Name, Seeds: len(tb.Spec.Seeds), Note: grp.Pick.Note}
	for i, r := range grp.Rows {
		st := r.Stats()
		p := SweepPoint{Point: r.Point, Trainable: r.Trainable, Seeds: st.Seeds,
			LossMean: st.LossMean, LossSD: st.LossSD, AccMean: st.AccMean, AccSD: st.AccSD,
			Picked: i == grp.Pick.Index, ProbeMean: math.NaN(), ProbeSD: math.NaN()}
		for _, pr := range probes {
			if pr.Point == r.Point {
				ps := trainer.SweepRow{ValLoss: pr.Acc}.Stats()
				p.ProbeBlock, p.ProbeMean, p.ProbeSD = pr.Block, ps.LossMean, ps.LossSD
			}
		}
		fig.Points = append(fig.Points, p)
	}
	return fig
}

// SweepChart draws the sweep figure to w in format f: the lowest
// validation loss (top) and the accuracy there (bottom) against the
// freeze point, each a mean with error bars of one standard deviation
// over the seeds, the pick marked on both, and on the accuracy's axis the
// linear probes of the blocks below the points. FormatCSV writes the same
// figures as a table. It returns notes on points left out and an error
// when opts is invalid, no point has a result (ErrNoData) or writing
// fails.
func SweepChart(w io.Writer, f Format, s Sweep, opts Options) ([]string, error) {
	if f == FormatCSV {
		return nil, sweepCSV(w, s)
	}
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	var n notes
	fig, err := buildSweep(s, &n)
	if err != nil {
		return n, err
	}
	return n, writeFigure(w, f, o, fig)
}

// WriteSweep draws the sweep figure into the file at path, in the format
// its extension names, atomically as [WriteFile] does.
func WriteSweep(path string, s Sweep, opts Options) (notes []string, err error) {
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	return notes, writeAtomic(path, func(w io.Writer) error {
		var err error
		notes, err = SweepChart(w, f, s, opts)
		return err
	})
}

// sweepCSV writes one row per freeze point.
func sweepCSV(w io.Writer, s Sweep) error {
	cw := csv.NewWriter(w)
	num := func(v float64) string {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return ""
		}
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	cw.Write([]string{"point", "trainable", "seeds", "val_loss_mean", "val_loss_sd", "val_acc_mean", "val_acc_sd",
		"probe_block", "probe_acc_mean", "probe_acc_sd", "picked"})
	for _, p := range s.Points {
		cw.Write([]string{p.Point, strconv.Itoa(p.Trainable), strconv.Itoa(p.Seeds), num(p.LossMean), num(p.LossSD),
			num(p.AccMean), num(p.AccSD), p.ProbeBlock, num(p.ProbeMean), num(p.ProbeSD), strconv.FormatBool(p.Picked)})
	}
	cw.Flush()
	return cw.Error()
}

// sweepFig is the sweep figure laid out: two panels sharing the x axis.
type sweepFig struct {
	panels  []*plot.Plot
	legends []plot.Legend
}

// meanBars is a mean at each x with an error bar of ±sd, joined by a line.
type meanBars struct {
	pts   []xy
	sds   []float64
	style draw.LineStyle
	glyph draw.GlyphStyle
}

func (b meanBars) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	var line []vg.Point
	bar := b.style
	bar.Dashes = nil
	cap := vg.Points(3)
	for i, q := range b.pts {
		x, y := trX(q.x), trY(q.y)
		line = append(line, vg.Point{X: x, Y: y})
		if sd := b.sds[i]; !math.IsNaN(sd) && sd > 0 {
			lo, hi := trY(q.y-sd), trY(q.y+sd)
			c.StrokeLine2(bar, x, lo, x, hi)
			c.StrokeLine2(bar, x-cap, lo, x+cap, lo)
			c.StrokeLine2(bar, x-cap, hi, x+cap, hi)
		}
	}
	if len(line) > 1 {
		c.StrokeLines(b.style, c.ClipLinesXY(line)...)
	}
	for _, pt := range line {
		c.DrawGlyph(b.glyph, pt)
	}
}

func (b meanBars) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(b.style, c.Min.X, y, c.Max.X, y)
	c.DrawGlyph(b.glyph, vg.Point{X: (c.Min.X + c.Max.X) / 2, Y: y})
}

// pointTicks label the x axis with the freeze points' names.
type pointTicks []string

func (t pointTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for i, name := range t {
		if x := float64(i); x >= min && x <= max {
			out = append(out, plot.Tick{Value: x, Label: name})
		}
	}
	return out
}

func buildSweep(s Sweep, n *notes) (*sweepFig, error) {
	var loss, acc, probe []xy
	var lossSD, accSD, probeSD []float64
	var names []string
	pick := math.NaN()
	for i, p := range s.Points {
		x := float64(i)
		names = append(names, p.Point)
		if math.IsNaN(p.LossMean) {
			n.addf("freeze point %s: no result yet", p.Point)
		} else {
			loss, lossSD = append(loss, xy{x, p.LossMean}), append(lossSD, p.LossSD)
			acc, accSD = append(acc, xy{x, p.AccMean}), append(accSD, p.AccSD)
		}
		if p.ProbeBlock != "" && !math.IsNaN(p.ProbeMean) {
			probe, probeSD = append(probe, xy{x, p.ProbeMean}), append(probeSD, p.ProbeSD)
		}
		if p.Picked {
			pick = x
		}
	}
	if len(loss) == 0 {
		return nil, fmt.Errorf("sweep: no freeze point has a result: %w", ErrNoData)
	}
	seeds := fmt.Sprintf("mean ± sd over %d seeds", s.Seeds)
	if s.Seeds == 1 {
		seeds = "1 seed"
	}
	ticks := pointTicks(names)
	lo, hi := -0.4, float64(len(names)-1)+0.4
	pickSty := draw.LineStyle{Color: palette[1], Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
	mainSty := draw.LineStyle{Color: palette[0], Width: vg.Points(1.4)}
	mainGlyph := draw.GlyphStyle{Color: palette[0], Radius: vg.Points(3), Shape: draw.CircleGlyph{}}
	panel := func(ylabel string, sets ...[]xy) *plot.Plot {
		p := newPlot()
		p.X.Min, p.X.Max = lo, hi
		p.X.Tick.Marker = ticks
		p.Y.Label.Text = ylabel
		if !math.IsNaN(pick) {
			p.Add(vlines{xs: []float64{pick}, style: pickSty})
		}
		return p
	}

	lp := panel("lowest val loss")
	lp.X.Tick.Marker = unlabelled{ticks}
	lp.Add(meanBars{pts: loss, sds: lossSD, style: mainSty, glyph: mainGlyph})
	lp.Y.Min, lp.Y.Max = barRange(loss, lossSD)
	lleg := newLegend()
	lleg.Add("fine-tuned from the point ("+seeds+")", meanBars{style: mainSty, glyph: mainGlyph})
	if !math.IsNaN(pick) {
		lleg.Add("pick: "+s.Points[int(pick)].Point, lineThumb(pickSty))
	}

	ap := panel("val acc there")
	ap.X.Label.Text = "freeze point (the lowest block trained)"
	ap.Add(meanBars{pts: acc, sds: accSD, style: mainSty, glyph: mainGlyph})
	aleg := newLegend()
	aleg.Add("fine-tuned from the point", meanBars{style: mainSty, glyph: mainGlyph})
	sets, sds := [][]xy{acc}, [][]float64{accSD}
	if len(probe) > 0 {
		probeSty := draw.LineStyle{Color: palette[2], Width: vg.Points(1.2), Dashes: dashes[1]}
		probeGlyph := draw.GlyphStyle{Color: palette[2], Radius: vg.Points(3), Shape: draw.TriangleGlyph{}}
		ap.Add(meanBars{pts: probe, sds: probeSD, style: probeSty, glyph: probeGlyph})
		aleg.Add("linear probe of the block below", meanBars{style: probeSty, glyph: probeGlyph})
		sets, sds = append(sets, probe), append(sds, probeSD)
	}
	ap.Y.Min, ap.Y.Max = barRange(concat(sets), concatF(sds))
	return &sweepFig{panels: []*plot.Plot{lp, ap}, legends: []plot.Legend{lleg, aleg}}, nil
}

func concat(sets [][]xy) []xy {
	var out []xy
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

func concatF(sets [][]float64) []float64 {
	var out []float64
	for _, s := range sets {
		out = append(out, s...)
	}
	return out
}

// barRange is a y range holding every mean with its bar, padded by 8 %.
func barRange(pts []xy, sds []float64) (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for i, p := range pts {
		sd := sds[i]
		if math.IsNaN(sd) {
			sd = 0
		}
		lo, hi = min(lo, p.y-sd), max(hi, p.y+sd)
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	pad := 0.08 * (hi - lo)
	return lo - pad, hi + pad
}

// draw lays the two panels out in a column with their legends right.
func (f *sweepFig) draw(dc draw.Canvas, title string) {
	dc = frame(dc, title)
	lw := vg.Length(0)
	for i := range f.legends {
		lw = max(lw, legendWidth(&f.legends[i]))
	}
	area := dc
	area.Max.X -= lw + vg.Points(12)
	rows := stack(area, []float64{1, 1}, vg.Points(6))
	alignColumn(f.panels, rows)
	for i, p := range f.panels {
		p.Draw(rows[i])
		d := p.DataCanvas(rows[i])
		lc := dc
		lc.Min.X = dc.Max.X - lw
		lc.Min.Y, lc.Max.Y = d.Min.Y, d.Max.Y
		f.legends[i].Draw(lc)
	}
}

// lineThumb is a legend entry drawn as a line in a style.
type lineThumb draw.LineStyle

func (l lineThumb) Thumbnail(c *draw.Canvas) {
	y := (c.Min.Y + c.Max.Y) / 2
	c.StrokeLine2(draw.LineStyle(l), c.Min.X, y, c.Max.X, y)
}
