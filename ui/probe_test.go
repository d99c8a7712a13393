package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"thaw/assets"
	"thaw/store"
	"thaw/trainer"
)

// probeJob is mnist8-mlp → uci-digits at 5 shots, seed 1.
func probeJob() trainer.Job {
	return trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 5,
		ValSplit: 0.2, BatchSize: trainer.DefaultBatchSize, Seed: 1, Plan: trainer.PresetHead(nil, 0, 0)}
}

// TestProbeMatchesHeadRun: the probe of the block just below the head is
// a head preset run with the probes' budget and the same seed, as thaw
// train --plan head --lr --epochs starts it.
func TestProbeMatchesHeadRun(t *testing.T) {
	cat := assets.NewCatalog()
	job := probeJob()
	got, err := Probe(context.Background(), cat, job, 1) // fc2, below the head
	if err != nil {
		t.Fatal(err)
	}
	prep, err := inspectData(cat, job)
	if err != nil {
		t.Fatal(err)
	}
	probe := ProbePlan(prep.StepsPerEpoch())
	head := job
	if err := head.SetPlan("head", probe.Stages[0].LR, probe.Stages[0].Epochs, 0); err != nil {
		t.Fatal(err)
	}
	eng, _ := newEngine(t)
	live, err := eng.Start(context.Background(), head, store.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := live.Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Same binary, same seed, same plan: bit-identical, no tolerance.
	if got != res.BestValAcc {
		t.Errorf("probe below the head %v, head preset run %v", got, res.BestValAcc)
	}
}

// TestProbesReproduce: a probe gives the same accuracy for the same seed,
// on a block with a fresh linear head too.
func TestProbesReproduce(t *testing.T) {
	cat := assets.NewCatalog()
	var accs []float64
	for range 2 {
		acc, err := Probe(context.Background(), cat, probeJob(), 0)
		if err != nil {
			t.Fatal(err)
		}
		accs = append(accs, acc)
	}
	if accs[0] != accs[1] {
		t.Errorf("probe of fc1 twice: %v", accs)
	}
	if !(accs[0] > 0.1) {
		t.Errorf("probe of fc1: %v, want better than chance over 10 classes", accs[0])
	}
}

// TestProbesShown: the Blocks screen shows each block's probe once the
// data is chosen, the head with none, and the probes are cached.
func TestProbesShown(t *testing.T) {
	d := newDriverOpts(t, Options{})
	d.chooseModel("mnist8-mlp")
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	ps := b.probes
	if ps == nil || !ps.done[0] || !ps.done[1] || ps.err != nil {
		t.Fatalf("probes: %+v", ps)
	}
	scr := d.screen()
	for i := range 2 {
		want := fmt.Sprintf("%5.1f%%", 100*ps.acc[i])
		line := lineWith(scr, d.m.s.base.blocks[i].name+" ")
		if !strings.Contains(line, want) {
			t.Errorf("block %d's row %q lacks its probe %s", i, line, want)
		}
	}
	// The data changes and comes back: the probes come from the cache.
	d.keys("enter", "down", "e", "ctrl+u")
	d.typeText("3")
	d.keys("enter")
	if b.probes == ps || !b.probes.done[0] {
		t.Fatalf("3 shots did not probe anew")
	}
	d.keys("e", "ctrl+u")
	d.typeText("0")
	d.keys("enter")
	if b.probes != ps {
		t.Errorf("the probes of the first job were not reused from the cache")
	}
}

// lineWith returns the first line of s containing sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
