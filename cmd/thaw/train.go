package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"thaw/trainer/termtext"

	"thaw/store"
	"thaw/trainer"
)

// runTrain is thaw train: fine-tune a base model on a dataset with a plan,
// headless, recording the run in the store.
func (m *Main) runTrain(ctx context.Context, args []string) error {
	fs := m.newFlags("train")
	var f setupFlags
	f.register(fs)
	asJSON := fs.Bool("json", false, "write the result to stdout as one JSON object")
	save := fs.String("save", "", "write the fine-tuned model (best weights) to `dir`, loadable as a base model")
	evalEvery := fs.Int("eval-every", 0, "also evaluate every `N` steps (0: at the end of every epoch and stage only)")
	name := fs.String("name", "", "a `name` for the stored run (default: the plan, model and data)")
	storeDir := storeFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *evalEvery < 0 {
		return usagef("--eval-every %d: want 0 or more", *evalEvery)
	}
	s, err := m.prepare(&f)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	st, run, err := m.createRun(s, &f, *evalEvery, *name, *storeDir)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer st.Close()

	prog := newProgress(m.Stderr)
	res, runErr := st.Train(ctx, run.ID, s.spec(&f, *evalEvery), prog.report)
	prog.done()
	if err := m.finishRun(s, &f, run, res, runErr, *asJSON, *save); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}

// spec is the trainer's spec for a prepared setup.
func (s *setup) spec(f *setupFlags, evalEvery int) trainer.Spec {
	return trainer.Spec{
		Model:      s.base.m,
		Plan:       s.plan,
		Train:      s.train,
		Val:        s.val,
		Source:     s.source,
		SourceHead: s.sourceHead,
		Seed:       f.seed,
		BatchSize:  f.batch,
		EvalEvery:  evalEvery,
	}
}

// createRun opens the store and records a new run of s with what thaw
// resume needs to rebuild it, and says so on stderr.
func (m *Main) createRun(s *setup, f *setupFlags, evalEvery int, name, dir string) (*store.Store, store.Run, error) {
	in, err := newRunInputs(f, evalEvery)
	if err != nil {
		return nil, store.Run{}, err
	}
	rec, err := json.Marshal(runRecord{Version: runRecordVersion, Inputs: in, Plan: newPlanOutput(s, f)})
	if err != nil {
		return nil, store.Run{}, err
	}
	modelHash, err := hashModel(s.base.m)
	if err != nil {
		return nil, store.Run{}, err
	}
	if name == "" {
		// A task or file as the user named it: the training set itself is
		// called after its split ("digits-5to9/train").
		name = fmt.Sprintf("%s: %s on %s", s.plan.Name, filepath.Base(s.base.name), filepath.Base(f.data.data))
	}
	st, err := openStore(dir)
	if err != nil {
		return nil, store.Run{}, err
	}
	run, err := st.CreateRun(context.Background(), store.Run{
		Name: name, Model: s.base.name, ModelHash: modelHash,
		Dataset: s.train.Name, DatasetHash: hashData(s.train, s.val),
		Plan: rec, Seed: int64(f.seed), Version: thawVersion(),
	})
	if err != nil {
		st.Close()
		return nil, store.Run{}, err
	}
	fmt.Fprintf(m.Stderr, "run %s  (thaw show %s)\n", run.ID, store.Short(run.ID))
	return st, run, nil
}

// thawVersion is the module version of this binary, "devel" for a build
// from a work tree.
func thawVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// finishRun prints the result of a run, whatever its outcome, saves the
// best model when asked, and returns the error that decides the exit code.
func (m *Main) finishRun(s *setup, f *setupFlags, run store.Run, res trainer.Result, runErr error, asJSON bool, save string) error {
	stopped := errors.Is(runErr, context.Canceled) || errors.Is(runErr, context.DeadlineExceeded)
	if stopped {
		res.Status = trainer.StatusStopped
	}
	out := newTrainOutput(s, f, res, runErr)
	out.Run = run.ID
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
	case stopped:
		return fmt.Errorf("interrupted at step %d of %d; continue with thaw resume %s", res.Steps, out.TotalSteps, store.Short(run.ID))
	case runErr != nil:
		return fmt.Errorf("run %s: %w", store.Short(run.ID), runErr)
	}
	if save != "" {
		if err := saveBest(save, s.base.m, res.Best); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		fmt.Fprintf(m.Stderr, "saved the fine-tuned model to %s\n", termtext.Sanitize(save))
	}
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
	Run          string        `json:"run"`
	Model        string        `json:"model"`
	Dataset      string        `json:"dataset"`
	Classes      []string      `json:"classes"`
	HeadReplaced bool          `json:"head_replaced"`
	TrainSamples int           `json:"train_samples"`
	ValSamples   int           `json:"val_samples"`
	Seed         uint64        `json:"seed"`
	BatchSize    int           `json:"batch_size"`
	Plan         planOutput    `json:"plan"`
	Stages       []stageResult `json:"stages"`

	FinalValAcc     number `json:"final_val_acc"`
	FinalValLoss    number `json:"final_val_loss"`
	BestValAcc      number `json:"best_val_acc"`
	BestValLoss     number `json:"best_val_loss"`
	BestStep        int    `json:"best_step"`
	SourceAccBefore number `json:"source_acc_before"`
	SourceAccAfter  number `json:"source_acc_after"`

	Audit         auditOutput `json:"audit"`
	SamplesPerSec number      `json:"samples_per_sec"`
	WallSeconds   number      `json:"wall_seconds"`
	Status        string      `json:"status"`
	Steps         int         `json:"steps"`
	TotalSteps    int         `json:"total_steps"`
	Error         string      `json:"error,omitempty"`
}

