package chart

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"thaw/ui/export"
)

func TestEMAEqualsExportSmooth(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noisy := make([]float64, 500)
	for i := range noisy {
		noisy[i] = math.Exp(-float64(i)/100) + 0.1*rng.Float64()
	}
	withNaN := append([]float64{}, noisy[:50]...)
	withNaN[10] = math.NaN()
	withNaN[20] = math.Inf(1)
	cases := []struct {
		name string
		src  []float64
		w    float64
	}{
		{"noisy 0.6", noisy, 0.6},
		{"noisy 0.99", noisy, 0.99},
		{"noisy 0", noisy, 0},
		{"constant", []float64{3, 3, 3, 3}, 0.9},
		{"constant then not", []float64{3, 3, 3, 1, 2}, 0.9},
		{"non-finite", withNaN, 0.8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := export.Smooth(nil, tc.src, tc.w)
			e := NewEMA(tc.w)
			for i, v := range tc.src {
				got := e.Next(v)
				// The one difference is rounding: while the series is
				// constant the EMA returns c where export computes
				// c(1−wⁿ)/(1−wⁿ); a few ulps.
				same := got == want[i] || math.IsNaN(got) && math.IsNaN(want[i])
				if !(same || math.Abs(got-want[i]) <= 1e-12*math.Abs(want[i])) {
					t.Fatalf("point %d: got %v, want %v", i, got, want[i])
				}
			}
		})
	}
}

