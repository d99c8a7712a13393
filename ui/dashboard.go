package ui

// The Train screen's dashboard: one run's curves and evidence, fed live
// from a run's reports or loaded from the store. The Train screen shows
// the session's live run with it; the Runs screen opens stored runs in it.

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/chart"
	"thaw/ui/export"
)

// smoothings are the weights `s` cycles through; 0.6 is TensorBoard's
// default and the PNG export's.
var smoothings = []float64{0.6, 0.9, 0.99, 0}

// blockHistory is how many reports a block's sparklines cover.
const blockHistory = 48

// defaultPatience is how many evaluations without a better validation
// loss make a plateau when the plan sets no patience.
const defaultPatience = 3

// evalPoint is one evaluation.
type evalPoint struct {
	step           int
	loss, acc, src float64
}

// stageMark is where a stage started.
type stageMark struct {
	index, start int
	label        string // "stage 2: +fc1"
	short        string // "+fc1", drawn on the charts
	trainable    []string
}

// blockState is one block's latest diagnostics and their recent history.
type blockState struct {
	name                   string
	trainable              bool
	lr, grad, ratio, drift float64
	gradHist, ratioHist    []float64
	driftHist              []float64
}

// dashboard draws one run: loss and accuracy charts with stage marks, the
// blocks panel, the status line, the plateau hint and the inspect cursor.
// Reports are folded in as they arrive and the charts rasterised then; View
// only composes strings, except after a resize.
type dashboard struct {
	pal  palette
	keys ChartKeys

	loss, acc           *chart.Chart
	sRaw, sSmooth, sVal int
	sAcc, sSrc          int
	smoothIdx           int
	ema                 chart.EMA
	stages              []stageMark
	blocks              []blockState
	evals               []evalPoint
	best                evalPoint
	hasBest             bool
	last                trainer.Progress
	hasLast             bool
	total               int
	domHi               int // the live x axis' end
	gaps                []gap
	realLast            int // the latest real step seen
	startStep           int // the real step the run started from
	patience            int
	planStages          int // stages in the plan, when known
	// srcBefore is the source task's accuracy before training (the read
	// model's SourceAccBefore), NaN until known: the forgetting gauge
	// compares with it.
	srcBefore float64
	titles    bool
	cursor    float64
	cursorOn  bool
	zoomed    bool
	stored    bool // loaded from the store, not live
	// histLoss and histEval are the last steps of the training losses and
	// evaluations a live run's stored past gave (see resume), -1 without:
	// its reports up to there are already shown.
	histLoss, histEval          int
	status                      trainer.Status
	name                        string
	width, height               int
	lossH, accH, chartW, panelW int

	// metric is what the chart under the loss shows; diag are the blocks'
	// series in it, diagNames their names (see diagnostics.go).
	metric    metric
	diag      []diagSeries
	diagNames []string
	// The evaluation pass under way, as the Train screen's tick last read
	// it (trainer.EvalNone between passes).
	evalSet             trainer.EvalSet
	evalDone, evalTotal int
}

func newDashboard(pal palette) *dashboard {
	d := &dashboard{pal: pal, keys: DefaultKeyMap().Chart, patience: defaultPatience}
	d.reset()
	return d
}

// reset empties the dashboard for another run.
func (d *dashboard) reset() {
	d.diag = nil // series of the charts replaced here
	d.loss, d.acc = chart.New(60, 12), chart.New(60, 8)
	d.sRaw = d.loss.AddSeries("train loss", chart.Line, chart.Style{}, false)
	d.sSmooth = d.loss.AddSeries("train loss (smoothed)", chart.Line, chart.Style{}, true)
	d.sVal = d.loss.AddSeries("val loss", chart.Points, chart.Style{}, true)
	d.sSrc = d.acc.AddSeries("source acc", chart.Points, chart.Style{}, true)
	d.sAcc = d.acc.AddSeries("val acc", chart.Points, chart.Style{}, true)
	d.setPalette(d.pal)
	d.acc.YPercent = true
	// The charts leave out the steps a skipped stage never trained; their
	// axes say the plan's steps, zoomed or not.
	toReal := func(x float64) float64 { return float64(d.real(int(math.Round(x)))) }
	fromReal := func(r float64) float64 { return float64(d.disp(int(math.Round(r)))) }
	d.loss.ToReal, d.loss.FromReal = toReal, fromReal
	d.acc.ToReal, d.acc.FromReal = toReal, fromReal
	d.ema = chart.NewEMA(smoothings[d.smoothIdx])
	d.stages, d.blocks, d.evals = nil, nil, nil
	d.hasBest, d.hasLast, d.total, d.domHi, d.cursorOn, d.zoomed = false, false, 0, 0, false, false
	d.gaps, d.realLast, d.startStep = nil, 0, 0
	d.histLoss, d.histEval = -1, -1
	d.srcBefore = math.NaN()
	d.width, d.height = 0, 0
	d.evalSet, d.evalDone, d.evalTotal = trainer.EvalNone, 0, 0
	d.applyMetric()
}

