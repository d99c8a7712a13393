package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
)

// runTrain is thaw train: fine-tune a base model on a dataset with a plan,
// headless, recording the run in the store.
func (m *Main) runTrain(ctx context.Context, args []string) error {
	fs := m.newFlags("train")
	var f setupFlags
	f.register(fs)
	asJSON := fs.Bool("json", false, "write the result to stdout as one JSON object")
	save := fs.String("save", "", "write the fine-tuned model (best weights) to `dir`, loadable as a base model")
	evalEvery := fs.Int("eval-every", 0, "evaluate every `N` steps and at the end of every stage (0: the stages' cadence, for a preset every epoch or every twentieth of the stage, whichever is longer)")
	name := fs.String("name", "", "a `name` for the stored run (default: the plan, model and data)")
	freezeBelow := fs.String("freeze-below", "", "the plan's first stage trains `BLOCK` and every block above it, and freezes every block below")
	sweep := fs.String("sweep", "", "train one task of sweep `ID` (with --index): the job is the sweep's; a retried index resumes its run")
	index := fs.Int("index", -1, "the task `I` of --sweep to train, from 0 (a Slurm array's or an Indexed Job's index)")
	storeDir := storeFlag(fs)
	m.dataBudgetFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage of thaw train:")
		fs.PrintDefaults()
		writePresetFlags(fs.Output())
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *sweep != "" || *index >= 0 {
		return m.trainSweepTask(ctx, fs, *storeDir, *sweep, *index, *asJSON, *save)
	}
	job, err := f.job(*evalEvery)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	m.limitMemory()
	job.FreezeBelow = *freezeBelow
	eng, st, err := m.openEngine(*storeDir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer st.Close()
	prog := newProgress(m.Stderr)
	live, err := eng.Start(ctx, job, engine.StartOptions{Name: *name, Ready: m.announce, Report: prog.report})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := m.finishRun(ctx, eng, live, prog, *asJSON, *save); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// trainSweepTask is thaw train --sweep ID --index I: one task of a sweep,
// claimed, resumed or restarted, its processor time added to the task's.
func (m *Main) trainSweepTask(ctx context.Context, fs *flag.FlagSet, dir storeRef, sweep string, index int, asJSON bool, save string) error {
	var job []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "sweep", "index", "store", "checkpoints", "json", "save", "max-data-bytes":
		default:
			job = append(job, "--"+f.Name)
		}
	})
	switch {
	case sweep == "" || index < 0:
		return usagef("train: --sweep ID and --index I go together (I from 0)")
	case len(job) > 0:
		return usagef("train: --sweep takes its job from the sweep; %s cannot change it", strings.Join(job, ", "))
	}
	m.limitMemory()
	cpu := engine.ProcessCPU()
	eng, st, err := m.openEngine(dir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer st.Close()
	prog := newProgress(m.Stderr)
	live, task, err := eng.StartSweepTask(ctx, sweep, index, engine.StartOptions{Ready: m.announce, Report: prog.report})
	switch {
	case errors.Is(err, engine.ErrTaskDone):
		fmt.Fprintf(m.Stderr, "%s: nothing to train\n", termtext.Sanitize(err.Error()))
		return nil
	case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAmbiguous):
		return usagef("train: %w", err)
	case err != nil:
		return fmt.Errorf("train: %w", err)
	}
	if live.Resumed.State != nil {
		// A retried index: its run was stopped or interrupted before.
		m.announceResume(live)
	}
	runErr := m.finishRun(ctx, eng, live, prog, asJSON, save)
	if err := eng.AddSweepCPU(context.WithoutCancel(ctx), task.Sweep, index, engine.ProcessCPU()-cpu); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return fmt.Errorf("train: %w", runErr)
	}
	return nil
}

