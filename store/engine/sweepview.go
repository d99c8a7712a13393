package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"thaw/store"
)

// Finding sweeps and their runs, and a user's sweeps through their view.

// ListSweeps lists the stored sweeps, newest first.
func (e *Engine) ListSweeps(ctx context.Context) ([]SweepRecord, error) {
	return e.s.ListSweeps(ctx, nil)
}

// RunSweepTask returns the sweep task that run id (a full id) trains;
// found is false for a run that is no sweep's: the Runs screen groups a
// sweep's runs and names them by point and seed with it.
func (e *Engine) RunSweepTask(ctx context.Context, id string) (t SweepTask, found bool, err error) {
	return e.s.RunSweepTask(ctx, id)
}

// SweepRuns lists the runs of the sweep id with the task each trains, by
// index; tasks not claimed yet are left out.
func (e *Engine) SweepRuns(ctx context.Context, id string) ([]SweepTask, []Run, error) {
	sw, err := e.s.Sweep(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	tasks, err := e.s.SweepTasks(ctx, sw.ID)
	if err != nil {
		return nil, nil, err
	}
	var ts []SweepTask
	var runs []Run
	for _, t := range tasks {
		if t.Run == "" {
			continue
		}
		r, err := e.s.Run(ctx, t.Run)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		ts, runs = append(ts, t), append(runs, r)
	}
	return ts, runs, nil
}

// ---------------------------------------------------------------------
// A user's sweeps

// NewSweep records a sweep owned by the user (see [Engine.NewSweep]).
func (v *UserView) NewSweep(ctx context.Context, spec SweepSpec) (SweepRecord, error) {
	return v.e.newSweep(ctx, spec, v.u.ID)
}

// sweep returns the stored sweep id when the user may view it, or may
// control it when control is set; one they may not view is not found.
func (v *UserView) sweep(ctx context.Context, id string, control bool) (SweepRecord, error) {
	sw, err := v.e.s.Sweep(ctx, id)
	if err != nil {
		return SweepRecord{}, err
	}
	switch {
	case !v.canView(sw.Owner):
		return SweepRecord{}, fmt.Errorf("sweep %s: %w", id, store.ErrNotFound)
	case control && !v.canControl(sw.Owner):
		return SweepRecord{}, fmt.Errorf("sweep %s: %w: it is shared for viewing only", store.Short(sw.ID), ErrForbidden)
	}
	return sw, nil
}

// ListSweeps lists the sweeps the user may view, newest first.
func (v *UserView) ListSweeps(ctx context.Context) ([]SweepRecord, error) {
	return v.e.s.ListSweeps(ctx, v.visibleOwners())
}

// RunSweepTask returns the sweep task of a run the user may view (see
// [Engine.RunSweepTask]).
func (v *UserView) RunSweepTask(ctx context.Context, id string) (SweepTask, bool, error) {
	r, err := v.check(ctx, id, false)
	if err != nil {
		return SweepTask{}, false, err
	}
	return v.e.s.RunSweepTask(ctx, r.ID)
}

// SweepProbes measures or reads the probes of a sweep of the user's (see
// [Engine.SweepProbes]); they are stored with the sweep.
func (v *UserView) SweepProbes(ctx context.Context, id string) ([]SweepProbe, error) {
	sw, err := v.sweep(ctx, id, true)
	if err != nil {
		return nil, err
	}
	return v.e.SweepProbes(ctx, sw.ID)
}

// SweepTable reads a sweep the user may view (see [Engine.SweepTable]).
func (v *UserView) SweepTable(ctx context.Context, id string) (SweepTable, error) {
	sw, err := v.sweep(ctx, id, false)
	if err != nil {
		return SweepTable{}, err
	}
	return v.e.SweepTable(ctx, sw.ID)
}

// RunSweep runs a sweep of the user's (see [Engine.RunSweep]) as one run
// against the limits, however many of its runs train at once: beyond a
// limit it returns an error wrapping [ErrLimit] and trains nothing. Its
// runs are the user's. It stops with ctx (the session's), or with
// [Engine.Shutdown], leaving its runs stopped and resumable.
func (v *UserView) RunSweep(ctx context.Context, id string, opts SweepOptions) (SweepTable, error) {
	sw, err := v.sweep(ctx, id, true)
	if err != nil {
		return SweepTable{}, err
	}
	us := &v.e.users
	us.mu.Lock()
	if us.closed {
		us.mu.Unlock()
		return SweepTable{}, ErrClosed
	}
	if us.full(v.u.ID) {
		us.mu.Unlock()
		return SweepTable{}, fmt.Errorf("%w: wait for one of your runs to end (limits: %s; a sweep counts as one run)", ErrLimit, us.describe())
	}
	// The sweep holds one slot, as one run, until it ends.
	slot := newUserRun("", v.u.ID)
	us.starting = append(us.starting, slot)
	us.pending.Add(1)
	us.mu.Unlock()
	us.log.Info("sweep started", "sweep", sw.ID, "user", v.u.Name, "fingerprint", v.u.ID)
	defer func() {
		us.mu.Lock()
		us.starting = slices.DeleteFunc(us.starting, func(x *UserRun) bool { return x == slot })
		us.mu.Unlock()
		us.pending.Done()
		us.log.Info("sweep ended", "sweep", sw.ID, "fingerprint", v.u.ID)
		v.e.schedule()
	}()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(us.ctx, cancel)
	defer stop()
	opts.owner = v.u.ID
	return v.e.RunSweep(sctx, sw.ID, opts)
}
