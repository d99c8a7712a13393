package ui

import (
	"context"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// countingBackend is the engine as the workbench's backend, counting the
// sweep reads (SweepTable) and the sweeps recorded or run (NewSweep,
// RunSweep) that go through it; everything is the engine's own.
type countingBackend struct {
	*engine.Engine
	tables, sweeps atomic.Int64
}

func (c *countingBackend) SweepTable(ctx context.Context, id string) (engine.SweepTable, error) {
	c.tables.Add(1)
	return c.Engine.SweepTable(ctx, id)
}

func (c *countingBackend) NewSweep(ctx context.Context, spec engine.SweepSpec) (engine.SweepRecord, error) {
	c.sweeps.Add(1)
	return c.Engine.NewSweep(ctx, spec)
}

func (c *countingBackend) RunSweep(ctx context.Context, id string, opts engine.SweepOptions) (engine.SweepTable, error) {
	c.sweeps.Add(1)
	return c.Engine.RunSweep(ctx, id, opts)
}

// openEngine opens the store in dir and returns an engine of its own on
// it, as another process opening the same store would have.
func openEngine(t testing.TB, dir string) *engine.Engine {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return engine.New(st, nil)
}

// clusterAndBackend opens one new store twice: as a cluster's process
// that queues a sweep, and as the workbench's counting backend.
func clusterAndBackend(t testing.TB) (*engine.Engine, *countingBackend) {
	t.Helper()
	dir := t.TempDir()
	return openEngine(t, dir), &countingBackend{Engine: openEngine(t, dir)}
}

// queueTinySweep records a sweep of mnist8-mlp → uci-digits at 5 shots
// over points fc2 and head and the given number of seeds, and queues its
// tasks, as thaw sweep --submit does.
func queueTinySweep(t *testing.T, cluster *engine.Engine, seeds int) engine.SweepRecord {
	t.Helper()
	return queueTinySweepOn(t, cluster, engine.SweepSeeds(seeds))
}

// queueTinySweepOn is queueTinySweep on the given seeds.
func queueTinySweepOn(t *testing.T, cluster *engine.Engine, seeds []uint64) engine.SweepRecord {
	t.Helper()
	ctx := context.Background()
	spec := engine.SweepSpec{
		Job: trainer.Job{
			Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 5,
			Preset: &trainer.PresetRef{Name: "gradual"},
		},
		Points: []string{"fc2", "head"}, Seeds: seeds, PlanRef: "gradual",
	}
	sw, err := cluster.NewSweep(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := cluster.QueueSweep(ctx, sw.ID, engine.StartOptions{})
	if err != nil || len(pending) != 2*len(seeds) {
		t.Fatalf("queued %v, %v; want %d tasks", pending, err, 2*len(seeds))
	}
	return sw
}

// runTask trains task index of sweep id in the cluster's engine, as thaw
// train --sweep ID --index I does on a node, to its end.
func runTask(t *testing.T, cluster *engine.Engine, id string, index int) {
	t.Helper()
	l, _, err := cluster.StartSweepTask(context.Background(), id, index, engine.StartOptions{})
	if err != nil {
		t.Fatalf("task %d: %v", index, err)
	}
	if _, err := l.Wait(); err != nil {
		t.Fatalf("task %d: %v", index, err)
	}
}

// followLine returns the panel's row of freeze point p: its mark, point,
// trainable parameters, and figures over seeds seeds.
func followLine(screen, p string, seeds int) string {
	re := regexp.MustCompile(`(★ |  )` + regexp.QuoteMeta(p) + ` +\S+ +(\d|·)[^\n]*`)
	for _, l := range re.FindAllString(screen, -1) {
		if strings.Contains(l, fmt.Sprintf("/%d", seeds)) {
			return l
		}
	}
	return ""
}

// openFromRuns shows the Runs screen, waits for the sweep's runs, and
// presses W on the first of them.
func openFromRuns(t *testing.T, tm *teatest.TestModel, scr *screenReader, sw engine.SweepRecord) {
	t.Helper()
	tm.Send(press("5"))
	scr.waitFor(t, "fc2 · seed 3001 · sweep "+engine.Short(sw.ID))
	tm.Send(press("W"))
}

// TestSweepFollowFromRuns: a sweep recorded and queued by one engine (a
// cluster's submitter) and trained task by task by it (its nodes) fills
// the panel of a workbench on its own engine over the same store, opened
// from Runs with W: the Plan takes the sweep's job, the rows fill as the
// tasks end, and the last table has the pick worked out here from the
// stored runs themselves and the one SweepTable reads; t and e work on it.
func TestSweepFollowFromRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains four runs")
	}
	t.Chdir(t.TempDir()) // figures go to the working directory
	cluster, back := clusterAndBackend(t)
	sw := queueTinySweep(t, cluster, 2)
	short := engine.Short(sw.ID)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{Backend: back, NoProbes: true})
	const w, h = 160, 48
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")

	// The key is offered on Runs, in the help bar and in ?.
	tm.Send(press("5"))
	scr.waitFor(t, "fc2 · seed 3001 · sweep "+short, "W follow its sweep")
	tm.Send(press("?"))
	scr.waitFor(t, "follow its sweep")
	tm.Send(press("esc"))
	openFromRuns(t, tm, scr, sw)

	// Blocks: the sweep's model's table, the Plan its job, the panel
	// following with nothing done.
	scr.waitFor(t, "Blocks of mnist8-mlp", "Freeze-depth sweep "+short, "following · 0 of 4 done · 4 queued")
	scr.waitFor(t, "uci-digits")

	// The nodes train the tasks; the panel fills as they end.
	runTask(t, cluster, sw.ID, 0) // fc2, seed 3001
	mid := scr.waitFor(t, "following · 1 of 4 done · 3 queued")
	if l := followLine(mid, "fc2", 2); !strings.Contains(l, "1/2") {
		t.Errorf("after fc2's first seed, its row is %q:\n%s", l, mid)
	}
	if l := followLine(mid, "head", 2); !strings.Contains(l, "0/2") {
		t.Errorf("before any of head's runs, its row is %q:\n%s", l, mid)
	}
	for i := 1; i < 4; i++ {
		runTask(t, cluster, sw.ID, i)
	}
	final := scr.waitFor(t, "done · 4 of 4 runs", "★")

	// The ground truth, another way: each stored run of the sweep, its
	// task and its best, read one by one from the cluster's store, and
	// the pick made from them.
	points, seeds := []string{"fc2", "head"}, engine.SweepSeeds(2)
	rows := make([]trainer.SweepRow, len(points))
	for i, p := range points {
		rows[i] = trainer.SweepRow{Point: p, ValLoss: make([]float64, 2), ValAcc: make([]float64, 2)}
	}
	runs, err := cluster.ListRuns(ctx, engine.RunFilter{Tag: "sweep:" + sw.ID})
	if err != nil || len(runs) != 4 {
		t.Fatalf("stored runs of the sweep: %d, %v; want 4", len(runs), err)
	}
	for _, r := range runs {
		task, found, err := cluster.RunSweepTask(ctx, r.ID)
		if err != nil || !found {
			t.Fatalf("run %s: task %v, %v", r.ID, found, err)
		}
		v, err := cluster.Read(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != trainer.StatusDone {
			t.Fatalf("run %s is %s", r.ID, v.Status)
		}
		i, s := slices.Index(points, task.Point), slices.Index(seeds, task.Seed)
		rows[i].ValLoss[s], rows[i].ValAcc[s] = v.Best.ValLoss, v.Best.ValAcc
	}
	want := trainer.PickPoint(rows)
	if want.Index < 0 {
		t.Fatal("no pick from the stored runs")
	}
	tb, err := cluster.SweepTable(ctx, sw.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.Groups[0].Pick.Index; got != want.Index {
		t.Errorf("SweepTable picks row %d, the stored runs row %d", got, want.Index)
	}
	pick := points[want.Index]
	for i, p := range points {
		line := followLine(final, p, 2)
		if starred := strings.HasPrefix(line, "★"); starred != (i == want.Index) {
			t.Errorf("row %s starred %v, the pick is %s:\n%s", p, starred, pick, final)
		}
		st := rows[i].Stats()
		for _, f := range []string{sweepMeanSD(st.LossMean, st.LossSD, false), sweepMeanSD(st.AccMean, st.AccSD, true), "2/2"} {
			if !strings.Contains(line, f) {
				t.Errorf("row %s %q lacks %q", p, line, f)
			}
		}
	}

	// t takes the pick; e writes the figure.
	tm.Send(press("t"))
	scr.waitFor(t, "freeze point taken from the sweep's pick: "+pick)
	tm.Send(press("e"))
	scr.waitFor(t, "sweep figure written to")
	f, err := os.Open(filepath.Join("thaw-sweep-" + short + ".png"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(f); err != nil {
		t.Errorf("the sweep's figure: %v", err)
	}
	f.Close()
	if n := back.sweeps.Load(); n != 0 {
		t.Errorf("the workbench recorded or ran %d sweeps of its own", n)
	}

	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	fm := tm.FinalModel(t).(*Model)
	s := fm.s
	d := s.plan
	if s.base == nil || s.base.name != "mnist8-mlp" || d.data != "uci-digits" || d.shots != 5 || d.preset != "gradual" || d.byHand || d.seed != 3001 {
		t.Errorf("the Plan took model %v, data %q, %d shots, preset %q (by hand %v), seed %d; want the sweep's job",
			s.base, d.data, d.shots, d.preset, d.byHand, d.seed)
	}
	if k := slices.Index(s.frozen, false); k < 0 || s.base.blocks[k].name != pick {
		t.Errorf("freeze choice %v after t, want training from %s", s.frozen, pick)
	}
	cancel()
	checkNoLeak(t)
}

// TestSweepFollowIdle: a followed sweep is read once when opened and
// again only after the store changes: no SweepTable call while nothing
// changes, none after w stops following (nor does w train the queued
// tasks here), and none once the sweep is complete.
func TestSweepFollowIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two runs")
	}
	cluster, back := clusterAndBackend(t)
	sw := queueTinySweep(t, cluster, 1)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{Backend: back, NoProbes: true})
	const w, h = 160, 48
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")
	openFromRuns(t, tm, scr, sw)
	scr.waitFor(t, "following · 0 of 2 done · 2 queued", "Blocks of mnist8-mlp")

	// idle fails when a SweepTable call is made during d.
	idle := func(when string, d time.Duration) {
		t.Helper()
		n0 := back.tables.Load()
		time.Sleep(d)
		if n := back.tables.Load() - n0; n > 0 {
			t.Errorf("%s: %d SweepTable calls in %v while nothing changed", when, n, d)
		}
	}
	// The feed's first value (it comes soon after subscribing, and
	// with the Plan's data loading) may make one more read: let it pass.
	time.Sleep(2500 * time.Millisecond)
	idle("queued", 3*time.Second)

	n0 := back.tables.Load()
	runTask(t, cluster, sw.ID, 0)
	scr.waitFor(t, "following · 1 of 2 done · 1 queued")
	if back.tables.Load() == n0 {
		t.Error("the panel changed without a SweepTable call")
	}
	time.Sleep(2500 * time.Millisecond)
	idle("after a task ended", 3*time.Second)

	// w stops following: it trains nothing here, and the panel reads
	// nothing more while the task goes on elsewhere.
	tm.Send(press("w"))
	scr.waitFor(t, "stopped following sweep "+engine.Short(sw.ID), "not followed · 1 of 2 done")
	n1 := back.tables.Load()
	runTask(t, cluster, sw.ID, 1)
	time.Sleep(3 * time.Second)
	if n := back.tables.Load() - n1; n > 0 {
		t.Errorf("%d SweepTable calls after w stopped following", n)
	}
	if s := scr.pump(); !strings.Contains(s, "not followed · 1 of 2 done") {
		t.Errorf("the panel moved after w stopped following:\n%s", s)
	}

	// W again follows it, now complete: following ends at once, and a
	// change to the store reads nothing.
	openFromRuns(t, tm, scr, sw)
	scr.waitFor(t, "done · 2 of 2 runs", "★")
	time.Sleep(1500 * time.Millisecond)
	n2 := back.tables.Load()
	runs, err := cluster.ListRuns(ctx, engine.RunFilter{Tag: "sweep:" + sw.ID})
	if err != nil || len(runs) == 0 {
		t.Fatalf("runs of the sweep: %v, %v", runs, err)
	}
	if err := cluster.Rename(ctx, runs[0].ID, "renamed elsewhere"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if n := back.tables.Load() - n2; n > 0 {
		t.Errorf("%d SweepTable calls after the sweep was complete", n)
	}
	if n := back.sweeps.Load(); n != 0 {
		t.Errorf("the workbench recorded or ran %d sweeps of its own", n)
	}

	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	cancel()
	checkNoLeak(t)
}

// TestSweepFollowModelGone: a sweep whose model folder is gone from this
// machine still opens from Runs: the panel stands alone with its rows,
// says why there is no block table, and t says why it cannot take the
// pick.
func TestSweepFollowModelGone(t *testing.T) {
	cluster, back := clusterAndBackend(t)
	base, err := cluster.Model("mnist8-mlp")
	if err != nil {
		t.Fatal(err)
	}
	folder := filepath.Join(t.TempDir(), "my-model")
	if err := trainer.SaveModel(folder, base.Model); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := engine.SweepSpec{
		Job:    trainer.Job{Model: folder, Data: trainer.DataRef{Path: "uci-digits"}, Shots: 5, Preset: &trainer.PresetRef{Name: "gradual"}},
		Points: []string{"fc2", "head"}, Seeds: engine.SweepSeeds(1),
	}
	sw, err := cluster.NewSweep(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.QueueSweep(ctx, sw.ID, engine.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(folder); err != nil {
		t.Fatal(err)
	}

	m := New(ctx, Options{Backend: back, NoProbes: true})
	const w, h = 160, 48
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")
	openFromRuns(t, tm, scr, sw)
	got := scr.waitFor(t, "could not be loaded here", "following · 0 of 2 done · 2 queued")
	for _, p := range []string{"fc2", "head"} {
		if followLine(got, p, 1) == "" {
			t.Errorf("the panel lacks the row of %s:\n%s", p, got)
		}
	}
	if strings.Contains(got, "Blocks of") {
		t.Errorf("a block table is drawn beside a sweep whose model is not loaded:\n%s", got)
	}
	tm.Send(press("t"))
	scr.waitFor(t, "no task of sweep "+engine.Short(sw.ID)+" has a result yet")

	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	cancel()
	checkNoLeak(t)
}

// TestSweepFollowProbesOnItsSeeds: the probes beside a followed sweep
// stand on its footing, its seeds included, not the default ones: a
// sweep of one seed, 7, gets probes of one seed, each the probe the
// engine trains for the sweep's job on seed 7.
func TestSweepFollowProbesOnItsSeeds(t *testing.T) {
	if testing.Short() {
		t.Skip("trains probes")
	}
	cluster, back := clusterAndBackend(t)
	sw := queueTinySweepOn(t, cluster, []uint64{7})
	spec, err := engine.DecodeSweep(sw)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	m := New(ctx, Options{Backend: back})
	const w, h = 160, 48
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")
	tm.Send(press("5"))
	scr.waitFor(t, "fc2 · seed 7 · sweep "+engine.Short(sw.ID))
	tm.Send(press("W"))
	got := scr.waitFor(t, "following · 0 of 2 done", "linear probe on each output · 1 seed", "best")

	// The ground truth, another way: the engine's probes of the sweep's
	// job on seed 7, block by block.
	job := spec.Job
	job.Seed = 7
	for k, name := range map[int]string{engine.ProbeInput: "raw input", 0: "fc1", 1: "fc2"} {
		sc, err := cluster.Probe(ctx, job, k)
		if err != nil {
			t.Fatal(err)
		}
		want := sweepMeanSD(sc.ValAcc, math.NaN(), true)
		// A probe row: its name, then its accuracy (a block's row has
		// its state after the name, the sweep's rows a count).
		re := regexp.MustCompile(regexp.QuoteMeta(name) + `\s+(\d+\.\d%\S*)`)
		mm := re.FindAllStringSubmatch(got, -1)
		found := len(mm) == 1
		if found && mm[0][1] != want {
			t.Errorf("probe of %s: the panel shows %s, the engine's probe on seed 7 %s:\n%s", name, mm[0][1], want, got)
		}
		if !found {
			t.Errorf("no probe row of %s:\n%s", name, got)
		}
	}

	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	cancel()
	checkNoLeak(t)
}
