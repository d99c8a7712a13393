package ui

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	tea "charm.land/bubbletea/v2"

	"thaw/assets"
	"thaw/trainer"
)

// A probe measures how well one block's output fits the new task: a linear
// classifier trained on the block's frozen features, everything below it
// frozen too. The probe of the block just below the head is the head
// preset itself (the head is that classifier); a lower block gets a fresh
// linear layer from its flattened output to the classes. Every probe runs
// ProbePlan on the job's split, shots, batch and seed, so probes reproduce
// for a seed. They run in the background when the data is chosen, one
// block after another, and are cached per model and job.

// Probe budget: linear probes want more steps and a higher rate than the
// head preset's defaults, and few-shot data has few steps per epoch.
const (
	probeLR       = 1e-2 // a linear classifier on frozen features (a common probing rate)
	probeMinSteps = 60   // at least this many steps, in whole epochs
	probeMaxEpoch = 20
)

// probeSalt separates a probe head's initialisation from the job's other
// streams drawn from the seed.
const probeSalt = 0x70726f6265

// ProbePlan is the plan every probe runs: the head preset, at probeLR, for
// enough epochs of stepsPerEpoch steps to make probeMinSteps steps.
func ProbePlan(stepsPerEpoch int) trainer.Plan {
	epochs := min(max((probeMinSteps+stepsPerEpoch-1)/max(stepsPerEpoch, 1), 1), probeMaxEpoch)
	p := trainer.PresetHead(nil, probeLR, epochs)
	p.Name = "probe"
	return p
}

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
		valSplit: job.ValSplit, seed: job.Seed, probeMinSteps: probeMinSteps, probeLR: probeLR}
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
	cat := s.catalog
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(ch)
		for k := n - 2; k >= 0; k-- {
			acc, err := Probe(ctx, cat, job, k)
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

// Probe trains and evaluates the probe of block k (0 is the input block;
// k must be below the head) for job: the job prepared as a run would be
// (split, shots, head), the model cut after block k with a linear head
// (the job's own head when k is just below it), ProbePlan trained on the
// frozen features. It returns the validation accuracy of the best
// checkpoint (lowest validation loss).
func Probe(ctx context.Context, cat *assets.Catalog, job trainer.Job, k int) (float64, error) {
	prep, err := inspectData(cat, job)
	if err != nil {
		return 0, err
	}
	mod := prep.Model
	n := len(mod.Blocks)
	if k < 0 || k >= n-1 {
		return 0, fmt.Errorf("probe: block %d: want a block below the head (0 to %d)", k, n-2)
	}
	if k < n-2 {
		if mod, err = cutModel(mod, k, job.Seed); err != nil {
			return 0, err
		}
	}
	spe := prep.StepsPerEpoch()
	rp, err := ProbePlan(spe).Resolve(mod.Config.BlockNames())
	if err != nil {
		return 0, err
	}
	spec := trainer.Spec{Model: mod, Plan: rp, Train: prep.Train, Val: prep.Val,
		Seed: job.Seed, BatchSize: prep.Spec().BatchSize, EvalEvery: job.EvalEvery}
	res, err := trainer.Run(ctx, spec, func(trainer.Progress) {})
	if err != nil {
		return 0, err
	}
	return res.BestValAcc, nil
}

// cutModel returns m's blocks 0..k, with their weights, topped by a fresh
// linear head from block k's flattened output to m's classes.
func cutModel(m *trainer.Model[float32], k int, seed uint64) (*trainer.Model[float32], error) {
	cfg := m.Config
	cfg.Blocks = slices.Clone(cfg.Blocks[:k+1])
	// The output shape of block k, through the layers' own shape rules.
	shape := slices.Clone(cfg.InputShape)
	for _, b := range m.Blocks[:k+1] {
		for _, l := range b.Layers {
			out, err := l.OutShape(shape)
			if err != nil {
				return nil, err
			}
			shape = out
		}
	}
	var layers []trainer.LayerConfig
	if len(shape) > 1 {
		layers = append(layers, trainer.LayerConfig{Type: "flatten"})
	}
	layers = append(layers, trainer.LayerConfig{Type: "linear", Name: "probe", InFeatures: numel(shape), OutFeatures: len(cfg.Classes)})
	cfg.Blocks = append(cfg.Blocks, trainer.BlockConfig{Name: "probe", Layers: layers})
	cut, err := trainer.New[float32](&cfg, rand.New(rand.NewPCG(seed, probeSalt)))
	if err != nil {
		return nil, fmt.Errorf("probe below %s: %w", m.Blocks[k].Name, err)
	}
	for i := range k + 1 {
		src, dst := m.Blocks[i].Layers, cut.Blocks[i].Layers
		for j := range src {
			sp, dp := src[j].Params(), dst[j].Params()
			for pi := range sp {
				copy(dp[pi].Value.Data, sp[pi].Value.Data)
			}
		}
	}
	return cut, nil
}
