package trainer

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
)

// imageBlobs is blobs reshaped as images of shape, for the CNN.
func imageBlobs(name string, k, n int, shape []int, seed uint64) *Dataset {
	ds := blobs(name, k, numel(shape), n, seed)
	ds.Shape = shape
	return ds
}

// cacheCase is a model and data for a run with the forgetting gauge: the
// model is "pretrained" on the source classes, then fine-tuned on the
// target set, with its head replaced (new classes) or kept.
type cacheCase struct {
	name     string
	cfg      func() *Config
	keepHead bool
	// zoo, when set, names the zoo model to start from, with its weights
	// (cfg is then not used).
	zoo string
}

var cacheCases = []cacheCase{
	{"cnn new head", smallCNN, false, ""},
	{"cnn kept head", smallCNN, true, ""},
	{"mlp new head", func() *Config { return runMLPConfig(8, 3) }, false, ""},
	{"mlp kept head", func() *Config { return runMLPConfig(8, 3) }, true, ""},
	// Without dropout, the training set's cache covers the whole body.
	{"mlp without dropout", func() *Config { return withoutDropout(runMLPConfig(8, 3)) }, false, ""},
	{"digits-cnn new head", nil, false, "digits-cnn"},
	{"digits-cnn kept head", nil, true, "digits-cnn"},
}

// withoutDropout removes cfg's dropout layers.
func withoutDropout(cfg *Config) *Config {
	for i, b := range cfg.Blocks {
		var ls []LayerConfig
		for _, l := range b.Layers {
			if l.Type != "dropout" {
				ls = append(ls, l)
			}
		}
		cfg.Blocks[i].Layers = ls
	}
	return cfg
}

// cacheSpec builds a fresh spec for c and preset; the same arguments give
// the same spec.
func cacheSpec(t *testing.T, c cacheCase, preset string) Spec {
	t.Helper()
	var m *Model[float32]
	var err error
	if c.zoo != "" {
		m, err = LoadModel[float32](filepath.Join("..", "assets", "zoo", c.zoo))
	} else {
		m, err = New[float32](c.cfg(), rand.New(rand.NewPCG(7, 7)))
	}
	if err != nil {
		t.Fatal(err)
	}
	cfg := &m.Config
	shape := cfg.InputShape
	src := imageBlobs("source", len(cfg.Classes), 90, shape, 5)
	src.Classes = cfg.Classes
	data := imageBlobs("target", 3, 40, shape, 11)
	data.Classes = []string{"x", "y", "z"}
	if c.keepHead {
		data.Classes = cfg.Classes
	}
	train, val, err := data.Split(rand.New(rand.NewPCG(1, 1)), 0.5)
	if err != nil {
		t.Fatal(err)
	}
	spec := Spec{Model: m, Train: train, Val: val, Source: src, Seed: 3, BatchSize: 16, EvalEvery: 2}
	if !c.keepHead {
		spec.SourceHead = m.CloneHead()
		if err := m.ReplaceHead([]string{"x", "y", "z"}, rand.New(rand.NewPCG(2, 2))); err != nil {
			t.Fatal(err)
		}
	}
	var plan Plan
	if preset == headAllHead {
		plan = Plan{LR: 3e-3, Epochs: 2, Stages: []Stage{{Train: []string{"head"}}, {Train: []string{"all"}}, {Train: []string{"head"}}}}
	} else if plan, err = Preset(preset, cfg.BlockNames(), 3e-3, 2); err != nil {
		t.Fatal(err)
	}
	if spec.Plan, err = plan.Resolve(cfg.BlockNames()); err != nil {
		t.Fatal(err)
	}
	return spec
}

// headAllHead names a plan that comes back to a frozen body after
// training it: the cache of the first stage must not serve the third.
const headAllHead = "head, all, head"

