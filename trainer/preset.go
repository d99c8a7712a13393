package trainer

import (
	"fmt"
	"math"
	"strings"
)

// PresetInfo names a preset and says in one line what it does.
type PresetInfo struct {
	Name        string
	Description string
}

// Defaults of the presets' arguments, chosen by the few-shot transfer
// benchmark (thaw bench transfer; assets/zoo/EVIDENCE.md, whose defaults
// column measures them): each preset's learning rate is the one its tuned
// column uses, and a stage given no length lasts one epoch or a floor of
// optimizer steps, whichever is longer. The floor is the tuned column's
// length turned into steps of DefaultBatchSize for a target of 10 shots on
// 5 to 13 classes, so a few-shot stage gets enough updates while a stage
// on a large set lasts its one epoch. The settings were chosen on seeds 1
// to 4 and the table reports seeds 1001 to 1005.
const (
	// head: tuned at lr 1e-2 for 120 epochs of batch 16.
	DefaultHeadLR       = 1e-2
	DefaultHeadMinSteps = 400
	// fine-tune: tuned at lr 2e-2 (fastai's base_lr is 2e-3 on full
	// datasets) for 60 epochs of batch 16 in the second stage; the first
	// stage stays fastai's one epoch, as tuned.
	DefaultFineTuneLR       = 2e-2
	DefaultFineTuneMinSteps = 200
	// gradual: tuned at lr 1e-2 for 30 epochs of batch 16 per stage.
	DefaultGradualLR       = 1e-2
	DefaultGradualMinSteps = 100
	// chain-thaw: the head's rate as for gradual, the later stages a tenth
	// of it as in DeepMoji; the stages as long as gradual's.
	DefaultChainThawLR       = 1e-2
	DefaultChainThawMinSteps = 100
	// lp-ft: the probe's rate as for head, the full stage a tenth of it;
	// each stage half as long as head's.
	DefaultLPFTLR       = 1e-2
	DefaultLPFTMinSteps = 200
	// full: the rate tuned for training the architecture from scratch
	// (3e-3, the scratch column), the length of lp-ft's stages.
	DefaultFullLR       = 3e-3
	DefaultFullMinSteps = 200
)

// The evaluation cadence and early stopping of every preset's stages.
// Evaluating at every epoch's end evaluated a few-shot stage of 100
// one-step epochs 100 times, and evaluations cost almost all of such a
// run (issue 20: 400 validations and gauge passes for a 400-step run whose
// validation loss was lowest at step 108). So a preset's stage of S steps
// is evaluated every max(steps per epoch, ⌈S/DefaultEvals⌉) steps and at
// its end (see ResolvedStage.EvalInterval): a stage of a few epochs on a
// large set still at every epoch's end, a few-shot stage 20 times. And a
// stage stops after a patience of evaluations without a better validation
// loss within it; the saved model is the best checkpoint whatever stops.
const (
	// DefaultEvals is the evaluations per stage of the rule above: 20
	// points draw a stage's validation curve and bound the stopped step to
	// a twentieth of the stage.
	DefaultEvals = 20
	// DefaultPatience is the patience of every preset but chain-thaw:
	// PyTorch Lightning's EarlyStopping default (patience=3, counted in
	// validation checks, as here).
	DefaultPatience = 3
	// DefaultChainThawPatience is DeepMoji's (the authors' code stops a
	// stage after 5 evaluations without a better validation loss).
	DefaultChainThawPatience = 5
)

// DefaultLabelSmoothing is every preset's ε of the loss (see
// Stage.LabelSmoothing), in training and validation alike: 0.1, the value
// of Szegedy et al. 2016 (§7) that torchvision's and timm's training
// recipes keep. Without it a few-shot head drives its logits without
// bound on a training set it separates: the validation loss turns up
// after a few dozen steps while the accuracy still climbs, so the
// checkpoint of the lowest validation loss, the one a run keeps and
// saves, was a barely trained head. Measured on digits-cnn → digits-5to9
// at 5 shots, seeds 1001 to 1005, with the presets' cadence and patience:
// lp-ft 74.6 % → 82.1 % on the test split, whose kept checkpoints had
// been at steps 10 to 30 of 400 on three seeds. The validation loss is
// smoothed too: measured plain, it picked early checkpoints of smoothed
// training (mnist8-mlp → uci-digits at 5 shots, gradual: 90.4 % against
// 92.1 % with both smoothed). A run that keeps the base model's trained
// head smooths nothing (Prepared.KeptHeadLoss: 93.5 % there).
const DefaultLabelSmoothing = 0.1

