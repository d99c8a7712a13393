package trainer

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Optimizer kinds.
const (
	OptimizerSGD   = "sgd"
	OptimizerAdamW = "adamw"
)

// OptimizerConfig holds an optimizer's settings apart from the learning
// rate, which belongs to the stage. It is plain data for the optimizers to
// consume.
//
// Zero means none for Momentum, WeightDecay and ClipNorm. Zero Kind, Beta1,
// Beta2 and Eps take the defaults of [OptimizerConfig.WithDefaults], since
// a zero there is never what one means. Fields that do not apply to Kind
// are ignored.
type OptimizerConfig struct {
	// Kind is "sgd" or "adamw"; empty means adamw.
	Kind string `json:"kind,omitempty"`
	// Momentum is SGD's heavy-ball momentum, in [0, 1).
	Momentum float64 `json:"momentum,omitempty"`
	// Nesterov switches SGD to Nesterov momentum (needs Momentum > 0).
	Nesterov bool `json:"nesterov,omitempty"`
	// WeightDecay is decoupled weight decay for AdamW (Loshchilov & Hutter
	// 2019, "Decoupled Weight Decay Regularization") and an L2 term added to
	// the gradient for SGD, as in PyTorch. It never touches frozen
	// parameters.
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// Beta1 and Beta2 are AdamW's decay rates of the first and second moment
	// estimates, in [0, 1) (Kingma & Ba 2015).
	Beta1 float64 `json:"beta1,omitempty"`
	Beta2 float64 `json:"beta2,omitempty"`
	// Eps is AdamW's term added to the denominator.
	Eps float64 `json:"eps,omitempty"`
	// ClipNorm clips the global L2 norm of the trainable gradients to at
	// most this value before the step.
	ClipNorm float64 `json:"clip_norm,omitempty"`
}

// DefaultOptimizer returns the optimizer a plan uses when it names none:
// PyTorch's AdamW defaults.
func DefaultOptimizer() OptimizerConfig {
	return OptimizerConfig{
		Kind:        OptimizerAdamW,
		WeightDecay: 0.01,  // torch.optim.AdamW
		Beta1:       0.9,   // Kingma & Ba 2015
		Beta2:       0.999, // Kingma & Ba 2015
		Eps:         1e-8,  // Kingma & Ba 2015
	}
}

// WithDefaults returns o with a zero Kind set to adamw and zero Beta1, Beta2
// and Eps set to those of [DefaultOptimizer].
func (o OptimizerConfig) WithDefaults() OptimizerConfig {
	d := DefaultOptimizer()
	if o.Kind == "" {
		o.Kind = d.Kind
	}
	if o.Beta1 == 0 {
		o.Beta1 = d.Beta1
	}
	if o.Beta2 == 0 {
		o.Beta2 = d.Beta2
	}
	if o.Eps == 0 {
		o.Eps = d.Eps
	}
	return o
}

// Validate reports an unknown kind or a setting out of range.
func (o OptimizerConfig) Validate() error {
	o = o.WithDefaults()
	switch {
	case o.Kind != OptimizerSGD && o.Kind != OptimizerAdamW:
		return fmt.Errorf("unknown optimizer %q (optimizers: %q, %q)", o.Kind, OptimizerSGD, OptimizerAdamW)
	case !(o.Momentum >= 0 && o.Momentum < 1):
		return fmt.Errorf("optimizer: momentum %v must be in [0, 1)", o.Momentum)
	case o.Kind == OptimizerSGD && o.Nesterov && o.Momentum == 0:
		return errors.New("optimizer: nesterov needs a momentum above 0")
	case !(o.WeightDecay >= 0):
		return fmt.Errorf("optimizer: weight_decay %v must be at least 0", o.WeightDecay)
	case !(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1):
		return fmt.Errorf("optimizer: beta1 %v and beta2 %v must be in [0, 1)", o.Beta1, o.Beta2)
	case !(o.Eps > 0):
		return fmt.Errorf("optimizer: eps %v must be positive", o.Eps)
	case !(o.ClipNorm >= 0):
		return fmt.Errorf("optimizer: clip_norm %v must be at least 0", o.ClipNorm)
	}
	return nil
}