// TestCacheBitIdentical runs every preset on a CNN and an MLP (BatchNorm
// and dropout in the body, the gauge with a new head and with a kept one)
// with the frozen-prefix cache on and off: every reported number and the
// final weights must be the same bits.
func TestCacheBitIdentical(t *testing.T) {
	for _, c := range cacheCases {
		for _, p := range append(Presets(), PresetInfo{Name: headAllHead}) {
			t.Run(c.name+"/"+p.Name, func(t *testing.T) {
				run := func(noCache bool) (Result, []Progress, []SafeTensor, int, int) {
					spec := cacheSpec(t, c, p.Name)
					spec.noCache = noCache
					var col collect
					r, err := newRunner(spec, col.report)
					if err != nil {
						t.Fatal(err)
					}
					res, err := r.run(context.Background())
					if err != nil {
						t.Fatal(err)
					}
					w, err := spec.Model.StateDict()
					if err != nil {
						t.Fatal(err)
					}
					return res, col.ps, w, r.ev.hits, r.ev.trainHits
				}
				on, onPs, onW, hits, trainHits := run(false)
				off, offPs, offW, offHits, offTrainHits := run(true)
				if offHits != 0 || offTrainHits != 0 {
					t.Fatalf("cache off: %d passes and %d steps used the cache", offHits, offTrainHits)
				}
				// Every preset but full has a stage whose first block
				// is frozen and does not change, except fine-tune on the
				// tiny CNN, whose frozen blocks train their BatchNorm.
				wantHits := p.Name != "full" && !(p.Name == "fine-tune" && c.zoo == "" && c.cfg().Name == "tiny-cnn")
				if got := hits > 0; got != wantHits {
					t.Errorf("cache on: %d passes used the cache; want some: %v", hits, wantHits)
				}
				// On OpenBLAS, whose products do not compute a row alone,
				// the training set's cache covers no linear layer: none of
				// the MLP.
				mlp := c.zoo == "" && c.cfg().Name == "run-mlp"
				wantTrain := wantHits && !(mlp && Backend() == "openblas")
				if got := trainHits > 0; got != wantTrain {
					t.Errorf("cache on: %d training steps used the cache; want some: %v", trainHits, wantTrain)
				}
				t.Logf("%d passes and %d steps used the cache", hits, trainHits)
				for _, f := range []struct {
					name    string
					on, off float64
				}{
					{"final val loss", on.FinalValLoss, off.FinalValLoss},
					{"final val acc", on.FinalValAcc, off.FinalValAcc},
					{"best val loss", on.BestValLoss, off.BestValLoss},
					{"source acc before", on.SourceAccBefore, off.SourceAccBefore},
					{"source acc after", on.SourceAccAfter, off.SourceAccAfter},
				} {
					if math.Float64bits(f.on) != math.Float64bits(f.off) {
						t.Errorf("%s: %v with the cache, %v without", f.name, f.on, f.off)
					}
				}
				if len(onPs) != len(offPs) {
					t.Fatalf("%d reports with the cache, %d without", len(onPs), len(offPs))
				}
				for i := range onPs {
					a, b := onPs[i], offPs[i]
					for _, v := range [][2]float64{{a.ValLoss, b.ValLoss}, {a.ValAcc, b.ValAcc}, {a.SourceAcc, b.SourceAcc}, {a.TrainLoss, b.TrainLoss}} {
						if math.Float64bits(v[0]) != math.Float64bits(v[1]) {
							t.Fatalf("report %d (step %d): %v with the cache, %v without", i, a.Step, v[0], v[1])
						}
					}
				}
				for i := range onW {
					if string(onW[i].Data) != string(offW[i].Data) {
						t.Errorf("weights %s differ with the cache on and off", onW[i].Name)
					}
				}
			})
		}
	}
}

// TestEvaluateCores: evaluation spread over one or two cores gives the
// same bits as the plain serial loop, with the model's head and with
// another head.
func TestEvaluateCores(t *testing.T) {
	cfg := smallCNN()
	m, err := New[float32](cfg, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	head := m.CloneHead()
	resetBlock(head, rand.New(rand.NewPCG(9, 9)))
	ds := imageBlobs("eval", 3, 700, cfg.InputShape, 8) // 2100 samples: 9 batches

	// The serial reference: the loop evaluation had before it went
	// parallel.
	var ce CrossEntropy[float32]
	var wantLoss float64
	wantCorrect, wantHead := 0, 0
	x := &Tensor[float32]{}
	var y []int
	for _, idx := range ds.Batches(nil, evalBatchSize) {
		y = ds.Batch(x, y, idx)
		logits := m.Forward(x, false)
		wantLoss += ce.Forward(logits, y) * float64(len(y))
		wantCorrect += countCorrect(logits, y)
		wantHead += countCorrect(m.ForwardWithHead(x, head), y)
	}
	n := float64(ds.Len())

	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2} {
		runtime.GOMAXPROCS(procs)
		loss, acc := Evaluate(m, ds)
		if math.Float64bits(loss) != math.Float64bits(wantLoss/n) || acc != float64(wantCorrect)/n {
			t.Errorf("GOMAXPROCS %d: loss %v, acc %v; want %v, %v", procs, loss, acc, wantLoss/n, float64(wantCorrect)/n)
		}
		e := newEvaluator(m)
		e.noCache = true
		if _, got := e.pass(ds, head, false); got != wantHead {
			t.Errorf("GOMAXPROCS %d, other head: %d correct, want %d", procs, got, wantHead)
		}
		if procs > 1 && len(e.workers) != procs {
			t.Errorf("GOMAXPROCS %d: %d workers", procs, len(e.workers))
		}
	}
}

