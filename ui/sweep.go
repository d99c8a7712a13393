package ui

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
)

// A freeze-depth sweep runs the same short plan at every freeze point (see
// engine.RunSweep) through the backend; each finished run adds a row to
// the Blocks screen.

// sweepRow is one freeze point's result.
type sweepRow struct {
	// thawed counts the top blocks trained; low is the lowest of them.
	thawed int
	low    string
	runID  string
	acc    float64 // best val acc: the accuracy of the lowest val loss
	loss   float64
}

type (
	// sweepRowMsg: sweep id finished one more freeze point.
	sweepRowMsg struct {
		id  int
		row sweepRow
	}
	// sweepDoneMsg: sweep id ended; err says why when it did not finish.
	sweepDoneMsg struct {
		id  int
		err error
	}
)

// sweepState is a sweep running or finished.
type sweepState struct {
	id     int
	cancel context.CancelFunc
	ch     <-chan tea.Msg
	total  int
	rows   []sweepRow
	done   bool
	err    error
}

// best is the index of the row with the highest accuracy (the first of
// equals, the most frozen), or -1.
func (sw *sweepState) best() int {
	b := -1
	for i, r := range sw.rows {
		if b < 0 || r.acc > sw.rows[b].acc {
			b = i
		}
	}
	return b
}

// toggleSweep starts a sweep, or cancels the one running.
func (b *blocksScreen) toggleSweep() tea.Cmd {
	s := b.s
	if sw := b.sweep; sw != nil && !sw.done {
		sw.cancel()
		s.flash("cancelling the sweep…")
		return nil
	}
	d := s.plan
	switch {
	case !s.hasStore():
		s.flashErr(errors.New("no run store: the sweep stores its runs; start thaw with a store"))
		return nil
	case d.loading:
		s.flash("the data is still loading; press w again in a moment")
		return nil
	case d.dataErr != nil:
		s.flashErr(fmt.Errorf("%w — fix the data on the Plan screen (3) first", d.dataErr))
		return nil
	}
	rp, err := d.resolved(s)
	if err != nil {
		s.flashErr(fmt.Errorf("plan: %w — fix it on the Plan screen (3)", err))
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	ch := make(chan tea.Msg, 1)
	id := s.nextID()
	b.sweep = &sweepState{id: id, cancel: cancel, ch: ch, total: len(rp.Blocks)}
	s.sweeping = true
	base := d.job(s)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		runSweep(ctx, s.ctx.Done(), s.backend, base, rp, id, ch)
	}()
	s.flash(fmt.Sprintf("sweeping %d freeze points in the background; w cancels", len(rp.Blocks)))
	return waitMsg(ch)
}

// runSweep runs the sweep through the backend and reports each row as
// it finishes, then the end. It closes out when done. Cancelling ctx
// stops the sweep; gone is closed when the workbench has quit and reads
// no more.
func runSweep(ctx context.Context, gone <-chan struct{}, b Backend, base trainer.Job, rp *trainer.ResolvedPlan, id int, out chan<- tea.Msg) {
	defer close(out)
	send := func(m tea.Msg) {
		select {
		case out <- m:
		case <-gone:
		}
	}
	err := b.Sweep(ctx, base, rp, func(r engine.SweepRow) {
		send(sweepRowMsg{id: id, row: sweepRow{thawed: r.Thawed, low: r.Low, runID: r.RunID, acc: r.Acc, loss: r.Loss}})
	})
	send(sweepDoneMsg{id: id, err: err})
}

// waitMsg waits for the next message on ch; nil when it is closed.
func waitMsg(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		m, ok := <-ch
		if !ok {
			return nil
		}
		return m
	}
}

func (b *blocksScreen) handleSweep(msg tea.Msg) tea.Cmd {
	sw := b.sweep
	switch msg := msg.(type) {
	case sweepRowMsg:
		if sw == nil || msg.id != sw.id {
			return nil
		}
		sw.rows = append(sw.rows, msg.row)
		return waitMsg(sw.ch)
	case sweepDoneMsg:
		if sw == nil || msg.id != sw.id {
			return nil
		}
		sw.done, sw.err = true, msg.err
		sw.cancel()
		b.s.sweeping = false
		switch {
		case errors.Is(msg.err, context.Canceled):
			b.s.flash("sweep cancelled; its finished runs stay stored")
		case msg.err != nil:
			b.s.flashErr(fmt.Errorf("sweep: %w", msg.err))
		default:
			bi := sw.best()
			b.s.flash(fmt.Sprintf("sweep done: best freeze point trains from %s (%.1f%%); t takes it, or the row of the block under the cursor", sw.rows[bi].low, 100*sw.rows[bi].acc))
		}
	}
	return nil
}

