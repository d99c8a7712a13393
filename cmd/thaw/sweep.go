package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/charmbracelet/x/ansi"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/export"
)

// runSweep is thaw sweep: the first stage of a plan at every freeze
// point, over seeds, recorded as a sweep; a progress line on stderr, then
// the table with the pick and the thaw train command that reproduces it.
func (m *Main) runSweep(ctx context.Context, args []string) error {
	fs := m.newFlags("sweep")
	var f setupFlags
	f.registerJob(fs)
	planFlag := fs.Lookup("plan")
	planFlag.DefValue, f.plan = engine.DefaultSweepPlan, engine.DefaultSweepPlan
	planFlag.Usage += " trained at every freeze point: its first stage, frozen below the point"
	seeds := fs.Int("seeds", engine.DefaultSweepSeeds, fmt.Sprintf("repeat every freeze point over `N` seeds, %d, %d, …", engine.FirstSweepSeed, engine.FirstSweepSeed+1))
	seedList := fs.String("seed-list", "", "repeat every freeze point over these `seeds` (comma-separated), instead of --seeds")
	points := fs.String("points", "all", "the freeze points: all (every block) or `blocks` (comma-separated), each trained with every block above it")
	presets := fs.String("presets", "", "cross the sweep with these `presets` (comma-separated), each in place of --plan, with a table and a pick each")
	shotsList := fs.String("shots-list", "", "cross the sweep with these `shots` per class (comma-separated), each in place of --shots, with a table and a pick each")
	evalEvery := fs.Int("eval-every", 0, "evaluate every `N` steps and at the end of the stage (0: the stage's cadence)")
	workers := fs.Int("workers", 0, "train at most `N` runs at once (0: one per core)")
	resume := fs.String("resume", "", "continue the sweep `ID` (its settings are the sweep's; done runs are kept)")
	show := fs.String("show", "", "print the table of sweep `ID` as it stands and train nothing (a sweep a scheduler runs, say)")
	here := fs.Bool("here", false, "with --resume, train here the tasks a scheduler was given and has not started")
	asJSON := fs.Bool("json", false, "write the result to stdout as one JSON object")
	var sub submitFlags
	sub.register(fs)
	storeDir := storeFlag(fs)
	m.dataBudgetFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *workers < 0 {
		return usagef("sweep: --workers %d: want 0 (one per core) or more", *workers)
	}
	if err := sub.check(); err != nil {
		return err
	}
	if err := sub.preflight(*storeDir); err != nil {
		return err
	}
	eng, st, err := m.openEngine(*storeDir)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	defer st.Close()

	if *show != "" {
		if *resume != "" || sub.to != "" {
			return usagef("sweep: --show prints a sweep's table; it goes with neither --resume nor --submit")
		}
		return m.showSweep(ctx, eng, st, *show, *asJSON)
	}
	var id string
	if *resume != "" {
		var given []string
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "resume", "store", "checkpoints", "json", "workers", "max-data-bytes", "here":
			default:
				if slices.Contains(submitFlagNames, f.Name) {
					return
				}
				given = append(given, "--"+f.Name)
			}
		})
		if len(given) > 0 {
			return usagef("sweep: --resume goes on with the sweep as it was recorded; %s cannot change it", strings.Join(given, ", "))
		}
		sw, err := st.Sweep(ctx, *resume)
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous) {
			return usagef("sweep: %w", err)
		}
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		id = sw.ID
		if sub.to == "" && !*here {
			if n, err := queuedTasks(ctx, st, id); err != nil {
				return fmt.Errorf("sweep: %w", err)
			} else if n > 0 {
				return usagef("sweep %s: %d tasks wait for the scheduler they were submitted to; "+
					"thaw sweep --show %s prints the table as it stands, --resume %s --submit … submits them again, "+
					"--resume %s --here trains them on this machine", store.Short(id), n, store.Short(id), store.Short(id), store.Short(id))
			}
		}
	} else {
		job, err := f.job(*evalEvery)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		spec := engine.SweepSpec{Job: job, PlanRef: f.plan, PlanLR: f.lr, PlanEpochs: f.epochs, PlanSteps: f.steps}
		if spec.Seeds, err = sweepSeeds(*seeds, *seedList); err != nil {
			return err
		}
		if *points != "all" && *points != "" {
			spec.Points = splitList(*points)
		}
		if *presets != "" {
			spec.Presets = splitList(*presets)
		}
		for _, k := range splitList(*shotsList) {
			n, err := strconv.Atoi(k)
			if err != nil || n < 1 {
				return usagef("sweep: --shots-list: %q is not a number of shots (1 or more)", k)
			}
			spec.Shots = append(spec.Shots, n)
		}
		m.limitMemory()
		sw, err := eng.NewSweep(ctx, spec)
		if err != nil {
			return fmt.Errorf("sweep: %w", err)
		}
		id = sw.ID
	}
	if sub.to != "" {
		return m.submitSweep(ctx, eng, id, *storeDir, sub, *workers, *asJSON)
	}
	fmt.Fprintf(m.Stderr, "sweep %s  (thaw sweep --resume %s; thaw runs --sweep %s)\n", id, store.Short(id), store.Short(id))

	line := newSweepLine(m.Stderr)
	tb, runErr := eng.RunSweep(ctx, id, engine.SweepOptions{Workers: *workers, Progress: line.show})
	line.done()
	if tb.Total == 0 {
		return fmt.Errorf("sweep: %w", runErr)
	}
	out := newSweepOutput(tb)
	if *asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	} else {
		out.writeText(m.Stdout)
	}
	switch {
	case errors.Is(runErr, context.Canceled):
		return fmt.Errorf("sweep: interrupted with %d of %d runs done; continue with thaw sweep --resume %s", tb.Done, tb.Total, store.Short(id))
	case runErr != nil:
		return fmt.Errorf("sweep %s: %w", store.Short(id), runErr)
	}
	return nil
}

