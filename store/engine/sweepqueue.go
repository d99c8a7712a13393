package engine

import (
	"context"
	"fmt"

	"thaw/store"
)

// QueueSweep records a queued run for every task of the sweep id (a full
// id or a unique prefix) that has none, claimed for the task, so that a
// sweep handed to a cluster's scheduler shows its runs waiting before any
// node starts one; the process that trains a task (thaw train --sweep ID
// --index I, [Engine.StartSweepTask]) takes its queued run over. It
// returns the indices of the tasks whose runs are not done: those the
// scheduler is to run. Queueing again is harmless: a task keeps the run
// it has. opts' Owner applies.
func (e *Engine) QueueSweep(ctx context.Context, id string, opts StartOptions) (pending []int, err error) {
	sw, spec, tasks, err := e.loadSweep(ctx, id)
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		r, err := e.readTask(ctx, t)
		if err != nil {
			return nil, err
		}
		if r.done {
			continue
		}
		pending = append(pending, t.Index)
		if r.run != "" {
			continue
		}
		job, err := spec.TaskJob(t)
		if err != nil {
			return nil, err
		}
		so := StartOptions{Name: taskName(sw, t, spec), Tags: []string{"sweep", SweepTag(sw.ID)}, Owner: opts.Owner}
		run, err := e.Enqueue(ctx, job, so)
		if err != nil {
			return nil, fmt.Errorf("sweep %s, task %d: %w", store.Short(sw.ID), t.Index, err)
		}
		// Claimed as a run of its own would be: a process that claimed the
		// task meanwhile keeps it, and this queued run goes.
		got, err := e.s.ClaimSweepTask(ctx, sw.ID, t.Index, run.ID, false)
		if err == nil && got != run.ID {
			err = e.s.Delete(ctx, run.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("sweep %s, task %d: %w", store.Short(sw.ID), t.Index, err)
		}
	}
	e.changes.notify()
	return pending, nil
}
