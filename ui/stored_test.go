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
	"thaw/trainer"
)

// openStored opens run name from Runs (enter) on a real model over eng
// and returns the screen once it shows want.
func openStored(t *testing.T, eng Backend, name string, want ...string) string {
	t.Helper()
	_, scr := openStoredModel(t, eng, name)
	return scr.waitFor(t, want...)
}

// openStoredModel opens run name from Runs and returns the program and
// its screen.
func openStoredModel(t *testing.T, eng Backend, name string) (*teatest.TestModel, *screenReader) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	const w, h = 160, 48
	tm := teatest.NewTestModel(t, New(ctx, Options{Backend: eng, NoProbes: true}), teatest.WithInitialTermSize(w, h))
	t.Cleanup(func() { tm.Quit() })
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")
	tm.Send(press("5"))
	scr.waitFor(t, name)
	tm.Send(press("enter"))
	return tm, scr
}

// TestStoppedRunShowsItsPlan: a run stopped at step ~150 of a plan of two
// 2000-step stages opens from Runs as stage 1 of 2 at step 15x of 4000,
// not as "stage 1/1 … step 15x/15x 100%".
func TestStoppedRunShowsItsPlan(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	eng, st := newTestEngine(t)
	l := stoppedRun(t, eng, 150)
	v, err := engine.Read(context.Background(), st, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("step %d/4000", v.Step)
	got := openStored(t, eng, "to resume", want)
	if !strings.Contains(got, "stage 1/2") || strings.Contains(got, "100%") {
		t.Errorf("want stage 1/2 and %s, not 100%%:\n%s", want, got)
	}
}

// TestForgettingComparesWithBeforeTraining: the accuracy legend compares
// the source task's accuracy with its value before training, as thaw
// train does, not with the first evaluation (already after training).
func TestForgettingComparesWithBeforeTraining(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	eng, st := newTestEngine(t)
	l := stoppedRun(t, eng, 150)
	v, err := engine.Read(context.Background(), st, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%.1f%% before → %.1f%%", 100*v.SourceAccBefore, 100*v.SourceAccEnd)
	openStored(t, eng, "to resume", want)
}

// TestKilledRunIsJudgedStale: a run whose process died stays "running"
// in the store; once its heartbeat is older than the store's grace, Runs
// shows it interrupted and lets it be deleted, as thaw resume judges it.
func TestKilledRunIsJudgedStale(t *testing.T) {
	st, err := store.Open(t.TempDir(), store.WithGrace(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := engine.New(st, nil)
	storedRun(t, st, "killed run", trainer.StatusRunning) // no heartbeat since
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const w, h = 120, 30
	tm := teatest.NewTestModel(t, New(ctx, Options{Backend: eng, NoProbes: true}), teatest.WithInitialTermSize(w, h))
	defer tm.Quit()
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")
	tm.Send(press("5"))
	scr.waitFor(t, "killed run", "interrupted")
	tm.Send(press("d"))
	scr.waitFor(t, "Delete run")
}
