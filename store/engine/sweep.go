package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
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

// SweepTag is the tag every run of sweep id carries, beside "sweep": a
// filter on it lists the sweep's runs in one query.
func SweepTag(id string) string { return "sweep:" + id }

// DefaultSweepPlan is the plan thaw sweep trains at every freeze point
// when it is given none: the full preset, whose one stage, frozen below
// the point, fine-tunes the blocks from the point up (lr 3e-3, cosine,
// one epoch or 200 steps), the question a freeze-depth study asks (how
// deep to fine-tune, with one recipe). At the lowest point it is thaw
// train --plan full itself, so the pick is measured against full
// fine-tuning on the same runs. A multi-stage preset's first stage is
// the wrong recipe for a deep point: gradual's is the head's stage
// (lr 1e-2, a 100-step floor), and its sweep picked 1.2 points below the
// full preset on digits-cnn at 5 and 10 shots where this one matches it
// (EVIDENCE.md, seeds 3001 to 3005). The workbench sweeps the Plan's own
// plan.
const DefaultSweepPlan = "full"

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
// and records the sweep and its tasks, none claimed yet, as the local
// operator's. It prepares the job once, as a run would, to count each
// point's trainable parameters; nothing trains. Errors the user causes are
// trainer.InputError values.
func (e *Engine) NewSweep(ctx context.Context, spec SweepSpec) (SweepRecord, error) {
	return e.newSweep(ctx, spec, "")
}

// newSweep is NewSweep for owner.
func (e *Engine) newSweep(ctx context.Context, spec SweepSpec, owner string) (SweepRecord, error) {
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
// sweep (unless the store is read-only); later calls read them.
// Cancelling ctx stops them with ctx's error; nothing is stored then.
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
			sc, err := probe(ctx, prep, k)
			if err != nil {
				return nil, fmt.Errorf("sweep %s: probe %s, seed %d: %w", store.Short(sw.ID), spec.Blocks[k], seed, err)
			}
			pr.Acc = append(pr.Acc, sc.ValAcc)
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
	if err := e.s.SetSweepResult(ctx, sw.ID, raw); err != nil && !errors.Is(err, store.ErrReadOnly) {
		return nil, err
	}
	// A store opened for reading gets the probes, measured again next time.
	return probes, nil
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
