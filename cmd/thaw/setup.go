package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"thaw/trainer/termtext"

	"thaw/assets"
	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// setupFlags are the flags train and lr-find share: what to fine-tune, on
// what, and how. They become a trainer.Job.
type setupFlags struct {
	model    string
	data     trainer.DataRef
	plan     string
	shots    int
	valSplit float64
	batch    int
	lr       float64
	epochs   int
	steps    int
	seed     uint64
	init     string
}

func (s *setupFlags) register(fs *flag.FlagSet) {
	s.registerJob(fs)
	fs.Uint64Var(&s.seed, "seed", 1, "seed of every random choice: split, shots, new head, batch order")
}

// registerJob registers every flag of register but --seed, for a command
// that runs a job over several seeds (thaw sweep).
func (s *setupFlags) registerJob(fs *flag.FlagSet) {
	fs.StringVar(&s.model, "model", "", "base model: a zoo model's `name` or a folder with config.json and model.safetensors")
	dataFlags(fs, &s.data, "training data: a built-in task, a .csv/.csv.gz file, an IDX images file or an image folder")
	fs.StringVar(&s.plan, "plan", "gradual", "a preset ("+strings.Join(presetNames(), ", ")+") or a plan JSON `file`")
	fs.IntVar(&s.shots, "shots", 0, "train on `K` samples per class, drawn after the validation split (0: all)")
	fs.Float64Var(&s.valSplit, "val-split", trainer.DefaultValSplit, "`fraction` of the data held out for validation, stratified by class")
	fs.IntVar(&s.batch, "batch", trainer.DefaultBatchSize, "batch size")
	fs.Float64Var(&s.lr, "lr", 0, "peak learning rate of every stage (0: the plan's)")
	fs.IntVar(&s.epochs, "epochs", 0, "epochs of every stage (0: the plan's)")
	fs.IntVar(&s.steps, "steps", 0, "optimizer steps of every stage, instead of --epochs (0: the plan's)")
	fs.StringVar(&s.init, "init", "pretrained", "where the weights start: `pretrained` (the base model's) or scratch (the same architecture, freshly initialised from --seed)")
}

// dataFlags registers --data and --labels.
func dataFlags(fs *flag.FlagSet, d *trainer.DataRef, usage string) {
	fs.StringVar(&d.Path, "data", "", usage)
	fs.StringVar(&d.Labels, "labels", "", "IDX labels `file` (default: found next to the images by MNIST's naming)")
}

// dataBudgetFlag registers --max-data-bytes, the memory budget of the
// data the command loads, kept in m.maxData.
func (m *Main) dataBudgetFlag(fs *flag.FlagSet) {
	fs.Var((*byteSize)(&m.maxData), "max-data-bytes", fmt.Sprintf("memory `budget` of the data loaded, in bytes or with a K, M or G suffix (default %s)", formatSize(trainer.DefaultMaxDataBytes)))
}

// limitMemory sets the soft memory limit of a command that runs one job
// from its data budget (see trainer.RunMemoryLimit); thaw serve, which
// runs many, sets none.
func (m *Main) limitMemory() {
	if m.setMemoryLimit != nil {
		m.setMemoryLimit(trainer.RunMemoryLimit(m.maxData))
	}
}

// byteSize is a flag value of bytes: a whole number, or one with a K, M or
// G suffix (powers of 1024, "B" or "iB" after it allowed: 512M, 2GiB).
type byteSize int64

func (b *byteSize) String() string {
	if b == nil || *b == 0 {
		return ""
	}
	return formatSize(int64(*b))
}