// queuedTasks counts sweep id's tasks whose runs wait as queued: tasks
// handed to a scheduler (thaw sweep --submit) that it has not started.
func queuedTasks(ctx context.Context, st *store.Store, id string) (int, error) {
	runs, err := st.ListRuns(ctx, store.RunFilter{Tag: engine.SweepTag(id), Status: []trainer.Status{trainer.StatusQueued}})
	return len(runs), err
}

// showSweep prints sweep id's table as it stands: thaw sweep's output,
// with the rows that have results, whatever trains the others.
func (m *Main) showSweep(ctx context.Context, eng *engine.Engine, st *store.Store, id string, asJSON bool) error {
	sw, err := st.Sweep(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous) {
		return usagef("sweep: %w", err)
	}
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	tb, err := eng.SweepTable(ctx, sw.ID)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	out := newSweepOutput(tb)
	if asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
		return nil
	}
	fmt.Fprintf(m.Stdout, "sweep %s: %d of %d runs done\n", store.Short(sw.ID), tb.Done, tb.Total)
	out.writeText(m.Stdout)
	return nil
}

// sweepSeeds returns the seeds of --seeds N or --seed-list.
func sweepSeeds(n int, list string) ([]uint64, error) {
	if list == "" {
		if n < 1 {
			return nil, usagef("sweep: --seeds %d: want at least 1", n)
		}
		return engine.SweepSeeds(n), nil
	}
	var out []uint64
	for _, s := range splitList(list) {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, usagef("sweep: --seed-list: %q is not a seed (a whole number from 0)", s)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, usagef("sweep: --seed-list: no seeds")
	}
	return out, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// sweepLine shows a sweep's progress on a writer: on a terminal one line
// redrawn in place (cut to its width, as a run's progress line is),
// elsewhere a line each time a run ends.
type sweepLine struct {
	mu       sync.Mutex
	p        *progress // the writer, whether it is a terminal, its width
	drew     bool
	lastDone int
	start    time.Time
}

func newSweepLine(w io.Writer) *sweepLine {
	return &sweepLine{p: newProgress(w), lastDone: -1, start: time.Now()}
}

func (l *sweepLine) show(tb engine.SweepTable) {
	l.mu.Lock()
	defer l.mu.Unlock()
	text := fmt.Sprintf("sweep %s %s %d of %d runs done, %d training, %.1f CPU-s, %s",
		store.Short(tb.Sweep.ID), bar(tb.Done, tb.Total, 20), tb.Done, tb.Total, tb.Running, tb.CPU.Seconds(),
		time.Since(l.start).Round(time.Second))
	if l.p.tty {
		if cols := l.p.width(); cols > 1 {
			text = ansi.Truncate(text, cols-1, "…")
		}
		fmt.Fprintf(l.p.w, "\r%s\x1b[K", text)
		l.drew = true
		return
	}
	if tb.Done != l.lastDone {
		fmt.Fprintln(l.p.w, text)
		l.lastDone = tb.Done
	}
}

func (l *sweepLine) done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drew {
		fmt.Fprintln(l.p.w)
		l.drew = false
	}
}

