package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"thaw/store"
	"thaw/trainer"
)

// A freeze-depth sweep trains the first stage of a plan at every freeze
// point, each exactly as thaw train --plan P --freeze-below B trains that
// stage ([trainer.Job.SweepPoint]), over the same seeds, and picks the
// point by the one-standard-error rule ([trainer.PickPoint]). It is a
// stored record of its own: the sweep and its tasks, task index i mapping
// to (freeze point, seed, and the preset and shots when it crosses them)
// and, once claimed, to the run that trains it. The command line (thaw
// sweep), the workbench (w on Blocks) and a cluster (thaw train --sweep ID
// --index I, one task each) run the same tasks and read the same table.
//
// A process runs a sweep's tasks in parallel, at most GOMAXPROCS of them
// at once over all its sweeps, and they share each seed's frozen prefix
// through a [trainer.Prefixes]: runs are deterministic and sharing is
// bit-identical, so the table does not depend on how many ran at once.
// An interrupted sweep resumes: a done task is reused, a stopped or
// interrupted one resumes from its last checkpoint.

// Sweep records as the store keeps them.
type (
	// SweepRecord is a stored sweep.
	SweepRecord = store.Sweep
	// SweepTask is one task of a stored sweep.
	SweepTask = store.SweepTask
)

// DefaultSweepSeeds is how many seeds a sweep repeats every point over
// when it is given none, and FirstSweepSeed the first of them (the
// evidence tables' seeds start there too).
const (
	DefaultSweepSeeds = 3
	FirstSweepSeed    = 3001
)

// SweepSeeds returns n seeds from FirstSweepSeed: 3001, 3002, ….
func SweepSeeds(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = FirstSweepSeed + uint64(i)
	}
	return out
}

// SweepSpec is what a sweep trains. It is stored with the sweep as JSON.
type SweepSpec struct {
	// Job is the base job: model, data, plan (a preset or stages), shots,
	// split, batch and cadence. Its Seed and FreezeBelow are the tasks'.
	Job trainer.Job `json:"job"`
	// Points are the freeze points, block names: each trains that block
	// and every one above it in the plan's first stage. Empty means every
	// block; [Engine.NewSweep] stores them in the model's order, input to
	// output.
	Points []string `json:"points"`
	// Seeds are the seeds every point runs on; empty means
	// DefaultSweepSeeds seeds from FirstSweepSeed.
	Seeds []uint64 `json:"seeds"`
	// Presets and Shots, when set, cross the sweep with these presets (in
	// place of Job's plan) and these shots (in place of Job.Shots): every
	// combination is a group of its own, with its own table and pick.
	Presets []string `json:"presets,omitempty"`
	Shots   []int    `json:"shots,omitempty"`
	// PlanRef is the plan as the user named it (a preset or a file), and
	// PlanLR, PlanEpochs and PlanSteps what they gave to change it (see
	// trainer.Job.SetPlan), for the command that reproduces the pick;
	// PlanRef is empty when the plan had no name.
	PlanRef    string  `json:"plan_ref,omitempty"`
	PlanLR     float64 `json:"plan_lr,omitempty"`
	PlanEpochs int     `json:"plan_epochs,omitempty"`
	PlanSteps  int     `json:"plan_steps,omitempty"`

	// Blocks are the model's blocks, input to output, and Trainable the
	// parameters each point trains (by Points), as NewSweep found them.
	Blocks    []string `json:"blocks"`
	Trainable []int    `json:"trainable"`
}

// sweepGroup is a (preset, shots) combination of a crossed sweep: empty
// and zero for the sweep's own plan and shots.
type sweepGroup struct {
	preset string
	shots  int
}

// groups returns the sweep's combinations in index order; one, {"", 0},
// when it crosses nothing.
func (sp SweepSpec) groups() []sweepGroup {
	presets, shots := sp.Presets, sp.Shots
	if len(presets) == 0 {
		presets = []string{""}
	}
	if len(shots) == 0 {
		shots = []int{0}
	}
	var out []sweepGroup
	for _, p := range presets {
		for _, k := range shots {
			out = append(out, sweepGroup{p, k})
		}
	}
	return out
}