// setPalette colours the charts for a terminal's background.
func (d *dashboard) setPalette(p palette) {
	d.pal = p
	for _, c := range []*chart.Chart{d.loss, d.acc} {
		c.SetStyles(chart.Style{FG: p.dim(), Faint: true}, chart.Style{FG: p.dim()},
			chart.Style{FG: p.dim(), Faint: p.noColor}, chart.Style{Bold: true},
			chart.Style{FG: p.best(), Bold: true})
	}
	d.loss.SetSeriesStyle(d.sRaw, chart.Style{FG: p.smooth(), Faint: true})
	d.loss.SetSeriesStyle(d.sSmooth, chart.Style{FG: p.smooth()})
	d.loss.SetSeriesStyle(d.sVal, chart.Style{FG: p.val(), Bold: true})
	d.acc.SetSeriesStyle(d.sSrc, chart.Style{FG: p.src()})
	d.acc.SetSeriesStyle(d.sAcc, chart.Style{FG: p.acc(), Bold: true})
	d.styleDiagnostics()
	d.rasterise()
}

// ---------------------------------------------------------------------
// Data in

// gap is a range of a plan's steps that were never trained: a stage
// ended early with n leaves the rest of its steps unused, and the next
// stage starts where the plan said. The charts leave gaps out, so their x
// axis counts the steps trained; the status line and the inspect cursor
// say the plan's step.
type gap struct {
	from, to int // real steps [from, to) skipped
	at       int // where the gap is on the charts' axis
}

// addGap records that the real steps [from, to) were skipped.
func (d *dashboard) addGap(from, to int) {
	if to <= from {
		return
	}
	d.gaps = append(d.gaps, gap{from: from, to: to, at: d.disp(from)})
}

// disp maps a real step to the charts' axis.
func (d *dashboard) disp(step int) int {
	for _, g := range d.gaps {
		if g.to <= step {
			step -= g.to - g.from
		}
	}
	return step
}

// real maps a position on the charts' axis back to the plan's step.
func (d *dashboard) real(x int) int {
	r := x
	for _, g := range d.gaps {
		if g.at < x {
			r += g.to - g.from
		}
	}
	return r
}

// progress folds one report in and rasterises the charts.
func (d *dashboard) progress(p trainer.Progress) {
	first := !d.hasLast
	d.last, d.hasLast, d.status = p, true, p.Status
	// A jump in the steps is a stage ended early: its unused steps are a
	// gap. The first report only sets where the run starts (a branch or a
	// resumed run starts at its checkpoint's step).
	// The losses are those of the steps just before p.Step. After n the
	// trainer reports them from the step the skipped stage stopped at
	// (FirstStep is not moved to the next stage's start), so they are
	// placed from p.Step back, which is where they were trained.
	firstLoss := p.FirstStep
	if n := len(p.Losses); n > 0 && p.Step-n > firstLoss {
		firstLoss = p.Step - n
	}
	start := p.Step
	if len(p.Losses) > 0 {
		start = min(start, firstLoss)
	}
	if first {
		d.realLast, d.startStep = start, start
	} else if start > d.realLast && (len(p.Losses) > 0 || p.Event == trainer.EventStage) {
		d.addGap(d.realLast, start)
	}
	d.realLast = max(d.realLast, p.Step, firstLoss+len(p.Losses))
	d.total = max(d.disp(p.TotalSteps), d.total)
	d.growDomain(d.disp(p.Step))
	if n := len(p.Losses); n > 0 {
		xs, raw, sm := make([]float64, 0, n), make([]float64, 0, n), make([]float64, 0, n)
		for i, v := range p.Losses {
			// As the store records it: after FirstStep+i+1 steps.
			if firstLoss+i+1 <= d.histLoss {
				continue // shown from the store
			}
			xs, raw, sm = append(xs, float64(d.disp(firstLoss+i+1))), append(raw, v), append(sm, d.ema.Next(v))
		}
		d.loss.Append(d.sRaw, xs, raw)
		d.loss.Append(d.sSmooth, xs, sm)
	}
	if p.Event == trainer.EventStage && p.Stage >= 0 {
		var tr []string
		for _, b := range p.Blocks {
			if b.Trainable {
				tr = append(tr, b.Name)
			}
		}
		d.addStage(p.Stage, d.disp(p.Step), p.StageLabel, tr)
	}
	if (!math.IsNaN(p.ValLoss) || !math.IsNaN(p.ValAcc)) && p.Step > d.histEval {
		d.addEval(evalPoint{step: d.disp(p.Step), loss: p.ValLoss, acc: p.ValAcc, src: p.SourceAcc})
	}
	d.setBlocks(p.Blocks)
	d.addDiagnostics(d.disp(p.Step), p.Blocks)
	d.rasterise()
}

