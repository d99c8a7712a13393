package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"thaw/trainer/termtext"
	"time"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/term"

	"thaw/trainer"
)

// bar draws done/total as a bar of width cells, in eighths of a cell.
func bar(done, total, width int) string {
	if total <= 0 {
		total = 1
	}
	eighths := min(max(done, 0)*width*8/total, width*8)
	full, part := eighths/8, eighths%8
	var b strings.Builder
	b.WriteString(strings.Repeat("█", full))
	if full < width {
		if part > 0 {
			b.WriteString(string([]rune(" ▏▎▍▌▋▊▉")[part]))
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(strings.Repeat(" ", width-full-1))
	}
	return "▕" + b.String() + "▏"
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress shows a run's progress on a writer: on a terminal a single line
// redrawn in place, elsewhere (a log file, a pipe) one line per
// evaluation.
type progress struct {
	w    io.Writer
	tty  bool
	drew bool // a redrawable line is on the screen
	// width returns the terminal's width in columns, 0 when unknown: the
	// redrawn line is clipped to it, since a line that wraps cannot be
	// redrawn in place.
	width func() int

	trainLoss float64       // the latest training loss
	valAcc    float64       // the latest validation accuracy
	rate      float64       // the latest throughput, samples/s
	eta       time.Duration // the latest estimate of the time left
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, tty: isTerminal(w), trainLoss: math.NaN(), valAcc: math.NaN(), width: func() int { return 0 }}
	if f, ok := w.(*os.File); ok && p.tty {
		p.width = func() int {
			cols, _, err := term.GetSize(f.Fd())
			if err != nil {
				return 0
			}
			return cols
		}
	}
	return p
}

// report takes one Progress from the run; it is the run's report func.
func (p *progress) report(pr trainer.Progress) {
	if !math.IsNaN(pr.TrainLoss) {
		p.trainLoss = pr.TrainLoss
	}
	if pr.Event == trainer.EventEval && !math.IsNaN(pr.ValAcc) {
		p.valAcc = pr.ValAcc
	}
	// A report with no step since the previous one (a stage starting right
	// after an evaluation) has no throughput of its own: keep the last.
	if pr.SamplesPerSec > 0 {
		p.rate, p.eta = pr.SamplesPerSec, pr.ETA
	}
	if p.tty {
		line := fmt.Sprintf("%s %d/%d  loss %s  val acc %s  %s samples/s  ETA %s",
			termtext.Sanitize(pr.StageLabel), pr.Step, pr.TotalSteps,
			fmtLoss(p.trainLoss), fmtPct(p.valAcc), fmtRate(p.rate), fmtETA(p.eta))
		// The bar goes first when the terminal is narrow; what is still too
		// wide is cut, one column short of the edge so that the cursor
		// never wraps.
		cols := p.width()
		if cols <= 0 || ansi.StringWidth(line)+22 < cols {
			line = bar(pr.Step, pr.TotalSteps, 20) + " " + line
		}
		if cols > 1 {
			line = ansi.Truncate(line, cols-1, "…")
		}
		// \r returns to the line start, ESC [K clears what a longer line
		// left behind.
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.drew = true
		return
	}
	if pr.Event != trainer.EventEval {
		return
	}
	line := fmt.Sprintf("%s  step %d/%d  epoch %.2f  loss %s  val loss %s  val acc %s",
		termtext.Sanitize(pr.StageLabel), pr.Step, pr.TotalSteps, pr.Epoch, fmtLoss(p.trainLoss),
		fmtLoss(pr.ValLoss), fmtPct(pr.ValAcc))
	if !math.IsNaN(pr.SourceAcc) {
		line += "  source acc " + fmtPct(pr.SourceAcc)
	}
	fmt.Fprintln(p.w, line)
}

// stopping says, on a line of its own, that a stop was asked for. It is
// called from another goroutine than report's; a line the two write at
// once may interleave, which costs no more than a redraw.
func (p *progress) stopping() {
	fmt.Fprint(p.w, "\nstopping… (the run ends after this batch; Ctrl-C again to kill)\n")
}

// done ends the redrawn line so that what follows starts on its own.
func (p *progress) done() {
	if p.drew {
		fmt.Fprintln(p.w)
		p.drew = false
	}
}

func fmtLoss(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.4f", v)
}

func fmtPct(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*v)
}

func fmtRate(v float64) string {
	if v <= 0 || math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtETA(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return d.Round(time.Second).String()
}