func (b *byteSize) Set(s string) error {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	shift := 0
	if t != "" {
		switch t[len(t)-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		}
		if shift > 0 {
			t = t[:len(t)-1]
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64>>shift {
		return fmt.Errorf("%q: want a positive number of bytes, such as 1G or 512M", s)
	}
	*b = byteSize(n << shift)
	return nil
}

// formatSize writes n bytes as Set reads them, in the largest unit that
// divides n.
func formatSize(n int64) string {
	for _, u := range []struct {
		shift  int
		suffix string
	}{{30, "G"}, {20, "M"}, {10, "K"}} {
		if n%(1<<u.shift) == 0 {
			return strconv.FormatInt(n>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func presetNames() []string {
	var names []string
	for _, p := range trainer.Presets() {
		names = append(names, p.Name)
	}
	return names
}

// job checks the flags and returns the job they describe.
func (s *setupFlags) job(evalEvery int) (trainer.Job, error) {
	switch {
	case s.model == "":
		return trainer.Job{}, usagef("--model is required (a zoo model or a folder; see thaw models)")
	case s.data.Path == "":
		return trainer.Job{}, usagef("--data is required (a task, a CSV or IDX file, or an image folder; see thaw datasets)")
	case s.batch < 1:
		return trainer.Job{}, usagef("--batch %d: want at least 1", s.batch)
	case !(s.lr >= 0) || math.IsInf(s.lr, 0):
		return trainer.Job{}, usagef("--lr %v: must be finite: want a positive rate, or 0 for the plan's", s.lr)
	case s.epochs < 0:
		return trainer.Job{}, usagef("--epochs %d: want a positive count, or 0 for the plan's", s.epochs)
	case s.steps < 0:
		return trainer.Job{}, usagef("--steps %d: want a positive count, or 0 for the plan's", s.steps)
	case s.steps > 0 && s.epochs > 0:
		return trainer.Job{}, usagef("--epochs %d and --steps %d: give a stage's length one way", s.epochs, s.steps)
	case s.init != "pretrained" && s.init != string(trainer.InitScratch):
		return trainer.Job{}, usagef("--init %q: want pretrained or scratch", s.init)
	}
	job := trainer.Job{
		Model: s.model, Data: s.data, Shots: s.shots, ValSplit: s.valSplit,
		BatchSize: s.batch, Seed: s.seed, EvalEvery: evalEvery,
	}
	if s.init == string(trainer.InitScratch) {
		job.Init = trainer.InitScratch
	}
	// The job's own rules (split, shots, cadence) are checked where they
	// live; a flag's value out of range is a usage error.
	if err := job.CheckSettings(); err != nil {
		return trainer.Job{}, asUsage(err)
	}
	if err := job.SetPlan(s.plan, s.lr, s.epochs, s.steps); err != nil {
		return trainer.Job{}, err
	}
	return job, nil
}

// catalog is what resolves the names of models and data.
func (m *Main) catalog() *assets.Catalog {
	return &assets.Catalog{Zoo: m.Zoo, MaxBytes: m.maxData, MaxBytesName: "--max-data-bytes"}
}

// preparer is an engine without a store: it prepares jobs and labels
// inputs for the commands that record nothing (lr-find, predict).
func (m *Main) preparer() *engine.Engine { return engine.New(nil, m.catalog()) }

// openEngine opens the store at ref (the default place when it names
// none) and returns the engine that runs jobs recorded there; the caller
// closes the store.
func (m *Main) openEngine(ref storeRef) (*engine.Engine, *store.Store, error) {
	st, err := openStore(ref)
	if err != nil {
		return nil, nil, err
	}
	return engine.New(st, m.catalog(), engine.WithVersion(thawVersion())), st, nil
}

// thawVersion is the module version of this binary; for a build from a
// work tree, "devel" with the commit when the build recorded one
// ("devel 1528e44e1c2a", "+dirty" when the tree had changes).
func thawVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	v := "devel"
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev != "" {
		v += " " + rev[:min(len(rev), 12)] + dirty
	}
	return v
}

// announce says on stderr which run is training.
func (m *Main) announce(l *engine.Live) {
	fmt.Fprintf(m.Stderr, "run %s  (thaw show %s)\n", l.ID, store.Short(l.ID))
	if l.Prepared != nil {
		writePlan(m.Stderr, l.Prepared)
	}
}

// writePlan says what a run will do before it starts: the data, then
// every stage with its trainable blocks, length and peak rate.
func writePlan(w io.Writer, p *trainer.Prepared) {
	sum := p.Summary()
	fmt.Fprintf(w, "plan %s: %d stages, %d steps of %d samples (%d training samples, %d steps an epoch)\n",
		termtext.Sanitize(sum.Name), len(sum.Stages), p.TotalSteps(), p.Spec().BatchSize, p.Train.Len(), p.StepsPerEpoch())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  STAGE\tTRAINABLE\tSTEPS\tPEAK LR\tSCHEDULE")
	for _, st := range sum.Stages {
		lr := fmt.Sprintf("%g", st.LR)
		if st.LRFactor > 1 && len(st.Trainable) > 1 {
			lr += fmt.Sprintf(" (÷%.3g a block down)", st.LRFactor)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", termtext.Sanitize(st.Label), termtext.Sanitize(strings.Join(st.Trainable, ",")),
			st.Steps, lr, st.Schedule.Kind)
	}
	tw.Flush()
	var eps []string
	for _, st := range p.Plan.Stages {
		eps = append(eps, fmt.Sprintf("%g", st.LabelSmoothing))
	}
	if same := len(slices.Compact(slices.Clone(eps))) == 1; !same || eps[0] != "0" {
		by := eps[0]
		if !same {
			by = strings.Join(eps, ", ") + " (stage by stage)"
		}
		fmt.Fprintf(w, "loss: cross-entropy with labels smoothed by %s, in training and validation\n", by)
	}
	if p.Source != nil {
		live := trainer.GaugeLiveSet(p.Source, p.Spec().GaugeSample)
		fmt.Fprintf(w, "forgetting gauge: %d of the %d samples of %s at each evaluation, all of them at the start and the end\n",
			live.Len(), p.Source.Len(), termtext.Sanitize(p.Source.Name))
	}
}
