package trainer

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
)

// Job is the plain description of a fine-tuning run: which base model, on
// what data, with which plan, drawn how. It is what the store keeps for a
// run and what resume and branch rebuild the run from, so it holds names
// and numbers only, never loaded data. It encodes as JSON with snake_case
// keys.
//
// A Job is turned into something [Run] can execute in two steps: a
// catalogue (package assets) resolves Model and Data to a loaded model and
// dataset, and [Job.Prepare] splits, draws the shots, matches the head and
// resolves the plan against the model's blocks.
type Job struct {
	// Model is a zoo model's name or a folder holding config.json and
	// model.safetensors. A prepared job holds a folder as an absolute path.
	Model string `json:"model"`
	// Init is where the weights start: pretrained (the zero value) or
	// scratch, a fresh initialisation of the same architecture drawn from
	// Seed.
	Init Init `json:"init,omitempty"`
	// Data is the training data.
	Data DataRef `json:"data"`
	// Plan is the plan as edited: every stage, with the blocks it trains
	// named or selected by hand. When it has no stages, Preset says which
	// preset [Job.Prepare] expands for the model's blocks, and the prepared
	// job holds the expansion.
	Plan Plan `json:"plan"`
	// Preset names the preset Plan was made from; when Plan has no stages
	// it is the plan. Nil for a plan written by hand or read from a file.
	Preset *PresetRef `json:"preset,omitempty"`
	// Shots, when positive, trains on this many samples per class, drawn
	// after the validation split so that validation stays large; zero
	// means every sample left.
	Shots int `json:"shots,omitempty"`
	// ValSplit is the fraction of the data held out for validation,
	// stratified by class; it must be strictly between 0 and 1. Zero means
	// DefaultValSplit.
	ValSplit float64 `json:"val_split"`
	// BatchSize is the number of samples per step; zero means
	// DefaultBatchSize.
	BatchSize int `json:"batch"`
	// Seed drives every random choice: split, shots, a new head's (or a
	// scratch model's) initialisation, batch order and dropout.
	Seed uint64 `json:"seed"`
	// FreezeBelow, when set, names the block the plan's first stage
	// trains from: that block and every one above it train in the first
	// stage, every one below is frozen (see [Plan.FreezeBelow]); the later
	// stages are the plan's. Empty means the plan's first stage as it is.
	FreezeBelow string `json:"freeze_below,omitempty"`
	// EvalEvery, when positive, evaluates every EvalEvery steps of the
	// plan and at the end of every stage, in place of the stages' cadence
	// (see [ResolvedStage.EvalInterval]); a stage without one (a plan
	// stored before stages had it) is also evaluated at the end of every
	// epoch, as before. Zero means the stages' cadence. Patience counts
	// these evaluations.
	EvalEvery int `json:"eval_every,omitempty"`
}

// DefaultValSplit is the validation fraction of a Job that leaves it zero.
const DefaultValSplit = 0.2

// Init says where a job's weights start.
type Init string

// The starting points of a job.
const (
	InitPretrained Init = ""        // the base model's weights
	InitScratch    Init = "scratch" // a fresh initialisation of its architecture
)

// DataRef names a job's data as a user gave it.
type DataRef struct {
	// Path is a built-in task's name, a CSV file (.csv or .csv.gz), an IDX
	// images file or an image folder (root/<class>/*.png). A prepared job
	// holds a file or folder as an absolute path.
	Path string `json:"path"`
	// Labels is the IDX labels file, when it is not found next to the
	// images by MNIST's naming; empty otherwise.
	Labels string `json:"labels,omitempty"`
}

// PresetRef is a preset with its arguments, as [Preset] takes them: zero
// LR and Epochs mean the preset's own. Steps, when positive, makes every
// stage that many optimizer steps long instead (see [Plan.Override]).
//
// Legacy marks a ref stored before presets had a cadence in steps and a
// patience (DefaultEvals, DefaultPatience) and label smoothing
// (DefaultLabelSmoothing): it expands to the preset as it ran then, so
// that its run resumes exactly: evaluated at the end of every epoch, with
// no patience but chain-thaw's 5 and no label smoothing. A ref decoded
// from JSON without the "cadence" key, which every ref written since
// carries, is legacy; the zero value is not.
type PresetRef struct {
	Name   string  `json:"name"`
	LR     float64 `json:"lr,omitempty"`
	Epochs int     `json:"epochs,omitempty"`
	Steps  int     `json:"steps,omitempty"`
	Legacy bool    `json:"-"`
}

