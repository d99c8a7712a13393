package ui

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

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
	eng := engine.New(st, nil)
	t.Cleanup(func() { st.Close() })
	return eng, st
}

// TestSweepFlowWTE: on mnist8-mlp → uci-digits at 5 shots, w runs the
// sweep thaw sweep runs (3 freeze points × 3 seeds, stored) and draws its
// table as runs end; ★ is on the pick worked out here from the stored
// runs themselves; t makes the pick the freeze choice; e writes the
// sweep's figure as a PNG that decodes.
func TestSweepFlowWTE(t *testing.T) {
	if testing.Short() {
		t.Skip("trains nine runs")
	}
	dir := t.TempDir()
	t.Chdir(dir) // figures go to the working directory
	eng, st := newEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{Backend: eng, NoProbes: true})
	const w, h = 160, 48
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	keys := func(ks ...string) {
		for _, k := range ks {
			tm.Send(press(k))
		}
	}
	scr.waitFor(t, "mnist8-mlp")
	keys("down", "down", "enter")
	scr.waitFor(t, "Blocks of mnist8-mlp")
	keys("enter")
	scr.waitFor(t, "uci-digits", "train /")
	keys("down", "e", "ctrl+u", "5", "enter")
	scr.waitFor(t, "5 per class", "50 train /")
	keys("2", "w")

	// The table is drawn before the sweep ends: a screen with some runs
	// done and not all.
	partial := regexp.MustCompile(`Freeze-depth sweep  (\d training · )?[1-8] of 9 runs`)
	deadline := time.Now().Add(90 * time.Second)
	var mid string
	for time.Now().Before(deadline) {
		if s := scr.pump(); partial.MatchString(s) {
			mid = s
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if mid == "" {
		t.Fatalf("never saw the sweep part done:\n%s", scr.pump())
	}
	for _, p := range []string{"fc1", "fc2", "head"} {
		if sweepLine(mid, p) == "" {
			t.Errorf("the table so far lacks the row of %s:\n%s", p, mid)
		}
	}
	final := scr.waitFor(t, "done · 9 of 9 runs", "★")

	// The ground truth, another way: each stored run of the sweep, its
	// task (point and seed) and its best, read one by one, and the pick
	// made from them.
	sweeps, err := eng.ListSweeps(ctx)
	if err != nil || len(sweeps) != 1 {
		t.Fatalf("sweeps: %d, %v; want 1", len(sweeps), err)
	}
	id := sweeps[0].ID
	runs, err := st.ListRuns(ctx, engine.RunFilter{Tag: "sweep:" + id})
	if err != nil || len(runs) != 9 {
		t.Fatalf("stored runs of the sweep: %d, %v; want 9", len(runs), err)
	}
	points := []string{"fc1", "fc2", "head"}
	seeds := engine.SweepSeeds(3)
	rows := make([]trainer.SweepRow, len(points))
	base, err := eng.Model("mnist8-mlp")
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range points {
		rows[i] = trainer.SweepRow{Point: p, ValLoss: make([]float64, 3), ValAcc: make([]float64, 3)}
		for _, b := range base.Model.Blocks[i:] {
			rows[i].Trainable += trainer.BlockCount(b)
		}
	}
	for _, r := range runs {
		task, found, err := eng.RunSweepTask(ctx, r.ID)
		if err != nil || !found {
			t.Fatalf("run %s: task %v, %v", r.ID, found, err)
		}
		v, err := engine.Read(ctx, st, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		i, s := slices.Index(points, task.Point), slices.Index(seeds, task.Seed)
		rows[i].ValLoss[s], rows[i].ValAcc[s] = v.Best.ValLoss, v.Best.ValAcc
	}
	want := trainer.PickPoint(rows)
	if want.Index < 0 {
		t.Fatal("no pick from the stored runs")
	}
	pick := points[want.Index]
	tb, err := eng.SweepTable(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := tb.Groups[0].Pick.Index; got != want.Index {
		t.Errorf("SweepTable picks row %d, the stored runs row %d", got, want.Index)
	}
	for i, p := range points {
		line := sweepLine(final, p)
		if starred := strings.HasPrefix(line, "★"); starred != (i == want.Index) {
			t.Errorf("row %s starred %v, the pick is %s:\n%s", p, starred, pick, final)
		}
		st := rows[i].Stats()
		for _, f := range []string{sweepMeanSD(st.LossMean, st.LossSD, false), sweepMeanSD(st.AccMean, st.AccSD, true), "3/3"} {
			if !strings.Contains(line, f) {
				t.Errorf("row %s %q lacks %q", p, line, f)
			}
		}
	}
	// Rows in the block table's order, input to output.
	if i1, i2, i3 := strings.Index(final, sweepLine(final, "fc1")), strings.Index(final, sweepLine(final, "fc2")), strings.Index(final, sweepLine(final, "head")); !(i1 < i2 && i2 < i3) {
		t.Errorf("rows out of the blocks' order:\n%s", final)
	}

	// t: the pick becomes the freeze choice.
	keys("t")
	scr.waitFor(t, "freeze point taken from the sweep's pick: "+pick)

	// e: the figure, where figures go.
	keys("e")
	scr.waitFor(t, "sweep figure written to")
	path := filepath.Join(dir, "thaw-sweep-"+engine.Short(id)+".png")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 200 {
		t.Errorf("figure %v: too small", b)
	}

	// Runs: the sweep's runs together, in task order (seed by seed, each
	// seed's points input to output), named by freeze point and seed;
	// sorted by start alone, newest first, they would run backwards.
	keys("5")
	var names []string
	for _, seed := range seeds {
		for _, p := range points {
			names = append(names, fmt.Sprintf("%s · seed %d · sweep %s", p, seed, engine.Short(id)))
		}
	}
	runsScr := scr.waitFor(t, names...)
	last := -1
	for _, n := range names {
		at := strings.Index(runsScr, n)
		if at < last {
			t.Errorf("run %q is out of the sweep's task order:\n%s", n, runsScr)
		}
		last = at
	}

	keys("q")
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	fm := tm.FinalModel(t).(*Model)
	fm.Wait()
	for i, fr := range fm.s.frozen {
		if wantFrozen := i < want.Index; fr != wantFrozen {
			t.Errorf("after t, block %s frozen %v, want %v (pick %s)", points[i], fr, wantFrozen, pick)
		}
	}
}

// sweepLine is the sweep table's row of point p on screen, from its mark
// on; "" for none.
func sweepLine(screen, p string) string {
	re := regexp.MustCompile(`(★ |  )` + regexp.QuoteMeta(p) + ` +\S+ +(\d|·)[^\n]*`)
	for _, l := range re.FindAllString(screen, -1) {
		if strings.Contains(l, "/3") {
			return l
		}
	}
	return ""
}

// cancelOnce is the engine, but its first sweep is cancelled, as w does,
// once two runs are done.
type cancelOnce struct {
	*engine.Engine
	calls int
}

func (c *cancelOnce) RunSweep(ctx context.Context, id string, opts engine.SweepOptions) (engine.SweepTable, error) {
	c.calls++
	if c.calls > 1 {
		return c.Engine.RunSweep(ctx, id, opts)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	show := opts.Progress
	opts.Progress = func(tb engine.SweepTable) {
		show(tb)
		if tb.Done >= 2 {
			cancel()
		}
	}
	return c.Engine.RunSweep(ctx, id, opts)
}

// TestSweepCancelResumes: a sweep cancelled keeps its table so far and its
// runs stored; w again goes on with the same sweep, keeping the runs done,
// and w once more, with every run done, trains nothing.
func TestSweepCancelResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a sweep")
	}
	eng, st := newEngine(t)
	back := &cancelOnce{Engine: eng}
	d := newDriver(t, Options{Backend: back})
	sweepSetup(d)
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	d.keys("w") // the driver runs the sweep to its end, cancelled here
	sw := b.sweep
	if sw == nil || !sw.done || !errors.Is(sw.err, context.Canceled) {
		t.Fatalf("sweep not cancelled: %+v", sw)
	}
	id, done := sw.tb.Sweep.ID, sw.tb.Done
	if done < 2 || done == 9 {
		t.Fatalf("cancelled with %d of 9 runs done", done)
	}
	if scr := d.screen(); !strings.Contains(scr, "cancelled · ") || !strings.Contains(scr, "w goes on with it") {
		t.Errorf("the panel does not say the sweep was cancelled:\n%s", scr)
	}
	d.keys("w")
	if b.sweep.tb.Sweep.ID != id || b.sweep.err != nil || b.sweep.tb.Done != 9 {
		t.Fatalf("w again: sweep %s, %d done, %v; want %s to the end", b.sweep.tb.Sweep.ID, b.sweep.tb.Done, b.sweep.err, id)
	}
	runs, err := st.ListRuns(context.Background(), engine.RunFilter{Tag: "sweep:" + id})
	if err != nil || len(runs) != 9 {
		t.Errorf("stored runs of the sweep: %d, %v; want 9, the cancelled ones resumed", len(runs), err)
	}
	before := b.sweep.tb.Groups[0]
	d.keys("w")
	after := b.sweep.tb.Groups[0]
	if b.sweep.tb.Sweep.ID != id || !reflect.DeepEqual(after.Runs, before.Runs) || !reflect.DeepEqual(after.Rows[0].ValLoss, before.Rows[0].ValLoss) {
		t.Errorf("w on a done sweep: sweep %s, runs %v; want %s, %v: nothing trained again", b.sweep.tb.Sweep.ID, after.Runs, id, before.Runs)
	}
	// Other data drops the sweep from the panel; back on the same job, w
	// goes on with the stored sweep again.
	d.keys("3", "e", "ctrl+u") // the Plan's cursor is still on shots
	d.typeText("3")
	d.keys("enter", "2")
	if b.sweep != nil {
		t.Errorf("the sweep of 5 shots is still shown at 3 shots")
	}
	d.keys("3", "e", "ctrl+u")
	d.typeText("5")
	d.keys("enter", "2", "w")
	if b.sweep == nil || b.sweep.tb.Sweep.ID != id || b.sweep.tb.Done != 9 {
		t.Errorf("w on the first job again: %+v, want sweep %s, done", b.sweep, id)
	}
	if sws, _ := eng.ListSweeps(context.Background()); len(sws) != 1 {
		t.Errorf("%d sweeps stored, want 1", len(sws))
	}
}

// sweepSetup drives a workbench to mnist8-mlp → uci-digits at 5 shots and
// back to Blocks, ready for w.
func sweepSetup(d *driver) {
	d.chooseModel("mnist8-mlp")
	d.keys("enter") // Plan
	d.keys("down", "e", "ctrl+u")
	d.typeText("5")
	d.keys("enter", "2")
	if d.m.s.plan.shots != 5 || d.m.s.plan.prep == nil || d.m.active != ScreenBlocks {
		d.t.Fatalf("setup: shots %d, data %v (%v), screen %v", d.m.s.plan.shots, d.m.s.plan.prep != nil, d.m.s.plan.dataErr, d.m.active)
	}
}

// TestSweepTestLineWhole: the pick's test accuracy under the sweep's
// table is the table's own (engine.SweepTest), and it is drawn whole,
// wrapped where the panel is narrow (beside the blocks at 160×48, under
// them at 80×24 and on a 56-column terminal), never cut.
func TestSweepTestLineWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a sweep")
	}
	eng, _ := newEngine(t)
	d := newDriver(t, Options{Backend: eng})
	d.chooseModel("letters-mlp")
	d.keys("enter") // Plan
	d.keys("down", "e", "ctrl+u")
	d.typeText("5")
	d.keys("enter", "2", "w")
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	if b.sweep == nil || !b.sweep.done || b.sweep.err != nil {
		t.Fatalf("sweep: %+v", b.sweep)
	}
	test := b.sweep.tb.Groups[0].Test
	if test == nil {
		t.Fatal("letters-n-z has a test split, and the sweep measured none")
	}
	want := "test acc of " + test.Point + ": " + sweepMeanSD(test.Mean, test.SD, true)
	for _, size := range [][2]int{{160, 48}, {80, 24}, {56, 40}} {
		d.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		scr := d.screen()
		// Its last word ends the line or opens the next one.
		if !strings.Contains(scr, want) || !regexp.MustCompile(`(after the choice\)|\n *choice\))`).MatchString(scr) {
			t.Errorf("%dx%d: no whole line %q … \"after the choice)\":\n%s", size[0], size[1], want, scr)
		}
	}
}