// growDomain keeps the x axis a little ahead of the latest step, up to
// the plan's length: a long plan's first stage is not squeezed into its
// left edge. It grows by a quarter at least, so the history is
// re-aggregated only a logarithmic number of times.
func (d *dashboard) growDomain(step int) {
	if step < d.domHi && d.domHi > 0 {
		return
	}
	hi := max(int(float64(step)*1.25), step+16)
	if d.total > 0 {
		hi = min(hi, d.total)
	}
	if hi <= d.domHi {
		return
	}
	d.domHi = hi
	lo := float64(d.disp(d.startStep))
	d.loss.SetDomain(lo, float64(hi))
	d.acc.SetDomain(lo, float64(hi))
}

func (d *dashboard) addStage(index, start int, label string, trainable []string) {
	for i := range d.stages {
		if d.stages[i].index == index {
			return // a resumed run reports its stage again
		}
	}
	label = termtext.Sanitize(label)
	short := label
	if _, after, ok := strings.Cut(label, ": "); ok {
		short = after
	}
	d.stages = append(d.stages, stageMark{index: index, start: start, label: label, short: short, trainable: trainable})
	marks := make([]chart.Mark, len(d.stages))
	for i, s := range d.stages {
		marks[i] = chart.Mark{X: float64(s.start), Label: s.short}
	}
	d.loss.SetMarks(marks)
	d.acc.SetMarks(marks)
}

func (d *dashboard) addEval(e evalPoint) {
	x := []float64{float64(e.step)}
	if !math.IsNaN(e.loss) {
		d.loss.Append(d.sVal, x, []float64{e.loss})
	}
	if !math.IsNaN(e.acc) {
		d.acc.Append(d.sAcc, x, []float64{e.acc})
	}
	if !math.IsNaN(e.src) {
		d.acc.Append(d.sSrc, x, []float64{e.src})
	}
	d.evals = append(d.evals, e)
	// Best is the lowest validation loss, as the trainer's checkpoint.
	if !math.IsNaN(e.loss) && (!d.hasBest || e.loss < d.best.loss) {
		d.best, d.hasBest = e, true
		d.loss.SetBest(float64(e.step), e.loss, true)
		d.acc.SetBest(float64(e.step), e.acc, !math.IsNaN(e.acc))
	}
}

func (d *dashboard) setBlocks(bs []trainer.BlockProgress) {
	if len(bs) == 0 {
		return
	}
	if len(d.blocks) != len(bs) {
		d.blocks = make([]blockState, len(bs))
	}
	push := func(h []float64, v float64) []float64 {
		if len(h) == blockHistory {
			copy(h, h[1:])
			h = h[:blockHistory-1]
		}
		return append(h, v)
	}
	for i, b := range bs {
		s := &d.blocks[i]
		s.name, s.trainable = termtext.Sanitize(b.Name), b.Trainable
		s.lr, s.grad, s.ratio, s.drift = b.LR, b.GradNorm, b.UpdateRatio, b.Drift
		s.gradHist = push(s.gradHist, b.GradNorm)
		s.ratioHist = push(s.ratioHist, b.UpdateRatio)
		s.driftHist = push(s.driftHist, b.Drift)
	}
}

