package ui

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
	"thaw/store/engine"
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

// TestSweepMatchesTrain: the sweep's accuracy at one freeze point equals a
// thaw train run of the same plan, data and seed. thaw train turns its
// flags into this job (setupFlags.job: Job.SetPlan on the plan file) and
// starts it on the same engine.
func TestSweepMatchesTrain(t *testing.T) {
	eng, st := newEngine(t)
	d := newDriver(t, Options{Backend: eng})
	sweepSetup(d)
	d.keys("w") // runs the whole sweep: the driver waits for every reply
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	sw := b.sweep
	if sw == nil || !sw.done || sw.err != nil || len(sw.rows) != 3 {
		t.Fatalf("sweep: %+v", sw)
	}
	runs, err := st.ListRuns(context.Background(), engine.RunFilter{Tag: "sweep"})
	if err != nil || len(runs) != 3 {
		t.Fatalf("stored sweep runs: %d, %v; want 3", len(runs), err)
	}

	// The freeze point with fc2 and the head trainable: the first stage
	// of thaw train --freeze-below fc2 on the plan as edited.
	base := d.m.s.plan.job(d.m.s)
	job, err := base.SweepPoint([]string{"fc1", "fc2", "head"}, "fc2")
	if err != nil {
		t.Fatal(err)
	}
	live, err := eng.Start(context.Background(), job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := live.Wait()
	if err != nil {
		t.Fatal(err)
	}
	row := sw.rows[1]
	if row.thawed != 2 || row.low != "fc2" {
		t.Fatalf("row 2 is %+v, want the freeze point below fc2", row)
	}
	// Same binary, same seed, same plan: bit-identical (DESIGN's
	// determinism contract), so no tolerance.
	if row.acc != res.BestValAcc || row.loss != res.BestValLoss {
		t.Errorf("sweep at fc2: acc %v loss %v; thaw train: acc %v loss %v", row.acc, row.loss, res.BestValAcc, res.BestValLoss)
	}
}

// TestSweepFlow: a sweep on mnist8-mlp → uci-digits at 5 shots draws its
// rows in order, from the head alone up, and marks the best.
func TestSweepFlow(t *testing.T) {
	eng, st := newEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{Backend: eng, NoProbes: true})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(160, 48))
	scr := newScreenReader(tm.Output(), 160, 48)
	scr.waitFor(t, "mnist8-mlp")
	for _, k := range []string{"down", "down", "enter"} {
		tm.Send(press(k))
	}
	scr.waitFor(t, "Blocks of mnist8-mlp")
	tm.Send(press("enter"))
	scr.waitFor(t, "uci-digits", "train /")
	for _, k := range []string{"down", "e", "ctrl+u", "5", "enter"} {
		tm.Send(press(k))
	}
	scr.waitFor(t, "5 per class", "50 train /")
	tm.Send(press("2"))
	tm.Send(press("w"))

	// Each row arrives below the ones before it.
	order := []string{"from head", "from fc2", "from fc1"}
	for i := range order {
		screen := scr.waitFor(t, order[:i+1]...)
		last := -1
		for _, o := range order[:i+1] {
			at := strings.Index(screen, o)
			if at < last {
				t.Fatalf("row %q is above an earlier row:\n%s", o, screen)
			}
			last = at
		}
	}
	final := scr.waitFor(t, "sweep done", "★", " best")
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	fm := tm.FinalModel(t).(*Model)
	fm.Wait()
	sw := fm.screens[ScreenBlocks].(*blocksScreen).sweep
	if len(sw.rows) != 3 {
		t.Fatalf("%d rows, want 3", len(sw.rows))
	}
	best := sw.best()
	for i, r := range sw.rows {
		if r.thawed != i+1 {
			t.Errorf("row %d trains the top %d blocks, want %d", i, r.thawed, i+1)
		}
		if r.acc > sw.rows[best].acc {
			t.Errorf("row %d (%.4f) beats the marked best (%.4f)", i, r.acc, sw.rows[best].acc)
		}
	}
	// The marked line is the best row's.
	for _, line := range strings.Split(final, "\n") {
		if strings.Contains(line, "★") {
			want := fmt.Sprintf("from %-7s %6.1f%%", sw.rows[best].low, 100*sw.rows[best].acc)
			if !strings.Contains(line, want) {
				t.Errorf("the marked row %q is not the best, %q", line, want)
			}
		}
	}
	runs, err := st.ListRuns(context.Background(), engine.RunFilter{Tag: "sweep"})
	if err != nil || len(runs) != 3 {
		t.Errorf("stored sweep runs: %d, %v; want 3", len(runs), err)
	}
}

// TestSweepTakeRowAtCursor: t takes the sweep row of the block under the
// cursor, and the sweep's best when the cursor is on a block no row starts
// from. The rows are a finished sweep's, given directly: this tests the
// key, TestSweepFlow the sweep.
func TestSweepTakeRowAtCursor(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("digits-cnn") // conv1, conv2, fc1, head
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	b.sweep = &sweepState{total: 3, done: true, rows: []sweepRow{
		{thawed: 1, low: "head", acc: 0.70},
		{thawed: 2, low: "fc1", acc: 0.90},
		{thawed: 3, low: "conv2", acc: 0.80},
	}}
	frozen := func() string {
		var f []string
		for i, fr := range d.m.s.frozen {
			if fr {
				f = append(f, d.m.s.base.blocks[i].name)
			}
		}
		return strings.Join(f, ",")
	}
	d.keys("down", "t") // cursor on conv2: its row, not the best
	if got, want := frozen(), "conv1"; got != want {
		t.Errorf("t on conv2: frozen %q, want %q", got, want)
	}
	if !strings.Contains(d.screen(), "▸  from conv2") {
		t.Errorf("the conv2 row is not marked selected:\n%s", d.screen())
	}
	d.keys("up", "t") // cursor on conv1: no row starts there, so the best
	if got, want := frozen(), "conv1,conv2"; got != want {
		t.Errorf("t on conv1: frozen %q, want the best row's %q", got, want)
	}
	d.keys("down", "down", "down", "t") // head
	if got, want := frozen(), "conv1,conv2,fc1"; got != want {
		t.Errorf("t on head: frozen %q, want %q", got, want)
	}
}
