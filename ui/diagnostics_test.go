package ui

import (
	"math"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"thaw/trainer"
)

// TestTrainMetricsKey: m on Train cycles the chart under the loss through
// accuracy and the per-block diagnostics; its title (160×45) and the
// one-line legend (80×21) name what is shown, the blocks by name.
func TestTrainMetricsKey(t *testing.T) {
	d := newDriver(t, Options{})
	ts := d.m.screens[ScreenTrain].(*trainScreen)
	for _, p := range synthRun(3000, 25, 250) {
		ts.d.progress(p)
	}
	d.keys("4")
	cases := []struct {
		metric  metric
		title   string // over the chart at 160×45
		compact string // in the legend at 80×21
	}{
		{metricGrad, "gradient norm  ━ head  ━ fc1  ━ fc0  log y", "│ grad ━ head ━ fc1 ━ fc0"},
		{metricRatio, "update/weight ratio", "│ Δw/w ━ head"},
		{metricDrift, "drift ‖w−w₀‖/‖w₀‖  ━ head  ━ fc1  ━ fc0  lin y", "│ drift ━ head"},
		{metricAccuracy, "accuracy  • val acc", "│ acc • val • source"},
	}
	for _, tc := range cases {
		d.keys("m")
		if got, want := ts.d.metric, tc.metric; got != want {
			t.Fatalf("after m the chart shows %v, want %v", got, want)
		}
		if got := ansi.Strip(ts.d.view(160, 45)); !strings.Contains(got, tc.title) {
			t.Errorf("%v at 160×45: no %q in\n%s", tc.metric.title(), tc.title, got)
		}
		if got := ansi.Strip(ts.d.view(80, 21)); !strings.Contains(got, tc.compact) {
			t.Errorf("%v at 80×21: no %q in\n%s", tc.metric.title(), tc.compact, got)
		}
	}
}

// TestDiagnosticsChartShowsTheBlocks: the gradient-norm chart draws a
// line of each trainable block and hides accuracy's series, which it
// keeps for when accuracy is shown again.
func TestDiagnosticsChartShowsTheBlocks(t *testing.T) {
	d := newDashboard(palette{dark: true})
	for _, p := range synthRun(3000, 25, 250) {
		d.progress(p)
	}
	d.view(160, 45)
	accBefore := d.acc.Len(d.sAcc)
	d.cycleMetric()
	var names []string
	for _, r := range d.acc.Inspect(3000) {
		if r.OK {
			names = append(names, r.Name)
		}
	}
	if got, want := strings.Join(names, ","), "fc0 grad,fc1 grad,head grad"; got != want {
		t.Errorf("series shown with a point: got %s, want %s", got, want)
	}
	if got := d.acc.Len(d.sAcc); got != accBefore {
		t.Errorf("val acc holds %d points, want the %d it had", got, accBefore)
	}
	if !d.acc.LogY() {
		t.Error("gradient norms are drawn on a linear axis, want log")
	}
}

// TestEvalStatusLine: while a pass runs, the status line starts with its
// set and progress, within the chart column of a 120-column screen.
func TestEvalStatusLine(t *testing.T) {
	d := newDashboard(palette{dark: true})
	for _, p := range synthRun(3000, 25, 250)[:40] {
		d.progress(p)
	}
	first := func() string { return plain(d.view(120, 37))[0] }
	if got := first(); !strings.HasPrefix(got, "running · stage") {
		t.Fatalf("before a pass got %q, want it to start with running", got)
	}
	cases := []struct {
		set         trainer.EvalSet
		done, total int
		want        string
	}{
		{trainer.EvalValidation, 1200, 2934, "validating 1,200/2,934 · stage"},
		{trainer.EvalGauge, 256, 1000, "gauging source 256/1,000 · stage"},
		{trainer.EvalPrefix, 0, 5000, "caching prefix 0/5,000 · stage"},
		{trainer.EvalNone, 0, 0, "running · stage"},
	}
	for _, tc := range cases {
		if !d.setEval(tc.set, tc.done, tc.total) {
			t.Errorf("%v %d/%d: setEval reports no change", tc.set, tc.done, tc.total)
		}
		if got := first(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("got %q, want it to start with %q", got, tc.want)
		}
	}
}

// BenchmarkTrainFrameDiagnostics is BenchmarkTrainFrame with the
// gradient-norm chart shown and a validation pass under way: a report
// arrives, the tick reads the pass's progress, the screen is drawn.
func BenchmarkTrainFrameDiagnostics(b *testing.B) {
	d := newDashboard(palette{dark: true})
	const total = 1_000_000
	for _, p := range synthRun(total, 1000, 20_000) {
		d.progress(p)
	}
	d.cycleMetric()
	d.view(160, 45)
	nan := math.NaN()
	step := total
	b.ReportAllocs()
	for b.Loop() {
		step++
		d.progress(trainer.Progress{Event: trainer.EventStep, Step: step, TotalSteps: total * 2, Stage: 2, StageLabel: "stage 3: +fc0",
			FirstStep: step - 1, Losses: []float64{0.2}, ValLoss: nan, ValAcc: nan, SourceAcc: nan, Status: trainer.StatusRunning,
			Blocks: []trainer.BlockProgress{{Name: "fc0", Trainable: true, GradNorm: 1}, {Name: "fc1"}, {Name: "head", Trainable: true, GradNorm: 0.5}}})
		d.setEval(trainer.EvalValidation, step%2934, 2934)
		_ = d.view(160, 45)
	}
}