// Stage is one step of a plan: which blocks train, for how long, and how
// fast. A zero field inherits the plan's value, as noted on each field.
type Stage struct {
	// Name labels the stage on charts ("stage 2: +conv2"). Empty means a
	// label made from the change in trainable blocks, see
	// [ResolvedStage.Label].
	Name string `json:"name,omitempty"`
	// Train selects the trainable blocks; every other block is frozen. Each
	// selector is a block name, "head" (the top block), "top:N" (the top N
	// blocks) or "all"; the stage trains their union.
	Train []string `json:"train"`
	// Epochs or Steps is the stage's length; set exactly one, or neither to
	// use the plan's Epochs.
	Epochs int `json:"epochs,omitempty"`
	Steps  int `json:"steps,omitempty"`
	// MinSteps is a floor for a stage measured in epochs: it lasts its
	// epochs or MinSteps optimizer steps, whichever is longer, so that a
	// few-shot set of one batch an epoch still gets enough updates. Zero
	// means the plan's (none by default); it cannot go with Steps.
	MinSteps int `json:"min_steps,omitempty"`
	// LR is the peak learning rate of the top trainable block. Zero means
	// the plan's.
	LR float64 `json:"lr,omitempty"`
	// Schedule shapes the learning rate over the stage. Nil means the
	// plan's.
	Schedule *Schedule `json:"schedule,omitempty"`
	// LRFactor is the discriminative factor: a trainable block k positions
	// below the top trainable block learns at LR/LRFactor^k (ULMFiT uses
	// 2.6, Howard & Ruder 2018, §3.2). 1 means none; zero means the plan's.
	LRFactor float64 `json:"lr_factor,omitempty"`
	// Optimizer replaces the plan's optimizer for this stage (it is not
	// merged field by field). Nil means the plan's.
	Optimizer *OptimizerConfig `json:"optimizer,omitempty"`
	// Patience ends the stage early after this many evaluations without a
	// better validation loss. Zero means the plan's.
	Patience int `json:"patience,omitempty"`
	// Evals sets the evaluation cadence in steps: a stage of S steps is
	// evaluated every max(steps per epoch, ⌈S/Evals⌉) steps, counted from
	// its start, and at its end (see [ResolvedStage.EvalInterval]), so that
	// a stage of many one-step epochs is not evaluated at every step. Zero
	// means the plan's; zero in both means the rule plans had before this
	// field: at the end of every epoch and of the stage. Patience counts
	// these evaluations.
	Evals int `json:"evals,omitempty"`
	// TrainBN keeps BatchNorm layers of frozen blocks training (fastai's
	// train_bn). The stage trains BN if it or the plan says so.
	TrainBN bool `json:"train_bn,omitempty"`
	// LabelSmoothing is ε of the stage's loss: the target is
	// (1-ε)·onehot + ε/K, as PyTorch's CrossEntropyLoss label_smoothing
	// (see [CrossEntropy]). Zero means the plan's; zero in both, none.
	// The stage's validation loss, which early stopping and the kept
	// checkpoint go by, is the same loss, as Keras and fastai measure it
	// with the loss the model is compiled or built with. A run that keeps
	// the base model's trained head uses none (see
	// [Prepared.KeptHeadLoss]).
	LabelSmoothing float64 `json:"label_smoothing,omitempty"`
}