// load shows a stored run, as export.Load reads it.
func (d *dashboard) load(r export.Run, status trainer.Status) {
	d.reset()
	d.stored, d.status, d.name = true, status, termtext.Sanitize(r.Name)
	var losses []float64
	var lossX []float64
	lastStep, lastEpoch := 0, 0.0
	for _, g := range runGaps(r) {
		d.addGap(g[0], g[1])
	}
	d.startStep = r.BranchStep
	for _, s := range r.Series {
		for _, p := range s.Points {
			if p.Step >= lastStep {
				lastStep, lastEpoch = p.Step, p.Epoch
			}
		}
		switch s.Name {
		case export.TrainLoss:
			pts := s.Points
			if s.Means != nil {
				pts = s.Means
			}
			for _, p := range pts {
				if p.Step > r.BranchStep || r.BranchStep == 0 {
					lossX, losses = append(lossX, float64(d.disp(p.Step))), append(losses, p.Value)
				}
			}
		}
	}
	for _, s := range r.Stages {
		if r.BranchStep > 0 && s.EndStep > s.StartStep && s.EndStep <= r.BranchStep {
			continue
		}
		d.addStage(s.Index-1, d.disp(s.StartStep), s.Label, s.Trainable)
		lastStep = max(lastStep, s.EndStep)
	}
	d.total = max(d.disp(lastStep), 1)
	d.loss.SetDomain(float64(d.disp(r.BranchStep)), float64(d.total))
	d.acc.SetDomain(float64(d.disp(r.BranchStep)), float64(d.total))
	sm := make([]float64, len(losses))
	for i, v := range losses {
		sm[i] = d.ema.Next(v)
	}
	d.loss.Append(d.sRaw, lossX, losses)
	d.loss.Append(d.sSmooth, lossX, sm)
	// Evaluations: join val loss, val acc and source acc by step.
	byStep := map[int]*evalPoint{}
	var steps []int
	get := func(step int) *evalPoint {
		if e, ok := byStep[step]; ok {
			return e
		}
		e := &evalPoint{step: d.disp(step), loss: math.NaN(), acc: math.NaN(), src: math.NaN()}
		byStep[step] = e
		steps = append(steps, step)
		return e
	}
	for _, s := range r.Series {
		for _, p := range s.Points {
			if r.BranchStep > 0 && p.Step < r.BranchStep {
				continue
			}
			switch s.Name {
			case export.ValLoss:
				get(p.Step).loss = p.Value
			case export.ValAcc:
				get(p.Step).acc = p.Value
			case export.SourceAcc:
				get(p.Step).src = p.Value
			}
		}
	}
	slices.Sort(steps)
	for _, st := range steps {
		d.addEval(*byStep[st])
	}
	d.last = trainer.Progress{Step: lastStep, TotalSteps: lastStep, Epoch: lastEpoch, Status: status, Stage: len(d.stages) - 1}
	if len(d.stages) > 0 {
		d.last.StageLabel = d.stages[len(d.stages)-1].label
	}
	if v := r.View; v.Run.ID != "" {
		// The read model's figures: the planned total and stages, the
		// stage reached, the one best (which may be inherited, before
		// a branch's own steps), the gauge before training.
		d.srcBefore = v.SourceAccBefore
		d.planStages = len(v.Stages)
		d.last.Step = int(v.Step)
		d.last.TotalSteps = int(max(v.TotalSteps, v.Step))
		d.total = max(d.total, d.disp(d.last.TotalSteps))
		d.loss.SetDomain(float64(d.disp(r.BranchStep)), float64(d.total))
		d.acc.SetDomain(float64(d.disp(r.BranchStep)), float64(d.total))
		if v.Stage >= 0 {
			d.last.Stage = v.Stage
			d.last.StageLabel = v.Stages[v.Stage].Label
		}
		d.hasBest = false
		d.loss.SetBest(0, 0, false)
		d.acc.SetBest(0, 0, false)
		if b := v.Best; b.Step >= 0 {
			d.best = evalPoint{step: d.disp(int(b.Step)), loss: b.ValLoss, acc: b.ValAcc, src: b.SourceAcc}
			d.hasBest = true
			if int(b.Step) >= r.BranchStep {
				d.loss.SetBest(float64(d.best.step), b.ValLoss, true)
				d.acc.SetBest(float64(d.best.step), b.ValAcc, !math.IsNaN(b.ValAcc))
			}
		}
	} else if r.BestStep >= 0 {
		if e, ok := byStep[r.BestStep]; ok {
			d.best, d.hasBest = *e, true
			d.loss.SetBest(float64(e.step), e.loss, true)
			d.acc.SetBest(float64(e.step), e.acc, !math.IsNaN(e.acc))
		}
	}
	d.hasLast = true
	d.rasterise()
}

// resume shows the stored past of a run that is still training, r as
// export.Load reads it with every point, total and stages being its plan's
// steps and stages (zero when unknown); its reports go on from there, and
// those of steps already shown are left out.
func (d *dashboard) resume(r export.Run, total, stages int) {
	d.load(r, trainer.StatusRunning)
	d.stored, d.name = false, ""
	if stages > 0 {
		d.planStages = stages
	}
	for _, s := range r.Series {
		for _, p := range s.Points {
			switch s.Name {
			case export.TrainLoss:
				d.histLoss = max(d.histLoss, p.Step)
			case export.ValLoss, export.ValAcc, export.SourceAcc:
				d.histEval = max(d.histEval, p.Step)
			}
		}
	}
	d.realLast = max(d.histLoss, d.histEval, d.startStep)
	if total > 0 {
		d.total = d.disp(total)
	}
	d.last.Step, d.last.TotalSteps = d.realLast, max(total, d.realLast)
	d.domHi = 0
	d.growDomain(d.disp(d.realLast))
	d.rasterise()
}

// runGaps are the steps a stored run never trained, as the read model
// has them (see engine.RunView.Gaps): the rest of a stage ended early,
// from its end to the next stage's planned start.
func runGaps(r export.Run) [][2]int {
	var out [][2]int
	for _, g := range r.View.Gaps() {
		out = append(out, [2]int{int(g[0]), int(g[1])})
	}
	return out
}

// rasterise redraws the charts that changed.
func (d *dashboard) rasterise() {
	d.loss.Render()
	d.acc.Render()
}

// ---------------------------------------------------------------------
// Keys

