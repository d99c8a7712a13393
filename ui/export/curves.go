package export

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ErrNoData is returned when the runs hold nothing the figure can draw.
var ErrNoData = errors.New("nothing to draw")

// maxMarkers caps the glyphs on one validation series; more clutter the
// line. TensorBoard samples its markers the same way (_MAX_MARKERS = 20
// in vz_line_chart2/line-chart.ts).
const maxMarkers = 20

// Curves draws the learning-curve figure of runs to w in format f, which
// may also be FormatCSV to write the runs' data as CSV does.
//
// The top panel shows the training loss, smoothed as opts.Smoothing says
// with the raw loss faint behind it, and the validation loss, with the best
// checkpoint (Run.BestStep) ringed. The bottom panel, drawn only if some run
// has it, shows validation accuracy and the source-task accuracy. Both panels
// share the x axis; stage boundaries cross both and are labelled above them.
// One run is drawn with a colour per metric and its stages shaded
// alternately; several runs are overlaid with a colour, dash and marker per
// run, each run's stage boundaries in its colour, a branch beginning at its
// BranchStep.
//
// It returns notes on points left out (non-finite values, values ≤ 0 on a
// log axis) and an error if opts is invalid, no run has a curve to draw
// (ErrNoData), or writing fails. It does not panic on any data.
func Curves(w io.Writer, f Format, runs []Run, opts Options) ([]string, error) {
	if f == FormatCSV {
		return nil, CSV(w, runs)
	}
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	var n notes
	fig, err := buildCurves(runs, o, &n)
	if err != nil {
		return n, err
	}
	return n, writeFigure(w, f, o, fig)
}

// figure is a laid-out figure that can draw itself.
type figure interface {
	draw(dc draw.Canvas, title string)
}

// writeFigure draws fig on a canvas of o's size in format f and writes it
// to w.
func writeFigure(w io.Writer, f Format, o Options, fig figure) error {
	c, err := newCanvas(f, o)
	if err != nil {
		return err
	}
	fig.draw(draw.New(c), o.Title)
	if _, err := c.WriteTo(w); err != nil {
		return fmt.Errorf("write %v: %w", f, err)
	}
	return nil
}

// runCurves is one run's data ready to draw.
type runCurves struct {
	run                         Run
	raw, smooth, val, acc, src  []xy
	valMarks, accMarks, srcMark []xy
	best                        []xy // zero or one point
	marks                       []mark
	spans                       []span // stage extents, for the bands
	// diverged is the x of the first non-finite loss (the run diverged
	// there), or NaN.
	diverged float64
}

// curvesFig is the learning-curve figure laid out as panels.
type curvesFig struct {
	panels  []*plot.Plot
	legends []plot.Legend
	weights []float64
	marks   []mark
}

func buildCurves(runs []Run, o Options, n *notes) (*curvesFig, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("learning curves: no runs: %w", ErrNoData)
	}
	cs := make([]runCurves, len(runs))
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for i, r := range runs {
		cs[i] = prepareRun(r, o, n)
		c := &cs[i]
		xlo, xhi = xExtent(xlo, xhi, c.raw, c.val, c.acc, c.src)
	}
	if xlo > xhi {
		return nil, fmt.Errorf("learning curves: no %s, %s, %s or %s points: %w", TrainLoss, ValLoss, ValAcc, SourceAcc, ErrNoData)
	}
	for _, c := range cs {
		xlo, xhi = spanExtent(xlo, xhi, c.spans)
	}
	if xlo == xhi {
		xlo, xhi = xlo-0.5, xhi+0.5
	}
	// One column per device pixel is as fine as the figure can show.
	cols := o.Width
	for i := range cs {
		c := &cs[i]
		c.raw = decimate(c.raw, xlo, xhi, cols)
		c.smooth = decimate(c.smooth, xlo, xhi, cols)
		c.val = decimate(c.val, xlo, xhi, cols)
		c.acc = decimate(c.acc, xlo, xhi, cols)
		c.src = decimate(c.src, xlo, xhi, cols)
	}

	single := len(runs) == 1
	fig := &curvesFig{}
	fig.marks = rulerMarks(cs, single)

	// Bands and boundaries go in first so the curves are drawn over them.
	bg := boundaryLines(cs, single)
	if single {
		bg = append([]plot.Plotter{bands{spans: alternate(cs[0].spans), fill: bandGrey}}, bg...)
	}
	ceiling := lossCeiling(cs)
	if !math.IsInf(ceiling, 1) {
		n.addf("the loss axis is cut at %.3g: the losses of a run that blew up run off the top", ceiling)
	}
	loss, lossLeg := lossPanel(cs, o, single, bg, ceiling)
	acc, accLeg := accPanel(cs, single, bg)
	for _, p := range []*plot.Plot{loss, acc} {
		if p != nil {
			p.X.Min, p.X.Max = xlo, xhi
		}
	}
	xlabel := "step"
	if o.X == XEpoch {
		xlabel = "epoch"
	}
	switch {
	case loss != nil && acc != nil:
		loss.X.Tick.Marker = unlabelled{loss.X.Tick.Marker}
		acc.X.Label.Text = xlabel
		fig.panels = []*plot.Plot{loss, acc}
		fig.legends = []plot.Legend{lossLeg, accLeg}
		fig.weights = []float64{0.6, 0.4}
	case loss != nil:
		loss.X.Label.Text = xlabel
		fig.panels, fig.legends, fig.weights = []*plot.Plot{loss}, []plot.Legend{lossLeg}, []float64{1}
	default:
		acc.X.Label.Text = xlabel
		fig.panels, fig.legends, fig.weights = []*plot.Plot{acc}, []plot.Legend{accLeg}, []float64{1}
	}
	return fig, nil
}

