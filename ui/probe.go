package ui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"thaw/store/engine"
)

// A probe measures how well one block's output fits the new task (see
// engine.Engine.Probe). The Blocks screen runs them through the backend in
// the background when the data is chosen, one block after another, and
// caches them per model and job.

// probeKey identifies what a probe depends on.
type probeKey struct {
	model, data   string
	shots, batch  int
	valSplit      float64
	seed          uint64
	probeMinSteps int
	probeLR       float64
}

// probeState holds the probes of one model and job.
type probeState struct {
	id     int
	key    probeKey
	cancel context.CancelFunc
	ch     <-chan tea.Msg
	acc    []float64 // per block; NaN until known
	done   []bool
	err    error
}

// probeMsg reports one block's probe, or the probes' failure.
type probeMsg struct {
	id    int
	block int
	acc   float64
	err   error
	last  bool
}

// startProbes runs the probes of the session's model and job, unless they
// are cached or running.
func (b *blocksScreen) startProbes() tea.Cmd {
	s := b.s
	d := s.plan
	if s.base == nil || d.dataErr != nil || s.opts.NoProbes {
		return nil
	}
	job := d.job(s)
	key := probeKey{model: job.Model, data: job.Data.Path, shots: job.Shots, batch: job.BatchSize,
		valSplit: job.ValSplit, seed: job.Seed, probeMinSteps: engine.ProbeMinSteps, probeLR: engine.ProbeLR}
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
	ps := &probeState{id: s.nextID(), key: key, cancel: cancel, ch: ch, acc: make([]float64, n), done: make([]bool, n)}
	b.probes = ps
	back := s.backend
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(ch)
		for k := n - 2; k >= 0; k-- {
			acc, err := back.Probe(ctx, job, k)
			select {
			case ch <- probeMsg{id: ps.id, block: k, acc: acc, err: err, last: k == 0 || err != nil}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return waitMsg(ch)
}

func (b *blocksScreen) handleProbe(msg probeMsg) tea.Cmd {
	ps := b.probes
	if ps == nil || msg.id != ps.id {
		return nil
	}
	if msg.err != nil {
		ps.err = msg.err
		if b.s.ctx.Err() == nil && !errorsIsCanceled(msg.err) {
			b.s.flashErr(fmt.Errorf("probe of %s: %w", b.s.base.blocks[msg.block].name, msg.err))
		}
		return nil
	}
	ps.acc[msg.block], ps.done[msg.block] = msg.acc, true
	if msg.last {
		if b.s.probeCache == nil {
			b.s.probeCache = map[probeKey]*probeState{}
		}
		b.s.probeCache[ps.key] = ps
		return nil
	}
	return waitMsg(ps.ch)
}

// probeCell is a block's probe accuracy for the blocks table.
func (b *blocksScreen) probeCell(i int) string {
	ps := b.probes
	switch {
	case ps == nil || i >= len(ps.done):
		return ""
	case i == len(ps.done)-1:
		return "  —  "
	case ps.done[i]:
		return fmt.Sprintf("%5.1f%%", 100*ps.acc[i])
	case ps.err != nil:
		return "  ✗  "
	}
	return "  …  "
}

func (b *blocksScreen) probeView(w int) string { return "" }

func errorsIsCanceled(err error) bool { return errors.Is(err, context.Canceled) }
