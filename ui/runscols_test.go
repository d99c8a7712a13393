package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
	"thaw/trainer"
)

// jobRun stores a run made from a known job: a "gradual" plan whose
// first stage trains fc2 and the head at 3e-3, 10 shots, seed 42; or,
// with all, a first stage training every block.
func jobRun(t *testing.T, st *store.Store, name string, all bool) store.Run {
	t.Helper()
	first := trainer.StageSummary{Label: "stage 1: fc2, head", Trainable: []string{"fc2", "head"}, LR: 3e-3, Steps: 100}
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 10, Seed: 42,
		Preset: &trainer.PresetRef{Name: "gradual"}}
	if all {
		first = trainer.StageSummary{Label: "stage 1: all", Trainable: []string{"fc1", "fc2", "head"}, LR: 1e-4, Steps: 100}
		job.Shots, job.Seed = 0, 7
	}
	rec := store.JobRecord{Version: store.JobVersion, Job: job,
		Plan: trainer.PlanSummary{Name: "gradual", Stages: []trainer.StageSummary{first,
			{Label: "stage 2: all", Trainable: []string{"fc1", "fc2", "head"}, LR: 1e-3, Steps: 100}}}}
	js, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := st.CreateRun(ctx, store.Run{Name: name, Model: "mnist8-mlp", Dataset: "uci-digits", Plan: js})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStatus(ctx, r.ID, trainer.StatusStopped, ""); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunsConfigColumns: the preset, shots, freeze point, peak lr and
// seed of a run made from a known job, as the table shows them through
// the read model; and a run without a job record shows dashes.
func TestRunsConfigColumns(t *testing.T) {
	eng, st := newTestEngine(t)
	part := jobRun(t, st, "part run", false)
	whole := jobRun(t, st, "whole run", true)
	bare := storedRun(t, st, "bare run", trainer.StatusDone)
	rows, err := listRuns(context.Background(), eng)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		part.ID:  {"preset": "gradual", "shots": "10", "freeze": "fc2", "peak lr": "3e-3", "seed": "42"},
		whole.ID: {"preset": "gradual", "shots": "all", "freeze": "all", "peak lr": "1e-4", "seed": "7"},
		bare.ID:  {"shots": "—", "freeze": "—", "peak lr": "—", "seed": "—"},
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows, want %d", len(rows), len(want))
	}
	for _, row := range rows {
		got := configCells(row)
		for col, w := range want[row.run.ID] {
			if got[col] != w {
				t.Errorf("run %q: %s is %q, want %q", row.name, col, got[col], w)
			}
		}
	}
}

// TestRunsColumnsFit: every column fits at 160; at 80 the least telling
// leave first and name, status and best stay, with a usable name.
func TestRunsColumnsFit(t *testing.T) {
	names := func(cols []runColumn) []string {
		var out []string
		for _, c := range cols {
			out = append(out, c.name)
		}
		return out
	}
	cols, nameW := fitColumns(160)
	if len(cols) != len(runColumns) || nameW < minNameW {
		t.Errorf("at 160: %v, name %d cells; want every column", names(cols), nameW)
	}
	cols, nameW = fitColumns(80)
	got := names(cols)
	for _, keep := range []string{"status", "best acc", "preset", "freeze"} {
		if !slices.Contains(got, keep) {
			t.Errorf("at 80 the table lost %s: %v", keep, got)
		}
	}
	for _, gone := range []string{"model", "data"} {
		if slices.Contains(got, gone) {
			t.Errorf("at 80 the table kept %s before the config: %v", gone, got)
		}
	}
	if nameW < minNameW {
		t.Errorf("at 80 the name has %d cells", nameW)
	}
}

