package ui

// The chart under the loss: accuracy and the forgetting gauge, or one of
// the per-block diagnostics (gradient norm, update/weight ratio, drift)
// as a line per block, chosen with the Train screen's metrics key. Every
// set's series live in the one chart and take their points as reports
// arrive; choosing a set hides the others, so a switch shows the whole
// history at once and costs one rasterisation.

import (
	"fmt"
	"image/color"
	"math"
	"strings"

	"charm.land/lipgloss/v2"

	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/chart"
)

// metric is a set of series the lower chart shows.
type metric int

// The lower chart's sets, in the order the metrics key cycles them.
const (
	metricAccuracy metric = iota // val acc and source acc
	metricGrad                   // gradient norm per block
	metricRatio                  // update/weight ratio per block
	metricDrift                  // drift from the starting weights per block
	numMetrics
)

// title names the set as a chart title does; short as the compact legend.
func (m metric) title() string {
	return [...]string{"accuracy", "gradient norm", "update/weight ratio ‖Δw‖/‖w‖", "drift ‖w−w₀‖/‖w₀‖"}[m]
}

func (m metric) short() string { return [...]string{"acc", "grad", "Δw/w", "drift"}[m] }

// logY: gradient norms and update ratios span decades; drift grows from
// zero, which a log axis cannot draw.
func (m metric) logY() bool { return m == metricGrad || m == metricRatio }

// diagSeries are one block's series in the lower chart, by metric.
type diagSeries [numMetrics]int

// blockColor is block i's colour in the diagnostics charts.
func blockColor(p palette, i int) color.Color {
	cs := []color.Color{p.smooth(), p.val(), p.acc(), p.src(), p.c(toneGold), p.c(toneRose), p.c(toneAccent)}
	return cs[i%len(cs)]
}

// addDiagnostics appends a report's per-block diagnostics at x, the step
// on the charts' axis, adding the blocks' series on the first report. A
// frozen block has no gradient and no update: its line breaks there.
func (d *dashboard) addDiagnostics(x int, bs []trainer.BlockProgress) {
	if len(bs) == 0 {
		return
	}
	if len(d.diag) == 0 {
		d.diagNames = d.diagNames[:0]
		for i, b := range bs {
			name := termtext.Sanitize(b.Name)
			var s diagSeries
			for m := metricGrad; m < numMetrics; m++ {
				s[m] = d.acc.AddSeries(name+" "+m.short(), chart.Line, chart.Style{FG: blockColor(d.pal, i)}, true)
			}
			d.diag = append(d.diag, s)
			d.diagNames = append(d.diagNames, name)
		}
		d.applyMetric()
	}
	xs := []float64{float64(x)}
	for i, b := range bs {
		if i >= len(d.diag) {
			break
		}
		grad, ratio := b.GradNorm, b.UpdateRatio
		if !b.Trainable || grad <= 0 {
			grad, ratio = math.NaN(), math.NaN()
		}
		d.acc.Append(d.diag[i][metricGrad], xs, []float64{grad})
		d.acc.Append(d.diag[i][metricRatio], xs, []float64{ratio})
		d.acc.Append(d.diag[i][metricDrift], xs, []float64{b.Drift})
	}
	if d.metric != metricAccuracy {
		d.acc.SetBest(0, 0, false) // a new best is the accuracy chart's
	}
}

// cycleMetric shows the next set in the lower chart.
func (d *dashboard) cycleMetric() {
	d.metric = (d.metric + 1) % numMetrics
	d.applyMetric()
	d.rasterise()
}

// applyMetric shows the chosen set's series and hides the others, with
// the set's y axis and the best-point marker on accuracy only.
func (d *dashboard) applyMetric() {
	acc := d.metric == metricAccuracy
	d.acc.SetHidden(d.sAcc, !acc)
	d.acc.SetHidden(d.sSrc, !acc)
	for _, s := range d.diag {
		for m := metricGrad; m < numMetrics; m++ {
			d.acc.SetHidden(s[m], m != d.metric)
		}
	}
	d.acc.YPercent = acc
	d.acc.SetLogY(d.metric.logY())
	if acc && d.hasBest && !math.IsNaN(d.best.acc) {
		d.acc.SetBest(float64(d.best.step), d.best.acc, true)
	} else {
		d.acc.SetBest(0, 0, false)
	}
}

// styleDiagnostics colours the blocks' series for a palette.
func (d *dashboard) styleDiagnostics() {
	for i, s := range d.diag {
		for m := metricGrad; m < numMetrics; m++ {
			d.acc.SetSeriesStyle(s[m], chart.Style{FG: blockColor(d.pal, i)})
		}
	}
}

// diagLegend names the blocks in their colours, output block first as the
// blocks panel lists them; sep joins them.
func (d *dashboard) diagLegend(sep string) string {
	if len(d.diag) == 0 {
		return d.pal.fg(d.pal.dim()).Render("no per-block diagnostics yet")
	}
	var parts []string
	for i := len(d.diagNames) - 1; i >= 0; i-- {
		parts = append(parts, d.pal.fg(blockColor(d.pal, i)).Render("━ "+d.diagNames[i]))
	}
	return strings.Join(parts, sep)
}

// lowerTitle is the lower chart's title line with its legend.
func (d *dashboard) lowerTitle() string {
	if d.metric == metricAccuracy {
		return d.chartTitle("accuracy", d.accLegend())
	}
	scale := "lin y"
	if d.metric.logY() {
		scale = "log y"
	}
	return d.chartTitle(d.metric.title(), d.diagLegend("  ")+"  "+scale+"  "+d.pal.fg(d.pal.dim()).Render("(m: next)"))
}

// lowerCompact is the lower chart's part of the one-line legend.
func (d *dashboard) lowerCompact() []string {
	if d.metric == metricAccuracy {
		p := d.pal
		return []string{lipgloss.NewStyle().Bold(true).Render("acc"),
			p.fg(p.acc()).Render("• val"), p.fg(p.src()).Render("• source") + d.forgettingShort()}
	}
	return []string{lipgloss.NewStyle().Bold(true).Render(d.metric.short()), d.diagLegend(" ")}
}

// evalStatus is the evaluation pass under way, as the status line starts
// with it: "validating 1,200/2,934"; "" between passes.
func (d *dashboard) evalStatus() string {
	if d.evalSet == trainer.EvalNone || d.evalTotal <= 0 {
		return ""
	}
	return fmt.Sprintf("%s %s/%s", d.evalSet, commaInt(d.evalDone), commaInt(d.evalTotal))
}

// setEval records how far the run's evaluation pass has got; it reports
// whether that changed what the status line says.
func (d *dashboard) setEval(set trainer.EvalSet, done, total int) bool {
	if set == d.evalSet && done == d.evalDone && total == d.evalTotal {
		return false
	}
	d.evalSet, d.evalDone, d.evalTotal = set, done, total
	return true
}
