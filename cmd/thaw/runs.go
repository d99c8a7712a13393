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

// runSummary is one run in thaw runs.
type runSummary struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Model   string `json:"model"`
	Dataset string `json:"dataset"`
	Status  string `json:"status"`
	Steps   int64  `json:"steps"`
	// BestValAcc is the accuracy of the best evaluation, the one with the
	// lowest validation loss (the weights --save writes); BestStep is its
	// step. MaxValAcc is the highest accuracy of any evaluation.
	BestValAcc number `json:"best_val_acc"`
	BestStep   int64  `json:"best_step"`
	MaxValAcc  number `json:"max_val_acc"`
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

// summarize reads a run's progress from its metrics: the last step with a
// training loss, the best evaluation (the lowest validation loss, as the
// trainer picks it: the first of equal ones) and the highest accuracy.
// One bucket of the training loss reads only its stored summaries;
// evaluations are few and are read whole.
func summarize(ctx context.Context, st *store.Store, r store.Run) (runSummary, error) {
	sum := runSummary{ID: r.ID, Name: r.Name, Model: r.Model, Dataset: r.Dataset, Status: string(r.Status),
		BestValAcc: number(math.NaN()), BestStep: -1, MaxValAcc: number(math.NaN()), Created: r.Created, Error: r.Error,
		Parent: r.ParentRun, ParentStep: r.ParentStep, Owner: r.Owner, Tags: r.Tags, RanOn: r.RanOn}
	loss, err := st.Series(ctx, r.ID, trainer.MetricTrainLoss, 1)
	if err != nil {
		return sum, err
	}
	if len(loss) > 0 {
		sum.Steps = loss[len(loss)-1].To
	}
	vloss, err := st.Series(ctx, r.ID, trainer.MetricValLoss, 0)
	if err != nil {
		return sum, err
	}
	acc, err := st.Series(ctx, r.ID, trainer.MetricValAcc, 0)
	if err != nil {
		return sum, err
	}
	if sum.Size, err = st.RunSize(r.ID); err != nil {
		return sum, err
	}
	best := math.Inf(1)
	for _, b := range vloss {
		if b.Mean < best {
			best, sum.BestStep = b.Mean, b.From
		}
	}
	for _, b := range acc {
		if b.From == sum.BestStep {
			sum.BestValAcc = number(b.Mean)
		}
		if !math.IsNaN(b.Mean) && (math.IsNaN(float64(sum.MaxValAcc)) || b.Mean > float64(sum.MaxValAcc)) {
			sum.MaxValAcc = number(b.Mean)
		}
	}
	return sum, nil
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
	runs, err := st.ListRuns(ctx, filter)
	if err != nil {
		return fmt.Errorf("runs: %w", err)
	}
	sums := make([]runSummary, 0, len(runs))
	for _, r := range runs {
		sum, err := summarize(ctx, st, r)
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

type showStage struct {
	store.Stage
	BestValLoss number `json:"best_val_loss"`
	BestValAcc  number `json:"best_val_acc"`
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

// describe gathers what thaw show prints.
func describe(ctx context.Context, st *store.Store, r store.Run) (*showOutput, error) {
	sum, err := summarize(ctx, st, r)
	if err != nil {
		return nil, err
	}
	out := &showOutput{runSummary: sum, ParentRun: r.ParentRun, ParentCkpt: r.ParentCheckpoint, ModelHash: r.ModelHash, DatasetHash: r.DatasetHash,
		Seed: r.Seed, Version: r.Version, Heartbeat: r.Heartbeat, Record: r.Plan, Stages: []showStage{}}
	if !r.Finished.IsZero() {
		out.Finished = &r.Finished
	}
	stages, err := st.Stages(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	// Evaluations are few (one per epoch or --eval-every steps): read them
	// all and take each stage's best.
	loss, err := st.Series(ctx, r.ID, trainer.MetricValLoss, 0)
	if err != nil {
		return nil, err
	}
	acc, err := st.Series(ctx, r.ID, trainer.MetricValAcc, 0)
	if err != nil {
		return nil, err
	}
	accAt := make(map[int64]float64, len(acc))
	for _, b := range acc {
		accAt[b.From] = b.Mean
	}
	for _, s := range stages {
		ss := showStage{Stage: s, BestValLoss: number(math.NaN()), BestValAcc: number(math.NaN())}
		for _, b := range loss {
			// An evaluation at a stage's end step belongs to that stage.
			if b.From <= s.Start || (s.End >= 0 && b.From > s.End) {
				continue
			}
			if math.IsNaN(float64(ss.BestValLoss)) || b.Mean < float64(ss.BestValLoss) {
				ss.BestValLoss = number(b.Mean)
				if a, ok := accAt[b.From]; ok {
					ss.BestValAcc = number(a)
				}
			}
		}
		out.Stages = append(out.Stages, ss)
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
	fmt.Fprintf(w, ", %d steps, best val acc %s", o.Steps, fmtPct(float64(o.BestValAcc)))
	if o.BestStep >= 0 {
		fmt.Fprintf(w, " (the lowest val loss, at step %d)", o.BestStep)
	}
	fmt.Fprintf(w, ", max val acc %s\n", fmtPct(float64(o.MaxValAcc)))
	fmt.Fprintf(w, "model %s (sha256 %s)\n", termtext.Sanitize(o.Model), clip(o.ModelHash, 12))
	fmt.Fprintf(w, "data %s (sha256 %s)\n", termtext.Sanitize(o.Dataset), clip(o.DatasetHash, 12))
	fmt.Fprintf(w, "seed %d, thaw %s, created %s", o.Seed, termtext.Sanitize(o.Version), o.Created.Local().Format(time.DateTime))
	if o.Finished != nil {
		fmt.Fprintf(w, ", finished %s", o.Finished.Local().Format(time.DateTime))
	}
	fmt.Fprintln(w)
	if o.ParentRun != "" {
		fmt.Fprintf(w, "branched from run %s at step %d\n", store.Short(o.ParentRun), o.ParentStep)
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
	fmt.Fprintln(tw, "  #\tSTAGE\tTRAINABLE\tSTEPS\tLOWEST VAL LOSS\tVAL ACC THERE")
	for _, st := range o.Stages {
		end := "…"
		if st.End >= 0 {
			end = fmt.Sprint(st.End)
		}
		mark := ""
		if o.BestStep > st.Start && (st.End < 0 || o.BestStep <= st.End) {
			mark = "  * best"
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d–%s\t%s\t%s%s\n", st.Index+1, termtext.Sanitize(st.Name), termtext.Sanitize(strings.Join(st.Trainable, ",")),
			st.Start, end, fmtLoss(float64(st.BestValLoss)), fmtPct(float64(st.BestValAcc)), mark)
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
	if err := st.Delete(ctx, r.ID); err != nil {
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
			r, err := st.Run(ctx, t.Run)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("runs: %w", err)
			}
			if err == nil {
				sum, err := summarize(ctx, st, r)
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