// Tasks returns the sweep's tasks in index order: index
// (g·len(Seeds) + s)·len(Points) + p trains point p on seed s in group g
// (see [SweepTable.Groups]), so a seed's points are neighbours and share
// their prefixes.
func (sp SweepSpec) Tasks() []SweepTask {
	var out []SweepTask
	for _, g := range sp.groups() {
		for _, seed := range sp.Seeds {
			for _, p := range sp.Points {
				out = append(out, SweepTask{Index: len(out), Point: p, Seed: seed, Preset: g.preset, Shots: g.shots})
			}
		}
	}
	return out
}

// TaskJob returns the job task t trains: Job with t's preset, shots and
// seed, made the sweep point of t's freeze point ([trainer.Job.SweepPoint]).
func (sp SweepSpec) TaskJob(t SweepTask) (trainer.Job, error) {
	j := sp.Job
	if t.Preset != "" {
		j.Plan, j.Preset = trainer.Plan{}, &trainer.PresetRef{Name: t.Preset}
	}
	if t.Shots > 0 {
		j.Shots = t.Shots
	}
	j.Seed = t.Seed
	return j.SweepPoint(sp.Blocks, t.Point)
}

// ReproduceJob returns the job that trains point's whole plan on seed as
// thaw train --freeze-below point would, for preset and shots (empty and
// zero: the sweep's).
func (sp SweepSpec) ReproduceJob(point string, seed uint64, preset string, shots int) trainer.Job {
	j := sp.Job
	if preset != "" {
		j.Plan, j.Preset = trainer.Plan{}, &trainer.PresetRef{Name: preset}
	}
	if shots > 0 {
		j.Shots = shots
	}
	j.Seed, j.FreezeBelow = seed, point
	return j
}

// NewSweep checks spec, fills in its defaults (every block, three seeds)
// and records the sweep and its tasks, none claimed yet, owned by owner
// (empty: the local operator). It prepares the job once, as a run would,
// to count each point's trainable parameters; nothing trains. Errors the
// user causes are trainer.InputError values.
func (e *Engine) NewSweep(ctx context.Context, spec SweepSpec, owner string) (SweepRecord, error) {
	spec.Job.FreezeBelow = ""
	if len(spec.Seeds) == 0 {
		spec.Seeds = SweepSeeds(DefaultSweepSeeds)
	}
	if len(spec.Seeds) > 1 {
		seen := map[uint64]bool{}
		for _, s := range spec.Seeds {
			if seen[s] {
				return SweepRecord{}, trainer.BadInput(fmt.Errorf("sweep: seed %d given twice", s))
			}
			seen[s] = true
		}
	}
	for _, k := range spec.Shots {
		if k < 0 {
			return SweepRecord{}, trainer.BadInput(fmt.Errorf("sweep: %d shots: want 0 (all) or more", k))
		}
	}
	for _, p := range spec.Presets {
		if _, err := trainer.Preset(p, []string{"a", "b"}, 0, 0); err != nil {
			return SweepRecord{}, trainer.BadInput(fmt.Errorf("sweep: %w", err))
		}
	}
	job := spec.Job
	job.Seed = spec.Seeds[0]
	if err := job.Check(); err != nil {
		return SweepRecord{}, err
	}
	// Prepared as a task is (no gauge; only the samples drawn decoded).
	prep, err := e.prepare(job, newSweepNames(e.names))
	if err != nil {
		return SweepRecord{}, err
	}
	spec.Job.Model = prep.ModelName
	if spec.Job.Data, err = e.names.ResolveData(job.Data); err != nil {
		return SweepRecord{}, err
	}
	spec.Blocks = prep.Model.Config.BlockNames()
	if len(spec.Points) == 0 {
		spec.Points = slices.Clone(spec.Blocks)
	} else {
		// The block table's order, input to output, whatever the order given.
		for _, p := range spec.Points {
			if !slices.Contains(spec.Blocks, p) {
				return SweepRecord{}, trainer.BadInput(fmt.Errorf("sweep: no block named %q (blocks: %s)", p, strings.Join(spec.Blocks, ", ")))
			}
		}
		var pts []string
		for _, b := range spec.Blocks {
			if slices.Contains(spec.Points, b) {
				pts = append(pts, b)
			}
		}
		spec.Points = pts
	}
	spec.Trainable = make([]int, len(spec.Points))
	for i, p := range spec.Points {
		pj, err := spec.TaskJob(SweepTask{Point: p, Seed: job.Seed})
		if err != nil {
			return SweepRecord{}, err
		}
		_, rp, err := pj.ResolvePlan(spec.Blocks)
		if err != nil {
			return SweepRecord{}, err
		}
		for _, b := range prep.Model.Blocks {
			if slices.Contains(rp.Stages[0].Trainable, b.Name) {
				spec.Trainable[i] += trainer.BlockCount(b)
			}
		}
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return SweepRecord{}, fmt.Errorf("sweep: %w", err)
	}
	name := fmt.Sprintf("%s on %s", filepath.Base(spec.Job.Model), filepath.Base(spec.Job.Data.Path))
	if spec.Job.Shots > 0 && len(spec.Shots) == 0 {
		name += fmt.Sprintf(", %d shots", spec.Job.Shots)
	}
	sw, err := e.s.CreateSweep(ctx, SweepRecord{Name: name, Owner: owner, Spec: raw}, spec.Tasks())
	if err == nil {
		e.changes.notify()
	}
	return sw, err
}