// prepareRun extracts, filters and smooths one run's curves.
func prepareRun(r Run, o Options, n *notes) runCurves {
	c := runCurves{run: r}
	loss := r.series(TrainLoss)
	c.raw = extract(r, loss, o, o.LogY, n)
	c.smooth = smoothed(r, loss, c.raw, o)
	c.val = extract(r, r.series(ValLoss), o, o.LogY, n)
	c.acc = extract(r, r.series(ValAcc), o, false, n)
	c.src = extract(r, r.series(SourceAcc), o, false, n)
	c.valMarks, c.accMarks, c.srcMark = sample(c.val), sample(c.acc), sample(c.src)

	ax := newStepAxis(r, o)
	if r.BestStep >= 0 && len(c.val) > 0 {
		// The validation point recorded at the best step, or the nearest.
		bx := ax.x(r.BestStep)
		best := c.val[0]
		for _, p := range c.val {
			if math.Abs(p.x-bx) < math.Abs(best.x-bx) {
				best = p
			}
		}
		c.best = []xy{best}
	}
	c.spans, c.marks = stageSpans(r, ax)
	c.diverged = math.NaN()
	if step, ok := divergedAt(r); ok {
		c.diverged = ax.x(step)
		c.marks = append(c.marks, mark{x: c.diverged, label: "diverged"})
	}
	return c
}

// divergedAt returns the step of r's first non-finite training or
// validation loss: the run diverged there.
func divergedAt(r Run) (int, bool) {
	step, ok := 0, false
	for _, name := range []string{TrainLoss, ValLoss} {
		s := r.series(name)
		if s == nil {
			continue
		}
		for _, p := range s.Points {
			if r.BranchStep > 0 && p.Step < r.BranchStep {
				continue
			}
			if math.IsNaN(p.Value) || math.IsInf(p.Value, 0) {
				if !ok || p.Step < step {
					step, ok = p.Step, true
				}
				break
			}
		}
	}
	return step, ok
}

// lossCeiling returns where the loss axis stops when a run blew up: three
// times the 90th percentile of the losses drawn before the divergence,
// which clears a healthy curve's start and leaves the exploding tail (a
// loss of 2.5e27 a step before NaN) running off the top. It returns +Inf,
// no ceiling, when nothing diverged and no loss is a hundred times that
// level.
func lossCeiling(cs []runCurves) float64 {
	var vals []float64
	diverged := false
	top := math.Inf(-1)
	for _, c := range cs {
		diverged = diverged || !math.IsNaN(c.diverged)
		for _, set := range [][]xy{c.raw, c.val} {
			for _, p := range set {
				top = math.Max(top, p.y)
				if math.IsNaN(c.diverged) || p.x < c.diverged {
					vals = append(vals, p.y)
				}
			}
		}
	}
	if len(vals) == 0 {
		return math.Inf(1)
	}
	slices.Sort(vals)
	ceiling := 3 * vals[int(0.9*float64(len(vals)-1))]
	if !(ceiling > 0) || top <= ceiling || !diverged && top <= 100*ceiling {
		return math.Inf(1)
	}
	return ceiling
}