// handleKey applies a chart key and reports whether it was one.
func (d *dashboard) handleKey(msg tea.KeyPressMsg) bool {
	k := d.keys
	switch {
	case key.Matches(msg, k.LogY):
		d.loss.SetLogY(!d.loss.LogY())
	case key.Matches(msg, k.Smooth):
		d.smoothIdx = (d.smoothIdx + 1) % len(smoothings)
		d.resmooth()
	case key.Matches(msg, k.Outliers):
		on := !d.loss.IgnoreOutliers()
		d.loss.SetIgnoreOutliers(on)
		d.acc.SetIgnoreOutliers(on)
	case key.Matches(msg, k.Zoom):
		d.toggleZoom()
	case key.Matches(msg, k.Left):
		d.moveCursor(-1)
	case key.Matches(msg, k.Right):
		d.moveCursor(+1)
	default:
		return false
	}
	d.rasterise()
	return true
}

// handleWheel moves the inspect cursor along the charts, a wheel notch a
// step of the cursor (up is back in time).
func (d *dashboard) handleWheel(msg tea.MouseWheelMsg) {
	switch msg.Button {
	case tea.MouseWheelUp, tea.MouseWheelLeft:
		d.moveCursor(-1)
	case tea.MouseWheelDown, tea.MouseWheelRight:
		d.moveCursor(+1)
	default:
		return
	}
	d.rasterise()
}

// resmooth recomputes the smoothed loss with the current weight: once per
// key press, over the whole history.
func (d *dashboard) resmooth() {
	d.ema = chart.NewEMA(smoothings[d.smoothIdx])
	xs, raw := d.loss.Points(d.sRaw)
	sm := make([]float64, len(raw))
	for i, v := range raw {
		sm[i] = d.ema.Next(v)
	}
	d.loss.Reset(d.sSmooth, slices.Clone(xs), sm)
}

// toggleZoom shows the stage under the cursor (or the current one) alone,
// or the whole run again.
func (d *dashboard) toggleZoom() {
	if d.zoomed || len(d.stages) == 0 {
		d.zoomed = false
		d.loss.Unzoom()
		d.acc.Unzoom()
		return
	}
	i := len(d.stages) - 1
	if d.cursorOn {
		i = d.stageAt(int(d.cursor))
	}
	lo := float64(d.stages[i].start)
	hi := float64(d.total)
	if i+1 < len(d.stages) {
		hi = float64(d.stages[i+1].start)
	} else if d.hasLast && !d.stored && d.lastStep() > d.stages[i].start {
		// The current stage: up to where it is now, with room to grow.
		hi = min(hi, lo+1.25*float64(d.lastStep()-d.stages[i].start)+1)
	}
	d.zoomed = true
	d.loss.Zoom(lo, hi)
	d.acc.Zoom(lo, hi)
}

// moveCursor moves the inspect cursor by one dot column of the loss
// chart; the first press puts it on the latest step.
func (d *dashboard) moveCursor(dir int) {
	lo, hi := d.loss.XRange()
	w, _ := d.loss.Size()
	step := math.Max(1, math.Round((hi-lo)/float64(2*max(w-8, 1))))
	if !d.cursorOn {
		d.cursorOn = true
		d.cursor = float64(d.lastStep())
	} else {
		d.cursor += float64(dir) * step
	}
	d.cursor = math.Max(lo, math.Min(d.cursor, math.Min(hi, float64(max(d.lastStep(), int(lo))))))
	d.loss.SetCursor(d.cursor, true)
	d.acc.SetCursor(d.cursor, true)
}

// lastStep is the latest step on the charts' axis.
func (d *dashboard) lastStep() int {
	if d.hasLast {
		return d.disp(d.last.Step)
	}
	return 0
}

// stageAt returns the index into d.stages of the stage holding step.
func (d *dashboard) stageAt(step int) int {
	i := 0
	for j, s := range d.stages {
		if s.start < step || (j == 0 && s.start <= step) {
			i = j
		}
	}
	return i
}

// ---------------------------------------------------------------------
// Drawing

// layout sizes the charts for a body of w×h; it re-rasterises only when
// the size changed.
func (d *dashboard) layout(w, h int) {
	if w == d.width && h == d.height {
		return
	}
	d.width, d.height = w, h
	d.panelW = 0
	if w >= 110 {
		d.panelW = min(46, w/3)
	}
	d.chartW = w - d.panelW
	if d.panelW > 0 {
		d.chartW-- // a gap
	}
	rest := h - 3 // status (2) and cursor or hint line
	// A title with its legend over each chart where there is room, one
	// line for both charts where there is not.
	d.titles = h >= 30
	if d.titles {
		rest -= 2
	} else {
		rest--
	}
	if d.panelW == 0 {
		rest -= d.compactBlocksRows(h)
	}
	d.lossH = max(rest*3/5, 5)
	d.accH = max(rest-d.lossH, 4)
	d.loss.SetSize(d.chartW, d.lossH)
	d.acc.SetSize(d.chartW, d.accH)
	d.rasterise()
}

// compactBlocksRows is how many rows the blocks get below the charts on a
// narrow screen.
func (d *dashboard) compactBlocksRows(h int) int {
	if len(d.blocks) == 0 {
		return 0
	}
	return min(len(d.blocks), max(h/7, 2))
}