// presetRefJSON is a PresetRef as stored: Cadence is true for a ref made
// since presets had a cadence, absent before.
type presetRefJSON struct {
	Name    string  `json:"name"`
	LR      float64 `json:"lr,omitempty"`
	Epochs  int     `json:"epochs,omitempty"`
	Steps   int     `json:"steps,omitempty"`
	Cadence *bool   `json:"cadence,omitempty"`
}

// MarshalJSON writes r with "cadence": true unless it is legacy.
func (r PresetRef) MarshalJSON() ([]byte, error) {
	j := presetRefJSON{Name: r.Name, LR: r.LR, Epochs: r.Epochs, Steps: r.Steps}
	if !r.Legacy {
		t := true
		j.Cadence = &t
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads r, legacy when it has no "cadence" key (or false).
func (r *PresetRef) UnmarshalJSON(b []byte) error {
	var j presetRefJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = PresetRef{Name: j.Name, LR: j.LR, Epochs: j.Epochs, Steps: j.Steps, Legacy: j.Cadence == nil || !*j.Cadence}
	return nil
}

// expand returns the plan r names for a model with the given blocks.
func (r PresetRef) expand(blocks []string) (Plan, error) {
	p, err := Preset(r.Name, blocks, r.LR, r.Epochs)
	if err != nil {
		return Plan{}, err
	}
	if r.Legacy {
		p.Patience, p.LabelSmoothing = 0, 0
		if r.Name == "chain-thaw" {
			p.Patience = DefaultChainThawPatience
		}
		for i := range p.Stages {
			p.Stages[i].Evals = 0
		}
	}
	if r.Steps > 0 {
		p = p.Override(0, 0, r.Steps)
	}
	return p, nil
}

// InputError marks an error the user caused with what they asked for: an
// unknown model, data or preset, a malformed file, a plan that names an
// unknown block, data the model cannot take. Front-ends report it as bad
// input (thaw exits with 2). Its text is the wrapped error's.
type InputError struct{ Err error }

func (e InputError) Error() string { return e.Err.Error() }
func (e InputError) Unwrap() error { return e.Err }

// BadInput wraps err as an [InputError]; nil stays nil and an InputError
// is not wrapped again.
func BadInput(err error) error {
	var ie InputError
	if err == nil || errors.As(err, &ie) {
		return err
	}
	return InputError{err}
}

// badInputf is fmt.Errorf wrapped as an InputError.
func badInputf(format string, args ...any) error {
	return InputError{fmt.Errorf(format, args...)}
}

// SetPlan sets j's plan from what a user typed: a preset's name, which
// [Job.Prepare] expands for the model's blocks with lr and epochs (zero:
// the preset's) and steps, or else a plan file, read now, whose stages
// all get lr, epochs and steps when they are positive (see
// [Plan.Override]). It returns an [InputError] naming the presets when ref
// is neither, one when both epochs and steps are given, and one starting
// with the path when the file does not parse.
func (j *Job) SetPlan(ref string, lr float64, epochs, steps int) error {
	if epochs > 0 && steps > 0 {
		return badInputf("plan: give the stages' length in epochs (%d) or in steps (%d), not both", epochs, steps)
	}
	for _, p := range Presets() {
		if p.Name == ref {
			j.Plan, j.Preset = Plan{}, &PresetRef{Name: ref, LR: lr, Epochs: epochs, Steps: steps}
			return nil
		}
	}
	if _, err := os.Stat(ref); err != nil {
		var names []string
		for _, p := range Presets() {
			names = append(names, p.Name)
		}
		return badInputf("unknown plan %q: not a preset (%s) nor a plan file", ref, strings.Join(names, ", "))
	}
	p, err := LoadPlan(ref)
	if err != nil {
		return badInputf("plan: %w", err)
	}
	j.Plan, j.Preset = p.Override(lr, epochs, steps), nil
	return nil
}

// Check reports, as an [InputError], a job that cannot run: no model or
// no data, settings out of range (see [Job.CheckSettings]), and a job with
// neither stages nor a preset. It is the one place these rules live: the
// command line's flags, the workbench's fields and the engine all check
// through it.
func (j Job) Check() error {
	switch {
	case j.Model == "":
		return badInputf("job: no base model")
	case j.Data.Path == "":
		return badInputf("job: no data")
	}
	if err := j.CheckSettings(); err != nil {
		return err
	}
	if len(j.Plan.Stages) == 0 && j.Preset == nil {
		return badInputf("job: the plan has no stages and names no preset")
	}
	return nil
}

// CheckSettings reports, as an [InputError], settings out of range: a
// validation fraction outside (0, 1), negative shots, batch size or
// evaluation cadence, an unknown Init. Zero values are the defaults and
// pass; the model, data and plan are not looked at, so a form can check
// one field before the rest is filled in.
func (j Job) CheckSettings() error {
	vs := j.valSplit()
	switch {
	case !(vs > 0 && vs < 1):
		return badInputf("job: validation split %v: want a fraction between 0 and 1", vs)
	case j.Shots < 0:
		return badInputf("job: %d shots: want 0 (all) or more", j.Shots)
	case j.BatchSize < 0:
		return badInputf("job: batch size %d: want at least 1", j.BatchSize)
	case j.EvalEvery < 0:
		return badInputf("job: evaluate every %d steps: want 0 or more", j.EvalEvery)
	case j.Init != InitPretrained && j.Init != InitScratch:
		return badInputf("job: init %q: want %q or %q", j.Init, "pretrained", InitScratch)
	}
	return nil
}

func (j Job) valSplit() float64 {
	if j.ValSplit == 0 {
		return DefaultValSplit
	}
	return j.ValSplit
}

func (j Job) batch() int {
	if j.BatchSize == 0 {
		return DefaultBatchSize
	}
	return j.BatchSize
}

// ResolvePlan returns j's plan for a model with the given blocks (input to
// output): Plan, or Preset expanded when Plan has no stages, resolved so
// that a mistake in it shows before any data is read. Errors are
// [InputError]s.
func (j Job) ResolvePlan(blocks []string) (Plan, *ResolvedPlan, error) {
	p := j.Plan
	if len(p.Stages) == 0 && j.Preset != nil {
		var err error
		if p, err = j.Preset.expand(blocks); err != nil {
			return Plan{}, nil, BadInput(err)
		}
	}
	if j.FreezeBelow != "" {
		var err error
		if p, err = p.FreezeBelow(blocks, j.FreezeBelow); err != nil {
			return Plan{}, nil, badInputf("plan %s: %w", j.planName(), err)
		}
	}
	rp, err := p.Resolve(blocks)
	if err != nil {
		return Plan{}, nil, badInputf("plan %s: %w", j.planName(), err)
	}
	return p, rp, nil
}

// SweepPoint returns the job a sweep runs at freeze point block, for a
// model with the given blocks (input to output): exactly the first stage
// that j runs with FreezeBelow set to block — thaw train --plan P
// --freeze-below block, P being j's preset (expanded as [Job.Prepare]
// expands it) or plan. The point's plan is that stage alone with its
// length rules (floors included), the learning rates it gives the blocks
// it trains (discriminative factor included), its schedule, optimizer,
// cadence and patience; everything else (model, data, shots, split, batch,
// seed, EvalEvery) is j's. Its FreezeBelow is block, its Preset nil.
//
// It returns an [InputError] when j's plan does not resolve for blocks or
// block is not one of them.
func (j Job) SweepPoint(blocks []string, block string) (Job, error) {
	j.FreezeBelow = block
	p, _, err := j.ResolvePlan(blocks)
	if err != nil {
		return Job{}, err
	}
	j.Plan, j.Preset = p.FirstStage(), nil
	return j, nil
}

// planName names j's plan in messages.
func (j Job) planName() string {
	switch {
	case j.Plan.Name != "":
		return j.Plan.Name
	case j.Preset != nil:
		return j.Preset.Name
	}
	return "(unnamed)"
}

// Salts separate the random streams of a job drawn from its seed.
const (
	saltSplit   = 1 // validation split and shots
	saltHead    = 2 // a replaced head's initialisation
	saltScratch = 3 // a scratch model's initialisation
)

// JobInputs are a job's model and data, loaded by a catalogue.
type JobInputs struct {
	// Model is the base model; Prepare changes it in place (new head,
	// scratch initialisation) and the prepared job trains it.
	Model *Model[float32]
	// ModelName is how the model is named in the run: the zoo name, or
	// the folder.
	ModelName string
	// Data is the job's data, all of it: Prepare splits it.
	Data *Dataset
	// Samples, when set, holds Data's samples in place of Data.X, which
	// is then nil: it returns the values of the samples at indices
	// (sorted, each once), one after the other. Prepare calls it once,
	// for the samples the job keeps (its validation set and its training
	// shots), so that data decoded from a compressed file costs only
	// those.
	Samples func(indices []int) ([]float32, error)
	// Source is the source task's held-out set for the forgetting gauge;
	// nil for none.
	Source *Dataset
	// ActivationBudget caps the memory, in bytes, that the model's
	// activations may take for the job's batches (see
	// Config.CheckActivations); zero means DefaultActivationBudget.
	ActivationBudget int64
}

// Prepared is a job made ready to run: the model with its head matched to
// the data, the data split, the plan resolved.
type Prepared struct {
	// Job is the job as prepared: its Plan holds every stage (a preset is
	// expanded), paths are as the catalogue normalised them.
	Job       Job
	Model     *Model[float32]
	ModelName string
	// Train and Val are the training and validation sets.
	Train, Val *Dataset
	// Source and SourceHead drive the forgetting gauge (see Spec); Source
	// is nil without one, SourceHead nil when the head was kept.
	Source     *Dataset
	SourceHead *Block[float32]
	// HeadReplaced reports whether the head was replaced for other
	// classes.
	HeadReplaced bool
	// Plan is Job.Plan resolved against the model's blocks.
	Plan *ResolvedPlan
}

// Prepare gets a job's loaded model and data ready to train:
//
//   - plan: Plan, or Preset expanded, resolved against the blocks;
//   - init: a scratch job re-initialises every block from the seed;
//   - validation: a stratified ValSplit of the data;
//   - shots: Shots per class from what is left, so validation stays large;
//   - classes: data whose classes are all among the model's is relabelled
//     to the model's order and the head is kept; other classes get a new
//     head ([Model.ReplaceHead]), the base head being kept for the
//     forgetting gauge;
//   - checks: data with fewer than two classes ([ErrTooFewClasses]), data
//     whose classes are too small to hold any sample out for validation
//     ([ErrNoValidation]) and a model whose activations for the job's
//     batches pass in.ActivationBudget are refused.
//
// in.Model and in.Data are changed in place. Errors the job's settings or
// data cause are [InputError]s.
func (j Job) Prepare(in JobInputs) (*Prepared, error) {
	if in.Model == nil || in.Data == nil {
		return nil, errors.New("prepare: model and data are required")
	}
	if err := j.Check(); err != nil {
		return nil, err
	}
	mod := in.Model
	plan, rp, err := j.ResolvePlan(mod.Config.BlockNames())
	if err != nil {
		return nil, err
	}
	j.Plan = plan
	p := &Prepared{Job: j, Model: mod, ModelName: in.ModelName, Plan: rp}

	ds := in.Data
	if err := ds.CheckConfig(&mod.Config); errors.Is(err, ErrShapeMismatch) {
		return nil, BadInput(err)
	}
	if err := ds.CheckClasses(); err != nil {
		return nil, BadInput(err)
	}
	if j.Init == InitScratch {
		mod.Reset(rand.New(rand.NewPCG(j.Seed, saltScratch)))
	}
	rng := rand.New(rand.NewPCG(j.Seed, saltSplit))
	var tr, va []int
	if j.Shots > 0 {
		tr, va, err = ds.splitKShotIndices(rng, j.valSplit(), j.Shots)
	} else {
		tr, va, err = ds.splitIndices(rng, j.valSplit())
	}
	if err != nil {
		return nil, BadInput(err)
	}
	if len(va) == 0 {
		// Without validation there is no best checkpoint and no early
		// stop: a run would train blind and report nothing to choose by.
		return nil, BadInput(noValidation(ds))
	}
	if in.Samples == nil {
		p.Train, p.Val = ds.Subset(tr), ds.Subset(va)
	} else if p.Train, p.Val, err = fetchSamples(ds, in.Samples, tr, va); err != nil {
		return nil, err
	}
	if in.Source != nil && j.Init != InitScratch {
		// A kept head is gauged as it trains; a replaced one leaves the
		// base model's head to gauge with, as it was.
		p.Source = in.Source
	}
	if subset(ds.Classes, mod.Config.Classes) {
		if p.Source != nil && !slices.Equal(p.Source.Classes, mod.Config.Classes) {
			// The kept head cannot score a source set of other classes.
			p.Source = nil
		}
		for _, d := range []*Dataset{p.Train, p.Val} {
			if err := d.Relabel(mod.Config.Classes); err != nil {
				return nil, BadInput(err)
			}
		}
	} else {
		if p.Source != nil {
			p.SourceHead = mod.CloneHead()
		}
		if err := mod.ReplaceHead(ds.Classes, rand.New(rand.NewPCG(j.Seed, saltHead))); err != nil {
			return nil, badInputf("data %s: %w", ds.Name, err)
		}
		p.HeadReplaced = true
	}
	p.KeptHeadLoss(p.Plan)
	// The first forward pass allocates the activations; refuse a model
	// whose batches (evaluation's, when larger) would pass the budget.
	if err := checkActivations(mod, max(j.batch(), evalBatchSize), in.ActivationBudget); err != nil {
		return nil, BadInput(err)
	}
	return p, nil
}

// KeptHeadLoss applies the one rule of label smoothing that depends on
// the data: a run that keeps the base model's trained head (pretrained,
// the data's classes among the model's) trains and validates on the plain
// cross-entropy whatever its stages' LabelSmoothing says. That head was
// trained on the plain loss; smoothed targets first retrain its
// calibration, which moves the weights for nothing the task needs and
// made the lowest validation loss an early checkpoint (mnist8-mlp →
// uci-digits at 5 shots, gradual: 93.5 % plain, 92.1 % smoothed, seeds
// 1001 to 1005). A new head, or a scratch model's, has no calibration to
// keep and trains on the plan's ε. Prepare applies it to p.Plan; a caller
// that trains p's model on another plan (a branch's continuation, the
// probe of the block below the head) applies it to that one.
func (p *Prepared) KeptHeadLoss(rp *ResolvedPlan) {
	if !p.KeepsTrainedHead() || rp == nil {
		return
	}
	for i := range rp.Stages {
		rp.Stages[i].LabelSmoothing = 0
	}
}

// KeepsTrainedHead reports whether p trains the base model's own trained
// head: pretrained weights and the data's classes among the model's.
func (p *Prepared) KeepsTrainedHead() bool {
	return !p.HeadReplaced && p.Job.Init != InitScratch
}

// ErrNoValidation is wrapped by the error for data that leaves no sample
// for validation: a class is held out from only when it has two samples
// or more.
var ErrNoValidation = errors.New("no validation samples")

// noValidation is the error for ds, whose split left validation empty.
func noValidation(ds *Dataset) error {
	return fmt.Errorf("data %s: %w: no class has more than one sample, and a class gives validation a sample only when another stays for training; give some class at least 2",
		quote(ds.Name), ErrNoValidation)
}

// fetchSamples builds the subsets of ds (whose X is nil) at the sorted
// indices tr and va, asking samples once for both.
func fetchSamples(ds *Dataset, samples func([]int) ([]float32, error), tr, va []int) (train, val *Dataset, err error) {
	all := append(slices.Clone(tr), va...)
	slices.Sort(all)
	x, err := samples(all)
	if err != nil {
		return nil, nil, fmt.Errorf("data %s: %w", quote(ds.Name), err)
	}
	n := ds.SampleSize()
	if len(x) != len(all)*n {
		return nil, nil, fmt.Errorf("data %s: %d values for %d samples of %d", quote(ds.Name), len(x), len(all), n)
	}
	// The kept samples, in order; then each subset by position among them.
	kept := &Dataset{Name: ds.Name, Shape: ds.Shape, X: x, Y: make([]int, len(all)), Classes: ds.Classes}
	pos := make(map[int]int, len(all))
	for p, i := range all {
		kept.Y[p] = ds.Y[i]
		pos[i] = p
	}
	at := func(idx []int) []int {
		out := make([]int, len(idx))
		for k, i := range idx {
			out[k] = pos[i]
		}
		return out
	}
	train, val = kept.Subset(at(tr)), kept.Subset(at(va))
	for _, d := range []*Dataset{train, val} {
		if err := d.Validate(); err != nil {
			return nil, nil, BadInput(err)
		}
	}
	return train, val, nil
}

// subset reports whether every class of have is among want.
func subset(have, want []string) bool {
	for _, c := range have {
		if !slices.Contains(want, c) {
			return false
		}
	}
	return true
}

// Spec returns the spec that runs p. Control, Checkpoint and Resume are
// left for the caller.
func (p *Prepared) Spec() Spec {
	return Spec{
		Model:      p.Model,
		Plan:       p.Plan,
		Train:      p.Train,
		Val:        p.Val,
		Source:     p.Source,
		SourceHead: p.SourceHead,
		Seed:       p.Job.Seed,
		BatchSize:  p.Job.batch(),
		EvalEvery:  p.Job.EvalEvery,
	}
}

// StepsPerEpoch is the number of steps in an epoch of p's training set.
func (p *Prepared) StepsPerEpoch() int { return StepsPerEpoch(p.Train.Len(), p.Job.batch()) }

// TotalSteps is the length of p's plan in steps.
func (p *Prepared) TotalSteps() int { return p.Plan.Len(p.StepsPerEpoch()) }

// Summary describes p's resolved plan.
func (p *Prepared) Summary() PlanSummary { return p.Plan.Summary(p.StepsPerEpoch()) }

// PlanSummary is a resolved plan as a run records and prints it: every
// stage with its trainable blocks, rates, schedule, optimizer and length.
type PlanSummary struct {
	Name   string         `json:"name"`
	Stages []StageSummary `json:"stages"`
}

// StageSummary is one stage of a [PlanSummary].
type StageSummary struct {
	Label     string          `json:"label"`
	Trainable []string        `json:"trainable"`
	LR        float64         `json:"lr"`
	LRFactor  float64         `json:"lr_factor"`
	Schedule  Schedule        `json:"schedule"`
	Optimizer OptimizerConfig `json:"optimizer"`
	Epochs    int             `json:"epochs,omitempty"`
	Steps     int             `json:"steps"` // the length in optimizer steps
}

// Summary describes rp for a training set of stepsPerEpoch steps an epoch.
func (rp *ResolvedPlan) Summary(stepsPerEpoch int) PlanSummary {
	out := PlanSummary{Name: rp.Name, Stages: []StageSummary{}}
	for _, st := range rp.Stages {
		out.Stages = append(out.Stages, StageSummary{
			Label: st.Label, Trainable: st.Trainable, LR: st.LR, LRFactor: st.LRFactor,
			Schedule: st.Schedule, Optimizer: st.Optimizer, Epochs: st.Epochs, Steps: st.Len(stepsPerEpoch),
		})
	}
	return out
}

// ModelHash returns the SHA-256, in hex, of a model's weights with their
// names, dtypes and shapes: a resumed or branched run checks with it that
// it starts from the same model.
func ModelHash(m *Model[float32]) (string, error) {
	sd, err := m.StateDict()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, t := range sd {
		fmt.Fprintf(h, "%s %s %v\n", t.Name, t.DType, t.Shape)
		h.Write(t.Data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DataHash returns the SHA-256, in hex, of datasets' shapes, classes,
// samples and labels, in order.
func DataHash(sets ...*Dataset) string {
	h := sha256.New()
	var b [8]byte
	for _, d := range sets {
		fmt.Fprintf(h, "%v %q %d\n", d.Shape, d.Classes, d.Len())
		for _, v := range d.X {
			binary.LittleEndian.PutUint32(b[:4], math.Float32bits(v))
			h.Write(b[:4])
		}
		for _, y := range d.Y {
			binary.LittleEndian.PutUint64(b[:], uint64(y))
			h.Write(b[:])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
