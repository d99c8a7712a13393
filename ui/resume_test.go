package ui

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store/engine"
	"thaw/trainer"
)

// stoppedRun trains a two-stage plan of 2000 steps a stage on mnist8-mlp
// → uci-digits, evaluating every 20 steps, and stops it at step stopAt or
// just after, in its first stage.
func stoppedRun(t *testing.T, eng *engine.Engine, stopAt int) *engine.Live {
	t.Helper()
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 10, Seed: 3, EvalEvery: 20,
		Plan: trainer.Plan{Name: "two stages", LR: 0.01, Stages: []trainer.Stage{
			{Train: []string{"head"}, Steps: 2000}, {Train: []string{"all"}, Steps: 2000}}}}
	var ctl *trainer.Control
	l, err := eng.Start(context.Background(), job, engine.StartOptions{
		Name:  "to resume",
		Ready: func(l *engine.Live) { ctl = l.Control },
		Report: func(p trainer.Progress) {
			if p.Step >= stopAt {
				ctl.Stop()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := l.Wait(); res.Status != trainer.StatusStopped {
		t.Fatalf("the run ended %s (%v), want stopped", res.Status, err)
	}
	return l
}

// TestResumeFromRunsContinuesTheStoredRun: r on Runs resumes a stopped
// run, and Train says so ("resumed from step N", not "started") and shows
// its stored past: the planned total (not the steps since the resume),
// its stage of two, and the best the store holds, until a better one.
func TestResumeFromRunsContinuesTheStoredRun(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	eng, st := newTestEngine(t)
	l := stoppedRun(t, eng, 150)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before, err := engine.Read(ctx, st, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if before.Best.Step < 0 || before.Step < 150 {
		t.Fatalf("stored run: step %d, best %+v", before.Step, before.Best)
	}

	const w, h = 160, 48
	tm := teatest.NewTestModel(t, New(ctx, Options{Backend: eng, NoProbes: true}), teatest.WithInitialTermSize(w, h))
	defer tm.Quit()
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")
	tm.Send(press("5"))
	scr.waitFor(t, "to resume", "stopped")
	tm.Send(press("r"))
	got := scr.waitFor(t, fmt.Sprintf("resumed from step %d", before.Step), "/4000", "stage 1/2")
	if strings.Contains(got, "started") {
		t.Errorf("Train says started:\n%s", got)
	}
	// The best so far is the stored one (or a better one the resumed run
	// found since): never one of the new steps that is worse.
	want := fmt.Sprintf("best val loss %.4f", before.Best.ValLoss)
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(got, "best val loss") && time.Now().Before(deadline) {
		got = scr.pump()
	}
	if !strings.Contains(got, want) {
		// A better one found after the resume is fine: later, and lower.
		m := regexp.MustCompile(`best val loss ([0-9.]+) · acc [0-9.]+% at step ([0-9]+)`).FindStringSubmatch(got)
		if m == nil {
			m = []string{"", "NaN", "-1"}
		}
		loss, _ := strconv.ParseFloat(m[1], 64)
		step, _ := strconv.Atoi(m[2])
		if !(int64(step) > before.Step && loss < before.Best.ValLoss) {
			t.Errorf("want the stored %q (at step %d) or a later, lower one; the screen:\n%s", want, before.Best.Step, got)
		}
	}
	tm.Send(press("x"))
	tm.Send(press("y"))
}