// stageSpans returns the extent and the labelled start of each of r's own
// stages (a branch's inherited ones are its parent's).
func stageSpans(r Run, ax stepAxis) (spans []span, marks []mark) {
	for _, s := range r.Stages {
		if r.BranchStep > 0 && s.StartStep < r.BranchStep {
			continue // the parent's stage, drawn with the parent
		}
		from := ax.x(s.StartStep)
		to := math.Inf(1)
		if s.EndStep > s.StartStep {
			to = ax.x(s.EndStep)
		}
		spans = append(spans, span{from, to})
		label := s.Label
		if label == "" {
			label = "stage " + strconv.Itoa(s.Index)
		}
		marks = append(marks, mark{x: from, label: label})
	}
	return spans, marks
}

// smoothPoints is the most points the EMA runs over. TensorBoard keeps a
// sample of 1000 points of a scalar series (the default size guidance of
// its scalars plugin) and smooths those, so a weight of 0.6 averages over
// some 2.5/1000 of a long run; averaging a longer series into 1000 bins
// first gives the same weight the same look here, whatever the run's
// length or the figure's width.
const smoothPoints = 1000

// smoothed returns the debiased EMA (Smooth) of series s of run r, whose
// drawable points are raw, or nil when o asks for no smoothing. A series
// read in buckets is smoothed through its bucket means (Series.Means), not
// through raw, whose minimum and maximum per bucket would drag the average
// towards whichever came last; either is first averaged into at most
// smoothPoints bins.
func smoothed(r Run, s *Series, raw []xy, o Options) []xy {
	if o.Smoothing == 0 || len(raw) == 0 {
		return nil
	}
	src := raw
	if s.Means != nil {
		// The notes on skipped points were made for raw; these are the
		// same points summarised, so they are not noted twice.
		var ignored notes
		src = extract(r, &Series{Name: s.Name, Points: s.Means}, o, o.LogY, &ignored)
	}
	src = binMeans(src, smoothPoints)
	ys := make([]float64, len(src))
	for i, p := range src {
		ys[i] = p.y
	}
	Smooth(ys, ys, o.Smoothing)
	out := make([]xy, len(src))
	for i, p := range src {
		out[i] = xy{p.x, ys[i]}
	}
	return out
}

// binMeans averages pts, sorted by x, into at most n bins of equal width
// in x, each becoming the mean of its points; pts with n points or fewer
// are returned as they are.
func binMeans(pts []xy, n int) []xy {
	if len(pts) <= n || n < 1 {
		return pts
	}
	x0, x1 := pts[0].x, pts[len(pts)-1].x
	if !(x1 > x0) {
		return pts
	}
	scale := float64(n) / (x1 - x0)
	bin := func(x float64) int { return min(int((x-x0)*scale), n-1) }
	out := make([]xy, 0, n)
	for i := 0; i < len(pts); {
		b := bin(pts[i].x)
		var sx, sy float64
		k := 0
		for ; i < len(pts) && bin(pts[i].x) == b; i++ {
			sx, sy, k = sx+pts[i].x, sy+pts[i].y, k+1
		}
		out = append(out, xy{sx / float64(k), sy / float64(k)})
	}
	return out
}

// sample returns at most maxMarkers points of pts, sorted by x: the ones
// nearest to evenly spaced x positions. Spacing by x rather than by index
// keeps markers apart where evaluations bunch up (every N steps and at
// each epoch's end, say).
func sample(pts []xy) []xy {
	if len(pts) <= maxMarkers {
		return pts
	}
	x0, x1 := pts[0].x, pts[len(pts)-1].x
	out := make([]xy, 0, maxMarkers)
	j := 0
	for k := range maxMarkers {
		x := x0 + (x1-x0)*float64(k)/float64(maxMarkers-1)
		for j+1 < len(pts) && math.Abs(pts[j+1].x-x) <= math.Abs(pts[j].x-x) {
			j++
		}
		if n := len(out); n == 0 || out[n-1] != pts[j] {
			out = append(out, pts[j])
		}
	}
	return out
}

// alternate returns every second span, starting with the second, so
// neighbouring stages differ in shade.
func alternate(s []span) []span {
	var out []span
	for i := 1; i < len(s); i += 2 {
		out = append(out, s[i])
	}
	return out
}

