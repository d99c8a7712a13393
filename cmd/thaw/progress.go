package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"thaw/trainer"
)

// sanitize makes untrusted text (names of runs, datasets, files, classes)
// safe to print on a terminal: escape sequences (CSI, OSC, DCS and the
// other ESC forms) are dropped whole, other control characters (C0, DEL,
// C1) and bidirectional overrides are dropped, tabs and newlines become
// spaces, and invalid UTF-8 becomes U+FFFD.
func sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == 0x1b:
			i += escapeLen(s[i:])
			continue
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
		case unicode.Is(unicode.Bidi_Control, r):
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// escapeLen returns the length of the escape sequence at the start of s
// (which starts with ESC), as ECMA-48 delimits it; an unterminated one runs
// to the end of s.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[': // CSI: parameters and intermediates, then a final byte
		for j := 2; j < len(s); j++ {
			if s[j] >= 0x40 && s[j] <= 0x7e {
				return j + 1
			}
		}
		return len(s)
	case ']', 'P', 'X', '^', '_': // OSC, DCS, SOS, PM, APC: up to BEL or ST
		for j := 2; j < len(s); j++ {
			if s[j] == 0x07 && s[1] == ']' {
				return j + 1
			}
			if s[j] == 0x1b && j+1 < len(s) && s[j+1] == '\\' {
				return j + 2
			}
		}
		return len(s)
	}
	// A two-byte sequence (ESC c, ESC 7, ...), or ESC with an intermediate.
	j := 1
	for j < len(s) && s[j] >= 0x20 && s[j] <= 0x2f {
		j++
	}
	return min(j+1, len(s))
}

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

	trainLoss float64       // the latest training loss
	valAcc    float64       // the latest validation accuracy
	rate      float64       // the latest throughput, samples/s
	eta       time.Duration // the latest estimate of the time left
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w), trainLoss: math.NaN(), valAcc: math.NaN()}
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
		line := fmt.Sprintf("%s %s %d/%d  loss %s  val acc %s  %s samples/s  ETA %s",
			bar(pr.Step, pr.TotalSteps, 20), sanitize(pr.StageLabel), pr.Step, pr.TotalSteps,
			fmtLoss(p.trainLoss), fmtPct(p.valAcc), fmtRate(p.rate), fmtETA(p.eta))
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
		sanitize(pr.StageLabel), pr.Step, pr.TotalSteps, pr.Epoch, fmtLoss(p.trainLoss),
		fmtLoss(pr.ValLoss), fmtPct(pr.ValAcc))
	if !math.IsNaN(pr.SourceAcc) {
		line += "  source acc " + fmtPct(pr.SourceAcc)
	}
	fmt.Fprintln(p.w, line)
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