// sweepSelected is the sweep row `t` takes: the one whose freeze point is
// the block under the cursor (its lowest trained block), else the best.
// The sweep is drawn beside the blocks, so the cursor picks a row of both.
func (b *blocksScreen) sweepSelected() int {
	sw := b.sweep
	n := len(b.s.frozen)
	for i, r := range sw.rows {
		if n-r.thawed == b.cursor {
			return i
		}
	}
	return sw.best()
}

// takeDepth makes the selected sweep row (see sweepSelected) the freeze
// choice.
func (b *blocksScreen) takeDepth() {
	s := b.s
	sw := b.sweep
	if sw == nil || len(sw.rows) == 0 {
		s.flashErr(errors.New("no sweep result yet: press w to run the freeze-depth sweep"))
		return
	}
	r := sw.rows[b.sweepSelected()]
	n := len(s.frozen)
	for i := range n {
		s.frozen[i] = i < n-r.thawed
	}
	b.cursor = n - r.thawed
	s.plan.freezeChanged(s)
	s.flash(fmt.Sprintf("freeze point taken: %s and above train", r.low))
}

// evidenceView draws the evidence shown beside (or below) the blocks: the
// sweep, and a probe panel when there is one (the probes' accuracies are
// otherwise a column of the blocks table, probeCell); "" when there is
// none.
func (b *blocksScreen) evidenceView(w, h int) string {
	var parts []string
	if sv := b.sweepView(w); sv != "" {
		parts = append(parts, sv)
	}
	if pv := b.probeView(w); pv != "" {
		parts = append(parts, pv)
	}
	return strings.Join(parts, "\n\n")
}

// sweepView draws validation accuracy against the freeze point, one row
// per point as it arrives, the best marked.
func (b *blocksScreen) sweepView(w int) string {
	sw := b.sweep
	if sw == nil {
		return ""
	}
	st := b.s.Styles
	var lines []string
	status := fmt.Sprintf("%d of %d", len(sw.rows), sw.total)
	switch {
	case sw.done && sw.err == nil:
		status = "done"
	case sw.done && errors.Is(sw.err, context.Canceled):
		status = "cancelled at " + status
	case sw.done:
		status = "failed at " + status
	}
	lines = append(lines, st.Heading.Render("Freeze-depth sweep")+st.Faint.Render("  val acc by freeze point · "+status))
	best, selected := sw.best(), -1
	if len(sw.rows) > 0 {
		selected = b.sweepSelected()
	}
	barW := max(w-30, 6)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range sw.rows {
		lo, hi = min(lo, r.acc), max(hi, r.acc)
	}
	for i, r := range sw.rows {
		// Bars span from a little below the lowest accuracy, so that
		// differences of a few points show.
		frac := 1.0
		if hi > lo {
			frac = 0.15 + 0.85*(r.acc-lo)/(hi-lo)
		}
		bar := strings.Repeat("█", max(int(frac*float64(barW)), 1))
		mark := "  "
		if i == best {
			mark = st.Marker.Render("★ ")
		}
		label := fmt.Sprintf("from %-7s", ansi.Truncate(termtext.Sanitize(r.low), 7, "…"))
		row := fmt.Sprintf("%s %6.1f%% %s", label, 100*r.acc, st.Bar.Render(bar))
		if i == selected {
			row = st.Selected.Render("▸") + mark + row
		} else {
			row = " " + mark + row
		}
		if i == best {
			row += st.Marker.Render(" best")
		}
		lines = append(lines, row)
	}
	if !sw.done {
		lines = append(lines, st.Faint.Render(fmt.Sprintf("   training freeze point %d of %d… (w cancels)", len(sw.rows)+1, sw.total)))
	}
	return strings.Join(lines, "\n")
}
