package recipes

import (
	"fmt"
	"math"
	"strings"
	"time"

	"thaw/trainer"
)

// CheckedDefaults are the presets whose defaults are held to within 5
// points of the best tuned preset of a row; gradual, the default plan, is
// held to within 2 points of its own tuned column.
var CheckedDefaults = []string{"head", "fine-tune", "chain-thaw", "lp-ft"}

// DefaultsMethods returns the methods of the defaults check: every tuned
// preset of [Methods] but scratch and the defaults column, then every
// preset run with its defaults ([DefaultMethods]).
func DefaultsMethods() []Method {
	var out []Method
	for _, m := range Methods() {
		if !m.Scratch && !m.Default {
			out = append(out, m)
		}
	}
	return append(out, DefaultMethods()...)
}

// ProbeMethods returns the methods of the linear-probe check: the tuned
// fine-tune and head columns, the head preset's defaults, and the defaults
// changed one way each (four times the steps, three times the rate,
// fifty times the weight decay), to show how far a linear probe goes when
// only the head trains.
func ProbeMethods() []Method {
	byName := map[string]Method{}
	for _, m := range Methods() {
		byName[m.Name] = m
	}
	def := Method{Name: "head (default)", Preset: "head", Default: true}
	longer, faster, decayed := def, def, def
	longer.Name, longer.Note = "head, 4× steps", "with four times the steps"
	longer.Vary = func(p *trainer.Plan) { p.Stages[0].MinSteps *= 4 }
	faster.Name, faster.Note = "head, 3× lr", "at three times the rate"
	faster.Vary = func(p *trainer.Plan) { p.Stages[0].LR *= 3 }
	decayed.Name, decayed.Note = "head, weight decay 0.5", "with weight decay 0.5 instead of 0.01"
	decayed.Vary = func(p *trainer.Plan) {
		o := trainer.DefaultOptimizer()
		if p.Optimizer != nil {
			o = *p.Optimizer
		}
		o.WeightDecay = 0.5
		p.Optimizer = &o
	}
	return []Method{byName["fine-tune"], byName["head"], def, longer, faster, decayed}
}

