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

// A probe measures how well one block's output fits the new task (see
// engine.Engine.Probe). The Blocks screen runs them through the backend in
// the background when the data is chosen, on the footing of the sweep (w):
// the Plan's data, split and shots, over the sweep's seeds (those of the
// sweep the panel shows, when it follows one trained elsewhere; the
// default seeds otherwise), each seed's probe read at its lowest
// validation loss. The raw input's probe is the
// baseline, and the probe with the lowest mean validation loss, the
// sweep's rule for best, is marked. They are cached per model and job.

// probeKey identifies what a probe depends on.
type probeKey struct {
	model, data   string
	shots, batch  int
	valSplit      float64
	seeds         string
	probeMinSteps int
	probeLR       float64
}

// probeState holds the probes of one model and job, by block index + 1
// (0 is the raw input's).
type probeState struct {
	id     int
	key    probeKey
	cancel context.CancelFunc
	ch     <-chan tea.Msg
	seeds  int
	scores [][]engine.ProbeScore // by seed, once every seed is done
	err    error
}

// probeMsg reports one block's probes over the seeds, or the probes'
// failure.
type probeMsg struct {
	id     int
	block  int // engine.ProbeInput for the raw input
	scores []engine.ProbeScore
	err    error
	last   bool
}

// startProbes runs the probes of the session's model and job, unless they
// are cached or running: the blocks below the head from the top down,
// then the raw input, each over the sweep's seeds.
func (b *blocksScreen) startProbes() tea.Cmd {
	s := b.s
	d := s.plan
	if s.base == nil || d.dataErr != nil || s.opts.NoProbes {
		return nil
	}
	spec := b.probeSpec()
	job := spec.Job
	key := probeKey{model: job.Model, data: job.Data.Path, shots: job.Shots, batch: job.BatchSize,
		valSplit: job.ValSplit, seeds: fmt.Sprint(spec.Seeds), probeMinSteps: engine.ProbeMinSteps, probeLR: engine.ProbeLR}
	if b.probes != nil && b.probes.key == key {
		return nil
	}
	if cached, ok := s.probeCache[key]; ok {
		b.probes = cached
		return nil
	}
	if b.probes != nil && b.probes.cancel != nil {
		b.probes.cancel()
	}
	n := len(s.base.blocks)
	ctx, cancel := context.WithCancel(s.ctx)
	ch := make(chan tea.Msg, 1)
	ps := &probeState{id: s.nextID(), key: key, cancel: cancel, ch: ch, seeds: len(spec.Seeds), scores: make([][]engine.ProbeScore, n)}
	b.probes = ps
	back := s.backend
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(ch)
		for k := n - 2; k >= engine.ProbeInput; k-- {
			m := probeMsg{id: ps.id, block: k, last: k == engine.ProbeInput}
			for _, seed := range spec.Seeds {
				j := job
				j.Seed = seed
				sc, err := back.Probe(ctx, j, k)
				if err != nil {
					m.err, m.last = err, true
					break
				}
				m.scores = append(m.scores, sc)
			}
			select {
			case ch <- m:
			case <-ctx.Done():
				return
			}
			if m.err != nil {
				return
			}
		}
	}()
	return waitMsg(ch)
}

// probeSpec is the sweep the probes stand beside: the Plan's (see
// Session.sweepSpec), on the seeds of the sweep the panel shows when it
// follows one, whose job the Plan took (Session.openSweepJob) but whose
// seeds may not be the default ones.
func (b *blocksScreen) probeSpec() engine.SweepSpec {
	spec := b.s.sweepSpec()
	if sw := b.sweep; sw != nil && sw.follow != nil && len(sw.tb.Spec.Seeds) > 0 {
		spec.Seeds = sw.tb.Spec.Seeds
	}
	return spec
}

func (b *blocksScreen) handleProbe(msg probeMsg) tea.Cmd {
	ps := b.probes
	if ps == nil || msg.id != ps.id {
		return nil
	}
	if msg.err != nil {
		ps.err = msg.err
		if b.s.ctx.Err() == nil && !errorsIsCanceled(msg.err) {
			b.s.flashErr(fmt.Errorf("probe of %s: %w", b.probeName(msg.block), msg.err))
		}
		return nil
	}
	ps.scores[msg.block+1] = msg.scores
	if msg.last {
		if b.s.probeCache == nil {
			b.s.probeCache = map[probeKey]*probeState{}
		}
		b.s.probeCache[ps.key] = ps
		return nil
	}
	return waitMsg(ps.ch)
}

// probeName names probe k: a block, or the raw input.
func (b *blocksScreen) probeName(k int) string {
	if k == engine.ProbeInput {
		return "the raw input"
	}
	return termtext.Sanitize(b.s.base.blocks[k].name)
}

