package store

import (
	"context"
	"errors"
	"io"
	"math"
	"sync/atomic"
	"testing"
	"time"

	"thaw/trainer"
)

// allRows returns every stored metric of run as name → (step, value
// bits); samples_per_sec is kept by step only, its value being the
// machine's speed.
func allRows(t testing.TB, s *Store, run string) map[string][][2]uint64 {
	t.Helper()
	names, err := s.MetricNames(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][2]uint64{}
	for _, n := range names {
		rows := rawSeries(t, s, run, n)
		if n == trainer.MetricSamplesPerSec {
			for i := range rows {
				rows[i][1] = 0
			}
		}
		out[n] = rows
	}
	return out
}

// sameRows reports the first difference between two runs' stored metrics.
func sameRows(t testing.TB, s *Store, want, got string) error {
	t.Helper()
	a, b := allRows(t, s, want), allRows(t, s, got)
	for name, x := range a {
		y := b[name]
		if len(x) != len(y) {
			return errors.New(name + ": the number of points differs")
		}
		for i := range x {
			if x[i] != y[i] {
				return errors.New(name + ": a point differs")
			}
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			return errors.New(name + ": a series the reference does not have")
		}
	}
	return nil
}

// TestRecordIsTheSeedsOwn: what the store keeps of a run does not depend
// on how often the clock made the trainer report, nor on a stop and a
// resume: every row of a run that reported every step, stopped and
// resumed is a row of one that reported only its events.
func TestRecordIsTheSeedsOwn(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	ref := createRun(t, s, "quiet")
	spec := trainSpec(t, 4, 5)
	spec.ReportEvery = time.Hour
	if _, err := s.Train(ctx, ref.ID, spec, nil); err != nil {
		t.Fatal(err)
	}
	for _, stop := range []int{7, 20, 33} {
		run := createRun(t, s, "chatty")
		spec := trainSpec(t, 4, 5)
		spec.ReportEvery = time.Nanosecond
		ctl := &trainer.Control{}
		spec.Control = ctl
		if _, err := s.Train(ctx, run.ID, spec, stopAt(ctl, stop)); err != nil {
			t.Fatal(err)
		}
		build := func(ResumePoint) (trainer.Spec, error) {
			spec := trainSpec(t, 4, 5)
			spec.ReportEvery = time.Nanosecond
			return spec, nil
		}
		if _, err := s.Resume(ctx, run.ID, build, nil); err != nil {
			t.Fatal(err)
		}
		if err := sameRows(t, s, ref.ID, run.ID); err != nil {
			t.Errorf("stopped at step %d and resumed: %v", stop, err)
		}
	}
}

// TestWriteFailureStopsRun: the first write the recorder cannot make stops
// the run within a step of the error reaching it, and the run ends failed
// with that error.
func TestWriteFailureStopsRun(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	run := createRun(t, s, "doomed")
	const failAt = 25
	if _, err := s.db.Exec(`CREATE TRIGGER fail_metrics BEFORE INSERT ON metrics WHEN NEW.step >= ` +
		`25 BEGIN SELECT RAISE(ABORT, 'no room'); END`); err != nil {
		t.Fatal(err)
	}
	spec := trainSpec(t, 8, 5)
	spec.ReportEvery = time.Nanosecond // every step reported: its losses written at once
	rec, err := s.Record(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int64 // the step at which the trainer first saw the error
	seen.Store(math.MaxInt64)
	last := 0
	res, err := rec.Train(ctx, spec, func(p trainer.Progress) {
		if p.Event == trainer.EventStep && p.Status == trainer.StatusRunning {
			last = p.Step
		}
		if rec.Err() != nil && seen.Load() == math.MaxInt64 {
			seen.Store(int64(p.Step))
		}
	})
	if err == nil || res.Status != trainer.StatusFailed {
		t.Fatalf("status %s, error %v; want failed", res.Status, err)
	}
	if seen.Load() < failAt || int64(last) > seen.Load()+1 {
		t.Errorf("the failure was known at step %d, the run trained on to step %d", seen.Load(), last)
	}
	r, _ := s.Run(ctx, run.ID)
	if r.Status != trainer.StatusFailed || r.Error == "" {
		t.Errorf("stored run %s %q, want failed with the write's error", r.Status, r.Error)
	}
}

// TestRewindKeepsNewestBest: a process killed between saving a new best
// checkpoint and deleting the older one leaves both; resuming keeps the
// newest only, as an uninterrupted run does.
func TestRewindKeepsNewestBest(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	run := stoppedRun(t, s, 12)
	cs, err := s.Checkpoints(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var best, last Checkpoint
	for _, c := range cs {
		switch c.Kind {
		case KindBest:
			best = c
		case KindLast:
			last = c
		}
	}
	if best.ID == "" || best.Step < 2 {
		t.Fatalf("no best checkpoint past step 1: %+v", cs)
	}
	state, err := s.LoadCheckpoint(ctx, best.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The older one the killed process did not get to delete.
	old, err := s.SaveCheckpoint(ctx, run.ID, CheckpointMeta{Step: 1, Stage: 0, Kind: KindBest}, func(w io.Writer) error {
		return EncodeCheckpoint(w, state)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.rewind(ctx, run.ID, last.Step); err != nil {
		t.Fatal(err)
	}
	cs, err = s.Checkpoints(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var bests []int64
	for _, c := range cs {
		if c.Kind == KindBest {
			bests = append(bests, c.Step)
		}
		if c.ID == old.ID {
			t.Errorf("the older best checkpoint at step 1 is still there")
		}
	}
	if len(bests) != 1 || bests[0] != best.Step {
		t.Errorf("best checkpoints at steps %v, want only %d", bests, best.Step)
	}
}