// view draws the dashboard in w×h.
func (d *dashboard) view(w, h int) string {
	d.layout(w, h)
	var left strings.Builder
	left.WriteString(d.statusView(d.chartW))
	left.WriteString("\n")
	if d.titles {
		left.WriteString(d.chartTitle("loss", d.lossLegend()))
	} else {
		left.WriteString(d.compactLegend(d.chartW))
	}
	left.WriteString("\n")
	left.WriteString(d.loss.View())
	left.WriteString("\n")
	if d.titles {
		left.WriteString(d.lowerTitle())
		left.WriteString("\n")
	}
	left.WriteString(d.acc.View())
	left.WriteString("\n")
	left.WriteString(d.footer(d.chartW))
	if d.panelW == 0 {
		if n := d.compactBlocksRows(h); n > 0 {
			left.WriteString("\n")
			left.WriteString(d.blocksCompact(w, n))
		}
		return left.String()
	}
	return lipgloss.JoinHorizontal(lipgloss.Top, left.String(), " ", d.blocksView(d.panelW, h))
}

func (d *dashboard) chartTitle(name, legend string) string {
	t := lipgloss.NewStyle().Bold(true).Render(name)
	return ansi.Truncate(t+"  "+legend, d.chartW, "…")
}

func (d *dashboard) lossLegend() string {
	p := d.pal
	sm := "raw"
	if w := smoothings[d.smoothIdx]; w > 0 {
		sm = fmt.Sprintf("smoothed %.2g", w)
	}
	parts := []string{
		p.fg(p.smooth()).Render("━ train " + sm),
		p.fg(p.val()).Render("• val"),
		p.fg(p.best()).Render("◆ best"),
	}
	if d.loss.LogY() {
		parts = append(parts, "log y")
	}
	if !d.loss.IgnoreOutliers() {
		parts = append(parts, "outliers shown")
	}
	if d.zoomed {
		parts = append(parts, "zoomed (z: all)")
	}
	return strings.Join(parts, "  ")
}

// compactLegend is both charts' legends in one line of w columns, for a
// terminal too short for a title over each: the series by glyph and
// colour, the smoothing, the y scale, whether outliers are shown, and the
// forgetting figure; what does not fit is cut from the end, the series
// first in line so that they always survive.
func (d *dashboard) compactLegend(w int) string {
	p := d.pal
	sm := "raw"
	if s := smoothings[d.smoothIdx]; s > 0 {
		sm = fmt.Sprintf("s%.2g", s)
	}
	y := "lin y"
	if d.loss.LogY() {
		y = "log y"
	}
	parts := []string{
		lipgloss.NewStyle().Bold(true).Render("loss"),
		p.fg(p.smooth()).Render("━ train " + sm),
		p.fg(p.val()).Render("• val"),
		p.fg(p.best()).Render("◆ best"),
		y,
	}
	if !d.loss.IgnoreOutliers() {
		parts = append(parts, "outliers")
	}
	if d.zoomed {
		parts = append(parts, "zoomed")
	}
	parts = append(append(parts, "│"), d.lowerCompact()...)
	return ansi.Truncate(strings.Join(parts, " "), w, "…")
}

// forgettingShort is the forgetting figure in a few cells: " 97.0→81.5
// (-15.5)", "" until the value before training and a source evaluation
// are known.
func (d *dashboard) forgettingShort() string {
	before, last, _, ok := d.forgettingFigures()
	if !ok {
		return ""
	}
	return fmt.Sprintf(" %.1f→%.1f (%+.1f)", 100*before, 100*last, 100*(last-before))
}

func (d *dashboard) accLegend() string {
	p := d.pal
	return p.fg(p.acc()).Render("• val acc") + "  " + p.fg(p.src()).Render("• source acc (forgetting)") + d.forgetting()
}

// forgetting says how far source-task accuracy fell from before training
// to the latest evaluation, and where it stands at the best step (the
// weights --save writes). It says nothing until the value before
// training is known: a first evaluation is already after training.
func (d *dashboard) forgetting() string {
	before, last, best, ok := d.forgettingFigures()
	if !ok {
		return ""
	}
	out := fmt.Sprintf("  %.1f%% before → %.1f%% (%+.1f)", 100*before, 100*last, 100*(last-before))
	if !math.IsNaN(best) && best != last {
		out += fmt.Sprintf(", %.1f%% at best", 100*best)
	}
	return out
}

// forgettingFigures are the source task's accuracy before training (the
// read model's), at the latest evaluation and at the best one (NaN
// without); ok is false until the first two are known.
func (d *dashboard) forgettingFigures() (before, last, best float64, ok bool) {
	last, best = math.NaN(), math.NaN()
	for _, e := range d.evals {
		if !math.IsNaN(e.src) {
			last = e.src
		}
	}
	if d.hasBest {
		best = d.best.src
	}
	return d.srcBefore, last, best, !math.IsNaN(d.srcBefore) && !math.IsNaN(last)
}