// Plan is an ordered list of stages with defaults that each stage may
// override. The zero values of the defaults are: no plan-wide length (each
// stage then needs its own), no plan-wide learning rate (likewise), a
// constant schedule, no discriminative factor, [DefaultOptimizer], no early
// stopping, an evaluation at the end of every epoch, frozen BatchNorm and
// no label smoothing.
//
// A plan is stored as JSON with snake_case keys; unknown keys are an error.
// A schedule is written as its kind alone or as an object with its
// parameters. For example:
//
//	{
//	  "name": "gentle unfreeze",
//	  "description": "Head first, then the top two blocks, then everything with spread learning rates.",
//	  "lr": 0.001,
//	  "schedule": {"kind": "cosine", "warmup_frac": 0.1},
//	  "optimizer": {"kind": "adamw", "weight_decay": 0.01, "clip_norm": 1},
//	  "patience": 3,
//	  "stages": [
//	    {"train": ["head"], "epochs": 2, "lr": 0.003, "schedule": "one-cycle"},
//	    {"name": "stage 2: top two", "train": ["top:2"], "epochs": 3},
//	    {"train": ["all"], "steps": 600, "lr_factor": 2.6, "train_bn": true,
//	     "schedule": {"kind": "slanted-triangular", "cut_frac": 0.1, "ratio": 32},
//	     "optimizer": {"kind": "sgd", "momentum": 0.9, "nesterov": true, "weight_decay": 0.0005}}
//	  ]
//	}
type Plan struct {
	// Name and Description say what the plan is for.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`

	// Defaults for stages that leave the field zero; see [Stage].
	Epochs    int              `json:"epochs,omitempty"`
	MinSteps  int              `json:"min_steps,omitempty"`
	LR        float64          `json:"lr,omitempty"`
	Schedule  *Schedule        `json:"schedule,omitempty"`
	LRFactor  float64          `json:"lr_factor,omitempty"`
	Optimizer *OptimizerConfig `json:"optimizer,omitempty"`
	Patience  int              `json:"patience,omitempty"`
	Evals     int              `json:"evals,omitempty"`
	TrainBN   bool             `json:"train_bn,omitempty"`

	LabelSmoothing float64 `json:"label_smoothing,omitempty"`

	Stages []Stage `json:"stages"`
}