// sweepOutput is the result of thaw sweep: the JSON object of --json and
// the text table.
type sweepOutput struct {
	Sweep      string       `json:"sweep"`
	Name       string       `json:"name"`
	Model      string       `json:"model"`
	Data       string       `json:"data"`
	Plan       string       `json:"plan"`
	Shots      int          `json:"shots"`
	Seeds      []uint64     `json:"seeds"`
	Points     []string     `json:"points"`
	Groups     []sweepGroup `json:"groups"`
	Done       int          `json:"done"`
	Total      int          `json:"total"`
	CPUSeconds number       `json:"cpu_seconds"`
	spec       engine.SweepSpec
}

type sweepGroup struct {
	Preset string     `json:"preset,omitempty"`
	Shots  int        `json:"shots,omitempty"`
	Rows   []sweepRow `json:"rows"`
	// Pick is the picked freeze point, empty without results.
	Pick   string   `json:"pick"`
	Lowest string   `json:"lowest"`
	Within []string `json:"within"`
	Clear  bool     `json:"clear"`
	Note   string   `json:"note"`
	// Test is the pick's test accuracy, measured once after the choice;
	// null without a test split or before every run is done.
	Test *sweepTest `json:"test"`
	// Reproduce is the thaw train command that trains the pick's plan.
	Reproduce string `json:"reproduce"`
}

type sweepRow struct {
	Point       string   `json:"point"`
	Trainable   int      `json:"trainable"`
	Seeds       int      `json:"seeds"`
	ValLossMean number   `json:"val_loss_mean"`
	ValLossSD   number   `json:"val_loss_sd"`
	ValAccMean  number   `json:"val_acc_mean"`
	ValAccSD    number   `json:"val_acc_sd"`
	ValLoss     []number `json:"val_loss"`
	ValAcc      []number `json:"val_acc"`
	Runs        []string `json:"runs"`
	CPUSeconds  number   `json:"cpu_seconds"`
	Picked      bool     `json:"picked"`
}

type sweepTest struct {
	Point   string   `json:"point"`
	Mean    number   `json:"mean"`
	SD      number   `json:"sd"`
	Acc     []number `json:"acc"`
	Samples int      `json:"samples"`
}

func numbers(x []float64) []number {
	out := make([]number, len(x))
	for i, v := range x {
		out[i] = number(v)
	}
	return out
}

