package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"thaw/trainer/termtext"
	"time"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// parseRun parses a command's flags around one positional argument, the
// run: "thaw show RUN --json" and "thaw show --json RUN" both work.
func parseRun(fs *flag.FlagSet, args []string) (string, error) {
	pos, err := parseArgs(fs, args)
	switch {
	case err != nil:
		return "", err
	case len(pos) == 0:
		return "", usagef("%s: which run? (see thaw runs)", cmdName(fs))
	case len(pos) > 1:
		return "", usagef("%s: unexpected argument %q", cmdName(fs), pos[1])
	}
	return pos[0], nil
}

// openRun opens the store at ref, read-only when it cannot be written and
// read is set, and looks up the run id there; the caller closes the store.
func openRun(ctx context.Context, ref storeRef, id string, read bool) (*store.Store, store.Run, error) {
	open := openStore
	if read {
		open = openStoreForReading
	}
	st, err := open(ref)
	if err != nil {
		return nil, store.Run{}, err
	}
	r, err := findRun(ctx, st, id)
	if err != nil {
		st.Close()
		return nil, store.Run{}, err
	}
	return st, r, nil
}

// findRun looks a run up by id or prefix; not finding it is bad input.
func findRun(ctx context.Context, st *store.Store, id string) (store.Run, error) {
	r, err := st.Run(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous) {
		return r, asUsage(err)
	}
	return r, err
}

// runSummary is one run in thaw runs, as the engine's read model has it.
type runSummary struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Model   string `json:"model"`
	Dataset string `json:"dataset"`
	// Status is judged when read: a running run whose heartbeat went
	// stale is interrupted.
	Status string `json:"status"`
	// Steps is the last step trained, TotalSteps the planned length, and
	// Stage the stage Steps is in (from 1; 0 before any).
	Steps      int64 `json:"steps"`
	TotalSteps int64 `json:"total_steps"`
	Stage      int   `json:"stage"`
	// BestValAcc is the accuracy of the best evaluation, the one with the
	// lowest validation loss (the weights --save writes); BestStep is its
	// step. MaxValAcc is the highest accuracy of any evaluation.
	BestValLoss number `json:"best_val_loss"`
	BestValAcc  number `json:"best_val_acc"`
	BestStep    int64  `json:"best_step"`
	MaxValAcc   number `json:"max_val_acc"`
	// SourceAccBefore, SourceAccBest and SourceAccEnd are the forgetting
	// gauge before training, at the best step (the weights --save writes)
	// and at the end.
	SourceAccBefore number `json:"source_acc_before"`
	SourceAccBest   number `json:"source_acc_best"`
	SourceAccEnd    number `json:"source_acc_end"`
	// Size is the bytes its checkpoints take on disk.
	Size    int64     `json:"size_bytes"`
	Created time.Time `json:"created"`
	Error   string    `json:"error,omitempty"`
	// Parent and ParentStep say where a branch started.
	Parent     string   `json:"parent,omitempty"`
	ParentStep int64    `json:"parent_step,omitempty"`
	Owner      string   `json:"owner,omitempty"`
	Tags       []string `json:"tags,omitempty"`
	// RanOn is the host, and the Slurm or Kubernetes job, the run last
	// started training on.
	RanOn string `json:"ran_on,omitempty"`
}

// summarize is a run's line of thaw runs, from its read model.
func summarize(st *store.Store, v engine.RunView) (runSummary, error) {
	r := v.Run
	sum := runSummary{ID: r.ID, Name: r.Name, Model: r.Model, Dataset: r.Dataset, Status: string(v.Status),
		Steps: v.Step, TotalSteps: v.TotalSteps, Stage: v.Stage + 1,
		BestValLoss: number(v.Best.ValLoss), BestValAcc: number(v.Best.ValAcc), BestStep: v.Best.Step, MaxValAcc: number(v.MaxValAcc),
		SourceAccBefore: number(v.SourceAccBefore), SourceAccBest: number(v.SourceAccBest), SourceAccEnd: number(v.SourceAccEnd),
		Created: r.Created, Error: r.Error, Parent: v.Parent.Run, ParentStep: v.Parent.Step, Owner: r.Owner, Tags: r.Tags, RanOn: r.RanOn}
	var err error
	sum.Size, err = st.RunSize(r.ID)
	return sum, err
}