// DecodeSweep reads a stored sweep's spec.
func DecodeSweep(sw SweepRecord) (SweepSpec, error) {
	var spec SweepSpec
	if err := json.Unmarshal(sw.Spec, &spec); err != nil {
		return SweepSpec{}, fmt.Errorf("sweep %s: spec: %w", store.Short(sw.ID), err)
	}
	return spec, nil
}

// SweepTable is a sweep as it stands: per group (one unless the sweep
// crosses presets or shots) a row per freeze point with its figures over
// the seeds that have them, and the pick.
type SweepTable struct {
	Sweep SweepRecord
	Spec  SweepSpec
	// Groups are the sweep's (preset, shots) combinations, in task order.
	Groups []SweepGroup
	// Done counts the tasks with a result, Total all of them; Running
	// those training in this process now.
	Done, Total, Running int
	// CPU is the processor time of every task's run so far.
	CPU time.Duration
}

// SweepGroup is one (preset, shots) combination of a sweep.
type SweepGroup struct {
	// Preset and Shots are the group's: empty and zero for the sweep's
	// own plan and shots.
	Preset string
	Shots  int
	// Rows has one row per freeze point, in the block table's order
	// (input to output); each row's ValLoss and ValAcc hold one value per
	// seed, in Spec.Seeds' order, NaN until that seed's run is done.
	Rows []trainer.SweepRow
	// Runs[i][s] is the run of row i on seed s; empty until claimed.
	Runs [][]string
	// Pick is the one-standard-error pick over the rows with results.
	Pick trainer.SweepPick
	// Test is the pick's test accuracy, measured once after every task was
	// done; nil before, and for data without a test split.
	Test *SweepTest
}

// SweepTest is a pick's accuracy on the task's test split, over the
// seeds: the best checkpoint of each seed's run, measured once.
type SweepTest struct {
	Point    string    `json:"point"`
	Acc      []float64 `json:"acc"` // by seed
	Mean, SD float64   `json:"-"`
	Samples  int       `json:"samples"`
}

// sweepResult is the result a sweep stores once it is done: each group's
// test measurement, by group, nil entries for none; and its probes once
// measured.
type sweepResult struct {
	Tests  []*SweepTest `json:"tests"`
	Probes []SweepProbe `json:"probes,omitempty"`
}

// SweepProbe is the probe of one block over a sweep's seeds (see
// [Engine.Probe]): the validation accuracy of its best checkpoint, by
// seed. Point is the freeze point whose frozen prefix ends with Block:
// the point above it.
type SweepProbe struct {
	Block string    `json:"block"`
	Point string    `json:"point"`
	Acc   []float64 `json:"acc"`
}

