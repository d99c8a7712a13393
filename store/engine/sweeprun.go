package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"thaw/store"
	"thaw/trainer"
)

// Running a sweep's tasks: in parallel within the engine's bound, each
// claimed, resumed or restarted, with its processor time accounted.

// SweepOptions say how to run a sweep's tasks.
type SweepOptions struct {
	// Workers bounds the runs this call trains at once; zero means
	// GOMAXPROCS. The engine never trains more sweep runs at once, over
	// all its sweeps, than GOMAXPROCS.
	Workers int
	// Progress, when set, is called with the table whenever a task starts
	// or ends, and once at the start; never twice at once. It must return
	// quickly: the workers wait for it.
	Progress func(SweepTable)
	// Prefixes shares the frozen prefixes between the sweep's runs; nil
	// means a new one for this call. NoShare computes every prefix in
	// every run instead (for comparisons: the results are the same bits).
	Prefixes *trainer.Prefixes
	NoShare  bool
	// OnRun, when set, is called with every task's run as it starts or
	// resumes, from the worker training it: a viewer may subscribe to the
	// run's reports ([Live.Subscribe]). It must return quickly.
	OnRun func(SweepTask, *Live)
	// Report, when set, is called with every report of every task's run,
	// from the run's goroutine (see StartOptions.Report): it must return
	// quickly.
	Report func(SweepTask, trainer.Progress)

	// owner, when set, is the owner of the runs started (a user's view).
	owner string
}

// RunSweep trains the tasks of the sweep id (a full id or a unique
// prefix) that have no result yet, in parallel (see [SweepOptions]), and
// returns the table; once every task is done it measures each group's
// pick on the task's test split, once, and stores it. A task whose run is
// done is reused; one whose run was stopped or interrupted resumes; one
// whose run failed starts again. Cancelling ctx stops the runs training
// (stopped, resumable: running the sweep again resumes them) and
// RunSweep returns the table so far with context.Canceled.
//
// It returns an error wrapping store.ErrNotFound for an unknown sweep,
// store.ErrLive when a task's run trains in another process, and the
// first error of a run (naming its point and seed) after the other
// workers have stopped.
func (e *Engine) RunSweep(ctx context.Context, id string, opts SweepOptions) (SweepTable, error) {
	sw, spec, tasks, err := e.loadSweep(ctx, id)
	if err != nil {
		return SweepTable{}, err
	}
	res := make([]taskResult, len(tasks))
	var pending []int
	for i, t := range tasks {
		if res[i], err = e.readTask(ctx, t); err != nil {
			return SweepTable{}, err
		}
		if !res[i].done {
			pending = append(pending, i)
		}
	}
	prefixes := opts.Prefixes
	if prefixes == nil && !opts.NoShare {
		prefixes = trainer.NewPrefixes()
	}
	if opts.NoShare {
		prefixes = nil
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(pending))
	names := newSweepNames(e.names)

	var (
		mu      sync.Mutex // guards what follows and serialises Progress
		next    int
		running int
		runErr  error
		acct    = newCPUAccount()
	)
	progress := func() {
		if opts.Progress != nil {
			opts.Progress(buildTable(sw, spec, tasks, res, running))
		}
	}
	progress()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= len(pending) || wctx.Err() != nil {
					mu.Unlock()
					return
				}
				i := pending[next]
				next++
				mu.Unlock()
				if err := e.sweepSlots.acquire(wctx); err != nil {
					return
				}
				mu.Lock()
				running++
				progress()
				mu.Unlock()
				r, err := e.runTask(wctx, sw, spec, tasks[i], names, prefixes, acct, opts)
				e.sweepSlots.release()
				mu.Lock()
				running--
				r.cpu += res[i].cpu
				res[i] = r
				if err != nil && runErr == nil && wctx.Err() == nil {
					runErr = err
					cancel()
				}
				progress()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	e.changes.notify()
	tb := buildTable(sw, spec, tasks, res, 0)
	switch {
	case runErr != nil:
		return tb, runErr
	case ctx.Err() != nil:
		return tb, context.Canceled
	}
	if tb.Done == tb.Total && !hasTests(sw) {
		if err := e.measureTests(ctx, &tb, names); err != nil {
			return tb, err
		}
	}
	return tb, nil
}