// runRuns is thaw runs: the stored runs, newest first.
func (m *Main) runRuns(ctx context.Context, args []string) error {
	fs := m.newFlags("runs")
	asJSON := fs.Bool("json", false, "write the runs to stdout as a JSON array")
	status := fs.String("status", "", "only runs with this `status` (running, paused, done, stopped, diverged, interrupted, failed)")
	model := fs.String("model", "", "only runs of this base `model`")
	name := fs.String("name", "", "only runs whose name contains `text`")
	sweep := fs.String("sweep", "", "the runs of sweep `ID`, by task: freeze point and seed")
	storeDir := storeFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *sweep != "" {
		return m.sweepRuns(ctx, *storeDir, *sweep, *asJSON)
	}
	filter := store.RunFilter{Model: *model, Name: *name}
	if *status != "" {
		if !trainer.Status(*status).Valid() {
			return usagef("runs: --status %q: want running, paused, done, stopped, diverged, interrupted or failed", *status)
		}
		filter.Status = []store.Status{trainer.Status(*status)}
	}
	st, err := openStoreForReading(*storeDir)
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	defer st.Close()
	runs, err := engine.List(ctx, st, filter)
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	sums := make([]runSummary, 0, len(runs))
	for _, v := range runs {
		sum, err := summarize(st, v)
		if err != nil {
			return fmt.Errorf("runs: %w", err)
		}
		sums = append(sums, sum)
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sums)
	}
	if len(sums) == 0 {
		if filter.Model != "" || filter.Name != "" || len(filter.Status) > 0 {
			fmt.Fprintln(m.Stdout, "No runs match. thaw runs without flags lists them all.")
		} else {
			fmt.Fprintln(m.Stdout, "No runs stored. thaw train records one.")
		}
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tMODEL\tDATASET\tSTATUS\tSTEPS\tBEST VAL ACC\tSIZE\tPARENT\tCREATED\tRAN ON")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", store.Short(s.ID), clip(termtext.Sanitize(s.Name), 40),
			clip(termtext.Sanitize(s.Model), 24), clip(termtext.Sanitize(s.Dataset), 24), s.Status, s.Steps,
			fmtPct(float64(s.BestValAcc)), fmtBytes(s.Size), parentString(s.Parent, s.ParentStep), s.Created.Local().Format("2006-01-02 15:04"),
			clip(termtext.Sanitize(cmp.Or(s.RanOn, "-")), 40))
	}
	return tw.Flush()
}

// parentString says where a branch started: the parent's short id and
// the step, "-" for a run that is not a branch.
func parentString(parent string, step int64) string {
	if parent == "" {
		return "-"
	}
	return fmt.Sprintf("%s@%d", store.Short(parent), step)
}

// fmtBytes writes a size in bytes for a person: 512 B, 3.4 KB, 12 MB.
func fmtBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n), []string{"KB", "MB", "GB", "TB"}
	i := -1
	for v >= unit && i < len(suffix)-1 {
		v /= unit
		i++
	}
	if v < 10 {
		return fmt.Sprintf("%.1f %s", v, suffix[i])
	}
	return fmt.Sprintf("%.0f %s", v, suffix[i])
}

// clip shortens s to at most n runes with an ellipsis.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// showOutput is thaw show's JSON.
type showOutput struct {
	runSummary
	ParentRun   string             `json:"parent_run,omitempty"`
	ParentCkpt  string             `json:"parent_checkpoint,omitempty"`
	ModelHash   string             `json:"model_hash"`
	DatasetHash string             `json:"dataset_hash"`
	Seed        int64              `json:"seed"`
	Version     string             `json:"version"`
	Heartbeat   time.Time          `json:"heartbeat"`
	Finished    *time.Time         `json:"finished,omitempty"`
	Record      json.RawMessage    `json:"record"`
	Stages      []showStage        `json:"stages"`
	Checkpoints []checkpointOutput `json:"checkpoints"`
	Metrics     []string           `json:"metrics"`
	// Actions say who stopped or resumed the run, oldest first.
	Actions []actionOutput `json:"actions"`

	parentName string
}

type actionOutput struct {
	Action string    `json:"action"`
	Actor  string    `json:"actor"`
	At     time.Time `json:"at"`
}