// TestRunsTableCapture draws the Runs table of two runs from known jobs
// at 160 and 80 columns: the config columns are there, no line is wider
// than the terminal. With THAW_CAPTURE set it prints the screens.
func TestRunsTableCapture(t *testing.T) {
	for _, size := range [][2]int{{160, 48}, {80, 24}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			eng, st := newTestEngine(t)
			jobRun(t, st, "part run", false)
			r := jobRun(t, st, "whole run", true)
			if err := st.SetTags(context.Background(), r.ID, []string{"baseline"}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tm := teatest.NewTestModel(t, New(ctx, Options{Backend: eng, NoProbes: true}), teatest.WithInitialTermSize(size[0], size[1]))
			defer tm.Quit()
			scr := newScreenReader(tm.Output(), size[0], size[1])
			scr.waitFor(t, "mnist8-mlp")
			tm.Send(press("5"))
			got := scr.waitFor(t, "part run", "whole run #baseline", "preset", "freeze", "fc2")
			if size[0] == 160 {
				got = scr.waitFor(t, "peak lr", "seed", "42", "model", "3e-3")
			}
			for _, l := range strings.Split(got, "\n") {
				if w := len([]rune(l)); w > size[0] {
					t.Errorf("a line of %d cells: %q", w, l)
				}
			}
			if os.Getenv("THAW_CAPTURE") != "" {
				fmt.Printf("---- %dx%d\n%s\n", size[0], size[1], got)
			}
		})
	}
}

// TestRunsTagsAndRename: t edits a run's tags and R its name through the
// backend; the store holds what was typed, the table shows it and the
// filter finds the tag; an empty name is refused and esc keeps the old;
// space shows the marked count, and d's dialog names the run.
func TestRunsTagsAndRename(t *testing.T) {
	eng, st := newTestEngine(t)
	r := storedRun(t, st, "alpha run", trainer.StatusDone)
	time.Sleep(5 * time.Millisecond) // newest first: other run on top
	storedRun(t, st, "other run", trainer.StatusDone)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const w, h = 120, 30
	tm := teatest.NewTestModel(t, New(ctx, Options{Backend: eng, NoProbes: true}), teatest.WithInitialTermSize(w, h))
	defer tm.Quit()
	scr := newScreenReader(tm.Output(), w, h)
	keys := func(ks ...string) {
		for _, k := range ks {
			tm.Send(press(k))
		}
	}
	stored := func() store.Run {
		got, err := st.Run(context.Background(), r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	scr.waitFor(t, "mnist8-mlp")
	keys("5")
	scr.waitFor(t, "alpha run", "other run")
	// other run is newer, on top: go to alpha.
	keys("down", "t")
	scr.waitFor(t, "tags:", `"alpha run"`)
	tm.Type("baseline, v2,, baseline")
	keys("enter")
	scr.waitFor(t, "alpha run #baseline #v2")
	if got := stored().Tags; !slices.Equal(got, []string{"baseline", "v2"}) {
		t.Errorf("stored tags %q, want baseline and v2", got)
	}
	// The filter matches a tag.
	keys("/")
	tm.Type("v2")
	keys("enter")
	scr.waitFor(t, "/v2", "alpha run #baseline")
	for deadline := time.Now().Add(10 * time.Second); strings.Contains(scr.pump(), "other run"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the filter v2 kept other run:\n%s", scr.pump())
		}
	}
	keys("esc") // clears the filter, the innermost thing
	scr.waitFor(t, "other run")

	// R: the prompt holds the name with the cursor at the end.
	keys("down", "R")
	scr.waitFor(t, "name: alpha run")
	keys("backspace", "backspace", "backspace")
	tm.Type("one")
	keys("enter")
	scr.waitFor(t, "alpha one #baseline")
	if got := stored().Name; got != "alpha one" {
		t.Errorf("stored name %q, want alpha one", got)
	}
	// An empty name is refused; esc closes the prompt and nothing else.
	keys("R", "ctrl+u", "enter")
	scr.waitFor(t, "needs a name")
	keys("esc")
	scr.waitFor(t, "2 stored")
	if got := stored().Name; got != "alpha one" {
		t.Errorf("after an empty rename the stored name is %q", got)
	}

	// Marked count, and the dialogs name the runs.
	keys("space")
	scr.waitFor(t, "1 marked")
	keys("d")
	scr.waitFor(t, `Delete run "alpha one" (`+store.Short(r.ID)+")")
	keys("n", "up", "space")
	scr.waitFor(t, "2 marked")
	keys("d")
	scr.waitFor(t, "Delete 2 runs", `"alpha one"`, `"other run"`)
	keys("n")
}
