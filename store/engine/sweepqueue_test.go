package engine

import (
	"context"
	"errors"
	"slices"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

// TestQueuedSweepTasks: a sweep queued for a cluster shows one queued run
// per task before any trains; queueing again keeps them; each task's
// process (StartSweepTask, as thaw train --sweep --index) takes its
// queued run over rather than making another, and the sweep ends with the
// table and the weights of the sweep run in one process, bit for bit.
func TestQueuedSweepTasks(t *testing.T) {
	e, st := newTestEngine(t)
	ctx := context.Background()
	spec := sweepSpec()
	local := runSweep(t, e, spec, SweepOptions{Workers: 1})

	sw, err := e.NewSweep(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := e.QueueSweep(ctx, sw.ID, StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7}; !slices.Equal(pending, want) {
		t.Fatalf("pending %v, want %v", pending, want)
	}
	tasks, err := st.SweepTasks(ctx, sw.ID)
	if err != nil {
		t.Fatal(err)
	}
	queued := map[int]string{}
	for _, task := range tasks {
		r, err := st.Run(ctx, task.Run)
		if err != nil {
			t.Fatalf("task %d: %v", task.Index, err)
		}
		if r.Status != trainer.StatusQueued || !slices.Contains(r.Tags, "sweep:"+sw.ID) {
			t.Errorf("task %d: run %s is %s with tags %v, want queued, tagged with the sweep", task.Index, r.ID, r.Status, r.Tags)
		}
		queued[task.Index] = task.Run
	}
	if again, err := e.QueueSweep(ctx, sw.ID, StartOptions{}); err != nil || len(again) != 8 {
		t.Fatalf("queue again: %v, %v", again, err)
	}
	if tasks, _ = st.SweepTasks(ctx, sw.ID); tasks[5].Run != queued[5] {
		t.Errorf("queueing again replaced task 5's run %s with %s", queued[5], tasks[5].Run)
	}
	runs, err := st.ListRuns(ctx, store.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	before := len(runs)

	for i := range 8 {
		l, task, err := e.StartSweepTask(ctx, sw.ID, i, StartOptions{})
		if err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
		if l.ID != queued[i] || task.Run != queued[i] {
			t.Errorf("task %d trains run %s, want its queued run %s", i, l.ID, queued[i])
		}
		if _, err := l.Wait(); err != nil {
			t.Fatalf("task %d: %v", i, err)
		}
	}
	if _, _, err := e.StartSweepTask(ctx, sw.ID, 2, StartOptions{}); !errors.Is(err, ErrTaskDone) {
		t.Errorf("task 2 again: %v, want ErrTaskDone", err)
	}
	if runs, _ = st.ListRuns(ctx, store.RunFilter{}); len(runs) != before {
		t.Errorf("%d runs after the tasks trained, %d before: a task made a run of its own", len(runs), before)
	}
	if pending, err = e.QueueSweep(ctx, sw.ID, StartOptions{}); err != nil || len(pending) != 0 {
		t.Errorf("pending after every task: %v, %v", pending, err)
	}
	cluster, err := e.SweepTable(ctx, sw.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cluster.Done != 8 {
		t.Fatalf("%d of 8 done", cluster.Done)
	}
	if err := sameTable(local, cluster); err != nil {
		t.Error(err)
	}
	sameSweepRuns(t, e, local, cluster)
}

// TestQueuedTaskClaimedOnce: two processes given the same index at once
// (a scheduler's retry racing the first attempt) do not both train it:
// one takes the queued run over, the other is told it trains elsewhere,
// and no second run is made.
func TestQueuedTaskClaimedOnce(t *testing.T) {
	e, st := newTestEngine(t)
	ctx := context.Background()
	sw, err := e.NewSweep(ctx, SweepSpec{Job: testJob(1, 3), Seeds: []uint64{3001}, Points: []string{"head"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.QueueSweep(ctx, sw.ID, StartOptions{}); err != nil {
		t.Fatal(err)
	}
	task, err := st.SweepTask(ctx, sw.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	type claim struct {
		l   *Live
		err error
	}
	got := make(chan claim, 2)
	for range 2 {
		go func() {
			l, _, err := e.StartSweepTask(ctx, sw.ID, 0, StartOptions{})
			got <- claim{l, err}
		}()
	}
	var trained, refused int
	for range 2 {
		c := <-got
		switch {
		case c.err == nil:
			trained++
			if c.l.ID != task.Run {
				t.Errorf("trains run %s, want the queued %s", c.l.ID, task.Run)
			}
			if _, err := c.l.Wait(); err != nil {
				t.Fatal(err)
			}
		case errors.Is(c.err, store.ErrLive):
			refused++
		default:
			t.Fatalf("claim: %v", c.err)
		}
	}
	if trained != 1 || refused != 1 {
		t.Errorf("%d trained, %d refused; want one each", trained, refused)
	}
	runs, err := st.ListRuns(ctx, store.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Errorf("%d runs (%v), want the queued one alone", len(runs), err)
	}
}
