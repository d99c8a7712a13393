package engine_test

import (
	"context"
	"testing"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// newEngine opens a store in a temporary folder and returns the engine
// thaw train uses, on the embedded catalogue.
func newEngine(t testing.TB) (*engine.Engine, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return engine.New(st, nil), st
}

// probeJob is mnist8-mlp → uci-digits at 5 shots, seed 1.
func probeJob() trainer.Job {
	return trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 5,
		ValSplit: 0.2, BatchSize: trainer.DefaultBatchSize, Seed: 1, Plan: trainer.PresetHead(nil, 0, 0)}
}

// TestProbeMatchesHeadRun: the probe of the block just below the head is
// a head preset run with the probes' budget and the same seed, as thaw
// train --plan head --lr --epochs starts it.
func TestProbeMatchesHeadRun(t *testing.T) {
	eng, _ := newEngine(t)
	job := probeJob()
	got, err := eng.Probe(context.Background(), job, 1) // fc2, below the head
	if err != nil {
		t.Fatal(err)
	}
	prep, err := eng.Inspect(job)
	if err != nil {
		t.Fatal(err)
	}
	probe := engine.ProbePlan(prep.StepsPerEpoch())
	head := job
	if err := head.SetPlan("head", probe.Stages[0].LR, probe.Stages[0].Epochs, 0); err != nil {
		t.Fatal(err)
	}
	live, err := eng.Start(context.Background(), head, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := live.Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Same binary, same seed, same plan: bit-identical, no tolerance.
	if got.ValAcc != res.BestValAcc || got.ValLoss != res.BestValLoss {
		t.Errorf("probe below the head %+v, head preset run loss %v acc %v", got, res.BestValLoss, res.BestValAcc)
	}
}

// TestProbesReproduce: a probe gives the same accuracy for the same seed,
// on a block with a fresh linear head too.
func TestProbesReproduce(t *testing.T) {
	eng := engine.New(nil, nil)
	var accs []float64
	for range 2 {
		sc, err := eng.Probe(context.Background(), probeJob(), 0)
		if err != nil {
			t.Fatal(err)
		}
		accs = append(accs, sc.ValAcc)
	}
	if accs[0] != accs[1] {
		t.Errorf("probe of fc1 twice: %v", accs)
	}
	if !(accs[0] > 0.1) {
		t.Errorf("probe of fc1: %v, want better than chance over 10 classes", accs[0])
	}
}

// TestProbeOfTheInput: the raw-input probe, a linear classifier on the
// pixels, reproduces for a seed and beats chance; it is the baseline the
// blocks' probes are read against.
func TestProbeOfTheInput(t *testing.T) {
	eng := engine.New(nil, nil)
	var got []engine.ProbeScore
	for range 2 {
		sc, err := eng.Probe(context.Background(), probeJob(), engine.ProbeInput)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sc)
	}
	if got[0] != got[1] {
		t.Errorf("probe of the input twice: %+v", got)
	}
	// Ten classes: chance is 0.1.
	if !(got[0].ValAcc > 0.1) {
		t.Errorf("probe of the input: %+v, want better than chance", got[0])
	}
	if _, err := eng.Probe(context.Background(), probeJob(), -2); err == nil {
		t.Error("probe of block -2: no error")
	}
}