// Colours of the single-run figure, one per metric.
var (
	trainColor = palette[0]
	valColor   = palette[1]
	accColor   = palette[2]
	srcColor   = palette[3]
)

func lossPanel(cs []runCurves, o Options, single bool, bg []plot.Plotter, ceiling float64) (*plot.Plot, plot.Legend) {
	leg := newLegend()
	var sets [][]xy
	for _, c := range cs {
		// The range comes from the points under the ceiling; those above
		// are drawn, clipped at the top.
		for _, set := range [][]xy{c.raw, c.val} {
			var under []xy
			for _, p := range set {
				if p.y <= ceiling {
					under = append(under, p)
				}
			}
			sets = append(sets, under)
		}
	}
	lo, hi, ok := yRange(o.LogY, sets...)
	if !ok {
		return nil, leg
	}
	p := newPlot()
	p.Add(bg...)
	defer func() { p.Y.Min, p.Y.Max = lo, hi }()
	p.Y.Label.Text = "loss"
	if o.LogY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
	}
	smoothed := o.Smoothing > 0
	trainName := "train loss"
	if smoothed {
		trainName = fmt.Sprintf("train loss (EMA %g)", o.Smoothing)
	}
	// Raw curves first, so every smoothed curve lies on top of them all.
	for i, c := range cs {
		if !smoothed || o.HideRaw || len(c.raw) == 0 {
			continue
		}
		col := trainColor
		alpha := uint8(rawAlpha)
		if !single {
			col, alpha = runColor(i), rawAlphaOverlay
		}
		raw := line(c.raw, draw.LineStyle{Color: faint(col, alpha), Width: vg.Points(0.6)})
		p.Add(raw)
		if single {
			leg.Add("train loss, raw", rawKey(col, alpha))
		}
	}
	for i, c := range cs {
		main := c.raw
		if smoothed {
			main = c.smooth
		}
		trainSty := draw.LineStyle{Color: trainColor, Width: vg.Points(1.2)}
		valSty := draw.LineStyle{Color: valColor, Width: vg.Points(1.5), Dashes: dashes[1]}
		valGlyph := draw.GlyphStyle{Color: valColor, Radius: vg.Points(2.2), Shape: draw.CircleGlyph{}}
		if !single {
			trainSty, valSty, valGlyph = overlayTrain(i), overlayVal(i), overlayGlyph(i)
		}
		var tl, vl *polyline
		var vs *plotter.Scatter
		if len(main) > 0 {
			tl = line(main, trainSty)
			p.Add(tl)
		}
		if len(c.val) > 0 {
			vl, vs = line(c.val, valSty), scatter(c.valMarks, valGlyph)
			p.Add(vl, vs)
		}
		if single {
			if tl != nil {
				leg.Add(trainName, tl)
			}
			if vl != nil {
				leg.Add("val loss", vl, vs)
			}
			continue
		}
		// One entry per run, in the run's validation style, which carries
		// all three cues (colour, dash, marker); the metric key follows.
		leg.Add(runLegendName(c.run), line(nil, valSty), scatter(nil, valGlyph))
	}
	if !single {
		key := color.NRGBA{0x66, 0x66, 0x66, 0xff}
		leg.Add(trainName, line(nil, draw.LineStyle{Color: key, Width: vg.Points(1)}))
		leg.Add("val loss (thick, markers)", line(nil, draw.LineStyle{Color: key, Width: vg.Points(1.8)}),
			scatter(nil, draw.GlyphStyle{Color: key, Radius: vg.Points(2.6), Shape: draw.CircleGlyph{}}))
	}
	var bestAdded bool
	for i, c := range cs {
		if len(c.best) == 0 {
			continue
		}
		col := color.Color(color.Black)
		if !single {
			col = runColor(i)
		}
		s := scatter(c.best, draw.GlyphStyle{Color: col, Radius: vg.Points(5), Shape: ringGlyph{width: vg.Points(1.4)}})
		p.Add(s)
		if !bestAdded {
			label := "best checkpoint"
			if single {
				label = fmt.Sprintf("best: %.4g at %s", c.best[0].y, xName(o, c.best[0].x))
			} else {
				s = scatter(nil, draw.GlyphStyle{Color: color.Black, Radius: vg.Points(5), Shape: ringGlyph{width: vg.Points(1.4)}})
			}
			leg.Add(label, s)
			bestAdded = true
		}
	}
	return p, leg
}