func TestBrailleDots(t *testing.T) {
	var c canvas
	c.reset(2, 1)
	c.dot(0, 0, 0) // dot 1
	c.dot(1, 3, 0) // dot 8
	c.dot(3, 0, 0) // dot 4 of the second cell
	var b strings.Builder
	c.writeRow(&b, 0)
	if got, want := b.String(), string([]rune{0x2800 + 0x81, 0x2800 + 0x08}); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestOneStyleRunPerColourChange(t *testing.T) {
	var c canvas
	c.reset(6, 1)
	red := c.addStyle(Style{FG: ansi.Red})
	for x := 0; x < 8; x++ { // four cells of red
		c.dot(x, 0, red)
	}
	var b strings.Builder
	c.writeRow(&b, 0)
	if n := strings.Count(b.String(), "\x1b["); n != 2 { // one start, one reset
		t.Fatalf("got %d escape sequences in %q, want 2", n, b.String())
	}
}

func lines(c *Chart) []string { return strings.Split(ansi.Strip(c.View()), "\n") }

func TestEveryRowIsTheChartsWidth(t *testing.T) {
	for _, size := range [][2]int{{76, 18}, {30, 6}, {160, 20}, {8, 4}} {
		c := New(size[0], size[1])
		s := c.AddSeries("y", Line, Style{}, true)
		c.Append(s, []float64{0, 1, 2}, []float64{1, 5, 2})
		c.SetMarks([]Mark{{X: 1, Label: "a very long stage label"}})
		c.Render()
		ls := lines(c)
		if len(ls) != size[1] {
			t.Fatalf("%v: got %d rows, want %d", size, len(ls), size[1])
		}
		for i, l := range ls {
			if w := ansi.StringWidth(l); w != size[0] {
				t.Fatalf("%v: row %d is %d wide, want %d: %q", size, i, w, size[0], l)
			}
		}
	}
}

// Folding points in as they arrive must give what aggregating the whole
// history at once gives.
func TestAppendInChunksEqualsAllAtOnce(t *testing.T) {
	xs, ys := walk(100_000, 3)
	a, b := New(76, 18), New(76, 18)
	for _, c := range []*Chart{a, b} {
		c.SetDomain(0, 100_000)
		c.AddSeries("y", Line, Style{}, true)
		c.Render() // lay out first, so a's chunks are folded incrementally
	}
	for i := 0; i < len(xs); i += 977 {
		j := min(i+977, len(xs))
		a.Append(0, xs[i:j], ys[i:j])
	}
	b.Append(0, xs, ys)
	b.aggCols = -1 // force a full aggregation
	a.Render()
	b.Render()
	if a.View() != b.View() {
		t.Fatalf("chunked:\n%s\nat once:\n%s", ansi.Strip(a.View()), ansi.Strip(b.View()))
	}
}

// The decimated drawing must cover the same dots as drawing every point:
// compare with a chart fed the M4 points only.
func TestDecimationKeepsExtremes(t *testing.T) {
	xs, ys := walk(50_000, 4)
	ys[20_000] = 40 // a spike must stay visible
	c := New(76, 18)
	c.SetIgnoreOutliers(false)
	c.SetDomain(0, 50_000)
	c.AddSeries("y", Line, Style{}, true)
	c.Append(0, xs, ys)
	c.Render()
	// The y range is padded by a tenth of the span, so the spike's cell
	// is the first plot row holding any dot.
	for _, l := range lines(c)[topRows:] {
		if strings.ContainsFunc(l, func(r rune) bool { return r > 0x2800 && r <= 0x28ff }) {
			if !strings.Contains(l, "40┤") {
				t.Fatalf("the highest drawn row is not the spike's (40):\n%s", ansi.Strip(c.View()))
			}
			return
		}
	}
	t.Fatal("nothing drawn")
}

func TestIgnoreOutliers(t *testing.T) {
	xs, ys := walk(2000, 5)
	for i := range ys {
		ys[i] = 1 + 0.1*math.Sin(float64(i)/50)
	}
	ys[1000] = 1000
	c := New(76, 18)
	c.AddSeries("y", Line, Style{}, true)
	c.Append(0, xs, ys)
	c.Render()
	if _, hi := c.lastYLo, c.lastYHi; hi > 2 {
		t.Fatalf("ignoring outliers, the y range reaches %v, want under 2", hi)
	}
	c.SetIgnoreOutliers(false)
	c.Render()
	if hi := c.lastYHi; hi < 1000 {
		t.Fatalf("with outliers, the y range reaches %v, want ≥ 1000", hi)
	}
}

func TestLogYTicksAreDecades(t *testing.T) {
	c := New(60, 20)
	c.SetIgnoreOutliers(false)
	c.AddSeries("y", Line, Style{}, true)
	xs, ys := make([]float64, 100), make([]float64, 100)
	for i := range xs {
		xs[i], ys[i] = float64(i), math.Pow(10, -float64(i)/25) // 1 → 1e-4
	}
	c.Append(0, xs, ys)
	c.SetLogY(true)
	c.Render()
	for _, tk := range c.lastTicks {
		if tk != math.Round(tk) {
			t.Fatalf("log tick %v is not a whole decade", tk)
		}
	}
	if len(c.lastTicks) < 3 {
		t.Fatalf("got ticks %v, want at least three decades", c.lastTicks)
	}
	if !strings.Contains(ansi.Strip(c.View()), "0.01") {
		t.Fatalf("no 0.01 label:\n%s", ansi.Strip(c.View()))
	}
}

func TestMarksLabelled(t *testing.T) {
	c := New(60, 10)
	c.SetDomain(0, 300)
	c.AddSeries("y", Line, Style{}, true)
	c.Append(0, []float64{0, 300}, []float64{1, 0})
	c.SetMarks([]Mark{{X: 0, Label: "head"}, {X: 100, Label: "+fc1"}, {X: 200, Label: "+fc0"}})
	c.Render()
	top := lines(c)[0]
	for _, l := range []string{"head", "+fc1", "+fc0"} {
		if !strings.Contains(top, l) {
			t.Fatalf("top row %q lacks %q", top, l)
		}
	}
	if i, j := strings.Index(top, "+fc1"), strings.Index(top, "+fc0"); !(i < j) {
		t.Fatalf("labels out of order in %q", top)
	}
}

func TestInspect(t *testing.T) {
	c := New(60, 10)
	a := c.AddSeries("train", Line, Style{}, true)
	v := c.AddSeries("val", Points, Style{}, true)
	c.Append(a, []float64{0, 1, 2, 3}, []float64{4, 3, 2, 1})
	c.Append(v, []float64{2}, []float64{2.5})
	got := c.Inspect(1.5)
	if !got[0].OK || got[0].X != 1 || got[0].Y != 3 {
		t.Fatalf("train at 1.5: got %+v, want step 1 = 3", got[0])
	}
	if got[1].OK {
		t.Fatalf("val at 1.5: got %+v, want no point yet", got[1])
	}
	if got = c.Inspect(10); got[1].Y != 2.5 || got[0].Y != 1 {
		t.Fatalf("at 10: got %+v", got)
	}
}

func TestZoomShowsTheRange(t *testing.T) {
	xs, ys := walk(10_000, 6)
	c := New(76, 12)
	c.SetDomain(0, 10_000)
	c.AddSeries("y", Line, Style{}, true)
	c.Append(0, xs, ys)
	c.Zoom(2000, 3000)
	c.Render()
	bottom := lines(c)[11]
	if !strings.Contains(bottom, "2000") || !strings.Contains(bottom, "3000") || strings.Contains(bottom, "10k") {
		t.Fatalf("zoomed x labels: %q", bottom)
	}
	c.Unzoom()
	c.Render()
	if bottom = lines(c)[11]; !strings.Contains(bottom, "10k") {
		t.Fatalf("unzoomed x labels: %q", bottom)
	}
}

func TestDomainGrowsFromData(t *testing.T) {
	c := New(40, 8)
	c.AddSeries("y", Line, Style{}, true)
	for i := 0; i < 1000; i++ {
		c.Append(0, []float64{float64(i)}, []float64{float64(i % 7)})
	}
	lo, hi := c.XRange()
	if lo != 0 || hi < 999 || hi > 2000 {
		t.Fatalf("x range [%v, %v], want [0, ~1000..2000]", lo, hi)
	}
}

func TestRenderOnlyWhenChanged(t *testing.T) {
	c := New(40, 8)
	c.AddSeries("y", Line, Style{}, true)
	c.Append(0, []float64{0, 1}, []float64{0, 1})
	if !c.Render() {
		t.Fatal("first Render did not draw")
	}
	if c.Render() {
		t.Fatal("Render drew again with nothing changed")
	}
	c.SetCursor(0.5, true)
	if !c.Render() {
		t.Fatal("moving the cursor did not redraw")
	}
}

// walk returns n steps of a noisy decaying loss.
func walk(n int, seed uint64) (xs, ys []float64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	xs, ys = make([]float64, n), make([]float64, n)
	for i := range xs {
		xs[i] = float64(i)
		ys[i] = 2*math.Exp(-float64(i)/float64(n/4+1)) + 0.2*rng.Float64()
	}
	return xs, ys
}

// TestNonFiniteBreaksTheLine: the points on either side of a non-finite
// value are not joined, so a level line with a hole draws as two runs.
func TestNonFiniteBreaksTheLine(t *testing.T) {
	for _, hole := range []float64{math.NaN(), math.Inf(1)} {
		var xs, ys []float64
		for x := 0; x <= 100; x++ {
			y := 1.0
			if x >= 40 && x <= 60 {
				y = hole
			}
			xs, ys = append(xs, float64(x)), append(ys, y)
		}
		c := New(40, 8)
		c.SetDomain(0, 100)
		c.SetYRange(0, 2)
		c.AddSeries("y", Line, Style{}, true)
		c.Append(0, xs, ys)
		c.Render()
		runs := -1
		for _, l := range lines(c)[topRows:] {
			plot := []rune(ansi.Strip(l))
			n, in := 0, false
			for _, r := range plot {
				dot := r > 0x2800 && r <= 0x28ff
				if dot && !in {
					n++
				}
				in = dot
			}
			if n > 0 {
				runs = n
				break
			}
		}
		if runs != 2 {
			t.Errorf("hole %v: the line draws as %d runs, want 2:\n%s", hole, runs, ansi.Strip(c.View()))
		}
	}
}

// TestYLabelsNeverOverprint: on a chart a row or two high, two y ticks
// fall on the same row; one label is drawn there, not one over the other
// ("0" over " 0.01" read "00.01" on the Plan's LR preview at 80×24).
// Every label drawn is one that a tall chart of the same range draws.
func TestYLabelsNeverOverprint(t *testing.T) {
	yLabels := func(h int) []string {
		c := New(60, h)
		c.YFormat = func(v float64) string { return fmt.Sprintf("%.2g", v) } // as the LR preview
		s := c.AddSeries("lr", Line, Style{}, true)
		c.Append(s, []float64{0, 50, 100}, []float64{0, 0.01, 0})
		c.SetYRange(0, 0.01)
		c.Render()
		var out []string
		for _, l := range lines(c) {
			if i := strings.Index(l, "┤"); i >= 0 {
				out = append(out, strings.TrimSpace(l[:i]))
			}
		}
		return out
	}
	valid := map[string]bool{}
	for _, l := range yLabels(40) {
		valid[l] = true
	}
	for h := 3; h <= 8; h++ {
		for _, l := range yLabels(h) {
			if !valid[l] {
				t.Errorf("height %d: y label %q, not one of a tall chart's %v", h, l, valid)
			}
		}
	}
}