// planOutput is the plan as run: every stage resolved.
type planOutput struct {
	Name   string        `json:"name"`
	Stages []stageOutput `json:"stages"`
}

type stageOutput struct {
	Label     string                  `json:"label"`
	Trainable []string                `json:"trainable"`
	LR        float64                 `json:"lr"`
	LRFactor  float64                 `json:"lr_factor"`
	Schedule  trainer.Schedule        `json:"schedule"`
	Optimizer trainer.OptimizerConfig `json:"optimizer"`
	Epochs    int                     `json:"epochs,omitempty"`
	Steps     int                     `json:"steps"` // the length in optimizer steps
}

type stageResult struct {
	Label        string `json:"label"`
	StartStep    int    `json:"start_step"`
	EndStep      int    `json:"end_step"`
	BestValLoss  number `json:"best_val_loss"`
	BestValAcc   number `json:"best_val_acc"`
	StoppedEarly bool   `json:"stopped_early"`
	Skipped      bool   `json:"skipped"`
}

type auditOutput struct {
	Checked []string `json:"checked"`
	Changed []string `json:"changed"`
	Passed  bool     `json:"passed"`
}

func newTrainOutput(s *setup, f *setupFlags, res trainer.Result, runErr error) *trainOutput {
	mod := s.base.m
	spe := trainer.StepsPerEpoch(s.train.Len(), f.batch)
	out := &trainOutput{
		Model:           s.base.name,
		Dataset:         s.train.Name,
		Classes:         mod.Config.Classes,
		HeadReplaced:    s.replaced,
		TrainSamples:    s.train.Len(),
		ValSamples:      s.val.Len(),
		Seed:            f.seed,
		BatchSize:       f.batch,
		Plan:            newPlanOutput(s, f),
		Stages:          []stageResult{},
		FinalValAcc:     number(res.FinalValAcc),
		FinalValLoss:    number(res.FinalValLoss),
		BestValAcc:      number(res.BestValAcc),
		BestValLoss:     number(res.BestValLoss),
		BestStep:        res.BestStep,
		SourceAccBefore: number(res.SourceAccBefore),
		SourceAccAfter:  number(res.SourceAccAfter),
		Audit: auditOutput{
			Checked: nonNil(res.Audit.Checked),
			Changed: nonNil(res.Audit.Changed),
			Passed:  res.Audit.Passed(),
		},
		SamplesPerSec: number(res.SamplesPerSec),
		WallSeconds:   number(res.Wall.Seconds()),
		Status:        string(res.Status),
		Steps:         res.Steps,
		TotalSteps:    s.plan.Len(spe),
	}
	if runErr != nil {
		out.Error = runErr.Error()
	}
	for _, st := range res.Stages {
		out.Stages = append(out.Stages, stageResult{
			Label: st.Label, StartStep: st.StartStep, EndStep: st.EndStep,
			BestValLoss: number(st.BestValLoss), BestValAcc: number(st.BestValAcc),
			StoppedEarly: st.StoppedEarly, Skipped: st.Skipped,
		})
	}
	return out
}

// newPlanOutput describes the resolved plan of s.
func newPlanOutput(s *setup, f *setupFlags) planOutput {
	spe := trainer.StepsPerEpoch(s.train.Len(), f.batch)
	out := planOutput{Name: s.plan.Name, Stages: []stageOutput{}}
	for _, st := range s.plan.Stages {
		out.Stages = append(out.Stages, stageOutput{
			Label: st.Label, Trainable: st.Trainable, LR: st.LR, LRFactor: st.LRFactor,
			Schedule: st.Schedule, Optimizer: st.Optimizer, Epochs: st.Epochs, Steps: st.Len(spe),
		})
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
	fmt.Fprintf(w, "model %s on %s: %d training, %d validation samples, %d classes",
		termtext.Sanitize(o.Model), termtext.Sanitize(o.Dataset), o.TrainSamples, o.ValSamples, len(o.Classes))
	if o.HeadReplaced {
		fmt.Fprint(w, " (new head)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tTRAINABLE\tSTEPS\tBEST VAL LOSS\tBEST VAL ACC")
	for i, st := range o.Stages {
		trainable := ""
		if i < len(o.Plan.Stages) {
			trainable = strings.Join(o.Plan.Stages[i].Trainable, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%d–%d\t%s\t%s\n", termtext.Sanitize(st.Label), termtext.Sanitize(trainable),
			st.StartStep, st.EndStep, fmtLoss(float64(st.BestValLoss)), fmtPct(float64(st.BestValAcc)))
	}
	tw.Flush()
	fmt.Fprintf(w, "val acc: final %s, best %s (step %d)\n", fmtPct(float64(o.FinalValAcc)), fmtPct(float64(o.BestValAcc)), o.BestStep)
	if !math.IsNaN(float64(o.SourceAccBefore)) {
		fmt.Fprintf(w, "source acc: %s before, %s after\n", fmtPct(float64(o.SourceAccBefore)), fmtPct(float64(o.SourceAccAfter)))
	}
	audit := "passed"
	if !o.Audit.Passed {
		audit = "FAILED: changed " + strings.Join(o.Audit.Changed, ", ")
	}
	fmt.Fprintf(w, "freeze audit: %d never-trainable blocks checked, %s\n", len(o.Audit.Checked), termtext.Sanitize(audit))
	fmt.Fprintf(w, "status %s after %d of %d steps, %.1f s, %s samples/s\n",
		o.Status, o.Steps, o.TotalSteps, float64(o.WallSeconds), fmtRate(float64(o.SamplesPerSec)))
}