// finishRun waits for a run to end, prints its result whatever its
// outcome, saves the best model when asked, and returns the error that
// decides the exit code.
func (m *Main) finishRun(ctx context.Context, eng *engine.Engine, live *engine.Live, prog *progress, asJSON bool, save string) error {
	// A stop request is answered at once; the run ends within a batch.
	stopMsg := context.AfterFunc(ctx, prog.stopping)
	defer stopMsg()
	res, runErr := live.Wait()
	prog.done()
	stopped := errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded)
	if stopped {
		res.Status = trainer.StatusStopped
	}
	p := live.Prepared
	out := newTrainOutput(p, res, runErr)
	out.Run = live.ID
	// The best, its figures and the total as every other view reads
	// them from the store (for a branch, over its whole history), so
	// that the summary and --save agree with thaw show.
	if v, err := engine.Read(context.WithoutCancel(ctx), eng.Store(), live.ID); err == nil {
		out.TotalSteps = int(v.TotalSteps)
		if v.Best.Step >= 0 {
			out.BestStep, out.BestValLoss, out.BestValAcc = int(v.Best.Step), number(v.Best.ValLoss), number(v.Best.ValAcc)
			out.SourceAccBest = number(v.SourceAccBest)
		}
		if !math.IsNaN(v.SourceAccBefore) {
			out.SourceAccBefore = number(v.SourceAccBefore)
		}
	}
	if err := testScore(eng, out, p, res); err != nil {
		fmt.Fprintf(m.Stderr, "no test score: %s\n", termtext.Sanitize(err.Error()))
	}
	if asJSON {
		enc := json.NewEncoder(m.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fmt.Errorf("write result: %w", err)
		}
	} else {
		out.writeText(m.Stdout)
	}

	switch {
	case stopped || (runErr == nil && res.Status == trainer.StatusStopped):
		return fmt.Errorf("interrupted at step %d of %d; continue with thaw resume %s", res.Steps, out.TotalSteps, store.Short(live.ID))
	case runErr != nil:
		return fmt.Errorf("run %s: %w", store.Short(live.ID), runErr)
	}
	if save != "" {
		best := res.Best
		if mod, _, err := eng.CheckpointModel(ctx, live.ID, "best"); err == nil {
			// The stored best: the one thaw show and the figures name.
			p.Model, best = mod, nil
		}
		if err := saveBest(save, p.Model, best); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		fmt.Fprintf(m.Stderr, "saved the fine-tuned model to %s\n", termtext.Sanitize(save))
	}
	return nil
}

// testScore measures the model --save writes (the best weights, else the
// final ones) on the task's test split, when it has one: a score that
// selected nothing, beside the validation figures.
func testScore(eng *engine.Engine, out *trainOutput, p *trainer.Prepared, res trainer.Result) error {
	acc, n, err := eng.TestScore(p, res)
	if err != nil || n == 0 {
		return err
	}
	out.TestAcc, out.TestSamples = number(acc), n
	return nil
}

// saveBest writes the model with the best weights of the run (its current
// weights when nothing was evaluated) as a base model folder.
func saveBest(dir string, mod *trainer.Model[float32], best []trainer.SafeTensor) error {
	if best != nil {
		if err := mod.LoadState(best); err != nil {
			return err
		}
	}
	return trainer.SaveModel(dir, mod)
}

// number is a float that encodes NaN and infinities as JSON null.
type number float64

func (n number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, f, 'g', -1, 64), nil
}

