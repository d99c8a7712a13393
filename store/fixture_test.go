package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"thaw/store/storetest"
	"thaw/trainer"
)

// trainSpec builds the same spec every time: a gradual plan of epochs
// epochs per stage, evaluating every evalEvery steps.
func trainSpec(t testing.TB, epochs, evalEvery int) trainer.Spec {
	t.Helper()
	cfg := storetest.TrainConfig()
	m, err := trainer.New[float32](cfg, rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	train, val, err := storetest.Blobs(3, 8, 80, 3).Split(rand.New(rand.NewPCG(1, 1)), 0.25)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := trainer.Preset("gradual", cfg.BlockNames(), 1e-2, epochs)
	if err != nil {
		t.Fatal(err)
	}
	// No early stop: the tests count one training loss a step, every
	// step of the plan.
	plan.Patience = 0
	for i := range plan.Stages {
		plan.Stages[i].Patience = 0
	}
	rp, err := plan.Resolve(cfg.BlockNames())
	if err != nil {
		t.Fatal(err)
	}
	return trainer.Spec{Model: m, Plan: rp, Train: train, Val: val, Seed: 42, BatchSize: 16, EvalEvery: evalEvery}
}

// createRun records a new run for trainSpec.
func createRun(t testing.TB, s *Store, name string) Run {
	t.Helper()
	r, err := s.CreateRun(context.Background(), Run{Name: name, Model: "store-mlp", Dataset: "blobs",
		Plan: json.RawMessage(`{"preset":"gradual"}`), Seed: 42, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawSeries returns every point of a series as (step, value bits) pairs.
func rawSeries(t testing.TB, s *Store, run, name string) [][2]uint64 {
	t.Helper()
	bs, err := s.Series(context.Background(), run, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][2]uint64, len(bs))
	for i, b := range bs {
		out[i] = [2]uint64{uint64(b.From), math.Float64bits(b.Mean)}
	}
	return out
}

// sameSeries reports the first difference between two runs' series name.
func sameSeries(t testing.TB, s *Store, a, b, name string) error {
	t.Helper()
	x, y := rawSeries(t, s, a, name), rawSeries(t, s, b, name)
	if len(x) != len(y) {
		return fmt.Errorf("%s: %d points, want %d", name, len(y), len(x))
	}
	if len(x) == 0 {
		return fmt.Errorf("%s: no points", name)
	}
	for i := range x {
		if x[i] != y[i] {
			return fmt.Errorf("%s: point %d is step %d value %v, want step %d value %v", name, i,
				y[i][0], math.Float64frombits(y[i][1]), x[i][0], math.Float64frombits(x[i][1]))
		}
	}
	return nil
}

// lastWeights loads the weights of run's newest checkpoint: its last one,
// or the stage-end one at the same step when the run was resumed from the
// end of its plan (the trainer then has nothing left to save).
func lastWeights(t testing.TB, s *Store, run string) (trainer.Checkpoint, []trainer.SafeTensor) {
	t.Helper()
	ctx := context.Background()
	c, err := s.LastGoodCheckpoint(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := s.LoadCheckpoint(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ck, ck.Weights
}

// sameTensors reports the first difference between two state dicts.
func sameTensors(a, b []trainer.SafeTensor) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d tensors, want %d", len(b), len(a))
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].DType != b[i].DType || fmt.Sprint(a[i].Shape) != fmt.Sprint(b[i].Shape) ||
			string(a[i].Data) != string(b[i].Data) {
			return fmt.Errorf("tensor %d %s differs", i, b[i].Name)
		}
	}
	return nil
}