type checkpointOutput struct {
	ID      string    `json:"id"`
	Step    int64     `json:"step"`
	Stage   int       `json:"stage"`
	Kind    string    `json:"kind"`
	Path    string    `json:"path"` // relative to the store
	SHA256  string    `json:"sha256"`
	Size    int64     `json:"size"`
	Created time.Time `json:"created"`
	Bad     bool      `json:"bad"`
	Problem string    `json:"problem,omitempty"`
}

// showStage is one stage of thaw show, as planned and as run; the
// capitalised keys are the stored stage's.
type showStage struct {
	store.Stage
	Planned      int64  `json:"planned"`
	PlannedStart int64  `json:"planned_start"`
	Ran          int64  `json:"ran"`
	Skipped      bool   `json:"skipped,omitempty"`
	StoppedEarly bool   `json:"stopped_early,omitempty"`
	Inherited    bool   `json:"inherited,omitempty"`
	BestStep     int64  `json:"best_step"`
	BestValLoss  number `json:"best_val_loss"`
	BestValAcc   number `json:"best_val_acc"`
}

// runShow is thaw show: one run's record, plan, stages, checkpoints and
// metric names.
func (m *Main) runShow(ctx context.Context, args []string) error {
	fs := m.newFlags("show")
	asJSON := fs.Bool("json", false, "write the run to stdout as one JSON object")
	storeDir := storeFlag(fs)
	id, err := parseRun(fs, args)
	if err != nil {
		return err
	}
	st, r, err := openRun(ctx, *storeDir, id, true)
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	defer st.Close()
	out, err := describe(ctx, st, r)
	if err != nil {
		return fmt.Errorf("show: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	out.writeText(m.Stdout)
	return nil
}

// describe gathers what thaw show prints, from the run's read model.
func describe(ctx context.Context, st *store.Store, r store.Run) (*showOutput, error) {
	v, err := engine.Read(ctx, st, r.ID)
	if err != nil {
		return nil, err
	}
	sum, err := summarize(st, v)
	if err != nil {
		return nil, err
	}
	out := &showOutput{runSummary: sum, ParentRun: r.ParentRun, ParentCkpt: r.ParentCheckpoint, ModelHash: r.ModelHash, DatasetHash: r.DatasetHash,
		Seed: r.Seed, Version: r.Version, Heartbeat: r.Heartbeat, Record: r.Plan, Stages: []showStage{}, parentName: v.Parent.Name}
	if !r.Finished.IsZero() {
		out.Finished = &r.Finished
	}
	out.Actions = []actionOutput{}
	for _, a := range v.Actions {
		out.Actions = append(out.Actions, actionOutput{Action: a.Action, Actor: a.Actor, At: a.At})
	}
	for _, s := range v.Stages {
		out.Stages = append(out.Stages, showStage{
			Stage:   store.Stage{Index: s.Index, Name: s.Label, Trainable: s.Trainable, Start: s.Start, End: s.End},
			Planned: s.Planned, PlannedStart: s.PlannedStart, Ran: s.Ran(v.Step),
			Skipped: s.Skipped, StoppedEarly: s.StoppedEarly, Inherited: s.Inherited,
			BestStep: s.BestStep, BestValLoss: number(s.BestValLoss), BestValAcc: number(s.BestValAcc),
		})
	}
	cs, err := st.Checkpoints(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	out.Checkpoints = []checkpointOutput{}
	for _, c := range cs {
		out.Checkpoints = append(out.Checkpoints, checkpointOutput{ID: c.ID, Step: c.Step, Stage: c.Stage,
			Kind: string(c.Kind), Path: c.Path, SHA256: c.SHA256, Size: c.Size, Created: c.Created,
			Bad: c.Bad, Problem: c.Problem})
	}
	if out.Metrics, err = st.MetricNames(ctx, r.ID); err != nil {
		return nil, err
	}
	if out.Metrics == nil {
		out.Metrics = []string{}
	}
	return out, nil
}

// writeText writes the run for a person.
func (o *showOutput) writeText(w io.Writer) {
	fmt.Fprintf(w, "run %s  %s\n", o.ID, termtext.Sanitize(o.Name))
	fmt.Fprintf(w, "status %s", o.Status)
	if o.Error != "" {
		fmt.Fprintf(w, ": %s", termtext.Sanitize(o.Error))
	}
	fmt.Fprintf(w, ", step %d of %d", o.Steps, o.TotalSteps)
	if o.Stage > 0 {
		fmt.Fprintf(w, " (stage %d of %d)", o.Stage, len(o.Stages))
	}
	fmt.Fprintf(w, ", best val acc %s", fmtPct(float64(o.BestValAcc)))
	if o.BestStep >= 0 {
		fmt.Fprintf(w, " (the lowest val loss, at step %d)", o.BestStep)
	}
	fmt.Fprintf(w, ", max val acc %s\n", fmtPct(float64(o.MaxValAcc)))
	if !math.IsNaN(float64(o.SourceAccBefore)) || !math.IsNaN(float64(o.SourceAccEnd)) {
		fmt.Fprintf(w, "source task accuracy %s before, %s at the best step, %s at the end\n",
			fmtPct(float64(o.SourceAccBefore)), fmtPct(float64(o.SourceAccBest)), fmtPct(float64(o.SourceAccEnd)))
	}
	fmt.Fprintf(w, "model %s (sha256 %s)\n", termtext.Sanitize(o.Model), clip(o.ModelHash, 12))
	fmt.Fprintf(w, "data %s (sha256 %s)\n", termtext.Sanitize(o.Dataset), clip(o.DatasetHash, 12))
	fmt.Fprintf(w, "seed %d, thaw %s, created %s", o.Seed, termtext.Sanitize(o.Version), o.Created.Local().Format(time.DateTime))
	if o.Finished != nil {
		fmt.Fprintf(w, ", finished %s", o.Finished.Local().Format(time.DateTime))
	}
	fmt.Fprintln(w)
	if o.ParentRun != "" {
		fmt.Fprintf(w, "branched from run %s at step %d (%s)\n", store.Short(o.ParentRun), o.ParentStep, termtext.Sanitize(o.parentName))
	}
	for _, a := range o.Actions {
		fmt.Fprintf(w, "%s by %s at %s\n", map[string]string{"stop": "stopped", "resume": "resumed", "delete": "deleted"}[a.Action],
			termtext.Sanitize(a.Actor), a.At.Local().Format(time.DateTime))
	}
	if o.RanOn != "" {
		fmt.Fprintf(w, "ran on %s\n", termtext.Sanitize(o.RanOn))
	}
	if o.Owner != "" || len(o.Tags) > 0 {
		fmt.Fprintf(w, "owner %s, tags %s\n", termtext.Sanitize(cmp.Or(o.Owner, "(local)")), termtext.Sanitize(strings.Join(o.Tags, ", ")))
	}
	if rec, err := store.DecodeJob(store.Run{ID: o.ID, Plan: o.Record}); err == nil {
		j := rec.Job
		data := j.Data.Path
		if j.Data.Labels != "" {
			data += " (labels " + j.Data.Labels + ")"
		}
		plan := rec.Plan.Name
		if j.Preset != nil {
			plan = fmt.Sprintf("preset %s (lr %v, epochs %d)", j.Preset.Name, j.Preset.LR, j.Preset.Epochs)
		}
		fmt.Fprintf(w, "job: model %s, data %s, %s, shots %d, val split %v, batch %d, seed %d, eval every %d\n",
			termtext.Sanitize(j.Model), termtext.Sanitize(data), termtext.Sanitize(plan), j.Shots, j.ValSplit, j.BatchSize, j.Seed, j.EvalEvery)
		fmt.Fprintf(w, "plan %s:\n", termtext.Sanitize(rec.Plan.Name))
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STAGE\tTRAINABLE\tSTEPS\tLR\tSCHEDULE")
		for _, st := range rec.Plan.Stages {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%g\t%s\n", termtext.Sanitize(st.Label), termtext.Sanitize(strings.Join(st.Trainable, ",")),
				st.Steps, st.LR, termtext.Sanitize(st.Schedule.Kind))
		}
		tw.Flush()
	}
	fmt.Fprintln(w, "stages as run:")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  #\tSTAGE\tTRAINABLE\tPLANNED\tSTEPS\tLOWEST VAL LOSS\tVAL ACC THERE")
	for _, st := range o.Stages {
		ran := "not reached"
		switch {
		case st.Start >= 0 && st.End >= 0:
			ran = fmt.Sprintf("%d–%d", st.Start, st.End)
		case st.Start >= 0:
			ran = fmt.Sprintf("%d–…", st.Start)
		}
		switch {
		case st.Inherited:
			ran += " (parent)"
		case st.Skipped:
			ran += " (skipped)"
		case st.StoppedEarly:
			ran += " (patience)"
		}
		mark := ""
		if o.BestStep >= 0 && st.Start >= 0 && o.BestStep > st.Start && (st.End < 0 || o.BestStep <= st.End) {
			mark = "  * best"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\t%s%s\n", st.Index+1, termtext.Sanitize(st.Name), termtext.Sanitize(strings.Join(st.Trainable, ",")),
			st.Planned, ran, fmtLoss(float64(st.BestValLoss)), fmtPct(float64(st.BestValAcc)), mark)
	}
	tw.Flush()
	fmt.Fprintln(w, "checkpoints:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range o.Checkpoints {
		state := "ok"
		if c.Bad {
			state = "BAD: " + termtext.Sanitize(c.Problem)
		}
		fmt.Fprintf(tw, "  step %d\t%s\tstage %d\t%d bytes\t%s\t%s\n", c.Step, c.Kind, c.Stage+1, c.Size, termtext.Sanitize(c.Path), state)
	}
	tw.Flush()
	fmt.Fprintf(w, "metrics: %s\n", termtext.Sanitize(strings.Join(o.Metrics, ", ")))
}

// runRm is thaw rm: delete a run with its metrics and checkpoint files.
func (m *Main) runRm(ctx context.Context, args []string) error {
	fs := m.newFlags("rm")
	storeDir := storeFlag(fs)
	id, err := parseRun(fs, args)
	if err != nil {
		return err
	}
	st, r, err := openRun(ctx, *storeDir, id, false)
	if err != nil {
		return fmt.Errorf("rm: %w", err)
	}
	defer st.Close()
	// Through the engine, which records who deleted it.
	if err := engine.New(st, m.catalog()).Delete(ctx, r.ID); err != nil {
		return fmt.Errorf("rm: %w", err)
	}
	fmt.Fprintf(m.Stderr, "removed run %s (%s)\n", store.Short(r.ID), termtext.Sanitize(r.Name))
	return nil
}

// sweepRunSummary is one task of a sweep in thaw runs --sweep: the run
// that trains it, if any, named by its freeze point and seed.
type sweepRunSummary struct {
	Index  int    `json:"index"`
	Point  string `json:"point"`
	Seed   uint64 `json:"seed"`
	Preset string `json:"preset,omitempty"`
	Shots  int    `json:"shots,omitempty"`
	// Run is null for a task no process has claimed yet.
	Run *runSummary `json:"run"`
}

// sweepRuns is thaw runs --sweep ID: every task of the sweep, by index,
// with its run.
func (m *Main) sweepRuns(ctx context.Context, dir storeRef, id string, asJSON bool) error {
	st, err := openStoreForReading(dir)
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	defer st.Close()
	sw, err := st.Sweep(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous) {
		return usagef("runs: %w", err)
	}
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	tasks, err := st.SweepTasks(ctx, sw.ID)
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	out := make([]sweepRunSummary, 0, len(tasks))
	for _, t := range tasks {
		s := sweepRunSummary{Index: t.Index, Point: t.Point, Seed: t.Seed, Preset: t.Preset, Shots: t.Shots}
		if t.Run != "" {
			v, err := engine.Read(ctx, st, t.Run)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("runs: %w", err)
			}
			if err == nil {
				sum, err := summarize(st, v)
				if err != nil {
					return fmt.Errorf("runs: %w", err)
				}
				s.Run = &sum
			}
		}
		out = append(out, s)
	}
	if asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintf(m.Stdout, "sweep %s: %s, %d tasks\n", store.Short(sw.ID), termtext.Sanitize(sw.Name), len(tasks))
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tPOINT\tSEED\tID\tSTATUS\tSTEPS\tBEST VAL ACC\tSIZE\tCREATED")
	for _, s := range out {
		point := s.Point
		if s.Preset != "" {
			point += " · " + s.Preset
		}
		if s.Shots > 0 {
			point += fmt.Sprintf(" · %d shots", s.Shots)
		}
		if s.Run == nil {
			fmt.Fprintf(tw, "%d\t%s\t%d\t-\tnot started\t\t\t\t\n", s.Index, termtext.Sanitize(point), s.Seed)
			continue
		}
		r := s.Run
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\n", s.Index, termtext.Sanitize(point), s.Seed,
			store.Short(r.ID), r.Status, r.Steps, fmtPct(float64(r.BestValAcc)), fmtBytes(r.Size), r.Created.Local().Format("2006-01-02 15:04"))
	}
	return tw.Flush()
}