// trainOutput is the result of thaw train: the JSON object of --json and
// the text summary.
type trainOutput struct {
	Run          string              `json:"run"`
	Model        string              `json:"model"`
	Dataset      string              `json:"dataset"`
	Classes      []string            `json:"classes"`
	HeadReplaced bool                `json:"head_replaced"`
	TrainSamples int                 `json:"train_samples"`
	ValSamples   int                 `json:"val_samples"`
	Seed         uint64              `json:"seed"`
	BatchSize    int                 `json:"batch_size"`
	Plan         trainer.PlanSummary `json:"plan"`
	Stages       []stageResult       `json:"stages"`

	FinalValAcc  number `json:"final_val_acc"`
	FinalValLoss number `json:"final_val_loss"`
	// FinalSkipped: the run was stopped and its final evaluation skipped.
	FinalSkipped    bool   `json:"final_eval_skipped,omitempty"`
	BestValAcc      number `json:"best_val_acc"`
	BestValLoss     number `json:"best_val_loss"`
	BestStep        int    `json:"best_step"`
	SourceAccBefore number `json:"source_acc_before"`
	SourceAccAfter  number `json:"source_acc_after"`
	// SourceAccBest is the gauge at the best step: the model --save
	// writes, which is not the final weights.
	SourceAccBest number `json:"source_acc_best"`
	// TestAcc is the accuracy of the saved weights on the task's test
	// split (null without one): measured once, at the end, it selects
	// nothing.
	TestAcc     number `json:"test_acc"`
	TestSamples int    `json:"test_samples,omitempty"`

	Audit         auditOutput `json:"audit"`
	SamplesPerSec number      `json:"samples_per_sec"`
	WallSeconds   number      `json:"wall_seconds"`
	Status        string      `json:"status"`
	Steps         int         `json:"steps"`
	TotalSteps    int         `json:"total_steps"`
	Error         string      `json:"error,omitempty"`
}

type stageResult struct {
	Label        string `json:"label"`
	StartStep    int    `json:"start_step"`
	EndStep      int    `json:"end_step"`
	BestValLoss  number `json:"best_val_loss"`
	BestValAcc   number `json:"best_val_acc"`
	StoppedEarly bool   `json:"stopped_early"`
	Skipped      bool   `json:"skipped"`
	// Unfinished marks the stage the run was in when it ended before the
	// plan did: EndStep is then the step it reached.
	Unfinished bool `json:"unfinished,omitempty"`
	// HoldsBest marks the stage whose evaluation is the run's best.
	HoldsBest bool `json:"holds_best,omitempty"`
}

type auditOutput struct {
	Checked []string `json:"checked"`
	Changed []string `json:"changed"`
	Passed  bool     `json:"passed"`
}

