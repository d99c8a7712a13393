package ui

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"thaw/store/engine"
	"thaw/trainer"
)

// axisLabels returns the numbers under every x axis on the screen.
func axisLabels(scr string) []float64 {
	lines := strings.Split(scr, "\n")
	var out []float64
	for i, l := range lines {
		if !strings.Contains(l, "└") || i+1 >= len(lines) {
			continue
		}
		for _, f := range strings.Fields(lines[i+1]) {
			mult := 1.0
			switch {
			case strings.HasSuffix(f, "k"):
				f, mult = strings.TrimSuffix(f, "k"), 1e3
			case strings.HasSuffix(f, "M"):
				f, mult = strings.TrimSuffix(f, "M"), 1e6
			}
			if v, err := strconv.ParseFloat(f, 64); err == nil {
				out = append(out, v*mult)
			}
		}
	}
	return out
}

// TestAxesLabelRealStepsAfterASkip: stage 1 of two 2000-step stages is
// skipped (n) 30 steps in, so stage 2 trains steps 2000–4000 and the
// charts leave out the 1970 untrained steps. The axes still say the
// plan's steps: zoomed on stage 2 (z) they read 2000–4000, not 30–2030;
// and the short stage 1 keeps a label beside stage 2's.
func TestAxesLabelRealStepsAfterASkip(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a run")
	}
	eng, _ := newTestEngine(t)
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 10, Seed: 3, EvalEvery: 100,
		Plan: trainer.Plan{Name: "skipped", LR: 0.01, Stages: []trainer.Stage{
			{Train: []string{"head"}, Steps: 2000}, {Train: []string{"all"}, Steps: 2000}}}}
	var ctl *trainer.Control
	var once sync.Once
	l, err := eng.Start(context.Background(), job, engine.StartOptions{
		Name:  "skipped run",
		Ready: func(l *engine.Live) { ctl = l.Control },
		Report: func(p trainer.Progress) {
			if p.Stage == 0 && p.Step >= 30 {
				once.Do(ctl.Skip)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Wait(); err != nil {
		t.Fatal(err)
	}

	tm, scr := openStoredModel(t, eng, "skipped run")
	got := scr.waitFor(t, "step 4000/4000")
	// Both stage labels, on the loss chart's mark row.
	lines := strings.Split(got, "\n")
	for i, ln := range lines {
		if strings.Contains(ln, "loss  ━") && i+1 < len(lines) {
			if marks := lines[i+1]; !strings.Contains(marks, "all") || !strings.Contains(strings.TrimSpace(marks)[:1], "h") {
				t.Errorf("stage labels %q: want stage 1's (head, shortened) and stage 2's (all)", strings.TrimSpace(marks))
			}
		}
	}
	// The charts are 2032 trained steps wide; their last labels are the
	// plan's steps near 4000, not near 2032.
	if ls := axisLabels(got); len(ls) == 0 || slices.Max(ls) <= 3000 || slices.Max(ls) > 4000 {
		t.Errorf("axis labels %v, want them to reach the plan's steps near 4000:\n%s", ls, got)
	}

	t.Logf("axis labels: %v", axisLabels(got))
	tm.Send(press("z"))
	got = scr.waitFor(t, "zoomed")
	ls := axisLabels(got)
	if len(ls) < 2 {
		t.Fatalf("no axis labels when zoomed:\n%s", got)
	}
	for _, v := range ls {
		if v < 2000 || v > 4000 {
			t.Errorf("zoomed on stage 2 (steps 2000–4000), an axis reads %v; labels %v", v, ls)
			break
		}
	}
}