func accPanel(cs []runCurves, single bool, bg []plot.Plotter) (*plot.Plot, plot.Legend) {
	leg := newLegend()
	var sets [][]xy
	for _, c := range cs {
		sets = append(sets, c.acc, c.src)
	}
	lo, hi, ok := yRange(false, sets...)
	if !ok {
		return nil, leg
	}
	p := newPlot()
	p.Add(bg...)
	defer func() { p.Y.Min, p.Y.Max = lo, hi }()
	p.Y.Label.Text = "accuracy"
	var hasAcc, hasSrc bool
	for i, c := range cs {
		accSty := draw.LineStyle{Color: accColor, Width: vg.Points(1.5)}
		accGlyph := draw.GlyphStyle{Color: accColor, Radius: vg.Points(2.2), Shape: draw.SquareGlyph{}}
		srcSty := draw.LineStyle{Color: srcColor, Width: vg.Points(1.5), Dashes: dashes[3]}
		srcGlyph := draw.GlyphStyle{Color: srcColor, Radius: vg.Points(2.4), Shape: draw.TriangleGlyph{}}
		if !single {
			col := runColor(i)
			accSty, accGlyph = overlayVal(i), overlayGlyph(i)
			// The source task is the faded, thinner twin of the run's own
			// line, with a hollow marker.
			srcSty = draw.LineStyle{Color: faint(col, 150), Width: vg.Points(1), Dashes: runDash(i)}
			srcGlyph = draw.GlyphStyle{Color: col, Radius: vg.Points(2.6), Shape: draw.RingGlyph{}}
		}
		if len(c.acc) > 0 {
			l, s := line(c.acc, accSty), scatter(c.accMarks, accGlyph)
			p.Add(l, s)
			if single {
				leg.Add("val accuracy", l, s)
			}
			hasAcc = true
		}
		if len(c.src) > 0 {
			l, s := line(c.src, srcSty), scatter(c.srcMark, srcGlyph)
			p.Add(l, s)
			if single {
				leg.Add("source accuracy", l, s)
			}
			hasSrc = true
		}
	}
	if !single {
		// Runs are named in the loss panel's legend; here only the key.
		key := color.NRGBA{0x66, 0x66, 0x66, 0xff}
		if hasAcc {
			leg.Add("val accuracy", line(nil, draw.LineStyle{Color: key, Width: vg.Points(1.8)}),
				scatter(nil, draw.GlyphStyle{Color: key, Radius: vg.Points(2.6), Shape: draw.CircleGlyph{}}))
		}
		if hasSrc {
			leg.Add("source accuracy (faded)", line(nil, draw.LineStyle{Color: faint(key, 150), Width: vg.Points(1)}),
				scatter(nil, draw.GlyphStyle{Color: key, Radius: vg.Points(2.6), Shape: draw.RingGlyph{}}))
		}
	}
	return p, leg
}

// runLegendName names a run in the overlay legend, saying where a branch
// starts.
func runLegendName(r Run) string {
	if r.BranchStep <= 0 {
		return r.label()
	}
	from := "step " + shortNumber(float64(r.BranchStep), float64(r.BranchStep))
	if r.Parent != "" {
		return fmt.Sprintf("%s (from %s @ %s)", r.label(), r.Parent, from)
	}
	return fmt.Sprintf("%s (from %s)", r.label(), from)
}

// xName formats an x value for a legend.
func xName(o Options, x float64) string {
	if o.X == XEpoch {
		return "epoch " + strconv.FormatFloat(x, 'f', 2, 64)
	}
	return "step " + strconv.FormatFloat(x, 'f', -1, 64)
}

// rulerMarks returns the labels of the stage ruler. In an overlay, a
// boundary several runs share at the same x is labelled once, in grey.
func rulerMarks(cs []runCurves, single bool) []mark {
	var out []mark
	seen := map[mark]int{}
	for i, c := range cs {
		for _, m := range c.marks {
			key := mark{x: m.x, label: m.label}
			if j, ok := seen[key]; ok {
				out[j].color = grey
				continue
			}
			m.color = color.Color(color.Black)
			if !single {
				m.color = runColor(i)
			}
			seen[key] = len(out)
			out = append(out, m)
		}
	}
	sortMarks(out)
	return out
}