// runTask trains task t to its end, starting, resuming or restarting its
// run, and returns its result.
func (e *Engine) runTask(ctx context.Context, sw SweepRecord, spec SweepSpec, t SweepTask, names names, prefixes *trainer.Prefixes, acct *cpuAccount, opts SweepOptions) (r taskResult, err error) {
	what := fmt.Sprintf("freeze point %s, seed %d", t.Point, t.Seed)
	if t.Preset != "" {
		what += ", " + t.Preset
	}
	if t.Shots > 0 {
		what += fmt.Sprintf(", %d shots", t.Shots)
	}
	acct.start(t.Index)
	defer func() {
		// r.cpu is this attempt's: the caller adds the attempts before.
		r.cpu = acct.end(t.Index)
		if r.cpu > 0 {
			e.s.AddSweepCPU(context.WithoutCancel(ctx), sw.ID, t.Index, r.cpu)
		}
	}()
	// The table shows no forgetting: the runs skip the gauge's passes.
	so := StartOptions{Prefixes: prefixes, NoGauge: true}
	if opts.Report != nil {
		so.Report = func(p trainer.Progress) { opts.Report(t, p) }
	}
	so.Owner = opts.owner
	l, err := e.startTask(ctx, sw, spec, t, names, so)
	if err != nil {
		return taskResult{}, fmt.Errorf("%s: %w", what, err)
	}
	if opts.OnRun != nil {
		t.Run = l.ID
		opts.OnRun(t, l)
	}
	_, err = l.Wait()
	if err != nil && !errors.Is(err, trainer.ErrDiverged) {
		if ctx.Err() != nil {
			return taskResult{run: l.ID, loss: math.NaN(), acc: math.NaN()}, nil
		}
		return taskResult{run: l.ID, loss: math.NaN(), acc: math.NaN()}, fmt.Errorf("%s: run %s: %w", what, store.Short(l.ID), err)
	}
	t.Run = l.ID
	return e.readTask(context.WithoutCancel(ctx), t)
}

// startTask starts the run of task t, claiming the task for it; resumes
// the task's run when it has one that stopped or was interrupted; starts
// it again when that run failed. so's Name and Tags are the task's.
func (e *Engine) startTask(ctx context.Context, sw SweepRecord, spec SweepSpec, t SweepTask, names names, so StartOptions) (*Live, error) {
	replace := false
	if t.Run != "" {
		r, err := e.s.Run(ctx, t.Run)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// Deleted: the task starts again.
		case err != nil:
			return nil, err
		case r.Status == trainer.StatusFailed:
			replace = true
		default:
			l, err := e.Resume(ctx, t.Run, so)
			if err != nil {
				return nil, fmt.Errorf("run %s: %w", store.Short(t.Run), err)
			}
			return l, nil
		}
	}
	job, err := spec.TaskJob(t)
	if err != nil {
		return nil, err
	}
	so.Name = taskName(sw, t, spec)
	so.Tags = []string{"sweep", SweepTag(sw.ID)}
	l, err := e.start(ctx, job, so, names)
	if err != nil {
		return nil, err
	}
	got, err := e.s.ClaimSweepTask(context.WithoutCancel(ctx), sw.ID, t.Index, l.ID, replace)
	if err == nil && got != l.ID {
		err = fmt.Errorf("%w: run %s claimed the task first", store.ErrLive, store.Short(got))
	}
	if err != nil {
		l.Control.Stop()
		l.Wait()
		e.s.Delete(context.WithoutCancel(ctx), l.ID)
		return nil, err
	}
	return l, nil
}

// ErrTaskDone: a sweep task's run is done already.
var ErrTaskDone = errors.New("the task's run is done")

// StartSweepTask trains task index of the sweep id (a full id or a
// unique prefix) as one process of a cluster does (thaw train --sweep ID
// --index I): it claims the task with a new run, or resumes the run that
// claimed it before (a retried index continues from its last
// checkpoint), or starts it again when that run failed, and trains it in
// a goroutine of its own, as [Engine.Start] does; opts' Ready, Report and
// Owner apply. The run is exactly the one [Engine.RunSweep] trains for
// the task.
//
// It returns the task with an error wrapping [ErrTaskDone] when its run
// is done (or diverged), one wrapping store.ErrNotFound for an unknown
// sweep or index, store.ErrLive when the task's run trains elsewhere, and
// the errors of Start and Resume.
func (e *Engine) StartSweepTask(ctx context.Context, id string, index int, opts StartOptions) (*Live, SweepTask, error) {
	sw, spec, _, err := e.loadSweep(ctx, id)
	if err != nil {
		return nil, SweepTask{}, err
	}
	t, err := e.s.SweepTask(ctx, sw.ID, index)
	if err != nil {
		return nil, SweepTask{}, err
	}
	if t.Run != "" {
		if r, err := e.readTask(ctx, t); err == nil && r.done {
			return nil, t, fmt.Errorf("sweep %s, task %d: run %s: %w", store.Short(sw.ID), index, store.Short(t.Run), ErrTaskDone)
		}
	}
	opts.NoGauge, opts.Name, opts.Tags = true, "", nil
	l, err := e.startTask(ctx, sw, spec, t, newSweepNames(e.names), opts)
	if err != nil {
		return nil, t, fmt.Errorf("sweep %s, task %d: %w", store.Short(sw.ID), index, err)
	}
	t.Run = l.ID
	return l, t, nil
}

// AddSweepCPU adds d to the processor time recorded for task index of the
// sweep id (a full id): what a process that trained it measured.
func (e *Engine) AddSweepCPU(ctx context.Context, id string, index int, d time.Duration) error {
	return e.s.AddSweepCPU(ctx, id, index, d)
}