// column returns the index of the method named name, or -1.
func (t Table) column(name string) int {
	for i, m := range t.Methods {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// bestTuned returns the mean of the best tuned (not default, not scratch)
// method of a row.
func (t Table) bestTuned(r Row) float64 {
	best := math.Inf(-1)
	for i, m := range t.Methods {
		if !m.Scratch && !m.Default {
			best = max(best, r.Cells[i].Mean)
		}
	}
	return best
}

// DefaultGap is how far, in accuracy points, one preset's default lies
// from a tuned figure of its row (negative: below it).
type DefaultGap struct {
	Preset string
	Points float64
}

// DefaultGaps returns, for a row of a table run with [DefaultsMethods],
// the gradual default against the tuned gradual column, and each
// [CheckedDefaults] preset's default against its own tuned column and
// against the best tuned preset of the row; ok is false if the table
// lacks a column the comparison needs.
func (t Table) DefaultGaps(r Row) (gradual float64, own, best []DefaultGap, ok bool) {
	g, gd := t.column("gradual"), t.column("gradual (default)")
	if g < 0 || gd < 0 {
		return 0, nil, nil, false
	}
	gradual = 100 * (r.Cells[gd].Mean - r.Cells[g].Mean)
	top := t.bestTuned(r)
	for _, name := range CheckedDefaults {
		tc, dc := t.column(name), t.column(name+" (default)")
		if tc < 0 || dc < 0 {
			return 0, nil, nil, false
		}
		own = append(own, DefaultGap{name, 100 * (r.Cells[dc].Mean - r.Cells[tc].Mean)})
		best = append(best, DefaultGap{name, 100 * (r.Cells[dc].Mean - top)})
	}
	return gradual, own, best, true
}

// worst returns the most negative gap.
func worst(gaps []DefaultGap) DefaultGap {
	w := gaps[0]
	for _, g := range gaps[1:] {
		if g.Points < w.Points {
			w = g
		}
	}
	return w
}

// DefaultsMarkdown renders a table run with [DefaultsMethods]: the tuned
// and default columns side by side, then the gradual default against its
// tuned column, and the worst of the [CheckedDefaults] against its own
// tuned column and against the best tuned preset of the row, with a
// summary of those figures.
func (t Table) DefaultsMarkdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("Validation accuracy (%%, mean ± sd over %d seeds, %d to %d), on the validation sets above.\n",
		t.Seeds, t.FirstSeed, t.FirstSeed+uint64(t.Seeds)-1)
	p("The tuned columns are those of the table above (batch size %d); a column marked\n", t.BatchSize)
	p("(default) is the preset as `thaw train` runs it given only model, data and shots (its default\n")
	p("rate; each stage one epoch or a floor of optimizer steps, whichever is longer; batch size %d).\n", trainer.DefaultBatchSize)
	p("The last two columns take the worst of the default %s.\n\n", strings.Join(CheckedDefaults, ", "))
	t.writeTable(&b, []extraColumn{
		{"gradual default − tuned", func(r Row) string {
			g, _, _, ok := t.DefaultGaps(r)
			if !ok {
				return ""
			}
			return fmt.Sprintf("%+.1f", g)
		}},
		{"worst default − its tuned", func(r Row) string {
			_, own, _, ok := t.DefaultGaps(r)
			if !ok {
				return ""
			}
			w := worst(own)
			return fmt.Sprintf("%+.1f (%s)", w.Points, w.Preset)
		}},
		{"worst default − best tuned", func(r Row) string {
			_, _, best, ok := t.DefaultGaps(r)
			if !ok {
				return ""
			}
			w := worst(best)
			return fmt.Sprintf("%+.1f (%s)", w.Points, w.Preset)
		}},
	})
	var gMax, ownWorst float64
	var over []string
	bestWorst := 0.0
	for _, r := range t.Rows {
		g, own, best, ok := t.DefaultGaps(r)
		if !ok {
			return b.String()
		}
		gMax = max(gMax, math.Abs(g))
		ownWorst = min(ownWorst, worst(own).Points)
		for _, d := range best {
			if d.Points < -5 {
				over = append(over, fmt.Sprintf("%s on %s at %d shots (%+.1f)", d.Preset, r.Model, r.Shots, d.Points))
				continue
			}
			bestWorst = min(bestWorst, d.Points)
		}
	}
	p("\nThe gradual default is within %.1f points of tuned gradual in every row.\n", gMax)
	p("Each default of %s is within %.1f points of its own tuned column.\n", strings.Join(CheckedDefaults, ", "), -ownWorst)
	if len(over) == 0 {
		p("Against the best tuned preset of the row, every one of them is within %.1f points.\n", -bestWorst)
	} else {
		p("Against the best tuned preset of the row, all are within %.1f points but %s.\n", -bestWorst, strings.Join(over, "; "))
	}
	p("\nTotal time %s on a 2-core machine.\n", t.Wall.Round(time.Second))
	return b.String()
}

// ProbeMarkdown renders a table run with [ProbeMethods].
func (t Table) ProbeMarkdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("Validation accuracy (%%, mean ± sd over %d seeds, %d to %d), on the validation sets above:\n\n",
		t.Seeds, t.FirstSeed, t.FirstSeed+uint64(t.Seeds)-1)
	for _, m := range t.Methods {
		switch {
		case m.Vary != nil:
			p("- **%s**: the head preset's defaults %s.\n", m.Name, m.Note)
		case m.Default:
			p("- **%s**: the head preset as `thaw train` runs it (lr %g, at least %d steps of %d).\n",
				m.Name, trainer.DefaultHeadLR, trainer.DefaultHeadMinSteps, trainer.DefaultBatchSize)
		default:
			p("- **%s**: the tuned column of the table above (epochs %d, lr %g, batch size %d).\n", m.Name, m.Epochs, m.LR, t.BatchSize)
		}
	}
	b.WriteString("\n")
	t.writeTable(&b, nil)
	p("\nTotal time %s on a 2-core machine.\n", t.Wall.Round(time.Second))
	return b.String()
}