func newSweepOutput(tb engine.SweepTable) *sweepOutput {
	sp := tb.Spec
	plan := sp.PlanRef
	if plan == "" && sp.Job.Preset != nil {
		plan = sp.Job.Preset.Name
	}
	out := &sweepOutput{Sweep: tb.Sweep.ID, Name: tb.Sweep.Name, Model: sp.Job.Model, Data: sp.Job.Data.Path,
		Plan: plan, Shots: sp.Job.Shots, Seeds: sp.Seeds, Points: sp.Points, Done: tb.Done, Total: tb.Total,
		CPUSeconds: number(tb.CPU.Seconds()), Groups: []sweepGroup{}, spec: sp}
	for _, g := range tb.Groups {
		og := sweepGroup{Preset: g.Preset, Shots: g.Shots, Rows: []sweepRow{}, Within: []string{}, Clear: g.Pick.Clear, Note: g.Pick.Note}
		for i, r := range g.Rows {
			st := r.Stats()
			og.Rows = append(og.Rows, sweepRow{Point: r.Point, Trainable: r.Trainable, Seeds: st.Seeds,
				ValLossMean: number(st.LossMean), ValLossSD: number(st.LossSD), ValAccMean: number(st.AccMean), ValAccSD: number(st.AccSD),
				ValLoss: numbers(r.ValLoss), ValAcc: numbers(r.ValAcc), Runs: g.Runs[i], CPUSeconds: number(r.CPUSeconds),
				Picked: i == g.Pick.Index})
		}
		if g.Pick.Index >= 0 {
			og.Pick, og.Lowest = g.Rows[g.Pick.Index].Point, g.Rows[g.Pick.Lowest].Point
			for _, i := range g.Pick.Within {
				og.Within = append(og.Within, g.Rows[i].Point)
			}
			og.Reproduce = reproduceCommand(sp, og.Pick, g.Preset, g.Shots)
		}
		if t := g.Test; t != nil {
			og.Test = &sweepTest{Point: t.Point, Mean: number(t.Mean), SD: number(t.SD), Acc: numbers(t.Acc), Samples: t.Samples}
		}
		out.Groups = append(out.Groups, og)
	}
	return out
}

// reproduceCommand is the thaw train command that trains the plan of the
// freeze point picked, on the sweep's first seed.
func reproduceCommand(sp engine.SweepSpec, point, preset string, shots int) string {
	j := sp.ReproduceJob(point, sp.Seeds[0], preset, shots)
	args := []string{"thaw", "train", "--model", j.Model, "--data", j.Data.Path}
	if j.Data.Labels != "" {
		args = append(args, "--labels", j.Data.Labels)
	}
	plan := preset
	if plan == "" {
		plan = sp.PlanRef
	}
	if plan == "" && j.Preset != nil {
		plan = j.Preset.Name
	}
	if plan != "" {
		args = append(args, "--plan", plan)
	}
	if preset == "" {
		lr, epochs, steps := sp.PlanLR, sp.PlanEpochs, sp.PlanSteps
		if r := j.Preset; r != nil && sp.PlanRef == "" {
			lr, epochs, steps = r.LR, r.Epochs, r.Steps
		}
		if lr > 0 {
			args = append(args, "--lr", strconv.FormatFloat(lr, 'g', -1, 64))
		}
		if epochs > 0 {
			args = append(args, "--epochs", strconv.Itoa(epochs))
		}
		if steps > 0 {
			args = append(args, "--steps", strconv.Itoa(steps))
		}
	}
	if j.Shots > 0 {
		args = append(args, "--shots", strconv.Itoa(j.Shots))
	}
	if j.ValSplit != 0 && j.ValSplit != trainer.DefaultValSplit {
		args = append(args, "--val-split", strconv.FormatFloat(j.ValSplit, 'g', -1, 64))
	}
	if j.BatchSize != 0 && j.BatchSize != trainer.DefaultBatchSize {
		args = append(args, "--batch", strconv.Itoa(j.BatchSize))
	}
	if j.EvalEvery > 0 {
		args = append(args, "--eval-every", strconv.Itoa(j.EvalEvery))
	}
	if j.Init == trainer.InitScratch {
		args = append(args, "--init", "scratch")
	}
	args = append(args, "--freeze-below", point, "--seed", strconv.FormatUint(j.Seed, 10))
	for i, a := range args {
		args[i] = shellQuote(a)
	}
	return strings.Join(args, " ")
}

