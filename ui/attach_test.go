package ui

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	tea "charm.land/bubbletea/v2"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// pumpReports runs cmd and what the workbench answers, as a program
// would, until n reports of the session's run were handled. Messages of
// the terminal are dropped, as the driver does.
func pumpReports(t *testing.T, m *Model, cmd tea.Cmd, n int) {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for seen := 0; seen < n; {
		if len(queue) == 0 {
			t.Fatalf("the workbench stopped waiting for reports after %d", seen)
		}
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case nil:
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case runDoneMsg:
			t.Fatalf("run ended: %v", msg.err)
		case liveTickMsg:
			// The Train screen's clock: not re-armed here, so that its
			// sleeps do not hold up the reports.
		default:
			if _, ok := msg.(runProgressMsg); ok {
				seen++
			}
			if reflect.TypeOf(msg).PkgPath() == "charm.land/bubbletea/v2" {
				continue
			}
			_, next := m.Update(msg)
			queue = append(queue, next)
		}
	}
}

// TestAttachShowsTheStoredPast: a session handed a run that has trained
// for a while (AttachMsg, as the server sends a user coming back) shows
// its stored curves, its stage and its model → data at once, then goes on
// from its reports without repeating a step.
func TestAttachShowsTheStoredPast(t *testing.T) {
	eng, st := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 10, Seed: 1, EvalEvery: 4}
	p, err := trainer.ParsePlan([]byte(longPlan))
	if err != nil {
		t.Fatal(err)
	}
	job.Plan = p
	var reports atomic.Int64
	l, err := eng.Start(ctx, job, engine.StartOptions{Report: func(trainer.Progress) { reports.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		l.Control.Stop()
		l.Wait()
	}()
	series := func(name string) []store.Bucket {
		bs, err := st.Series(ctx, l.ID, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		return bs
	}
	// Far more reports than a new feed replays: the first ones come
	// from the store only.
	eventually(t, "40 reports and 3 evaluations", func() bool {
		return reports.Load() >= 40 && len(series(trainer.MetricValLoss)) >= 3
	})
	before := map[string][]store.Bucket{}
	for _, name := range []string{trainer.MetricTrainLoss, trainer.MetricValLoss, trainer.MetricValAcc} {
		before[name] = series(name)
	}
	stages, err := st.Stages(ctx, l.ID)
	if err != nil || len(stages) == 0 {
		t.Fatalf("stored stages %v, %v", stages, err)
	}

	d := newDriver(t, Options{Backend: eng})
	if !strings.Contains(d.screen(), "no model chosen") {
		t.Fatal("a fresh workbench names a model")
	}
	_, cmd := d.m.Update(AttachMsg{Run: l})
	// A new feed replays up to 32 reports the store may lack: then 8
	// more, past the stored ones.
	pumpReports(t, d.m, cmd, 40)

	ts := d.m.screens[ScreenTrain].(*trainScreen)
	// The stored points come first, as stored; the live ones follow
	// without a repeated step.
	check := func(what string, xs, ys []float64, stored []store.Bucket) {
		t.Helper()
		if len(xs) < len(stored) {
			t.Fatalf("%s: %d points on the chart, %d were stored before attaching", what, len(xs), len(stored))
		}
		for i, b := range stored {
			if xs[i] != float64(b.To) || ys[i] != b.Mean {
				t.Fatalf("%s point %d is (%v, %v), stored (%d, %v)", what, i, xs[i], ys[i], b.To, b.Mean)
			}
		}
		if !slices.IsSorted(xs) || len(slices.Compact(slices.Clone(xs))) != len(xs) {
			t.Fatalf("%s: steps repeat or go back: %v", what, xs)
		}
	}
	xs, ys := ts.d.loss.Points(ts.d.sRaw)
	check("train loss", xs, ys, before[trainer.MetricTrainLoss])
	if last := before[trainer.MetricTrainLoss]; xs[len(xs)-1] <= float64(last[len(last)-1].To) {
		t.Errorf("no live loss after the stored ones (last step %v)", xs[len(xs)-1])
	}
	xs, ys = ts.d.loss.Points(ts.d.sVal)
	check("val loss", xs, ys, before[trainer.MetricValLoss])
	xs, ys = ts.d.acc.Points(ts.d.sAcc)
	check("val acc", xs, ys, before[trainer.MetricValAcc])

	screen := d.screen()
	label := stages[0].Name
	if _, after, ok := strings.Cut(label, ": "); ok {
		label = after
	}
	for _, want := range []string{"mnist8-mlp → ", label, engine.Short(l.ID)} {
		if !strings.Contains(screen, want) {
			t.Errorf("the Train screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "no model chosen") {
		t.Errorf("the header names no model:\n%s", screen)
	}
	if ts.d.planStages != 3 {
		t.Errorf("the plan has %d stages on the screen, want 3", ts.d.planStages)
	}

	// Leaving the session leaves the run's feed: only the run's own
	// remains.
	d.m.s.stopAll()
	eventually(t, "the session's feed closed", func() bool { return l.Subscribers() == 1 })
}