// statusView is two lines: the stage, epoch, step with a progress bar,
// throughput and ETA; then the best checkpoint.
func (d *dashboard) statusView(w int) string {
	if !d.hasLast {
		return "waiting for the run's first report…\n"
	}
	p := d.last
	stage := "—"
	if n := d.stageCount(); p.Stage >= 0 {
		stage = fmt.Sprintf("stage %d/%d %s", p.Stage+1, n, d.stageShort(p.Stage))
	}
	status := string(d.status)
	if d.status == trainer.StatusPaused {
		status = lipgloss.NewStyle().Reverse(true).Render(" paused ")
	}
	if e := d.evalStatus(); e != "" && !d.stored && d.status == trainer.StatusRunning {
		// A pass makes no report: what it has done so far is what moves.
		status = e
	}
	barW := 20
	if w < 130 {
		barW = 10
	}
	frac := 0.0
	if p.TotalSteps > 0 {
		frac = float64(p.Step) / float64(p.TotalSteps)
	}
	epoch := fmt.Sprintf("%.1f", p.Epoch)
	if p.Epoch >= 1000 {
		epoch = fmt.Sprintf("%.0f", p.Epoch)
	}
	line1 := fmt.Sprintf("%s · %s · epoch %s · step %s/%s %s %3.0f%%", status, stage, epoch,
		shortSteps(p.Step), shortSteps(p.TotalSteps), bar(frac, barW), 100*frac)
	if !d.stored {
		if p.SamplesPerSec > 0 {
			line1 += fmt.Sprintf(" · %s samples/s", commaInt(int(math.Round(p.SamplesPerSec))))
		}
		if p.ETA > 0 && d.status == trainer.StatusRunning {
			line1 += " · ETA " + p.ETA.Round(time.Second).String()
		}
	}
	line2 := "best: no evaluation yet"
	if d.hasBest {
		where := "the parent's" // a branch's inherited best, before its own stages
		if len(d.stages) > 0 && d.best.step >= d.stages[0].start {
			where = d.stageShort(d.stages[d.stageAt(d.best.step)].index)
		}
		line2 = fmt.Sprintf("best val loss %.4f · acc %.1f%% at step %d (%s)", d.best.loss, 100*d.best.acc, d.real(d.best.step), where)
	}
	if d.name != "" {
		line2 = d.name + " · " + line2
	}
	return ansi.Truncate(line1, w, "…") + "\n" + ansi.Truncate(line2, w, "…")
}

func (d *dashboard) stageCount() int {
	n := len(d.stages)
	if d.hasLast {
		n = max(n, d.last.Stage+1)
	}
	if d.planStages > n {
		n = d.planStages
	}
	return n
}

func (d *dashboard) stageShort(index int) string {
	for _, s := range d.stages {
		if s.index == index {
			return s.short
		}
	}
	return ""
}

// footer is the inspect readout when the cursor is on, else the plateau
// hint, else the chart keys.
func (d *dashboard) footer(w int) string {
	if d.cursorOn {
		return ansi.Truncate(d.inspectLine(), w, "…")
	}
	if h := d.plateau(); h != "" {
		return ansi.Truncate(lipgloss.NewStyle().Bold(true).Render("hint: ")+h, w, "…")
	}
	return ""
}

func (d *dashboard) inspectLine() string {
	step := int(d.cursor)
	parts := []string{fmt.Sprintf("step %d", d.real(step))}
	if len(d.stages) > 0 {
		parts = append(parts, d.stages[d.stageAt(step)].label)
	}
	for _, r := range append(d.loss.Inspect(d.cursor), d.acc.Inspect(d.cursor)...) {
		if !r.OK || math.IsNaN(r.Y) {
			continue
		}
		v := fmt.Sprintf("%.4g", r.Y)
		if strings.HasSuffix(r.Name, "acc") {
			v = fmt.Sprintf("%.1f%%", 100*r.Y)
		}
		if int(r.X) != step {
			v += fmt.Sprintf(" @%d", d.real(int(r.X)))
		}
		parts = append(parts, r.Name+" "+v)
	}
	return strings.Join(parts, " · ")
}

// plateau says, as a suggestion only, that validation loss has stopped
// improving in the current stage and what to do about it.
func (d *dashboard) plateau() string {
	if d.stored || !d.hasLast || d.status != trainer.StatusRunning && d.status != trainer.StatusPaused || len(d.stages) == 0 {
		return ""
	}
	cur := d.stages[len(d.stages)-1]
	best, since := math.Inf(1), 0
	for _, e := range d.evals {
		if e.step <= cur.start || math.IsNaN(e.loss) {
			continue
		}
		if e.loss < best {
			best, since = e.loss, 0
		} else {
			since++
		}
	}
	if since < d.patience {
		return ""
	}
	next := "n thaws the next stage now"
	if d.last.Stage+1 >= d.stageCount() {
		next = "this is the last stage: x stops the run (the best checkpoint is kept)"
	}
	return fmt.Sprintf("val loss has not improved for %d evaluations in %s — %s", since, cur.short, next)
}