func newTrainOutput(p *trainer.Prepared, res trainer.Result, runErr error) *trainOutput {
	mod := p.Model
	out := &trainOutput{
		Model:           p.ModelName,
		Dataset:         p.Train.Name,
		Classes:         mod.Config.Classes,
		HeadReplaced:    p.HeadReplaced,
		TrainSamples:    p.Train.Len(),
		ValSamples:      p.Val.Len(),
		Seed:            p.Job.Seed,
		BatchSize:       p.Spec().BatchSize,
		Plan:            p.Summary(),
		Stages:          []stageResult{},
		FinalValAcc:     number(res.FinalValAcc),
		FinalValLoss:    number(res.FinalValLoss),
		FinalSkipped:    res.FinalSkipped,
		BestValAcc:      number(res.BestValAcc),
		BestValLoss:     number(res.BestValLoss),
		BestStep:        res.BestStep,
		SourceAccBefore: number(res.SourceAccBefore),
		SourceAccAfter:  number(res.SourceAccAfter),
		SourceAccBest:   number(math.NaN()),
		TestAcc:         number(math.NaN()),
		Audit: auditOutput{
			Checked: nonNil(res.Audit.Checked),
			Changed: nonNil(res.Audit.Changed),
			Passed:  res.Audit.Passed(),
		},
		SamplesPerSec: number(res.SamplesPerSec),
		WallSeconds:   number(res.Wall.Seconds()),
		Status:        string(res.Status),
		Steps:         res.Steps,
		TotalSteps:    p.TotalSteps(),
	}
	if runErr != nil {
		out.Error = runErr.Error()
	}
	for i, st := range res.Stages {
		sr := stageResult{
			Label: st.Label, StartStep: st.StartStep, EndStep: st.EndStep,
			BestValLoss: number(st.BestValLoss), BestValAcc: number(st.BestValAcc),
			StoppedEarly: st.StoppedEarly, Skipped: st.Skipped,
		}
		// The trainer sets a stage's end when the stage ends; the stage a
		// stopped, diverged or failed run was in has none yet.
		if i == len(res.Stages)-1 && st.EndStep <= st.StartStep && res.Steps > st.StartStep {
			sr.EndStep, sr.Unfinished = res.Steps, true
		}
		sr.HoldsBest = res.BestStep > st.StartStep && res.BestStep <= sr.EndStep
		out.Stages = append(out.Stages, sr)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// writeText writes the result for a person: the stages, then the totals.
func (o *trainOutput) writeText(w io.Writer) {
	fmt.Fprintf(w, "model %s on %s: %s, %s, %s",
		termtext.Sanitize(o.Model), termtext.Sanitize(o.Dataset), plural(o.TrainSamples, "training sample"),
		plural(o.ValSamples, "validation sample"), plural(len(o.Classes), "class"))
	if o.HeadReplaced {
		fmt.Fprint(w, " (new head)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// Each stage's row gives its lowest validation loss and the accuracy
	// there; the stage marked * holds the run's best.
	fmt.Fprintln(tw, "STAGE\tTRAINABLE\tSTEPS\tLOWEST VAL LOSS\tVAL ACC THERE")
	for i, st := range o.Stages {
		trainable := ""
		if i < len(o.Plan.Stages) {
			trainable = strings.Join(o.Plan.Stages[i].Trainable, ",")
		}
		note := ""
		switch {
		case st.Unfinished:
			note = "(" + o.Status + " here)"
		case st.Skipped:
			note = "(skipped)"
		case st.StoppedEarly:
			note = "(stopped early)"
		}
		if st.HoldsBest {
			note = strings.TrimSpace("* best " + note)
		}
		if note != "" {
			note = "  " + note
		}
		fmt.Fprintf(tw, "%s\t%s\t%d–%d\t%s\t%s%s\n", termtext.Sanitize(st.Label), termtext.Sanitize(trainable),
			st.StartStep, st.EndStep, fmtLoss(float64(st.BestValLoss)), fmtPct(float64(st.BestValAcc)), note)
	}
	tw.Flush()
	final := fmtPct(float64(o.FinalValAcc))
	if o.FinalSkipped {
		final = "- (skipped: stopped)"
	}
	fmt.Fprintf(w, "best val acc %s (the lowest val loss, %s, at step %d; --save writes these weights), final val acc %s\n",
		fmtPct(float64(o.BestValAcc)), fmtLoss(float64(o.BestValLoss)), o.BestStep, final)
	if o.TestSamples > 0 {
		fmt.Fprintf(w, "test acc %s on the %s of the test split (the saved weights, measured once: it selects nothing)\n",
			fmtPct(float64(o.TestAcc)), plural(o.TestSamples, "sample"))
	}
	if !math.IsNaN(float64(o.SourceAccBefore)) {
		fmt.Fprintf(w, "source acc: %s before, %s after, %s at the best step (the saved weights)\n",
			fmtPct(float64(o.SourceAccBefore)), fmtPct(float64(o.SourceAccAfter)), fmtPct(float64(o.SourceAccBest)))
	}
	audit := "passed"
	if !o.Audit.Passed {
		audit = "FAILED: changed " + strings.Join(o.Audit.Changed, ", ")
	}
	fmt.Fprintf(w, "freeze audit: %d never-trainable blocks checked, %s\n", len(o.Audit.Checked), termtext.Sanitize(audit))
	fmt.Fprintf(w, "status %s after %d of %d steps, %.1f s, %s samples/s\n",
		o.Status, o.Steps, o.TotalSteps, float64(o.WallSeconds), fmtRate(float64(o.SamplesPerSec)))
}

// plural says n things: "1 class", "2 classes", "1 sample", "0 samples".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	if strings.HasSuffix(thing, "s") {
		return fmt.Sprintf("%d %ses", n, thing)
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
