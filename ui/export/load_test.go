package export

import (
	"context"
	"errors"
	"io"
	"math"
	"testing"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// storedRuns fills a store with a two-stage run of 1000 steps (loss every
// step, an epoch per 100 steps recorded every 10, evaluations every 100, a
// best checkpoint at 600) and a branch of it from its stage-end checkpoint
// at step 500, and returns the store and both ids.
func storedRuns(t *testing.T) (st *store.Store, parent, branch string) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	add := func(run string, from, to int) {
		var ms []store.Metric
		for step := from; step <= to; step++ {
			stage := 0
			if step > 500 {
				stage = 1
			}
			m := func(name string, v float64) {
				ms = append(ms, store.Metric{Step: int64(step), Stage: stage, Name: name, Value: v})
			}
			// A falling loss with a zig-zag, so buckets have extremes.
			m(TrainLoss, 2/(1+float64(step)/100)+0.1*float64(step%2))
			if step%10 == 0 {
				m(trainer.MetricEpoch, float64(step)/100)
			}
			if step%100 == 0 {
				m(ValLoss, 2/(1+float64(step)/100))
			}
		}
		if err := st.AddMetrics(ctx, run, ms); err != nil {
			t.Fatal(err)
		}
	}
	p, err := st.CreateRun(ctx, store.Run{Name: "parent", Model: "m", Dataset: "d"})
	if err != nil {
		t.Fatal(err)
	}
	add(p.ID, 1, 1000)
	for _, s := range []store.Stage{
		{Index: 0, Name: "stage 1: head", Trainable: []string{"head"}, Start: 0, End: 500},
		{Index: 1, Name: "stage 2: +fc1", Trainable: []string{"fc1", "head"}, Start: 500, End: 1000},
	} {
		if err := st.PutStage(ctx, p.ID, s); err != nil {
			t.Fatal(err)
		}
	}
	save := func(step int64, kind store.Kind) store.Checkpoint {
		c, err := st.SaveCheckpoint(ctx, p.ID, store.CheckpointMeta{Step: step, Stage: int(step-1) / 500, Kind: kind},
			func(w io.Writer) error { _, err := io.WriteString(w, "weights"); return err })
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	end := save(500, store.KindStageEnd)
	save(600, store.KindBest)
	save(1000, store.KindLast)
	b, err := st.CreateRun(ctx, store.Run{ParentCheckpoint: end.ID, Model: "m", Dataset: "d"})
	if err != nil {
		t.Fatal(err)
	}
	add(b.ID, 501, 800)
	return st, p.ID, b.ID
}

func TestLoad(t *testing.T) {
	ctx := context.Background()
	st, parent, branch := storedRuns(t)

	// Every point, by a prefix of the id.
	r, err := Load(ctx, engine.New(st, nil), store.Short(parent), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The validation loss falls to the end: the best is the read model's,
	// the lowest one at 1000, carried by the last checkpoint, not the
	// newest checkpoint of kind best at 600.
	if r.ID != parent || r.Name != "parent" || r.BestStep != 1000 || r.BranchStep != 0 {
		t.Errorf("run %q %q best %d branch %d; want %q parent 1000 0", r.ID, r.Name, r.BestStep, r.BranchStep, parent)
	}
	loss := r.series(TrainLoss)
	if loss == nil || len(loss.Points) != 1000 || loss.Means != nil {
		t.Fatalf("train/loss: %v", loss)
	}
	// Epochs were recorded every 10 steps; step 55 lies half way between.
	for _, tc := range []struct {
		step int
		want float64
	}{{1, 0.01}, {55, 0.55}, {1000, 10}} {
		if got := loss.Points[tc.step-1].Epoch; math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("epoch at step %d = %g, want %g", tc.step, got, tc.want)
		}
	}
	if v := r.series(ValLoss); v == nil || len(v.Points) != 10 {
		t.Errorf("val/loss: %v", v)
	}
	want := []Stage{
		{Index: 1, Label: "stage 1: head", StartStep: 0, EndStep: 500, Trainable: []string{"head"}},
		{Index: 2, Label: "stage 2: +fc1", StartStep: 500, EndStep: 1000, Trainable: []string{"fc1", "head"}},
	}
	if len(r.Stages) != len(want) {
		t.Fatalf("stages %+v", r.Stages)
	}
	for i, s := range r.Stages {
		w := want[i]
		if s.Index != w.Index || s.Label != w.Label || s.StartStep != w.StartStep || s.EndStep != w.EndStep || len(s.Trainable) != len(w.Trainable) {
			t.Errorf("stage %d: got %+v, want %+v", i, s, w)
		}
	}
	// The evaluation at step 500 closes stage 1; step 501 is stage 2's.
	for step, want := range map[int]int{0: 1, 1: 1, 500: 1, 501: 2, 1000: 2} {
		if got := r.stageAt(step); got == nil || got.Index != want {
			t.Errorf("stage of step %d: %v, want %d", step, got, want)
		}
	}

	// A budget: extremes kept, means for smoothing.
	r, err = Load(ctx, engine.New(st, nil), parent, []string{TrainLoss}, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Series) != 1 {
		t.Fatalf("asked for one series, got %d", len(r.Series))
	}
	loss = &r.Series[0]
	if n := len(loss.Points); n > 100 || n < 50 {
		t.Errorf("%d points from 50 buckets", n)
	}
	if n := len(loss.Means); n < 25 || n > 50 {
		t.Errorf("%d means from 50 buckets", n)
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, p := range loss.Points {
		lo, hi = math.Min(lo, p.Value), math.Max(hi, p.Value)
	}
	// The extremes of the whole series: step 1000 (even) and step 1 (odd).
	if wantLo, wantHi := 2/(1+10.0), 2/(1+0.01)+0.1; math.Abs(lo-wantLo) > 1e-12 || math.Abs(hi-wantHi) > 1e-12 {
		t.Errorf("range %g..%g, want %g..%g", lo, hi, wantLo, wantHi)
	}
	for i := 1; i < len(loss.Points); i++ {
		if loss.Points[i].Step < loss.Points[i-1].Step {
			t.Fatalf("points out of step order at %d", i)
		}
	}

	// The branch starts at its parent's checkpoint and is named by id; it
	// saved no weights of its own, so its best is the one it inherited.
	b, err := Load(ctx, engine.New(st, nil), branch, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.BranchStep != 500 || b.Parent != "parent" || b.Name != store.Short(branch) || b.BestStep != 500 {
		t.Errorf("branch: step %d parent %q name %q best %d", b.BranchStep, b.Parent, b.Name, b.BestStep)
	}
	if _, err := Curves(io.Discard, FormatPNG, []Run{r, b}, DefaultOptions()); err != nil {
		t.Errorf("overlay of the stored runs: %v", err)
	}

	if _, err := Load(ctx, engine.New(st, nil), "zzzzzz", nil, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown run: err %v, want ErrNotFound", err)
	}
}

// TestSmoothMeans checks that a series read in buckets is smoothed
// through its bucket means: its alternating extremes would give a
// different, order-dependent curve.
func TestSmoothMeans(t *testing.T) {
	s := Series{Name: TrainLoss}
	for i := range 20 {
		mean := 1 / float64(i+1)
		s.Points = append(s.Points, Point{Step: 10 * i, Value: mean - 0.5}, Point{Step: 10*i + 9, Value: mean + 0.5})
		s.Means = append(s.Means, Point{Step: 10*i + 4, Value: mean})
	}
	r := Run{Series: []Series{s}, BestStep: -1}
	o := DefaultOptions()
	var n notes
	raw := extract(r, &r.Series[0], o, false, &n)
	got := smoothed(r, &r.Series[0], raw, o)
	if len(got) != len(s.Means) {
		t.Fatalf("%d smoothed points, want one per mean (%d)", len(got), len(s.Means))
	}
	ys := make([]float64, len(s.Means))
	for i, p := range s.Means {
		ys[i] = p.Value
	}
	Smooth(ys, ys, o.Smoothing)
	for i, p := range got {
		if p.x != float64(s.Means[i].Step) || p.y != ys[i] {
			t.Fatalf("point %d: got (%g, %g), want (%d, %g)", i, p.x, p.y, s.Means[i].Step, ys[i])
		}
	}
}
