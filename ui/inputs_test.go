package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// gatedBackend is an engine whose data loads wait until gate is closed:
// the time a user presses keys while the data loads.
type gatedBackend struct {
	*engine.Engine
	gate chan struct{}
}

func (g gatedBackend) Inspect(job trainer.Job) (*trainer.Prepared, error) {
	<-g.gate
	return g.Engine.Inspect(job)
}

// threeClassCSV writes a CSV of n samples of mnist8-mlp's 64 features in
// the three classes a, b and c, and returns its path.
func threeClassCSV(t *testing.T, n int) string {
	t.Helper()
	var b strings.Builder
	for i := range 64 {
		fmt.Fprintf(&b, "f%d,", i)
	}
	b.WriteString("label\n")
	for i := range n {
		c := i % 3
		for j := range 64 {
			fmt.Fprintf(&b, "%d,", (4*c+i*j)%17)
		}
		b.WriteString(string(rune('a'+c)) + "\n")
	}
	path := filepath.Join(t.TempDir(), "three.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFlowQueuedEnter: enter enter enter from the first screen starts a
// run, the third enter pressed while the data still loads: it is queued
// and said so, and the run starts when the data is ready.
func TestFlowQueuedEnter(t *testing.T) {
	eng, st := newTestEngine(t)
	gate := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true, Backend: gatedBackend{eng, gate}})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	scr := newScreenReader(tm.Output(), 80, 24)
	scr.waitFor(t, "digits-cnn")
	tm.Send(press("enter"))
	tm.Send(press("enter"))
	tm.Send(press("enter"))
	scr.waitFor(t, "Plan", "starting when the data is loaded", "loading…")
	if runs, _ := st.ListRuns(ctx, store.RunFilter{}); len(runs) != 0 {
		t.Fatalf("a run started before the data loaded: %v", runs)
	}
	close(gate)
	scr.waitFor(t, "Train", "run ")
	eventually(t, "the run is stored", func() bool { return len(onlyRun(t, st)) == 1 })
	tm.Send(press("q"))
	tm.Send(press("y"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(30*time.Second))
	m.Wait()
}

// TestQueuedStartCancelled: esc cancels an enter queued while the data
// loads, before it leaves the screen; w on Blocks is queued the same way.
func TestQueuedStartCancelled(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("mnist8-mlp")
	d.keys("enter")
	d.m.s.plan.loading = true // as if a load were under way
	d.keys("enter")
	if !d.m.s.plan.queued || !strings.Contains(d.m.s.message(), "starting when the data is loaded") {
		t.Fatalf("enter while loading: queued %v, message %q", d.m.s.plan.queued, d.m.s.message())
	}
	d.keys("esc")
	if d.m.s.plan.queued || d.m.active != ScreenPlan {
		t.Fatalf("esc: queued %v, screen %v; want the start cancelled, still on Plan", d.m.s.plan.queued, d.m.active)
	}
	d.keys("esc")
	if d.m.active != ScreenBlocks {
		t.Fatalf("a second esc went to %v, want Blocks", d.m.active)
	}
}

// TestFlowEscClearsFilter: on Runs, esc clears an applied filter before
// it leaves the screen; on Models, likewise.
func TestFlowEscClearsFilter(t *testing.T) {
	eng, st := newTestEngine(t)
	for _, name := range []string{"alpha", "bravo", "charlie"} {
		if _, err := st.CreateRun(context.Background(), store.Run{Name: name, Model: "mnist8-mlp", Dataset: "mnist8"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true, Backend: eng})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	scr := newScreenReader(tm.Output(), 80, 24)
	scr.waitFor(t, "digits-cnn")

	// Models: / letters, enter applies, esc clears.
	tm.Send(press("/"))
	tm.Type("letters")
	tm.Send(press("enter"))
	scr.waitFor(t, "1 of 3")
	tm.Send(press("esc"))
	scr.waitFor(t, "3 of 3", "digits-cnn", "mnist8-mlp")

	// Runs: / alpha, enter applies; esc clears it and stays.
	tm.Send(press("5"))
	scr.waitFor(t, "alpha", "bravo", "charlie")
	tm.Send(press("/"))
	tm.Type("alpha")
	tm.Send(press("enter"))
	for range 500 {
		if s := scr.pump(); strings.Contains(s, "alpha") && !strings.Contains(s, "bravo") {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s := scr.pump(); strings.Contains(s, "bravo") {
		t.Fatalf("the filter did not apply:\n%s", s)
	}
	tm.Send(press("esc"))
	scr.waitFor(t, "alpha", "bravo", "charlie", "filter cleared")
	// Nothing left to undo: esc leaves the screen.
	tm.Send(press("esc"))
	scr.waitFor(t, "No run yet")
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	if fm := tm.FinalModel(t).(*Model); fm.active != ScreenTrain {
		t.Errorf("the second esc showed %v, want Train", fm.active)
	}
}

// TestFlowPromptCursor: the plan's save prompt opens with its cursor at
// the end, wherever the last prompt left it, so ctrl+u clears the whole
// path before a new name is typed.
func TestFlowPromptCursor(t *testing.T) {
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	scr := newScreenReader(tm.Output(), 80, 24)
	scr.waitFor(t, "mnist8-mlp")
	for _, k := range []string{"down", "down", "enter", "enter"} {
		tm.Send(press(k))
	}
	scr.waitFor(t, "Plan", "10 classes")
	tm.Send(press("s"))
	scr.waitFor(t, "save plan to: plan.json")
	for range 5 {
		tm.Send(press("left")) // the cursor before ".json"
	}
	tm.Send(press("esc"))
	tm.Send(press("s"))
	tm.Send(press("ctrl+u"))
	tm.Type("mine.json")
	tm.Send(press("enter"))
	scr.waitFor(t, "saved the plan to mine.json")
	if _, err := os.Stat("mine.json"); err != nil {
		t.Errorf("no mine.json: %v", err)
	}
	if names, _ := filepath.Glob("*"); len(names) != 1 {
		t.Errorf("files saved: %v, want mine.json alone (a stale fragment of the old path would make another)", names)
	}
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestFlowDataPicker: e on the data field lists the built-in tasks, those
// the model takes first, and the files used; ↑/↓ and enter take one,
// typing filters the list.
func TestFlowDataPicker(t *testing.T) {
	csv := threeClassCSV(t, 30)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	scr := newScreenReader(tm.Output(), 80, 24)
	scr.waitFor(t, "mnist8-mlp")
	for _, k := range []string{"down", "down", "enter", "enter"} {
		tm.Send(press(k))
	}
	scr.waitFor(t, "Plan", "uci-digits", "10 classes")

	// A file typed in is taken as typed.
	tm.Send(press("e"))
	scr.waitFor(t, "built-in tasks", "other tasks", "digits-5to9")
	tm.Send(press("ctrl+u"))
	tm.Type(csv)
	tm.Send(press("enter"))
	scr.waitFor(t, "3 classes", "new head")

	// The picker lists it as used; ↑ from it chooses the task above.
	tm.Send(press("e"))
	scr.waitFor(t, "recently used", "three.csv", "uci-digits")
	tm.Send(press("ctrl+u"))
	tm.Type("optdig") // uci-digits' description: UCI optdigits
	scr.waitFor(t, "uci-digits")
	tm.Send(press("down"))
	scr.waitFor(t, "▸ uci-digits")
	tm.Send(press("enter"))
	scr.waitFor(t, "mnist8-mlp → uci-digits", "10 classes")
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	fm := tm.FinalModel(t).(*Model)
	if got := fm.s.plan.data; got != "uci-digits" {
		t.Errorf("data %q, want uci-digits", got)
	}
}

// TestBlocksShowsTheNewHead: with a 3-class CSV on mnist8-mlp (10
// classes), Blocks shows the head that will train, 64→3 and new, and
// counts its parameters; back on the model's own task, the base head.
func TestBlocksShowsTheNewHead(t *testing.T) {
	csv := threeClassCSV(t, 30)
	d := newDriver(t, Options{})
	d.chooseModel("mnist8-mlp")
	if scr := d.screen(); !strings.Contains(scr, "linear 64→10") {
		t.Fatalf("Blocks does not show the base head on uci-digits:\n%s", scr)
	}
	d.keys("enter", "e", "ctrl+u")
	d.typeText(csv)
	d.keys("enter", "2")
	scr := d.screen()
	for _, want := range []string{"linear 64→3 (new)", "output 3 classes (new head; the base has 10)", "trainable 195 of 16,771"} {
		if !strings.Contains(scr, want) {
			t.Errorf("Blocks lacks %q:\n%s", want, scr)
		}
	}
	if strings.Contains(scr, "64→10") {
		t.Errorf("Blocks still shows the base head:\n%s", scr)
	}
}

// TestPlanFields: the shots field takes back the "all" it shows, a stage
// of 2 epochs that the floor lengthens says so, and the preset row names
// a loaded plan.
func TestPlanFields(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("mnist8-mlp")
	d.keys("enter", "down", "e")
	ps := d.m.screens[ScreenPlan].(*planScreen)
	if got := ps.input.Value(); got != "all" {
		t.Errorf("the shots field opens with %q, want all", got)
	}
	d.keys("ctrl+u")
	d.typeText("2")
	d.keys("enter")
	if d.m.s.plan.shots != 2 {
		t.Fatalf("shots %d, want 2", d.m.s.plan.shots)
	}
	d.keys("e", "ctrl+u")
	d.typeText("all")
	d.keys("enter")
	if d.m.s.plan.shots != 0 || d.m.s.messageErr() {
		t.Fatalf("shots=all: shots %d, message %q", d.m.s.plan.shots, d.m.s.message())
	}

	// 2 shots of 10 classes: one batch an epoch, under gradual's floor
	// of 100 steps.
	d.keys("e", "ctrl+u")
	d.typeText("2")
	d.keys("enter")
	for range numFieldRows - rowShots {
		d.keys("down")
	}
	d.keys("e", "ctrl+u")
	d.typeText("train=head epochs=2")
	d.keys("enter")
	scr := d.screen()
	for _, want := range []string{"2 ep → 100 st (floor)", "stage 1: 2 epochs of 1 step, floor 100 steps → 100 steps", "eval every 5 steps, 20 times (evals=20)", "patience 3"} {
		if !strings.Contains(scr, want) {
			t.Errorf("the plan lacks %q:\n%s", want, scr)
		}
	}

	// Saved and loaded: the preset row names the file.
	file := filepath.Join(t.TempDir(), "two.json")
	d.keys("s", "ctrl+u")
	d.typeText(file)
	d.keys("enter", "p", "L", "ctrl+u")
	d.typeText(file)
	d.keys("enter")
	if got := d.m.s.plan.presetLabel(); got != "two.json (plan file)" {
		t.Errorf("preset row %q after loading, want the file's name", got)
	}
	if scr := d.screen(); !strings.Contains(scr, "‹ two.json (plan file) ›") {
		t.Errorf("the preset row does not name the loaded file:\n%s", scr)
	}
}

// TestSweepQueued: w on Blocks while the data loads queues the sweep,
// says so, and esc cancels it before it leaves the screen.
func TestSweepQueued(t *testing.T) {
	eng, _ := newTestEngine(t)
	d := newDriver(t, Options{Backend: eng})
	d.chooseModel("mnist8-mlp")
	d.m.s.plan.loading = true // as if a load were under way
	d.keys("w")
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	if !b.sweepQueued || b.sweep != nil || !strings.Contains(d.m.s.message(), "sweeping when the data is loaded") {
		t.Fatalf("w while loading: queued %v, sweep %v, message %q", b.sweepQueued, b.sweep != nil, d.m.s.message())
	}
	d.keys("esc")
	if b.sweepQueued || d.m.active != ScreenBlocks {
		t.Fatalf("esc: queued %v, screen %v; want the sweep cancelled, still on Blocks", b.sweepQueued, d.m.active)
	}
}

// TestPlaceholderWhole: a text field's placeholder shows whole, not its
// first character alone.
func TestPlaceholderWhole(t *testing.T) {
	for _, w := range []int{80, 160} {
		d := newDriver(t, Options{})
		d.send(tea.WindowSizeMsg{Width: w, Height: 24})
		d.keys("o")
		if scr := d.screen(); !strings.Contains(scr, "model folder: a folder with config.json and model.safetensors") {
			t.Errorf("at %d columns the placeholder is cut:\n%s", w, scr)
		}
	}
}

// TestPlanStageNoteSmoothing: the stage note says the loss the run will
// train on, held against the engine's own preparation of the Plan's job
// (what thaw train runs): mnist8-mlp on uci-digits keeps its trained head
// and trains plain, so the note says no smoothing; digits-cnn on
// digits-5to9 gets a new head and the preset's ε.
func TestPlanStageNoteSmoothing(t *testing.T) {
	for _, c := range []struct {
		model     string
		smoothing bool
	}{{"mnist8-mlp", false}, {"digits-cnn", true}} {
		d := newDriver(t, Options{})
		d.chooseModel(c.model)
		d.keys("enter")
		for range numFieldRows {
			d.keys("down")
		}
		p, err := engine.New(nil, nil).Prepare(d.m.s.plan.job(d.m.s))
		if err != nil {
			t.Fatal(err)
		}
		eps := p.Plan.Stages[0].LabelSmoothing
		if got := eps > 0; got != c.smoothing {
			t.Fatalf("%s: the engine prepares stage 1 with smoothing %g; the test expects smoothing %v", c.model, eps, c.smoothing)
		}
		scr := d.screen()
		if !strings.Contains(scr, "patience") {
			t.Fatalf("%s: no stage note under the cursor on stage 1:\n%s", c.model, scr)
		}
		note := fmt.Sprintf("· smoothing %g", eps)
		if shown := strings.Contains(scr, "· smoothing"); shown != c.smoothing || c.smoothing && !strings.Contains(scr, note) {
			t.Errorf("%s: the stage note's smoothing does not match the prepared run's (%g):\n%s", c.model, eps, scr)
		}
	}
}
