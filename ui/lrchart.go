package ui

import (
	"encoding/json"
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"

	"thaw/trainer"
	"thaw/trainer/termtext"
)

// lrChart previews every block's learning rate across a plan's stages as
// braille lines, one per block, a block's line absent while it is frozen.
// The drawing is cached: View redraws only when the plan, the data or the
// size changed.
type lrChart struct {
	key  string
	text string
	// series counts the blocks drawn with at least one point, for tests.
	series int
}

// braille dot bits of a 2×4 cell, by column and row.
var brailleBits = [2][4]rune{{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}}

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

func drawLRChart(st Styles, rp *trainer.ResolvedPlan, spe, w, h int) (string, int) {
	note := ""
	if spe <= 0 {
		spe, note = 10, " (epochs drawn as 10 steps until the data loads)"
	}
	total := rp.Len(spe)
	nb := len(rp.Blocks)
	const axisW = 8
	cw, ch := w-axisW, h-4
	if cw < 10 || ch < 2 || total == 0 {
		return "", 0
	}
	dotsX, dotsY := 2*cw, 4*ch

	// The learning rate of each block at each dot column: the highest over
	// the steps the column covers (sampled), so a short peak still shows.
	vals := make([][]float64, nb)
	for b := range vals {
		vals[b] = make([]float64, dotsX)
	}
	peak := 0.0
	for x := range dotsX {
		lo := x * total / dotsX
		hi := max((x+1)*total/dotsX, lo+1)
		stride := max((hi-lo)/4, 1)
		for step := lo; step < hi; step += stride {
			for b, lr := range rp.BlockLRs(step, spe) {
				vals[b][x] = max(vals[b][x], lr)
				peak = max(peak, lr)
			}
		}
	}
	if peak <= 0 {
		return "", 0
	}
	grid := make([][]rune, ch)
	owner := make([][]int, ch)
	for y := range grid {
		grid[y] = make([]rune, cw)
		owner[y] = make([]int, cw)
		for x := range owner[y] {
			owner[y][x] = -1
		}
	}
	set := func(x, y, b int) {
		cx, cy := x/2, y/4
		grid[cy][cx] |= brailleBits[x%2][y%4]
		owner[cy][cx] = b
	}
	series := 0
	for b := range nb {
		prev := -1
		drawn := false
		for x := range dotsX {
			v := vals[b][x]
			if v <= 0 {
				prev = -1 // frozen here: no line
				continue
			}
			y := int((1 - v/peak) * float64(dotsY-1))
			y = min(max(y, 0), dotsY-1)
			set(x, y, b)
			if prev >= 0 {
				for yy := min(prev, y) + 1; yy < max(prev, y); yy++ {
					set(x, yy, b)
				}
			}
			prev = y
			drawn = true
		}
		if drawn {
			series++
		}
	}

	var out strings.Builder
	out.WriteString(st.Heading.Render("LR preview") + st.Faint.Render(fmt.Sprintf("  every block's learning rate, %d steps%s", total, note)))
	out.WriteByte('\n')
	for y := range ch {
		label := ""
		switch y {
		case 0:
			label = fmt.Sprintf("%.2g", peak)
		case ch - 1:
			label = "0"
		case ch / 2:
			label = fmt.Sprintf("%.2g", peak/2)
		}
		out.WriteString(fmt.Sprintf("%*s ┤", axisW-2, label))
		// One style run per change of series along the row.
		run, runOwner := []rune{}, -2
		flush := func() {
			if len(run) == 0 {
				return
			}
			if runOwner >= 0 {
				out.WriteString(st.seriesStyle(runOwner).Render(string(run)))
			} else {
				out.WriteString(string(run))
			}
			run = run[:0]
		}
		for x := range cw {
			r, o := grid[y][x], owner[y][x]
			if r == 0 {
				r, o = ' ', -1
			} else {
				r += 0x2800
			}
			if o != runOwner {
				flush()
				runOwner = o
			}
			run = append(run, r)
		}
		flush()
		out.WriteByte('\n')
	}
	// The x axis with a tick at each stage's start, and the stage numbers.
	axis := []rune(strings.Repeat("─", cw))
	labels := []rune(strings.Repeat(" ", cw))
	for i, start := range rp.Starts(spe) {
		x := start * cw / total
		if x >= cw {
			continue
		}
		axis[x] = '┬'
		for j, r := range fmt.Sprint(i + 1) {
			if x+j < cw {
				labels[x+j] = r
			}
		}
	}
	out.WriteString(strings.Repeat(" ", axisW-1) + "└" + string(axis) + "\n")
	out.WriteString(strings.Repeat(" ", axisW) + st.Faint.Render(string(labels)+" stage") + "\n")
	var legend []string
	for b, name := range rp.Blocks {
		legend = append(legend, st.seriesStyle(b).Render("━ "+termtext.Sanitize(name)))
	}
	out.WriteString(strings.Repeat(" ", axisW) + lipgloss.NewStyle().Render(strings.Join(legend, "  ")))
	return out.String(), series
}
