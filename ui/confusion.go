package ui

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/trainer/termtext"
)

// confusionView draws a confusion matrix: true classes down, predicted
// across, counts shaded by their share of the row.
type confusionView struct {
	classes []string
	counts  [][]int
}

func (c *confusionView) view(pal palette, w, h int) string {
	n := len(c.classes)
	if n == 0 {
		return "no classes"
	}
	names := make([]string, n)
	nameW := 4
	for i, cl := range c.classes {
		names[i] = termtext.Sanitize(cl)
		nameW = max(nameW, min(ansi.StringWidth(names[i]), 12))
	}
	cellW := 5
	for _, row := range c.counts {
		for _, v := range row {
			cellW = max(cellW, len(fmt.Sprint(v))+1)
		}
	}
	var b strings.Builder
	b.WriteString(lipgloss.NewStyle().Bold(true).Render("Confusion matrix of the best checkpoint, validation set") + "\n")
	b.WriteString(strings.Repeat(" ", nameW+1) + "predicted →\n")
	b.WriteString(fmt.Sprintf("%*s ", nameW, "true ↓"))
	for _, nm := range names {
		b.WriteString(fmt.Sprintf("%*s", cellW, ansi.Truncate(nm, cellW-1, "")))
	}
	b.WriteString("\n")
	correct, total := 0, 0
	for i, row := range c.counts {
		b.WriteString(fmt.Sprintf("%*s ", nameW, ansi.Truncate(names[i], nameW, "…")))
		sum := 0
		for _, v := range row {
			sum += v
		}
		for j, v := range row {
			total += v
			cell := fmt.Sprintf("%*d", cellW, v)
			st := lipgloss.NewStyle()
			if i == j {
				correct += v
				st = st.Bold(true)
			}
			// With NO_COLOR the count alone is shown, the diagonal bold.
			if !pal.noColor && sum > 0 && v > 0 {
				k := (len(shadeTones) - 1) * v / sum
				st = st.Background(pal.c(shadeTones[k]))
			}
			b.WriteString(st.Render(cell))
		}
		b.WriteString("\n")
	}
	if total > 0 {
		b.WriteString(fmt.Sprintf("\naccuracy %.1f%% (%d of %d) · c closes", 100*float64(correct)/float64(total), correct, total))
	}
	out := b.String()
	lines := strings.Split(out, "\n")
	if len(lines) > h {
		lines = lines[:max(h, 1)]
	}
	for i := range lines {
		lines[i] = ansi.Truncate(lines[i], max(w, 10), "…")
	}
	return strings.Join(lines, "\n")
}