// SweepProbes returns the probes of the blocks below the sweep's freeze
// points (every block below the head whose next block is a point), on the
// sweep's data, split, shots and seeds, with the sweep's rule for best
// (the lowest validation loss); for a sweep that crosses presets or shots,
// those of its base job. They are measured once and stored with the
// sweep; later calls read them. Cancelling ctx stops them with ctx's
// error; nothing is stored then.
func (e *Engine) SweepProbes(ctx context.Context, id string) ([]SweepProbe, error) {
	sw, spec, _, err := e.loadSweep(ctx, id)
	if err != nil {
		return nil, err
	}
	var res sweepResult
	if len(sw.Result) > 0 {
		if err := json.Unmarshal(sw.Result, &res); err != nil {
			return nil, fmt.Errorf("sweep %s: result: %w", store.Short(sw.ID), err)
		}
		if res.Probes != nil {
			return res.Probes, nil
		}
	}
	probes := []SweepProbe{}
	names := newSweepNames(e.names)
	n := len(spec.Blocks)
	for k := 0; k < n-1; k++ {
		above := spec.Blocks[k+1]
		if !slices.Contains(spec.Points, above) {
			continue
		}
		pr := SweepProbe{Block: spec.Blocks[k], Point: above}
		for _, seed := range spec.Seeds {
			job := spec.Job
			job.Seed = seed
			// Prepared as the sweep's tasks are, the samples decoded once.
			prep, err := e.prepare(job, names)
			if err != nil {
				return nil, err
			}
			acc, err := probe(ctx, prep, k)
			if err != nil {
				return nil, fmt.Errorf("sweep %s: probe %s, seed %d: %w", store.Short(sw.ID), spec.Blocks[k], seed, err)
			}
			pr.Acc = append(pr.Acc, acc)
		}
		probes = append(probes, pr)
	}
	// The tests may have been stored meanwhile: keep them.
	if sw, err = e.s.Sweep(ctx, sw.ID); err != nil {
		return nil, err
	}
	res = sweepResult{}
	if len(sw.Result) > 0 {
		json.Unmarshal(sw.Result, &res)
	}
	res.Probes = probes
	raw, err := json.Marshal(res)
	if err != nil {
		return nil, err
	}
	return probes, e.s.SetSweepResult(ctx, sw.ID, raw)
}

// taskResult is what a sweep keeps of a task's run.
type taskResult struct {
	run       string
	done      bool
	loss, acc float64
	cpu       time.Duration
}

// SweepTable reads the sweep id (a full id or a unique prefix) as it
// stands in the store, through the read model of its runs.
func (e *Engine) SweepTable(ctx context.Context, id string) (SweepTable, error) {
	sw, spec, tasks, err := e.loadSweep(ctx, id)
	if err != nil {
		return SweepTable{}, err
	}
	res := make([]taskResult, len(tasks))
	for i, t := range tasks {
		if res[i], err = e.readTask(ctx, t); err != nil {
			return SweepTable{}, err
		}
	}
	return buildTable(sw, spec, tasks, res, 0), nil
}

func (e *Engine) loadSweep(ctx context.Context, id string) (SweepRecord, SweepSpec, []SweepTask, error) {
	sw, err := e.s.Sweep(ctx, id)
	if err != nil {
		return SweepRecord{}, SweepSpec{}, nil, err
	}
	spec, err := DecodeSweep(sw)
	if err != nil {
		return SweepRecord{}, SweepSpec{}, nil, err
	}
	tasks, err := e.s.SweepTasks(ctx, sw.ID)
	if err != nil {
		return SweepRecord{}, SweepSpec{}, nil, err
	}
	return sw, spec, tasks, nil
}

// readTask reads task t's run: done, with the run's best (the lowest
// validation loss and the accuracy there), when it ended done or
// diverged.
func (e *Engine) readTask(ctx context.Context, t SweepTask) (taskResult, error) {
	r := taskResult{run: t.Run, loss: math.NaN(), acc: math.NaN(), cpu: t.CPU}
	if t.Run == "" {
		return r, nil
	}
	v, err := Read(ctx, e.s, t.Run)
	if errors.Is(err, store.ErrNotFound) {
		r.run = ""
		return r, nil
	}
	if err != nil {
		return r, err
	}
	if v.Status == trainer.StatusDone || v.Status == trainer.StatusDiverged {
		r.done = true
		if v.Best.Step >= 0 {
			r.loss, r.acc = v.Best.ValLoss, v.Best.ValAcc
		}
	}
	return r, nil
}