// stats sums probe k (a block index, or engine.ProbeInput) up over the
// seeds: mean ± sd of the validation loss and accuracy; ok is false
// while it is not done.
func (ps *probeState) stats(k int) (st trainer.SweepStats, ok bool) {
	if ps == nil || k+1 < 0 || k+1 >= len(ps.scores) || ps.scores[k+1] == nil {
		return trainer.SweepStats{}, false
	}
	var r trainer.SweepRow
	for _, sc := range ps.scores[k+1] {
		r.ValLoss, r.ValAcc = append(r.ValLoss, sc.ValLoss), append(r.ValAcc, sc.ValAcc)
	}
	return r.Stats(), true
}

// best is the probe with the lowest mean validation loss (the sweep's
// rule for best), engine.ProbeInput for the raw input; ok is false until
// every probe is done.
func (ps *probeState) best() (k int, ok bool) {
	bestLoss := math.Inf(1)
	for i := range ps.scores {
		st, done := ps.stats(i - 1)
		if !done {
			return 0, false
		}
		if st.LossMean < bestLoss {
			k, bestLoss = i-1, st.LossMean
		}
	}
	return k, !math.IsInf(bestLoss, 1)
}

// probeCell is a block's probe accuracy for the blocks table, ★ on the
// best probe.
func (b *blocksScreen) probeCell(i int) string {
	ps := b.probes
	switch {
	case ps == nil || i > len(ps.scores)-1:
		return ""
	case i == len(ps.scores)-1:
		return "  —  " // the head: the sweep's point, not a probe
	}
	if st, ok := ps.stats(i); ok {
		cell := fmt.Sprintf("%5.1f%%", 100*st.AccMean)
		if k, ok := ps.best(); ok && k == i {
			// In the cell's own width, where the column leaves room.
			cell = b.s.Styles.Marker.Render("★") + strings.TrimPrefix(cell, " ")
		}
		return cell
	}
	if ps.err != nil {
		return "  ✗  "
	}
	return "  …  "
}

// probeView draws the probes beside the sweep: the raw input's first, as
// the baseline, then every block below the head, mean ± sd over the seeds,
// ★ on the best; "" before any probe is done.
func (b *blocksScreen) probeView(w int) string {
	ps := b.probes
	if ps == nil || len(ps.scores) < 2 {
		return ""
	}
	any := false
	for _, sc := range ps.scores {
		any = any || sc != nil
	}
	if !any {
		return ""
	}
	st := b.s.Styles
	head := st.Heading.Render("Probes") + st.Faint.Render("  val acc of a linear probe on each output · "+trainer.SeedCount(ps.seeds))
	lines := []string{ansi.Truncate(head, w, "…")}
	best, haveBest := ps.best()
	for k := engine.ProbeInput; k < len(ps.scores)-1; k++ {
		name := "raw input"
		if k >= 0 {
			name = b.probeName(k)
		}
		mark := "  "
		if haveBest && k == best {
			mark = st.Marker.Render("★ ")
		}
		val := "…"
		if s, ok := ps.stats(k); ok {
			val = sweepMeanSD(s.AccMean, s.AccSD, true)
		} else if ps.err != nil {
			val = "✗"
		}
		row := fmt.Sprintf("%-10s %-11s", ansi.Truncate(name, 10, "…"), val)
		switch {
		case k == engine.ProbeInput:
			row += st.Faint.Render("  the baseline")
		case haveBest && k == best:
			row += st.Marker.Render("  best")
		}
		lines = append(lines, ansi.Truncate(mark+row, w, "…"))
	}
	return strings.Join(lines, "\n")
}

// probeSummary is the probes' panel in one line, for a screen too short
// for it: the raw input's probe, the baseline, and the best probe, or how
// far the probes are.
func (b *blocksScreen) probeSummary(w int) string {
	ps, st := b.probes, b.s.Styles
	line := st.Heading.Render("Probes") + st.Faint.Render(" · "+trainer.SeedCount(ps.seeds)+"  ")
	if s, ok := ps.stats(engine.ProbeInput); ok {
		line += "raw input " + fmt.Sprintf("%.1f%%", 100*s.AccMean) + st.Faint.Render(" baseline")
	} else {
		line += st.Faint.Render("raw input …")
	}
	if k, ok := ps.best(); ok {
		s, _ := ps.stats(k)
		name := "raw input"
		if k >= 0 {
			name = b.probeName(k)
		}
		line += st.Faint.Render(" · ") + st.Marker.Render("★ ") + ansi.Truncate(name, 10, "…") +
			fmt.Sprintf(" %.1f%%", 100*s.AccMean) + st.Marker.Render(" best")
	} else if ps.err != nil {
		line += st.Faint.Render(" · ✗")
	} else {
		line += st.Faint.Render(" · measuring…")
	}
	return ansi.Truncate(line, w, "…")
}

func errorsIsCanceled(err error) bool { return errors.Is(err, context.Canceled) }
