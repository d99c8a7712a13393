package ui

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"thaw/trainer"
)

// TestLRFinderOverlay: l draws the range test with its suggestion; esc
// dismisses it and changes nothing; enter takes it for stage 1.
func TestLRFinderOverlay(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("mnist8-mlp")
	d.keys("enter", "l")
	scr := d.screen()
	for _, want := range []string{"LR finder", "suggested peak learning rate", "enter takes it"} {
		if !strings.Contains(scr, want) {
			t.Fatalf("the overlay lacks %q:\n%s", want, scr)
		}
	}
	ps := d.m.screens[ScreenPlan].(*planScreen)
	sugg := ps.lrf.res.Suggestion
	before, _ := d.m.s.plan.resolved(d.m.s)
	d.keys("esc")
	if ps.lrf != nil || d.m.active != ScreenPlan {
		t.Fatalf("esc: overlay %v, screen %v", ps.lrf != nil, d.m.active)
	}
	after, _ := d.m.s.plan.resolved(d.m.s)
	if after.Stages[0].LR != before.Stages[0].LR {
		t.Errorf("esc changed the rate: %v → %v", before.Stages[0].LR, after.Stages[0].LR)
	}
	d.keys("l", "enter")
	got, err := d.m.s.plan.resolved(d.m.s)
	if err != nil {
		t.Fatal(err)
	}
	if got.Stages[0].LR != sugg {
		t.Errorf("stage 1's rate %v, want the suggestion %v", got.Stages[0].LR, sugg)
	}
	if ps.lrf != nil {
		t.Errorf("enter did not close the overlay")
	}
}

// TestPlanSaveLoad: a plan saved to a file loads back the same, stages
// edited by hand included.
func TestPlanSaveLoad(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("digits-cnn")
	d.keys("enter")
	// Edit stage 1: 2 epochs at 0.003 with cosine.
	for range numFieldRows {
		d.keys("down")
	}
	d.keys("e", "ctrl+u")
	d.typeText("train=fc1,head epochs=2 lr=0.003 schedule=cosine")
	d.keys("enter")
	if d.m.s.messageErr() {
		t.Fatalf("editing the stage: %s", d.m.s.message())
	}
	want := d.m.s.plan.plan
	file := filepath.Join(t.TempDir(), "my plan.json")
	d.keys("s", "ctrl+u")
	d.typeText(file)
	d.keys("enter")
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("no plan file: %v (message %q)", err, d.m.s.message())
	}
	d.keys("p") // another preset replaces the stages
	d.keys("L", "ctrl+u")
	d.typeText(file)
	d.keys("enter")
	wb, _ := json.Marshal(want)
	gb, _ := json.Marshal(d.m.s.plan.plan)
	if string(wb) != string(gb) {
		t.Errorf("loaded plan\n%s\nwant\n%s", gb, wb)
	}
	p, err := trainer.LoadPlan(file)
	if err != nil || p.Stages[0].Epochs != 2 || p.Stages[0].LR != 0.003 {
		t.Errorf("the file holds %+v, %v", p.Stages, err)
	}
}

// TestPresetAndFreezeChoice: the preset chosen last sets the first stage
// (and the Blocks screen follows); a freeze choice made after it wins.
func TestPresetAndFreezeChoice(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("digits-cnn")
	d.keys("enter")
	for d.m.s.plan.preset != "full" {
		d.keys("p")
	}
	if n := d.m.s.trainableBlocks(); n != 4 {
		t.Errorf("full preset: %d blocks trainable on Blocks, want 4", n)
	}
	d.keys("2", "h", "3")
	stages := d.m.s.plan.plan.Stages
	if len(stages) != 1 || strings.Join(stages[0].Train, ",") != "head" {
		t.Errorf("h after full: stages %+v, want the head alone", stages)
	}
}

// TestLRFinderStageUnderCursor: l tests the stage under the cursor, the
// overlay offers fastai's four suggestions, → picks another, and enter
// writes it into the plan as that stage's rate.
func TestLRFinderStageUnderCursor(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("mnist8-mlp")
	d.keys("enter", "+", "G")
	ps := d.m.screens[ScreenPlan].(*planScreen)
	last := len(d.m.s.plan.plan.Stages) - 1
	if last < 1 {
		t.Fatalf("the plan has %d stages, want two or more", last+1)
	}
	d.keys("l")
	if ps.lrf == nil || ps.lrf.stage != last {
		t.Fatalf("l did not test stage %d (the cursor's)", last+1)
	}
	scr := d.screen()
	for _, want := range []string{"minimum", "steep", "valley", "slide", fmt.Sprintf("stage %d", last+1)} {
		if !strings.Contains(scr, want) {
			t.Errorf("the overlay lacks %q:\n%s", want, scr)
		}
	}
	// At 80×24 the overlay keeps its right edge: every suggestion fits.
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	scr = d.screen()
	if row := lineWith(scr, "LR finder"); !strings.HasSuffix(strings.TrimRight(row, " "), "║") {
		t.Errorf("at 80×24 the overlay is cut: %q\n%s", row, scr)
	}
	if row := lineWith(scr, "valley"); !strings.Contains(row, "slide") {
		t.Errorf("at 80×24 the suggestions are cut: %q", row)
	}
	sugg := ps.lrf.res.Suggestions
	if len(sugg) != 4 || sugg[ps.lrf.choice].Name != "valley" {
		t.Fatalf("suggestions %+v, choice %d: want four, valley first", sugg, ps.lrf.choice)
	}
	d.keys("right", "enter")
	if got, want := d.m.s.plan.plan.Stages[last].LR, sugg[3].LR; got != want {
		t.Errorf("stage %d's rate %v, want slide's %v", last+1, got, want)
	}
	if !strings.Contains(d.m.s.message(), "slide") {
		t.Errorf("message %q does not name the rule taken", d.m.s.message())
	}
}