// buildTable makes the table of a sweep's tasks and their results.
func buildTable(sw SweepRecord, spec SweepSpec, tasks []SweepTask, res []taskResult, running int) SweepTable {
	tb := SweepTable{Sweep: sw, Spec: spec, Total: len(tasks), Running: running}
	var stored sweepResult
	if len(sw.Result) > 0 {
		json.Unmarshal(sw.Result, &stored)
	}
	np, ns := len(spec.Points), len(spec.Seeds)
	for gi, g := range spec.groups() {
		grp := SweepGroup{Preset: g.preset, Shots: g.shots}
		for pi, p := range spec.Points {
			row := trainer.SweepRow{Point: p, ValLoss: make([]float64, ns), ValAcc: make([]float64, ns)}
			if pi < len(spec.Trainable) {
				row.Trainable = spec.Trainable[pi]
			}
			runs := make([]string, ns)
			for si := range ns {
				i := (gi*ns+si)*np + pi
				if i >= len(res) {
					row.ValLoss[si], row.ValAcc[si] = math.NaN(), math.NaN()
					continue
				}
				r := res[i]
				row.ValLoss[si], row.ValAcc[si] = r.loss, r.acc
				row.CPUSeconds += r.cpu.Seconds()
				runs[si] = r.run
			}
			grp.Rows = append(grp.Rows, row)
			grp.Runs = append(grp.Runs, runs)
		}
		grp.Pick = trainer.PickPoint(grp.Rows)
		tb.Groups = append(tb.Groups, grp)
	}
	applyTests(&tb, stored.Tests)
	for _, r := range res {
		tb.CPU += r.cpu
		if r.done {
			tb.Done++
		}
	}
	return tb
}

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
	so.Tags = []string{"sweep", "sweep:" + sw.ID}
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
// The workbench's sweep of today

// SweepRow is one freeze point's result as the Blocks screen draws it
// until it shows the table ([SweepTable]): the first seed's run.
type SweepRow struct {
	// Thawed counts the top blocks trained; Low is the lowest of them.
	Thawed int
	Low    string
	RunID  string
	Acc    float64 // best val acc: the accuracy of the lowest val loss
	Loss   float64
}

// Sweep runs a freeze-depth sweep of base over every block on base's
// seed, as a stored sweep (see [Engine.RunSweep]), and calls row with
// each point's result as it finishes, from the sweep's goroutines, one at
// a time. rp is base's resolved plan, for its blocks. Cancelling ctx
// stops the sweep; it then returns context.Canceled.
func (e *Engine) Sweep(ctx context.Context, base trainer.Job, rp *trainer.ResolvedPlan, row func(SweepRow)) error {
	sw, err := e.NewSweep(ctx, SweepSpec{Job: base, Seeds: []uint64{base.Seed}}, "")
	if err != nil {
		return err
	}
	_, err = e.RunSweep(ctx, sw.ID, SweepOptions{Progress: legacyRows(len(rp.Blocks), row)})
	return err
}

// legacyRows turns tables into the rows of points newly done, from the
// head alone down, in order, as the Blocks screen draws them.
func legacyRows(n int, row func(SweepRow)) func(SweepTable) {
	sent := 0
	return func(tb SweepTable) {
		g := tb.Groups[0]
		for sent < len(g.Rows) {
			i := len(g.Rows) - 1 - sent
			r := g.Rows[i]
			if g.Runs[i][0] == "" || math.IsNaN(r.ValLoss[0]) {
				return
			}
			sent++
			k := n - slices.Index(tb.Spec.Blocks, r.Point)
			row(SweepRow{Thawed: k, Low: r.Point, RunID: g.Runs[i][0], Acc: r.ValAcc[0], Loss: r.ValLoss[0]})
		}
	}
}

// ---------------------------------------------------------------------
// A user's sweeps

// NewSweep records a sweep owned by the user (see [Engine.NewSweep]).
func (v *UserView) NewSweep(ctx context.Context, spec SweepSpec) (SweepRecord, error) {
	return v.e.NewSweep(ctx, spec, v.u.ID)
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

// Sweep runs the workbench's sweep of today as a sweep of the user's (see
// [Engine.Sweep] and [UserView.RunSweep]).
func (v *UserView) Sweep(ctx context.Context, base trainer.Job, rp *trainer.ResolvedPlan, row func(SweepRow)) error {
	sw, err := v.NewSweep(ctx, SweepSpec{Job: base, Seeds: []uint64{base.Seed}})
	if err != nil {
		return err
	}
	_, err = v.RunSweep(ctx, sw.ID, SweepOptions{Progress: legacyRows(len(rp.Blocks), row)})
	return err
}