// TestCacheInvalidated: a cached prefix is not reused once a block under
// it has changed.
func TestCacheInvalidated(t *testing.T) {
	cfg := smallCNN()
	m, err := New[float32](cfg, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Blocks[:len(m.Blocks)-1] {
		b.Frozen = true
	}
	ds := imageBlobs("eval", 3, 100, cfg.InputShape, 8)
	e := newEvaluator(m)
	e.pass(ds, nil, true)
	w := m.Blocks[0].Layers[0].Params()[0].Value.Data
	for i := range w {
		w[i] *= 1.5
	}
	e.changed(0)
	got, _ := e.pass(ds, nil, true)
	want, _ := Evaluate(m, ds)
	if got /= float64(ds.Len()); math.Float64bits(got) != math.Float64bits(want) {
		t.Errorf("after conv1 changed: loss %v, want %v", got, want)
	}
	if e.hits != 0 {
		t.Errorf("%d passes used a stale cache", e.hits)
	}
	e.pass(ds, nil, true)
	if e.hits != 1 {
		t.Errorf("%d passes used the cache, want 1", e.hits)
	}
}

// TestCacheThaw: when a block thaws, the cached output of the blocks
// below it serves the next pass, to the bits of a pass without the cache;
// a change below that output is not served from it.
func TestCacheThaw(t *testing.T) {
	cfg := smallCNN()
	m, err := New[float32](cfg, rand.New(rand.NewPCG(4, 4)))
	if err != nil {
		t.Fatal(err)
	}
	m.FreezeBelow(3)
	ds := imageBlobs("eval", 3, 100, cfg.InputShape, 8)
	e := newEvaluator(m)
	e.pass(ds, nil, true)
	check := func(what string, wantHits int) {
		t.Helper()
		got, _ := e.pass(ds, nil, true)
		want, _ := Evaluate(m, ds)
		if got /= float64(ds.Len()); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("%s: loss %v, want %v", what, got, want)
		}
		if e.hits != wantHits {
			t.Errorf("%s: %d passes used the cache, want %d", what, e.hits, wantHits)
		}
	}
	// fc1 thaws and trains: conv2's output still serves.
	m.FreezeBelow(2)
	w := m.Blocks[2].Layers[0].Params()[0].Value.Data
	for i := range w {
		w[i] *= 1.5
	}
	e.changed(2)
	check("fc1 thawed", 1)
	// conv2 thaws: conv1's output still serves.
	m.FreezeBelow(1)
	w = m.Blocks[1].Layers[0].Params()[0].Value.Data
	for i := range w {
		w[i] *= 0.5
	}
	e.changed(1)
	check("conv2 thawed", 2)
	// What conv2 and fc1 fed is let go; conv1's output is kept.
	e.prune()
	if c := e.caches[ds]; c == nil || c.out[0] == nil || c.out[1] != nil || c.out[2] != nil {
		t.Errorf("after pruning, the cache holds %v", c)
	}
	// conv1 changes under a frozen conv2: nothing cached serves.
	m.FreezeBelow(2)
	w = m.Blocks[0].Layers[0].Params()[0].Value.Data
	for i := range w {
		w[i] *= 0.5
	}
	e.changed(0)
	e.prune()
	if len(e.caches) != 0 {
		t.Errorf("after conv1 changed, %d caches kept", len(e.caches))
	}
	check("conv1 changed", 2)
}

