package export

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

// TestDivergedRunAxis: a run whose loss explodes to 2.5e27 and then NaN
// gets a loss axis cut at the level of its curve before, not labels like
// "2500000000000000000000M", and a "diverged" mark where it blew up.
func TestDivergedRunAxis(t *testing.T) {
	const steps, blowup = 2000, 1500
	r := synthRun(1, "boom", steps, 50, gradualStages(steps))
	for _, name := range []string{TrainLoss, ValLoss} {
		s := r.series(name)
		for i := range s.Points {
			switch p := &s.Points[i]; {
			case p.Step >= blowup+10:
				p.Value = math.NaN()
			case p.Step >= blowup:
				p.Value = 2.5 * math.Pow(10, float64(p.Step-blowup)*3)
			}
		}
	}
	o, err := DefaultOptions().normalize()
	if err != nil {
		t.Fatal(err)
	}
	var n notes
	fig, err := buildCurves([]Run{r}, o, &n)
	if err != nil {
		t.Fatal(err)
	}
	loss := fig.panels[0]
	if loss.Y.Max > 20 {
		t.Errorf("loss axis up to %g, want it cut near the curve's level (about 2.3)", loss.Y.Max)
	}
	for _, tk := range loss.Y.Tick.Marker.Ticks(loss.Y.Min, loss.Y.Max) {
		if len(tk.Label) > 6 {
			t.Errorf("tick label %q", tk.Label)
		}
	}
	found := false
	for _, m := range fig.marks {
		found = found || m.label == "diverged" && m.x == blowup+10
	}
	if !found {
		t.Errorf("marks %v, want \"diverged\" at step %d", fig.marks, blowup+10)
	}
	if !strings.Contains(strings.Join(n, "\n"), "the loss axis is cut at") {
		t.Errorf("notes %q, want one saying the axis is cut", n)
	}
	// It still renders, and huge tick values read in exponent form.
	var buf bytes.Buffer
	if _, err := Curves(&buf, FormatPNG, []Run{r}, DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if got := shortNumber(2.5e27, 3e27); got != "2.5e+27" {
		t.Errorf("shortNumber(2.5e27) = %q", got)
	}

	// A healthy run is not cut.
	fig, err = buildCurves([]Run{synthRun(2, "fine", steps, 50, gradualStages(steps))}, o, &n)
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi := fig.panels[0].Y.Min, fig.panels[0].Y.Max; hi < 2.2 || lo > 0.2 {
		t.Errorf("healthy run's loss axis %g..%g, want the whole curve", lo, hi)
	}
}

// TestSVGSize: a run's SVG holds its curves, decimated as the PNG's are,
// and names its fonts instead of embedding a 500 KB face.
func TestSVGSize(t *testing.T) {
	r := synthRun(1, "a", 20000, 50, gradualStages(20000))
	var buf bytes.Buffer
	o := DefaultOptions()
	o.Smoothing = 0.6
	if _, err := Curves(&buf, FormatSVG, []Run{r}, o); err != nil {
		t.Fatal(err)
	}
	s := buf.String()
	if buf.Len() > 150<<10 {
		t.Errorf("SVG of a 20,000-step run is %d bytes, want under 150 KiB", buf.Len())
	}
	if strings.Contains(s, "@font-face") || strings.Contains(s, "base64") {
		t.Error("SVG embeds a font")
	}
	if !strings.Contains(s, "font-family:'Liberation Serif','Times New Roman',Times,serif;") {
		t.Error("SVG text has no metric-compatible fallback font")
	}
}