// withCadence gives every stage of p the presets' cadence, DefaultEvals,
// and p the patience and DefaultLabelSmoothing. The cadence goes on each
// stage, not the plan, so that a stage keeps it when it is copied into
// another plan (a branch's, which writes the plan's smoothing into its
// stages too).
func withCadence(p Plan, patience int) Plan {
	p.Patience = patience
	p.LabelSmoothing = DefaultLabelSmoothing
	for i := range p.Stages {
		p.Stages[i].Evals = DefaultEvals
	}
	return p
}

// withEpochCadence gives p the patience and DefaultLabelSmoothing and
// leaves its stages evaluated at every epoch's end (and at their ends), as
// a stage without Evals is.
func withEpochCadence(p Plan, patience int) Plan {
	p.Patience = patience
	p.LabelSmoothing = DefaultLabelSmoothing
	return p
}

var presets = []struct {
	PresetInfo
	plan func(blocks []string, lr float64, epochs int) Plan
}{
	{PresetInfo{"head", "linear probe: train the head only, the body stays frozen"}, PresetHead},
	{PresetInfo{"fine-tune", "fastai's fine_tune: one epoch on the head, then all blocks with spread learning rates"}, PresetFineTune},
	{PresetInfo{"gradual", "ULMFiT: the head, then one more block per stage, discriminative rates (2.6), slanted triangular"}, PresetGradual},
	{PresetInfo{"chain-thaw", "DeepMoji: the head, then each block alone from the input up, then all blocks"}, PresetChainThaw},
	{PresetInfo{"full", "train every block in one stage"}, PresetFull},
	{PresetInfo{"lp-ft", "linear probe, then full fine-tuning at a tenth of the learning rate"}, PresetLPFT},
}

// Presets lists the presets in the order the UI offers them.
func Presets() []PresetInfo {
	out := make([]PresetInfo, len(presets))
	for i, p := range presets {
		out[i] = p.PresetInfo
	}
	return out
}

// Preset returns the named preset's plan for a model with the given blocks
// (input to output), a base learning rate and a number of epochs; see each
// preset's function for what lr and epochs mean to it, and their zero
// values. Every preset's stages are evaluated on the cadence of
// DefaultEvals and stop after DefaultPatience evaluations without a better
// validation loss (chain-thaw: DefaultChainThawPatience), so a length in
// epochs is at most that. It returns an error naming the presets if there is none by that
// name.
func Preset(name string, blocks []string, lr float64, epochs int) (Plan, error) {
	var names []string
	for _, p := range presets {
		if p.Name == name {
			return p.plan(blocks, lr, epochs), nil
		}
		names = append(names, p.Name)
	}
	return Plan{}, fmt.Errorf("no preset named %q (presets: %s)", name, strings.Join(names, ", "))
}

// presetArgs replaces a non-positive lr with defLR, and a non-positive
// epochs with one epoch of at least minSteps steps (see Stage.MinSteps).
func presetArgs(lr, defLR float64, epochs, minSteps int) (float64, int, int) {
	if lr <= 0 {
		lr = defLR
	}
	if epochs > 0 {
		return lr, epochs, 0
	}
	return lr, 1, minSteps
}

// PresetHead returns the head preset: one stage of epochs epochs that
// trains the head alone at lr with cosine annealing, the body frozen. Zero
// lr means DefaultHeadLR, zero epochs one epoch of at least
// DefaultHeadMinSteps steps. blocks is unused; it is there so every preset
// has the same signature.
func PresetHead(blocks []string, lr float64, epochs int) Plan {
	lr, epochs, minSteps := presetArgs(lr, DefaultHeadLR, epochs, DefaultHeadMinSteps)
	return withCadence(Plan{
		Name:        "head",
		Description: "Linear probe: only the head trains.",
		Stages: []Stage{
			{Train: []string{"head"}, Epochs: epochs, MinSteps: minSteps, LR: lr, Schedule: &Schedule{Kind: ScheduleCosine}},
		},
	}, DefaultPatience)
}