// TestFinalValidationReused: the run's final validation measures the
// weights its last evaluation measured, so it is not computed again: one
// validation pass per evaluation reported, and the final numbers are the
// last evaluation's.
func TestFinalValidationReused(t *testing.T) {
	spec := cacheSpec(t, cacheCases[0], "gradual")
	var col collect
	r, err := newRunner(spec, col.report)
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var last Progress
	evals := 0
	for _, p := range col.ps {
		if p.Event == EventEval {
			evals++
			last = p
		}
	}
	if r.valPasses != evals {
		t.Errorf("%d validation passes for %d evaluations", r.valPasses, evals)
	}
	if math.Float64bits(res.FinalValLoss) != math.Float64bits(last.ValLoss) || res.FinalValAcc != last.ValAcc {
		t.Errorf("final val loss %v, acc %v; the last evaluation's %v, %v", res.FinalValLoss, res.FinalValAcc, last.ValLoss, last.ValAcc)
	}
}

// TestTrainCacheLimit: a training set whose frozen prefix would pass the
// cache's limit is not cached, and the run's numbers are those of a run
// that caches it.
func TestTrainCacheLimit(t *testing.T) {
	run := func(limit int) (Result, int) {
		spec := cacheSpec(t, cacheCases[0], "head")
		r, err := newRunner(spec, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.ev.maxBytes = limit
		res, err := r.run(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return res, r.ev.trainHits
	}
	// The head stage caches conv2's output (dropout in fc1), 8 values a
	// sample.
	spec := cacheSpec(t, cacheCases[0], "head")
	need := spec.Train.Len() * 8 * 4
	small, smallHits := run(need - 1)
	fits, fitsHits := run(need)
	if smallHits != 0 || fitsHits == 0 {
		t.Errorf("%d steps used the cache under a limit of %d bytes, %d under %d; want 0 and some", smallHits, need-1, fitsHits, need)
	}
	if math.Float64bits(small.FinalValLoss) != math.Float64bits(fits.FinalValLoss) {
		t.Errorf("final val loss %v without the training cache, %v with it", small.FinalValLoss, fits.FinalValLoss)
	}
}

// TestStopFinishesGauge: a run stopped before the gauge's first pass
// finishes that pass (its checkpoint holds the starting value), takes no
// step, and says the final evaluation was skipped.
func TestStopFinishesGauge(t *testing.T) {
	spec := cacheSpec(t, cacheCases[0], "gradual")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	passes := 0
	report := func(p Progress) {
		// The first stage is announced before the gauge's first pass.
		if p.Event == EventStage {
			cancel()
		}
		if p.Event == EventEval {
			passes++
		}
	}
	var last *Checkpoint
	spec.Checkpoint = func(c Checkpoint) error { last = &c; return nil }
	res, err := Run(ctx, spec, report)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if res.Status != StatusStopped || !res.FinalSkipped || res.Steps != 0 || passes != 0 {
		t.Errorf("status %s, final skipped %v, %d steps, %d evaluations; want stopped, true, 0, 0", res.Status, res.FinalSkipped, res.Steps, passes)
	}
	if math.IsNaN(res.SourceAccBefore) || last == nil || math.IsNaN(last.Loop.SourceAccBefore) {
		t.Errorf("source acc before %v, in the checkpoint %v; want both measured", res.SourceAccBefore, last)
	}
	for _, v := range []float64{res.FinalValAcc, res.SourceAccAfter} {
		if !math.IsNaN(v) {
			t.Errorf("a number measured after the stop: %v", res)
		}
	}
}

// TestResumeMeasuresMissingGauge: a checkpoint without the gauge's
// starting value (written by a thaw that cut that pass short) gets it on
// resume, measured on the starting weights.
func TestResumeMeasuresMissingGauge(t *testing.T) {
	spec := cacheSpec(t, cacheCases[0], "gradual")
	var ckpts []Checkpoint
	spec.Checkpoint = func(c Checkpoint) error { ckpts = append(ckpts, c); return nil }
	want, err := Run(context.Background(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := ckpts[0]
	c.Loop.SourceAccBefore = math.NaN()
	spec2 := cacheSpec(t, cacheCases[0], "gradual")
	spec2.Resume = &c
	got, err := Run(context.Background(), spec2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if math.Float64bits(got.SourceAccBefore) != math.Float64bits(want.SourceAccBefore) {
		t.Errorf("source acc before %v on resume, %v uninterrupted", got.SourceAccBefore, want.SourceAccBefore)
	}
}