// LoadPlan reads and validates a plan file. Errors start with the path.
func LoadPlan(path string) (Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Plan{}, err
	}
	p, err := ParsePlan(b)
	if err != nil {
		return Plan{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePlan decodes a plan from JSON and validates what can be checked
// without a model (see [Plan.Validate]). Syntax and type errors give the
// line and column; unknown keys are an error, so a typo does not silently
// become a default.
func ParsePlan(b []byte) (Plan, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p Plan
	if err := dec.Decode(&p); err != nil {
		return Plan{}, jsonError(b, err)
	}
	if rest := b[dec.InputOffset():]; len(bytes.TrimSpace(rest)) > 0 {
		off := dec.InputOffset() + int64(len(rest)-len(bytes.TrimLeft(rest, " \t\r\n")))
		line, col := lineCol(b, off)
		return Plan{}, fmt.Errorf("line %d, column %d: data after the plan", line, col)
	}
	if err := p.Validate(); err != nil {
		return Plan{}, err
	}
	return p, nil
}

// jsonError adds a line and column to a decoding error where it can.
func jsonError(b []byte, err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		// Offset counts the offending byte; point at it, not past it.
		line, col := lineCol(b, max(se.Offset-1, 0))
		return fmt.Errorf("line %d, column %d: %v", line, col, err)
	case errors.As(err, &te):
		// Offset is just past the value of the wrong type.
		line, col := lineCol(b, te.Offset)
		return fmt.Errorf("line %d, column %d: %s: cannot use %s as %s", line, col, te.Field, te.Value, te.Type)
	}
	// encoding/json does not say where an unknown key is; point at it when
	// it occurs only once, so the position cannot mislead.
	const unknown = "json: unknown field "
	if msg := err.Error(); strings.HasPrefix(msg, unknown) {
		key := []byte(strings.TrimPrefix(msg, unknown))
		if i := bytes.Index(b, key); i >= 0 && bytes.Count(b, key) == 1 {
			line, col := lineCol(b, int64(i))
			return fmt.Errorf("line %d, column %d: unknown key %s", line, col, key)
		}
		return fmt.Errorf("unknown key %s", key)
	}
	return err
}

// MaxStages bounds the stages of a plan. Every stage ends with a
// checkpoint, which branch and save --checkpoint stage:K start from, so a
// plan of many tiny stages costs a checkpoint each: a thousand is far
// more than any schedule of unfreezing needs and bounds what one plan
// file can make a run write.
const MaxStages = 1000

// Validate checks everything about p that does not depend on a model: one
// to MaxStages stages, each with selectors of a known form, exactly one
// length, a positive learning rate, and a known schedule and optimizer
// with settings in range. Errors name the stage, counting from 1.
func (p Plan) Validate() error {
	if len(p.Stages) == 0 {
		return errors.New("plan has no stages")
	}
	if len(p.Stages) > MaxStages {
		return fmt.Errorf("plan has %d stages, more than the %d allowed: every stage ends with a checkpoint", len(p.Stages), MaxStages)
	}
	if p.Epochs < 0 || p.MinSteps < 0 {
		return fmt.Errorf("plan: epochs %d or min_steps %d is negative", p.Epochs, p.MinSteps)
	}
	if p.Evals < 0 {
		return fmt.Errorf("plan: evals %d is negative", p.Evals)
	}
	if p.Schedule != nil {
		if err := p.Schedule.Validate(); err != nil {
			return fmt.Errorf("plan: %w", err)
		}
	}
	if p.Optimizer != nil {
		if err := p.Optimizer.Validate(); err != nil {
			return fmt.Errorf("plan: %w", err)
		}
	}
	if e := p.LabelSmoothing; !(e >= 0 && e < 1) {
		return fmt.Errorf("plan: label_smoothing %v must be at least 0 and below 1", e)
	}
	for i, s := range p.Stages {
		if err := p.validateStage(s); err != nil {
			return fmt.Errorf("stage %d: %w", i+1, err)
		}
	}
	return nil
}

func (p Plan) validateStage(s Stage) error {
	if len(s.Train) == 0 {
		return errors.New(`nothing trainable: "train" is empty (use block names, "head", "top:N" or "all")`)
	}
	for _, sel := range s.Train {
		if n, ok := strings.CutPrefix(sel, "top:"); ok {
			if k, err := strconv.Atoi(n); err != nil || k < 1 {
				return fmt.Errorf("selector %q: N must be a whole number of blocks, at least 1", sel)
			}
		}
	}
	switch {
	case s.Epochs < 0 || s.Steps < 0 || s.MinSteps < 0:
		return fmt.Errorf("negative length (epochs %d, steps %d, min_steps %d)", s.Epochs, s.Steps, s.MinSteps)
	case s.Steps > 0 && s.MinSteps > 0:
		return fmt.Errorf("both steps (%d) and min_steps (%d) are set; min_steps is a floor for a length in epochs", s.Steps, s.MinSteps)
	case s.Epochs > 0 && s.Steps > 0:
		return fmt.Errorf("both epochs (%d) and steps (%d) are set; set one", s.Epochs, s.Steps)
	case s.Epochs == 0 && s.Steps == 0 && p.Epochs == 0:
		return errors.New("no length: set epochs or steps on the stage or epochs on the plan")
	}
	lr := cmp.Or(s.LR, p.LR)
	if !(lr > 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("learning rate %v must be positive (set lr on the stage or the plan)", lr)
	}
	if f := cmp.Or(s.LRFactor, p.LRFactor); !(f >= 0) || math.IsInf(f, 0) || (f > 0 && f < 1) {
		return fmt.Errorf("lr_factor %v must be at least 1 (or 0 for none)", f)
	}
	if pa := cmp.Or(s.Patience, p.Patience); pa < 0 {
		return fmt.Errorf("patience %d is negative", pa)
	}
	if e := s.LabelSmoothing; !(e >= 0 && e < 1) {
		return fmt.Errorf("label_smoothing %v must be at least 0 and below 1", e)
	}
	if s.Evals < 0 {
		return fmt.Errorf("evals %d is negative", s.Evals)
	}
	if s.Schedule != nil {
		if err := s.Schedule.Validate(); err != nil {
			return err
		}
	}
	if s.Optimizer != nil {
		if err := s.Optimizer.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Override returns a copy of p in which every stage peaks at lr and lasts
// epochs epochs or steps optimizer steps, for the command line's --lr,
// --epochs and --steps; zero leaves that setting alone, and steps wins
// over epochs when both are given. A length replaces the stage's, floor
// included. Override flattens deliberate differences between stages
// (fine-tune's halved second learning rate, say); to keep a preset's
// proportions, pass lr and epochs to [Preset] instead.
func (p Plan) Override(lr float64, epochs, steps int) Plan {
	p.Stages = slices.Clone(p.Stages)
	if lr > 0 {
		p.LR = lr
	}
	if epochs > 0 || steps > 0 {
		p.MinSteps = 0
	}
	if epochs > 0 {
		p.Epochs = epochs
	}
	for i := range p.Stages {
		s := &p.Stages[i]
		if lr > 0 {
			s.LR = lr
		}
		switch {
		case steps > 0:
			s.Epochs, s.Steps, s.MinSteps = 0, steps, 0
		case epochs > 0:
			s.Epochs, s.Steps, s.MinSteps = epochs, 0, 0
		}
	}
	return p
}

// FreezeBelow returns a copy of p whose first stage trains block and
// every block above it, and freezes every block below: what choosing a
// freeze point means for a plan, wherever it is chosen (thaw train
// --freeze-below, the Blocks screen's freeze marker, a sweep's points).
// The stage keeps everything else: its length (floor included), peak
// learning rate, discriminative factor (which now spreads over the blocks
// it trains), schedule, optimizer, cadence and patience. The later stages
// are left as they are. A first stage whose name no longer says what it
// trains loses it, so that its label is made from its blocks.
//
// blocks are the model's blocks, input to output. FreezeBelow returns an
// error naming the blocks when block is not one of them, and the error of
// [Plan.Validate] for a plan without stages.
func (p Plan) FreezeBelow(blocks []string, block string) (Plan, error) {
	if len(p.Stages) == 0 {
		return Plan{}, errors.New("plan has no stages")
	}
	i := slices.Index(blocks, block)
	if i < 0 {
		return Plan{}, fmt.Errorf("freeze below: no block named %q (blocks: %s)", block, strings.Join(blocks, ", "))
	}
	train := slices.Clone(blocks[i:])
	p.Stages = slices.Clone(p.Stages)
	first := &p.Stages[0]
	if had, err := selectBlocks(first.Train, blocks); err != nil || len(had) != len(train) || !allIn(train, had) {
		first.Name = ""
	}
	first.Train = train
	return p, nil
}

func allIn(names []string, set map[string]bool) bool {
	for _, n := range names {
		if !set[n] {
			return false
		}
	}
	return true
}

// FirstStage returns p with its first stage alone, the plan's defaults
// kept, so that it resolves to the stage p's first resolves to: the run a
// sweep's point trains (see [Job.SweepPoint]). It returns p unchanged when
// p has no stages.
func (p Plan) FirstStage() Plan {
	if len(p.Stages) > 1 {
		p.Stages = slices.Clone(p.Stages[:1])
	}
	return p
}

// ResolvedPlan is a plan checked against a model's blocks, with every
// default filled in: what the run loop and the schedule preview consume.
type ResolvedPlan struct {
	Name   string
	Blocks []string // the model's blocks, input to output
	Stages []ResolvedStage
}

// ResolvedStage is one stage with its selectors turned into blocks and its
// defaults filled in.
type ResolvedStage struct {
	// Label names the stage on charts: the stage's Name, or "stage N: "
	// followed by what changed: "head", "+conv2" (blocks added), "conv1
	// only" (a single block replacing others), "all", or the list of
	// trainable blocks.
	Label string
	// Blocks are the model's blocks from input to output (shared with the
	// plan), and LRMult their learning-rate multipliers: 0 for a frozen
	// block, 1 for the top trainable block and 1/LRFactor^k for a trainable
	// block k positions below it.
	Blocks []string
	LRMult []float64
	// Trainable lists the trainable blocks, input to output.
	Trainable []string
	// Epochs or Steps is the length; exactly one is positive. MinSteps is
	// a floor in steps for a length in epochs, 0 for none.
	Epochs, Steps, MinSteps int
	// LR is the peak learning rate of the top trainable block.
	LR float64
	// Schedule has its kind and parameters set.
	Schedule Schedule
	// LRFactor is 1 when the stage has no discriminative factor.
	LRFactor float64
	// Optimizer has its defaults filled in.
	Optimizer OptimizerConfig
	// Patience is the early-stopping patience in evaluations, 0 for none.
	Patience int
	// Evals sets the evaluation cadence (see [ResolvedStage.EvalInterval]);
	// 0 evaluates at the end of every epoch.
	Evals int
	// TrainBN keeps BatchNorm in frozen blocks training.
	TrainBN bool
	// LabelSmoothing is ε of the training loss, 0 for none.
	LabelSmoothing float64
}

// Resolve checks p against a model's blocks (input to output, as
// [Config.BlockNames] returns them) and fills in every default, so that
// every mistake in a plan shows before training starts. Besides the errors
// of [Plan.Validate] it reports a name that is not a block (listing the
// blocks) and top:N beyond the number of blocks.
func (p Plan) Resolve(blocks []string) (*ResolvedPlan, error) {
	if len(blocks) == 0 {
		return nil, errors.New("plan: the model has no blocks")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	rp := &ResolvedPlan{Name: p.Name, Blocks: slices.Clone(blocks)}
	var prev []string
	for i, s := range p.Stages {
		train, err := selectBlocks(s.Train, rp.Blocks)
		if err != nil {
			return nil, fmt.Errorf("stage %d: %w", i+1, err)
		}
		rs := ResolvedStage{
			Label:          s.Name,
			Blocks:         rp.Blocks,
			Epochs:         s.Epochs,
			Steps:          s.Steps,
			LR:             cmp.Or(s.LR, p.LR),
			LRFactor:       max(cmp.Or(s.LRFactor, p.LRFactor), 1),
			Patience:       cmp.Or(s.Patience, p.Patience),
			Evals:          cmp.Or(s.Evals, p.Evals),
			TrainBN:        s.TrainBN || p.TrainBN,
			LabelSmoothing: cmp.Or(s.LabelSmoothing, p.LabelSmoothing),
			Schedule:       Schedule{}.withDefaults(),
			Optimizer:      DefaultOptimizer(),
		}
		if rs.Epochs == 0 && rs.Steps == 0 {
			rs.Epochs = p.Epochs
		}
		if rs.Steps == 0 {
			rs.MinSteps = cmp.Or(s.MinSteps, p.MinSteps)
		}
		if sch := cmp.Or(s.Schedule, p.Schedule); sch != nil {
			rs.Schedule = sch.withDefaults()
		}
		if o := cmp.Or(s.Optimizer, p.Optimizer); o != nil {
			rs.Optimizer = o.WithDefaults()
		}
		top := -1
		for bi, name := range rp.Blocks {
			if train[name] {
				rs.Trainable = append(rs.Trainable, name)
				top = bi
			}
		}
		rs.LRMult = make([]float64, len(rp.Blocks))
		for bi, name := range rp.Blocks {
			if train[name] {
				rs.LRMult[bi] = math.Pow(rs.LRFactor, -float64(top-bi))
			}
		}
		if rs.Label == "" {
			rs.Label = fmt.Sprintf("stage %d: %s", i+1, describeChange(prev, rs.Trainable, rp.Blocks))
		}
		prev = rs.Trainable
		rp.Stages = append(rp.Stages, rs)
	}
	return rp, nil
}

// selectBlocks turns selectors into the set of block names they select.
// The selectors' form has been checked by Validate.
func selectBlocks(sels, blocks []string) (map[string]bool, error) {
	set := map[string]bool{}
	for _, sel := range sels {
		switch {
		case sel == "all":
			for _, b := range blocks {
				set[b] = true
			}
		case sel == "head":
			set[blocks[len(blocks)-1]] = true
		case strings.HasPrefix(sel, "top:"):
			n, _ := strconv.Atoi(strings.TrimPrefix(sel, "top:"))
			if n > len(blocks) {
				return nil, fmt.Errorf("selector %q: the model has only %d blocks", sel, len(blocks))
			}
			for _, b := range blocks[len(blocks)-n:] {
				set[b] = true
			}
		case slices.Contains(blocks, sel):
			set[sel] = true
		default:
			return nil, fmt.Errorf("no block named %q (blocks: %s; or \"head\", \"top:N\", \"all\")", sel, strings.Join(blocks, ", "))
		}
	}
	return set, nil
}

// describeChange says how the trainable blocks changed from prev (nil for
// the first stage) to cur, for a stage label.
func describeChange(prev, cur, blocks []string) string {
	var added []string
	for _, b := range cur {
		if !slices.Contains(prev, b) {
			added = append(added, b)
		}
	}
	removed := slices.ContainsFunc(prev, func(b string) bool { return !slices.Contains(cur, b) })
	switch {
	case len(cur) == len(blocks) && len(cur) > 1 && (prev == nil || len(added) > 1):
		return "all"
	case prev != nil && !removed && len(added) > 0:
		return "+" + strings.Join(added, " +")
	case prev != nil && removed && len(cur) == 1:
		return cur[0] + " only"
	}
	return strings.Join(cur, ", ")
}

// Len returns the stage's length in optimizer steps: Steps, or Epochs
// epochs of stepsPerEpoch steps but at least MinSteps. It panics if the
// stage is measured in epochs and stepsPerEpoch is below 1.
func (s *ResolvedStage) Len(stepsPerEpoch int) int {
	if s.Steps > 0 {
		return s.Steps
	}
	if stepsPerEpoch < 1 {
		panic(fmt.Sprintf("trainer: %d steps per epoch", stepsPerEpoch))
	}
	return max(s.Epochs*stepsPerEpoch, s.MinSteps)
}

// EvalInterval returns the number of steps between the evaluations of a
// stage with Evals set, counted from the stage's start: max(stepsPerEpoch,
// ⌈S/Evals⌉) for a stage of S steps. The stage is also evaluated at its
// end. With Evals 20 a stage on a large set, which lasts a few epochs, is
// evaluated at the end of every epoch, while a few-shot stage of 100
// one-step epochs is evaluated 20 times instead of 100. A job's EvalEvery
// (--eval-every N) replaces this cadence by an evaluation every N steps of
// the plan.
//
// It returns 0 for a stage without Evals, which keeps the rule every stage
// had before Evals: an evaluation at the end of every epoch (counted across
// the plan), every EvalEvery steps of the plan as well, and at the end of
// the stage. It panics as Len does.
func (s *ResolvedStage) EvalInterval(stepsPerEpoch int) int {
	if s.Evals <= 0 {
		return 0
	}
	n := s.Len(stepsPerEpoch)
	return max(stepsPerEpoch, (n+s.Evals-1)/s.Evals)
}

// Evaluations returns how many times a stage with Evals is evaluated when
// it runs to its end on its cadence (no --eval-every, no early stop): at
// every multiple of EvalInterval and at its end, ⌈Len/EvalInterval⌉; 0
// for a stage without Evals, which is evaluated at the plan's epoch ends.
func (s *ResolvedStage) Evaluations(stepsPerEpoch int) int {
	every := s.EvalInterval(stepsPerEpoch)
	if every <= 0 {
		return 0
	}
	return (s.Len(stepsPerEpoch) + every - 1) / every
}

// LRAt returns the learning rate of the top trainable block at step of the
// stage (counting from 0); see [Schedule.LR] for steps out of range.
func (s *ResolvedStage) LRAt(step, stepsPerEpoch int) float64 {
	return s.Schedule.LR(step, s.Len(stepsPerEpoch), s.LR)
}

// Len returns the plan's length in optimizer steps.
func (rp *ResolvedPlan) Len(stepsPerEpoch int) int {
	n := 0
	for i := range rp.Stages {
		n += rp.Stages[i].Len(stepsPerEpoch)
	}
	return n
}

// Starts returns the global step at which each stage starts, for marking
// stage boundaries on charts.
func (rp *ResolvedPlan) Starts(stepsPerEpoch int) []int {
	starts := make([]int, len(rp.Stages))
	n := 0
	for i := range rp.Stages {
		starts[i] = n
		n += rp.Stages[i].Len(stepsPerEpoch)
	}
	return starts
}

// Locate returns the stage that a global step (counting from 0 across the
// plan) falls in and the step within that stage. A step below 0 counts as
// 0; one at or beyond the end is the last stage's final step count.
func (rp *ResolvedPlan) Locate(step, stepsPerEpoch int) (stage, stageStep int) {
	step = max(step, 0)
	for i := range rp.Stages {
		n := rp.Stages[i].Len(stepsPerEpoch)
		if step < n {
			return i, step
		}
		step -= n
	}
	last := len(rp.Stages) - 1
	return last, rp.Stages[last].Len(stepsPerEpoch)
}

// LRCurve returns the learning rate of each stage's top trainable block at
// every global step of the plan: the schedule preview, and what the run
// loop sets before each step.
func (rp *ResolvedPlan) LRCurve(stepsPerEpoch int) []float64 {
	curve := make([]float64, 0, rp.Len(stepsPerEpoch))
	for i := range rp.Stages {
		s := &rp.Stages[i]
		n := s.Len(stepsPerEpoch)
		for t := range n {
			curve = append(curve, s.Schedule.LR(t, n, s.LR))
		}
	}
	return curve
}

// BlockLRs returns the learning rate of every block (parallel to Blocks, 0
// for frozen ones) at a global step; see [ResolvedPlan.Locate] for steps out
// of range.
func (rp *ResolvedPlan) BlockLRs(step, stepsPerEpoch int) []float64 {
	i, t := rp.Locate(step, stepsPerEpoch)
	s := &rp.Stages[i]
	lr := s.LRAt(t, stepsPerEpoch)
	out := make([]float64, len(s.LRMult))
	for b, m := range s.LRMult {
		out[b] = lr * m
	}
	return out
}

// ApplyStage freezes and unfreezes m's blocks, sets their learning-rate
// multipliers and sets TrainBN as s says. It returns an error if m's blocks
// are not the ones s was resolved against.
func ApplyStage[T Float](m *Model[T], s *ResolvedStage) error {
	if len(m.Blocks) != len(s.Blocks) {
		return fmt.Errorf("stage %q was resolved for %d blocks, the model has %d", s.Label, len(s.Blocks), len(m.Blocks))
	}
	for i, b := range m.Blocks {
		if b.Name != s.Blocks[i] {
			return fmt.Errorf("stage %q was resolved for block %q at position %d, the model has %q", s.Label, s.Blocks[i], i, b.Name)
		}
	}
	for i, b := range m.Blocks {
		b.Frozen = s.LRMult[i] == 0
		b.LRMult = s.LRMult[i]
	}
	// SetTrainBN also recomputes every parameter's trainable flag.
	m.SetTrainBN(s.TrainBN)
	return nil
}
