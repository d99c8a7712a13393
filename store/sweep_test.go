package store

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"thaw/trainer"
)

// TestSweepRecord: a sweep and its tasks are stored together; a task is
// claimed once (a second claim gets the first run), replaced on demand,
// found from its run, and unclaimed again when its run is deleted.
func TestSweepRecord(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	tasks := []SweepTask{{Index: 0, Point: "fc1", Seed: 3001}, {Index: 1, Point: "head", Seed: 3001, Preset: "full", Shots: 5}}
	sw, err := s.CreateSweep(ctx, Sweep{Name: "m on d", Owner: "ann", Spec: json.RawMessage(`{"seeds":[3001]}`)}, tasks)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Sweep(ctx, Short(sw.ID))
	if err != nil || got.ID != sw.ID || got.Owner != "ann" || string(got.Spec) != `{"seeds":[3001]}` || got.Result != nil {
		t.Fatalf("sweep by short id: %+v, %v", got, err)
	}
	if _, err := s.Sweep(ctx, "zzzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("an unknown sweep: %v, want not found", err)
	}
	ts, err := s.SweepTasks(ctx, sw.ID)
	if err != nil || len(ts) != 2 || ts[1].Preset != "full" || ts[1].Shots != 5 || ts[1].Run != "" {
		t.Fatalf("tasks: %+v, %v", ts, err)
	}

	a, b := createRun(t, s, "a"), createRun(t, s, "b")
	if got, err := s.ClaimSweepTask(ctx, sw.ID, 1, a.ID, false); err != nil || got != a.ID {
		t.Fatalf("first claim: %s, %v", got, err)
	}
	if got, err := s.ClaimSweepTask(ctx, sw.ID, 1, b.ID, false); err != nil || got != a.ID {
		t.Errorf("second claim: %s, %v; want the first run %s", got, err, a.ID)
	}
	if _, err := s.ClaimSweepTask(ctx, sw.ID, 7, b.ID, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("claiming an unknown index: %v, want not found", err)
	}
	if task, ok, err := s.RunSweepTask(ctx, a.ID); err != nil || !ok || task.Index != 1 || task.Sweep != sw.ID {
		t.Errorf("run a's task: %+v, %v, %v", task, ok, err)
	}
	if err := s.AddSweepCPU(ctx, sw.ID, 1, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s.AddSweepCPU(ctx, sw.ID, 1, 500*time.Millisecond)
	if task, _ := s.SweepTask(ctx, sw.ID, 1); task.CPU != 2*time.Second {
		t.Errorf("CPU %v, want 2s", task.CPU)
	}
	if got, err := s.ClaimSweepTask(ctx, sw.ID, 1, b.ID, true); err != nil || got != b.ID {
		t.Errorf("replacing: %s, %v", got, err)
	}
	if err := s.SetStatus(ctx, b.ID, trainer.StatusDone, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if task, _ := s.SweepTask(ctx, sw.ID, 1); task.Run != "" {
		t.Errorf("the task still names its deleted run %s", task.Run)
	}
	if err := s.SetSweepResult(ctx, sw.ID, json.RawMessage(`{"tests":[]}`)); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Sweep(ctx, sw.ID); string(got.Result) != `{"tests":[]}` {
		t.Errorf("result %s", got.Result)
	}
	if list, err := s.ListSweeps(ctx, []string{"bob"}); err != nil || len(list) != 0 {
		t.Errorf("bob's sweeps: %d, %v", len(list), err)
	}
	if list, err := s.ListSweeps(ctx, nil); err != nil || len(list) != 1 {
		t.Errorf("every sweep: %d, %v", len(list), err)
	}
	for _, bad := range [][]SweepTask{nil, {{Index: 0}, {Index: 0}}, {{Index: -1}}} {
		if _, err := s.CreateSweep(ctx, Sweep{Spec: json.RawMessage(`{}`)}, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("tasks %+v: %v, want invalid", bad, err)
		}
	}
}