// taskName names a task's run: sweep 3f2a1b · fc1 · seed 3002.
func taskName(sw SweepRecord, t SweepTask, spec SweepSpec) string {
	parts := []string{"sweep " + store.Short(sw.ID), t.Point, fmt.Sprintf("seed %d", t.Seed)}
	if t.Preset != "" {
		parts = append(parts, t.Preset)
	}
	if t.Shots > 0 {
		parts = append(parts, fmt.Sprintf("%d shots", t.Shots))
	}
	return strings.Join(parts, " · ")
}

// measureTests measures each group's pick on the test split, once, and
// stores the result with the sweep; a task without a test split stores
// none.
func (e *Engine) measureTests(ctx context.Context, tb *SweepTable, names names) error {
	var out sweepResult
	tasks := tb.Spec.Tasks()
	np, ns := len(tb.Spec.Points), len(tb.Spec.Seeds)
	for gi := range tb.Groups {
		g := &tb.Groups[gi]
		if g.Pick.Index < 0 {
			out.Tests = append(out.Tests, nil)
			continue
		}
		test := &SweepTest{Point: g.Rows[g.Pick.Index].Point}
		for si := range ns {
			t := tasks[(gi*ns+si)*np+g.Pick.Index]
			acc, n, err := e.testRun(ctx, tb.Spec, t, g.Runs[g.Pick.Index][si], names)
			if err != nil {
				return fmt.Errorf("sweep %s: test %s, seed %d: %w", store.Short(tb.Sweep.ID), t.Point, t.Seed, err)
			}
			if n == 0 {
				test = nil
				break
			}
			test.Acc, test.Samples = append(test.Acc, acc), n
		}
		out.Tests = append(out.Tests, test)
	}
	if cur, err := e.s.Sweep(ctx, tb.Sweep.ID); err == nil && len(cur.Result) > 0 {
		var old sweepResult
		if json.Unmarshal(cur.Result, &old) == nil {
			out.Probes = old.Probes
		}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := e.s.SetSweepResult(ctx, tb.Sweep.ID, raw); err != nil {
		return err
	}
	tb.Sweep.Result = raw
	applyTests(tb, out.Tests)
	return nil
}

// hasTests reports whether sw's result holds its test measurements.
func hasTests(sw SweepRecord) bool {
	var res sweepResult
	return len(sw.Result) > 0 && json.Unmarshal(sw.Result, &res) == nil && res.Tests != nil
}

// applyTests sets each group's test measurement from tests, by group.
func applyTests(tb *SweepTable, tests []*SweepTest) {
	for gi := range tb.Groups {
		if gi >= len(tests) || tests[gi] == nil {
			continue
		}
		t := *tests[gi]
		st := trainer.SweepRow{ValLoss: t.Acc, ValAcc: t.Acc}.Stats()
		t.Mean, t.SD = st.LossMean, st.LossSD
		tb.Groups[gi].Test = &t
	}
}

// testRun measures the best checkpoint of task t's run on the test split
// (see [Engine.TestScore]); n is zero without one.
func (e *Engine) testRun(ctx context.Context, spec SweepSpec, t SweepTask, run string, names names) (acc float64, n int, err error) {
	if run == "" {
		return 0, 0, fmt.Errorf("no run")
	}
	v, err := Read(ctx, e.s, run)
	if err != nil {
		return 0, 0, err
	}
	job, err := spec.TaskJob(t)
	if err != nil {
		return 0, 0, err
	}
	prep, err := e.prepare(job, names)
	if err != nil {
		return 0, 0, err
	}
	res := trainer.Result{Steps: int(v.Step)}
	if v.Best.Checkpoint != "" {
		ck, err := e.s.LoadCheckpoint(ctx, v.Best.Checkpoint)
		if err != nil {
			return 0, 0, err
		}
		res.Best = ck.Weights
	}
	return e.TestScore(prep, res)
}

// cpuAccount shares the process's processor time among the tasks
// training at once: between two events (a task starting or ending), each
// running task is charged an equal part of the time used. With one worker
// a task's share is its own; with more it is a fair estimate, and the
// shares add up to the process's time.
type cpuAccount struct {
	mu     sync.Mutex
	last   time.Duration
	active map[int]time.Duration
}

func newCPUAccount() *cpuAccount {
	return &cpuAccount{last: ProcessCPU(), active: map[int]time.Duration{}}
}

// charge shares the time used since the last event; a.mu is held.
func (a *cpuAccount) charge() {
	now := ProcessCPU()
	if n := len(a.active); n > 0 {
		d := (now - a.last) / time.Duration(n)
		for k := range a.active {
			a.active[k] += d
		}
	}
	a.last = now
}

func (a *cpuAccount) start(i int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.charge()
	a.active[i] = 0
}

// end returns task i's share since it started.
func (a *cpuAccount) end(i int) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.charge()
	d := a.active[i]
	delete(a.active, i)
	return d
}

// slots is a counting semaphore: the engine's sweep runs training at
// once.
type slots chan struct{}

func newSlots(n int) slots { return make(slots, max(n, 1)) }

func (s slots) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s slots) release() { <-s }