// blocksView is the blocks panel: per block its state, learning rate,
// gradient norm, update/weight ratio and drift, as numbers and
// sparklines; frozen blocks say so in words and draw no sparkline.
func (d *dashboard) blocksView(w, h int) string {
	p := d.pal
	head := lipgloss.NewStyle().Bold(true).Render("blocks") + "  " + p.fg(p.dim()).Render("input → output")
	if len(d.blocks) == 0 {
		return head + "\n" + p.fg(p.dim()).Render("(none reported yet)")
	}
	frozen := p.fg(p.frozen())
	dim := p.fg(p.dim())
	if w < 40 || h < 3*len(d.blocks)+1 {
		return head + "\n" + d.blocksCompact(w, h-1)
	}
	lines := []string{head}
	spark := max(w-26, 8)
	for i := len(d.blocks) - 1; i >= 0; i-- { // output at the top, as the model reads upwards
		b := d.blocks[i]
		if b.trainable {
			lines = append(lines,
				ansi.Truncate(lipgloss.NewStyle().Bold(true).Render(fmt.Sprintf("%-8s trains", b.name))+fmt.Sprintf("  lr %s", sci(b.lr)), w, "…"),
				ansi.Truncate(fmt.Sprintf("  grad %-8s %s", sci(b.grad), sparkline(b.gradHist, spark)), w, "…"),
				ansi.Truncate(fmt.Sprintf("  Δw/w %-8s %s", sci(b.ratio), sparkline(b.ratioHist, spark)), w, "…"),
				ansi.Truncate(fmt.Sprintf("  drift %-7s %s", sci(b.drift), sparkline(b.driftHist, spark)), w, "…"))
		} else {
			lines = append(lines,
				ansi.Truncate(frozen.Render(fmt.Sprintf("%-8s ▒▒ frozen", b.name))+dim.Render("  no gradient, no update"), w, "…"),
				ansi.Truncate(dim.Render(fmt.Sprintf("  drift %-7s %s", sci(b.drift), strings.Repeat("·", spark))), w, "…"))
		}
	}
	if len(lines) > h {
		lines = lines[:h]
	}
	return strings.Join(lines, "\n")
}

// blocksCompact is one line per block, output block first, at most h.
func (d *dashboard) blocksCompact(w, h int) string {
	p := d.pal
	frozen, dim := p.fg(p.frozen()), p.fg(p.dim())
	var lines []string
	for i := len(d.blocks) - 1; i >= 0 && len(lines) < h; i-- {
		b := d.blocks[i]
		var l string
		if b.trainable {
			l = lipgloss.NewStyle().Bold(true).Render(fmt.Sprintf("%-6s trains", b.name)) +
				fmt.Sprintf("  lr %-7s grad %-7s Δw/w %-7s drift %-7s", sci(b.lr), sci(b.grad), sci(b.ratio), sci(b.drift))
			if w > 90 {
				l += " " + sparkline(b.gradHist, 16)
			}
		} else {
			l = frozen.Render(fmt.Sprintf("%-6s ▒ frozen", b.name)) + dim.Render(fmt.Sprintf("  no update          drift %s", sci(b.drift)))
		}
		lines = append(lines, ansi.Truncate(l, w, "…"))
	}
	return strings.Join(lines, "\n")
}

// sparkline draws the last n values as block elements scaled to their
// own range.
func sparkline(vs []float64, n int) string {
	if len(vs) > n {
		vs = vs[len(vs)-n:]
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vs {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	const ramp = "▁▂▃▄▅▆▇█"
	rs := []rune(ramp)
	var b strings.Builder
	for _, v := range vs {
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			b.WriteByte(' ')
		case hi <= lo:
			b.WriteRune(rs[0])
		default:
			b.WriteRune(rs[int((v-lo)/(hi-lo)*float64(len(rs)-1)+0.5)])
		}
	}
	return b.String()
}

// bar is a progress bar of w cells.
func bar(frac float64, w int) string {
	frac = math.Max(0, math.Min(1, frac))
	n := int(math.Round(frac * float64(w)))
	return strings.Repeat("█", n) + strings.Repeat("░", w-n)
}

// sci writes a diagnostic compactly: 0, 3.1e-04, 0.123.
func sci(v float64) string {
	switch a := math.Abs(v); {
	case v == 0:
		return "0"
	case math.IsNaN(v):
		return "—"
	case a >= 0.01 && a < 1000:
		return fmt.Sprintf("%.3g", v)
	default:
		return fmt.Sprintf("%.1e", v)
	}
}

// shortSteps writes a step count whole below a million and in millions
// above, so that the status line keeps its throughput and ETA in view on
// a run of tens of millions of steps.
func shortSteps(n int) string {
	if n < 1_000_000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%.2fM", float64(n)/1e6)
}