// shellQuote quotes a word for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./,:=+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeText writes the table for a person: per point the lowest
// validation loss and the accuracy there, mean ± sd over the seeds, the
// trainable parameters and the CPU time; ★ on the pick; the pick's note,
// its test accuracy and the command that reproduces it.
func (o *sweepOutput) writeText(w io.Writer) {
	plan := "the first stage of " + termtext.Sanitize(o.Plan)
	if len(o.spec.Presets) > 0 {
		plan = "the first stage of each plan"
	}
	fmt.Fprintf(w, "sweep %s: %s, %s at %d freeze points × %d seeds (%s)\n",
		store.Short(o.Sweep), termtext.Sanitize(o.Name), plan, len(o.Points), len(o.Seeds), seedsString(o.Seeds))
	for _, g := range o.Groups {
		if g.Preset != "" || g.Shots > 0 {
			fmt.Fprintln(w)
			var parts []string
			if g.Preset != "" {
				parts = append(parts, "plan "+termtext.Sanitize(g.Preset))
			}
			if g.Shots > 0 {
				parts = append(parts, fmt.Sprintf("%d shots", g.Shots))
			}
			fmt.Fprintln(w, strings.Join(parts, ", ")+":")
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  \tFREEZE POINT\tTRAINABLE\tLOWEST VAL LOSS\tVAL ACC THERE\tSEEDS\tCPU-S")
		for _, r := range g.Rows {
			star := " "
			if r.Picked {
				star = "★"
			}
			fmt.Fprintf(tw, "%s \t%s\t%d\t%s\t%s\t%d\t%.1f\n", star, termtext.Sanitize(r.Point), r.Trainable,
				meanSD(float64(r.ValLossMean), float64(r.ValLossSD), false), meanSD(float64(r.ValAccMean), float64(r.ValAccSD), true),
				r.Seeds, float64(r.CPUSeconds))
		}
		tw.Flush()
		fmt.Fprintf(w, "★ %s\n", termtext.Sanitize(g.Note))
		if t := g.Test; t != nil {
			fmt.Fprintf(w, "test acc of %s: %s on the %s of the test split (each seed's best checkpoint, measured once, after the choice)\n",
				termtext.Sanitize(t.Point), meanSD(float64(t.Mean), float64(t.SD), true), plural(t.Samples, "sample"))
		}
		if g.Reproduce != "" {
			fmt.Fprintf(w, "reproduce: %s\n", termtext.Sanitize(g.Reproduce))
		}
	}
	fmt.Fprintf(w, "%d of %d runs done, %.1f CPU-s\n", o.Done, o.Total, float64(o.CPUSeconds))
}

// meanSD writes mean ± sd, as a percentage when pct is set; "-" without a
// mean, the mean alone without an sd.
func meanSD(mean, sd float64, pct bool) string {
	if math.IsNaN(mean) {
		return "-"
	}
	if pct {
		if math.IsNaN(sd) {
			return fmt.Sprintf("%.1f%%", 100*mean)
		}
		return fmt.Sprintf("%.1f%% ± %.1f", 100*mean, 100*sd)
	}
	if math.IsNaN(sd) {
		return fmt.Sprintf("%.4f", mean)
	}
	return fmt.Sprintf("%.4f ± %.4f", mean, sd)
}

// seedsString lists seeds: "3001, 3002, 3003".
func seedsString(seeds []uint64) string {
	parts := make([]string, len(seeds))
	for i, s := range seeds {
		parts[i] = strconv.FormatUint(s, 10)
	}
	return strings.Join(parts, ", ")
}

// exportSweep is thaw export --sweep ID: the sweep's figure, with the
// probes of its blocks (measured once, on the sweep's data and seeds, and
// stored with it).
func (m *Main) exportSweep(ctx context.Context, dir storeRef, id, out string, opts export.Options) error {
	eng, st, err := m.openEngine(dir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer st.Close()
	tb, err := eng.SweepTable(ctx, id)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous) {
		return usagef("export: %w", err)
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	probes, err := eng.SweepProbes(ctx, tb.Sweep.ID)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if len(tb.Groups) > 1 {
		fmt.Fprintf(m.Stderr, "note: the sweep crosses %d presets or shots; the figure draws the first\n", len(tb.Groups))
	}
	fig := export.SweepFigure(tb, 0, probes)
	if opts.Title == "" {
		opts.Title = "sweep " + store.Short(tb.Sweep.ID) + ": " + tb.Sweep.Name
	}
	notes, err := export.WriteSweep(out, fig, opts)
	for _, n := range notes {
		fmt.Fprintf(m.Stderr, "note: %s\n", termtext.Sanitize(n))
	}
	if errors.Is(err, export.ErrNoData) {
		return fmt.Errorf("export: %w", asUsage(err))
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(m.Stderr, "wrote %s\n", termtext.Sanitize(out))
	return nil
}