// PresetFull returns the full preset: one stage of epochs epochs that
// trains every block at lr with cosine annealing. Zero lr means
// DefaultFullLR, zero epochs one epoch of at least DefaultFullMinSteps
// steps. blocks is unused.
func PresetFull(blocks []string, lr float64, epochs int) Plan {
	lr, epochs, minSteps := presetArgs(lr, DefaultFullLR, epochs, DefaultFullMinSteps)
	return withCadence(Plan{
		Name:        "full",
		Description: "Full fine-tuning: every block trains from the start.",
		Stages: []Stage{
			{Train: []string{"all"}, Epochs: epochs, MinSteps: minSteps, LR: lr, Schedule: &Schedule{Kind: ScheduleCosine}},
		},
	}, DefaultPatience)
}

// PresetLPFT returns the lp-ft preset (Kumar et al. 2022, "Fine-Tuning can
// Distort Pretrained Features and Underperform Out-of-Distribution"): a
// linear probe of epochs epochs at lr, then epochs epochs of every block at
// lr/10, both with cosine annealing. Starting the full stage from a trained
// head keeps the early gradients from distorting the pretrained features;
// the paper tunes the second learning rate, and a tenth is thaw's default.
// Zero lr means DefaultLPFTLR, zero epochs one epoch of at least
// DefaultLPFTMinSteps steps per stage. blocks is unused.
func PresetLPFT(blocks []string, lr float64, epochs int) Plan {
	lr, epochs, minSteps := presetArgs(lr, DefaultLPFTLR, epochs, DefaultLPFTMinSteps)
	return withCadence(Plan{
		Name:        "lp-ft",
		Description: "Linear probe, then full fine-tuning at a tenth of the learning rate.",
		Schedule:    &Schedule{Kind: ScheduleCosine},
		Stages: []Stage{
			{Train: []string{"head"}, Epochs: epochs, MinSteps: minSteps, LR: lr},
			{Train: []string{"all"}, Epochs: epochs, MinSteps: minSteps, LR: lr / 10},
		},
	}, DefaultPatience)
}

// PresetFineTune returns the fine-tune preset, fastai's Learner.fine_tune
// with its defaults (freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5):
//
//	freeze; fit_one_cycle(1, base_lr, pct_start=0.99)
//	base_lr /= 2
//	unfreeze; fit_one_cycle(epochs, slice(base_lr/100, base_lr), pct_start=0.3, div=5)
//
// The slice spreads learning rates geometrically over the parameter groups
// (fastai's even_mults); here every block is a group, so the second stage's
// discriminative factor is 100^(1/(n-1)) for n blocks: the head learns at
// lr/2, the lowest block at lr/200. The optimizer is fastai's default Adam
// (decoupled weight decay 0.01, betas 0.9 and 0.99, eps 1e-5), and
// BatchNorm keeps training in frozen blocks as with fastai's train_bn=True.
// fastai also cycles Adam's beta1 from 0.95 to 0.85 and back within each
// one-cycle stage; thaw keeps it fixed.
//
// lr is fastai's base_lr (zero means DefaultFineTuneLR) and epochs the
// length of the second stage (zero means one epoch of at least
// DefaultFineTuneMinSteps steps).
func PresetFineTune(blocks []string, lr float64, epochs int) Plan {
	lr, epochs, minSteps := presetArgs(lr, DefaultFineTuneLR, epochs, DefaultFineTuneMinSteps)
	const lrMult = 100
	factor := 1.0
	if n := len(blocks); n > 1 {
		factor = math.Pow(lrMult, 1/float64(n-1))
	}
	return withCadence(Plan{
		Name:        "fine-tune",
		Description: "fastai's fine_tune: one epoch on the head, then all blocks with learning rates spread 100-fold.",
		Optimizer:   &OptimizerConfig{Kind: OptimizerAdamW, WeightDecay: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-5},
		TrainBN:     true,
		Stages: []Stage{
			{Train: []string{"head"}, Epochs: 1, LR: lr, Schedule: &Schedule{Kind: ScheduleOneCycle, PctStart: 0.99}},
			{Train: []string{"all"}, Epochs: epochs, MinSteps: minSteps, LR: lr / 2, LRFactor: factor,
				Schedule: &Schedule{Kind: ScheduleOneCycle, PctStart: 0.3, Div: 5}},
		},
	}, DefaultPatience)
}

