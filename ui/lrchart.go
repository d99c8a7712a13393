package ui

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/charmbracelet/x/ansi"

	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/chart"
)

// lrChart previews every block's learning rate across a plan's stages, one
// line per block on a ui/chart braille chart, a block's line broken while
// it is frozen (its rate there is drawn as NaN) and each stage's start a
// labelled mark. The drawing is cached: View redraws only when the plan,
// the data or the size changed.
type lrChart struct {
	key  string
	text string
	// series counts the blocks drawn with at least one point, for tests.
	series int
}

func (c *lrChart) view(s *Session, rp *trainer.ResolvedPlan, spe, w, h int) string {
	pj, _ := json.Marshal(s.plan.plan)
	key := fmt.Sprintf("%s|%d|%d|%d|%v|%v", pj, spe, w, h, s.Styles.Dark, s.Styles.NoColor)
	if key == c.key {
		return c.text
	}
	c.key = key
	c.text, c.series = drawLRChart(s.Styles, rp, spe, w, h)
	return c.text
}

// lrSamplesPerCell is how many steps the preview samples per terminal
// column (four per braille dot column), so a short peak of a slanted
// triangular schedule still shows: the chart keeps each dot column's
// minimum and maximum.
const lrSamplesPerCell = 8

// drawLRChart draws the preview in w×h cells: a title line that names each
// block in its colour, and the chart. It returns "" where the
// plan has no steps or no positive rate, or the space is too small.
func drawLRChart(st Styles, rp *trainer.ResolvedPlan, spe, w, h int) (string, int) {
	note := ""
	if spe <= 0 {
		spe, note = 10, " (epochs drawn as 10 steps until the data loads)"
	}
	total := rp.Len(spe)
	if total == 0 || w < 20 || h-1 < 4 {
		return "", 0
	}
	c := chart.New(w, h-1)
	c.YFormat = func(v float64) string { return fmt.Sprintf("%.2g", v) }
	c.SetDomain(0, float64(total))
	dim := chart.Style{Faint: true}
	c.SetStyles(dim, dim, dim, chart.Style{}, chart.Style{})
	for b, name := range rp.Blocks {
		c.AddSeries(name, chart.Line, chart.Style{FG: st.seriesColor(b)}, true)
	}

	// The sampled steps: every step of a short plan, else evenly spaced
	// ones, with each stage's first and last step so that no stage's
	// edge is lost.
	n := min(total, lrSamplesPerCell*w)
	starts := rp.Starts(spe)
	steps := make([]int, 0, n+2*len(starts)+1)
	for i := range n {
		steps = append(steps, i*total/n)
	}
	for _, start := range starts {
		steps = append(steps, max(start-1, 0), start)
	}
	steps = append(steps, total-1)
	slices.Sort(steps)
	steps = slices.Compact(steps)

	xs := make([][]float64, len(rp.Blocks))
	ys := make([][]float64, len(rp.Blocks))
	peak := 0.0
	for _, step := range steps {
		for b, lr := range rp.BlockLRs(step, spe) {
			y := lr
			if lr <= 0 {
				y = math.NaN() // frozen here: no line
			}
			peak = max(peak, lr)
			xs[b] = append(xs[b], float64(step))
			ys[b] = append(ys[b], y)
		}
	}
	if peak <= 0 {
		return "", 0
	}
	series := 0
	for b := range rp.Blocks {
		c.Append(b, xs[b], ys[b])
		for _, y := range ys[b] {
			if !math.IsNaN(y) {
				series++
				break
			}
		}
	}
	c.SetYRange(0, peak)
	var marks []chart.Mark
	for i, start := range starts {
		marks = append(marks, chart.Mark{X: float64(start), Label: fmt.Sprint(i + 1)})
	}
	c.SetMarks(marks)
	c.Render()

	// The title line names each block in its colour; the chart below.
	var legend []string
	for b, name := range rp.Blocks {
		legend = append(legend, st.seriesStyle(b).Render("━ "+termtext.Sanitize(name)))
	}
	title := st.Heading.Render("LR preview") + "  " + strings.Join(legend, "  ") + st.Faint.Render("  by step, stages marked"+note)
	var out strings.Builder
	out.WriteString(ansi.Truncate(title, w, "…"))
	out.WriteByte('\n')
	out.WriteString(c.View())
	return out.String(), series
}
