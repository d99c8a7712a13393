package engine

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"thaw/assets"
	"thaw/store"
	"thaw/store/storetest"
	"thaw/trainer"
)

// The engine's tests train storetest's synthetic problem (storetest.TrainConfig
// on storetest.Blobs).

// testNames resolves the store-mlp model and the blobs data, as a
// catalogue would: every call builds a fresh model and dataset.
type testNames struct{}

func (testNames) Model(name string) (*assets.BaseModel, error) {
	if name != "store-mlp" {
		return nil, trainer.BadInput(fmt.Errorf("unknown model %q", name))
	}
	m, err := trainer.New[float32](storetest.TrainConfig(), rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		return nil, err
	}
	return &assets.BaseModel{Name: name, Model: m}, nil
}

func (testNames) Source(*assets.BaseModel) (*trainer.Dataset, error) { return nil, nil }

func (testNames) ResolveData(ref trainer.DataRef) (trainer.DataRef, error) { return ref, nil }

func (n testNames) Data(ref trainer.DataRef, shape []int, _ assets.DataSplit) (*trainer.Dataset, error) {
	ds, _, err := n.TrainingData(ref, shape)
	return ds, err
}

func (testNames) TrainingData(ref trainer.DataRef, _ []int) (*trainer.Dataset, func([]int) ([]float32, error), error) {
	if ref.Path != "blobs" {
		return nil, nil, trainer.BadInput(fmt.Errorf("unknown data %q", ref.Path))
	}
	return storetest.Blobs(3, 8, 80, 3), nil, nil
}

// testJob is a gradual job of epochs epochs a stage: 180 training samples
// in batches of 16, 12 steps an epoch, four stages.
func testJob(epochs, evalEvery int) trainer.Job {
	return trainer.Job{
		Model: "store-mlp", Data: trainer.DataRef{Path: "blobs"},
		Preset:   &trainer.PresetRef{Name: "gradual", LR: 1e-2, Epochs: epochs},
		ValSplit: 0.25, BatchSize: 16, Seed: 42, EvalEvery: evalEvery,
	}
}

func mustOpen(t testing.TB) *store.Store {
	t.Helper()
	s, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTestEngine(t *testing.T, opts ...Option) (*Engine, *store.Store) {
	s := mustOpen(t)
	opts = append([]Option{withNames(testNames{}), WithVersion("test"), WithRecordOptions(store.HeartbeatEvery(5 * time.Millisecond))}, opts...)
	return New(s, nil, opts...), s
}

func mustWait(t *testing.T, l *Live) trainer.Result {
	t.Helper()
	res, err := l.Wait()
	if err != nil {
		t.Fatalf("run %s: %v", l.ID, err)
	}
	return res
}

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
	rp, err := plan.Resolve(cfg.BlockNames())
	if err != nil {
		t.Fatal(err)
	}
	return trainer.Spec{Model: m, Plan: rp, Train: train, Val: val, Seed: 42, BatchSize: 16, EvalEvery: evalEvery}
}

// createRun records a new run for trainSpec.
func createRun(t testing.TB, s *store.Store, name string) Run {
	t.Helper()
	r, err := s.CreateRun(context.Background(), Run{Name: name, Model: "store-mlp", Dataset: "blobs",
		Plan: json.RawMessage(`{"preset":"gradual"}`), Seed: 42, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawSeries returns every point of a series as (step, value bits) pairs.
func rawSeries(t testing.TB, s *store.Store, run, name string) [][2]uint64 {
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

// lastWeights loads the weights of run's newest checkpoint.
func lastWeights(t testing.TB, s *store.Store, run string) (trainer.Checkpoint, []trainer.SafeTensor) {
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

// settle waits until the number of goroutines is back to at most n.
func settle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines outlive the run, had %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setPlan rewrites the stored job record of run id, as another thaw
// would have written it, straight in the store's database.
func setPlan(s *store.Store, id string, raw []byte) error {
	db, err := sql.Open("sqlite", filepath.Join(s.Dir(), "thaw.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(`UPDATE runs SET plan = ? WHERE id = ?`, string(raw), id)
	return err
}