// PresetGradual returns the gradual preset, ULMFiT's gradual unfreezing
// (Howard & Ruder 2018, §3.3): the head first, then one more block per stage from the
// top down until every block trains, one stage per block, each epochs
// epochs long at peak lr with slanted triangular learning rates and
// discriminative factor 2.6. The optimizer is the paper's Adam with
// beta1 0.7 and beta2 0.99 (§4), with decoupled weight decay 0.01.
// Zero lr means DefaultGradualLR, zero epochs one epoch of at least
// DefaultGradualMinSteps steps per stage.
func PresetGradual(blocks []string, lr float64, epochs int) Plan {
	lr, epochs, minSteps := presetArgs(lr, DefaultGradualLR, epochs, DefaultGradualMinSteps)
	p := Plan{
		Name:        "gradual",
		Description: "ULMFiT's gradual unfreezing: one more block per stage, discriminative learning rates, slanted triangular schedule.",
		LR:          lr,
		Epochs:      epochs,
		MinSteps:    minSteps,
		Schedule:    &Schedule{Kind: ScheduleSlantedTriangular},
		LRFactor:    2.6,
		Optimizer:   &OptimizerConfig{Kind: OptimizerAdamW, WeightDecay: 0.01, Beta1: 0.7, Beta2: 0.99, Eps: 1e-8},
	}
	n := max(len(blocks), 1)
	for k := 1; k <= n; k++ {
		sel := fmt.Sprintf("top:%d", k)
		switch {
		case k == n:
			sel = "all"
		case k == 1:
			sel = "head"
		}
		p.Stages = append(p.Stages, Stage{Train: []string{sel}})
	}
	return withCadence(p, DefaultPatience)
}

// PresetChainThaw returns the chain-thaw preset of DeepMoji (Felbo et al. 2017,
// "Using millions of emoji occurrences to learn any-domain representations
// for detecting sentiment, emotion and sarcasm"): the head alone at
// lr, then each other block alone from the input up, then every block, the
// later stages at lr/10. Each stage lasts at most epochs epochs and stops
// early after 5 evaluations without a better validation loss, evaluated at
// every epoch's end as the authors' Keras code does (its EarlyStopping
// watches val_loss once an epoch), not at the other presets' cadence:
// with a twentieth-of-a-stage cadence its few-shot stages, each training
// one block alone, stopped at a worse checkpoint (digits-cnn at 5 shots:
// 70.1 % against 79.9 % at every epoch, EVIDENCE.md's defaults table); the
// optimizer is Adam without weight decay and with gradients clipped to norm
// 1. These are the defaults of the authors' code (initial_lr 1e-3,
// next_lr 1e-4, patience 5, clipnorm 1), but for the rate: zero lr means
// DefaultChainThawLR, zero epochs one epoch of at least
// DefaultChainThawMinSteps steps per stage.
func PresetChainThaw(blocks []string, lr float64, epochs int) Plan {
	lr, epochs, minSteps := presetArgs(lr, DefaultChainThawLR, epochs, DefaultChainThawMinSteps)
	p := Plan{
		Name:        "chain-thaw",
		Description: "DeepMoji's chain-thaw: the head, then each block alone from the input up, then all blocks.",
		Epochs:      epochs,
		MinSteps:    minSteps,
		LR:          lr / 10,
		Optimizer:   &OptimizerConfig{Kind: OptimizerAdamW, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, ClipNorm: 1},
		Stages:      []Stage{{Train: []string{"head"}, LR: lr}},
	}
	if len(blocks) >= 2 {
		for _, b := range blocks[:len(blocks)-1] {
			p.Stages = append(p.Stages, Stage{Train: []string{b}})
		}
		p.Stages = append(p.Stages, Stage{Train: []string{"all"}})
	}
	return withEpochCadence(p, DefaultChainThawPatience)
}