func sortMarks(m []mark) {
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && m[j].x < m[j-1].x; j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}

// boundaryLines returns the dashed stage boundaries of every run.
func boundaryLines(cs []runCurves, single bool) []plot.Plotter {
	var out []plot.Plotter
	for i, c := range cs {
		var xs []float64
		for _, m := range c.marks {
			xs = append(xs, m.x)
		}
		sty := draw.LineStyle{Color: grey, Width: vg.Points(0.8), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
		if !single {
			sty.Color = faint(runColor(i), 200)
		}
		out = append(out, vlines{xs: xs, style: sty})
	}
	return out
}

// Overlay styles: run i has one colour, dash and marker throughout.
func overlayTrain(i int) draw.LineStyle {
	return draw.LineStyle{Color: runColor(i), Width: vg.Points(1), Dashes: runDash(i)}
}

func overlayVal(i int) draw.LineStyle {
	return draw.LineStyle{Color: runColor(i), Width: vg.Points(1.8), Dashes: runDash(i)}
}

func overlayGlyph(i int) draw.GlyphStyle {
	return draw.GlyphStyle{Color: runColor(i), Radius: vg.Points(2.6), Shape: runGlyph(i)}
}

// rawKey is the legend entry of a raw curve: a thick faint stroke, as the
// raw curve of a long run is drawn as a band; a hairline would not show.
func rawKey(col color.NRGBA, alpha uint8) *polyline {
	return line(nil, draw.LineStyle{Color: faint(col, alpha), Width: vg.Points(4)})
}

func line(pts []xy, sty draw.LineStyle) *polyline {
	return &polyline{pts: pts, style: sty}
}

func scatter(pts []xy, sty draw.GlyphStyle) *plotter.Scatter {
	return &plotter.Scatter{XYs: toXYs(pts), GlyphStyle: sty}
}

// toXYs converts points, all finite by now: extract has already dropped
// what plotter.NewScatter would reject.
func toXYs(pts []xy) plotter.XYs {
	out := make(plotter.XYs, len(pts))
	for i, p := range pts {
		out[i] = plotter.XY{X: p.x, Y: p.y}
	}
	return out
}

func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle = textStyle(legendSize, color.Black)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(26)
	l.Padding = vg.Points(1.5)
	return l
}

// ringGlyph is an unfilled circle with its own line width; gonum's
// RingGlyph uses the canvas's current width.
type ringGlyph struct{ width vg.Length }

func (g ringGlyph) DrawGlyph(c *draw.Canvas, sty draw.GlyphStyle, pt vg.Point) {
	c.SetLineStyle(draw.LineStyle{Color: sty.Color, Width: g.width})
	var p vg.Path
	p.Move(vg.Point{X: pt.X + sty.Radius, Y: pt.Y})
	p.Arc(pt, sty.Radius, 0, 2*math.Pi)
	p.Close()
	c.Stroke(p)
}

// draw lays the figure out on dc and draws it.
func (f *curvesFig) draw(dc draw.Canvas, title string) {
	dc = frame(dc, title)
	lw := vg.Length(0)
	for i := range f.legends {
		lw = max(lw, legendWidth(&f.legends[i]))
	}
	area := dc
	if lw > 0 {
		area.Max.X -= lw + vg.Points(12)
	}
	gap := vg.Points(6)
	rows := stack(area, f.weights, gap)
	alignColumn(f.panels, rows)
	tr := transformX(f.panels[0], rows[0])
	d0 := f.panels[0].DataCanvas(rows[0])
	r := layoutRuler(f.marks, textStyle(stageSize, color.Black), d0.Min.X, d0.Max.X, tr)
	if h := r.height(); h > 0 {
		area.Max.Y -= h
		rows = stack(area, f.weights, gap)
		alignColumn(f.panels, rows)
	}
	for i, p := range f.panels {
		p.Draw(rows[i])
	}
	d0 = f.panels[0].DataCanvas(rows[0])
	strip := d0
	strip.Min.Y, strip.Max.Y = d0.Max.Y, d0.Max.Y+r.height()
	r.draw(strip, transformX(f.panels[0], rows[0]))
	for i, p := range f.panels {
		d := p.DataCanvas(rows[i])
		lc := dc
		lc.Min.X = dc.Max.X - lw
		lc.Min.Y, lc.Max.Y = d.Min.Y, d.Max.Y
		f.legends[i].Draw(lc)
	}
}
