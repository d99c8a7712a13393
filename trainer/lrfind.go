package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
)

// The learning-rate range test of Smith 2017 ("Cyclical Learning Rates for
// Training Neural Networks", §3.3) as fastai's Learner.lr_find runs it:
// the learning rate grows exponentially from StartLR to EndLR over Steps
// batches, the training loss is smoothed with a debiased exponential moving
// average, and the test stops early once the smoothed loss exceeds StopDiv
// times its best. The suggestions are fastai's four (SuggestLRs); the one
// FindLR calls its Suggestion is "valley", fastai's default.

// Defaults of a FindLRSpec's zero fields: fastai's lr_find(start_lr=1e-7,
// end_lr=10, num_it=100, stop_div=True) and its Recorder's AvgSmoothLoss
// beta=0.98; fastai stops when the smoothed loss passes 4× its best.
const (
	DefaultFindLRStart   = 1e-7
	DefaultFindLREnd     = 10
	DefaultFindLRSteps   = 100
	DefaultFindLRBeta    = 0.98
	DefaultFindLRStopDiv = 4
)

// FindLRSpec describes a learning-rate range test.
type FindLRSpec struct {
	// Model is trained in place during the test and restored bit for bit
	// afterwards: parameters, buffers, freezing and learning-rate
	// multipliers.
	Model *Model[float32]
	// Stage selects the trainable blocks, their learning-rate multipliers
	// and the optimizer, usually the first stage of the plan to be run; the
	// swept learning rate is its top trainable block's. Nil trains every
	// block with DefaultOptimizer and no discriminative factor.
	Stage *ResolvedStage
	// Train is the training set; its classes must be the model's.
	Train *Dataset
	// Seed drives the batch order and dropout.
	Seed uint64
	// BatchSize is the number of samples per step; zero means 32.
	BatchSize int
	// StartLR and EndLR bound the sweep; zero means DefaultFindLRStart and
	// DefaultFindLREnd.
	StartLR, EndLR float64
	// Steps is the number of batches; zero means DefaultFindLRSteps. The
	// training set is cycled through as often as needed.
	Steps int
	// Beta is the smoothing factor of the loss; zero means
	// DefaultFindLRBeta.
	Beta float64
	// StopDiv stops the test when the smoothed loss exceeds StopDiv times
	// its best; zero means DefaultFindLRStopDiv, negative never stops.
	StopDiv float64
}

// LRFindResult is the curve of a range test and its suggestion.
type LRFindResult struct {
	// LRs[i] is the learning rate of step i, Losses[i] the smoothed loss
	// after it and RawLosses[i] the batch loss. The curve ends early when
	// the loss diverged or stopped being finite.
	LRs, Losses, RawLosses []float64
	// Suggestion is fastai's valley learning rate, LRs[SuggestionIndex].
	Suggestion      float64
	SuggestionIndex int
	// Suggestions are fastai's four suggestions, in the order of
	// SuggestLRs: minimum, steep, valley, slide.
	Suggestions []LRSuggestion
}

// LRSuggestion is one learning rate suggested by a range test.
type LRSuggestion struct {
	// Name is fastai's name of the rule: "minimum", "steep", "valley" or
	// "slide".
	Name string
	// LR is the suggested learning rate.
	LR float64
	// Index is the point of the curve the rule marks: the suggestion's own
	// point, except for minimum, which suggests a tenth of the learning
	// rate at Index.
	Index int
}

// ErrLRFindShort is returned by FindLR when the curve is too short to
// suggest a learning rate: the loss diverged within the first steps.
var ErrLRFindShort = errors.New("lr-find: the loss diverged before the curve could be drawn")

// FindLR runs a learning-rate range test (see FindLRSpec) and suggests a
// learning rate. The model's parameters, buffers, block flags and TrainBN
// are restored exactly before it returns, whatever the outcome.
//
// It returns ctx.Err() if ctx is cancelled (checked between batches), with
// the curve so far; ErrLRFindShort when too few finite losses were seen; or
// an error describing a spec that cannot run.
func FindLR(ctx context.Context, spec FindLRSpec) (LRFindResult, error) {
	m := spec.Model
	if m == nil || spec.Train == nil {
		return LRFindResult{}, errors.New("lr-find: model and training set are required")
	}
	if spec.Train.Len() == 0 {
		return LRFindResult{}, fmt.Errorf("lr-find: training set %q is empty", spec.Train.Name)
	}
	if err := spec.Train.CheckConfig(&m.Config); err != nil {
		return LRFindResult{}, fmt.Errorf("lr-find: %w", err)
	}
	batch := spec.BatchSize
	if batch == 0 {
		batch = DefaultBatchSize
	}
	if batch < 0 {
		return LRFindResult{}, fmt.Errorf("lr-find: batch size %d is negative", batch)
	}
	start, end := orFloat(spec.StartLR, DefaultFindLRStart), orFloat(spec.EndLR, DefaultFindLREnd)
	if !(start > 0 && end > start) || math.IsInf(end, 0) {
		return LRFindResult{}, fmt.Errorf("lr-find: learning rates from %v to %v, want 0 < start < end", start, end)
	}
	steps := spec.Steps
	if steps == 0 {
		steps = DefaultFindLRSteps
	}
	if steps < 2 {
		return LRFindResult{}, fmt.Errorf("lr-find: %d steps, want at least 2", steps)
	}
	beta := orFloat(spec.Beta, DefaultFindLRBeta)
	if !(beta >= 0 && beta < 1) {
		return LRFindResult{}, fmt.Errorf("lr-find: smoothing %v, want in [0, 1)", beta)
	}
	stopDiv := orFloat(spec.StopDiv, DefaultFindLRStopDiv)

	stage := spec.Stage
	if stage == nil {
		s := allStage(m)
		stage = &s
	}

	// Keep everything the test changes, and put it back on the way out.
	saved := saveModelState(m)
	defer saved.restore(m)

	if err := ApplyStage(m, stage); err != nil {
		return LRFindResult{}, fmt.Errorf("lr-find: %w", err)
	}
	opt, err := newOptimizer(m, stage.Optimizer.WithDefaults())
	if err != nil {
		return LRFindResult{}, fmt.Errorf("lr-find: %w", err)
	}

	var (
		res       LRFindResult
		avg       float64
		best      = math.Inf(1)
		ratio     = end / start
		runErr    error
		trainStep = newStepper(m, spec.Train, spec.Seed, batch)
	)
	// The loss the stage trains on, label smoothing and all, as fastai's
	// lr_find uses the learner's own loss function.
	trainStep.ce.Smoothing = stage.LabelSmoothing
	for i := range steps {
		if err := ctx.Err(); err != nil {
			runErr = err
			break
		}
		// Learning rate: fastai's SchedExp at position i/steps.
		lr := start * math.Pow(ratio, float64(i)/float64(steps))

		// Forward, backward, clip, step, on the batch Run would draw at
		// step i (see stepper).
		loss, _ := trainStep.step(i, opt, lr, stage.Optimizer.ClipNorm, false)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			break
		}

		// Smoothing: fastai's AvgSmoothLoss, an EMA debiased by 1-β^(i+1).
		avg = beta*avg + (1-beta)*loss
		smooth := avg / (1 - math.Pow(beta, float64(i+1)))
		res.LRs = append(res.LRs, lr)
		res.Losses = append(res.Losses, smooth)
		res.RawLosses = append(res.RawLosses, loss)

		// Termination: divergence of the smoothed loss or of the weights.
		best = min(best, smooth)
		if stopDiv > 0 && smooth > stopDiv*best {
			break
		}
		if !paramsFinite(m) {
			break
		}
	}

	sugg, ok := SuggestLRs(res.LRs, res.Losses, steps)
	if !ok {
		if runErr != nil {
			return res, runErr
		}
		return res, ErrLRFindShort
	}
	res.Suggestions = sugg
	for _, sg := range sugg {
		if sg.Name == "valley" {
			res.SuggestionIndex, res.Suggestion = sg.Index, sg.LR
		}
	}
	return res, runErr
}

// SuggestLRs returns fastai's four learning-rate suggestions over a range
// test's curve: lrs[i] the learning rate of step i (growing
// exponentially) and losses[i] the smoothed loss after it, of a test
// planned for numIt steps. As fastai's Learner.lr_find does
// (fastai/callback/schedule.py, v2.5 and later), every rule sees the curve
// without its first numIt/10 points and its last 5 (the whole curve when
// that leaves fewer than 2), and
//
//   - minimum is a tenth of the learning rate at the lowest loss;
//   - steep is the learning rate where the loss falls fastest against
//     log(lr): the argmin of (losses[i+1]-losses[i]) / (log lrs[i+1] -
//     log lrs[i]), the first one on a tie;
//   - valley is the middle of the longest strictly decreasing stretch
//     (see valleyIndex);
//   - slide walks left from the end comparing the loss's gradient
//     (numpy.gradient: central differences inside, one-sided at the ends)
//     at points lr_diff = 15 apart, and stops where they differ by at
//     most thresh = 0.005; it suggests the left point's learning rate
//     (adjust_value = 1).
//
// It returns them in that order, each with an index into lrs, and false
// when the curve is empty. lrs and losses must have the same length; it
// panics otherwise.
func SuggestLRs(lrs, losses []float64, numIt int) ([]LRSuggestion, bool) {
	if len(lrs) != len(losses) {
		panic("trainer: SuggestLRs: lrs and losses differ in length")
	}
	lo, hi := lrWindow(len(losses), numIt)
	if hi <= lo {
		return nil, false
	}
	l, r := losses[lo:hi], lrs[lo:hi]
	n := len(l)

	// minimum: lr_min = lrs[losses.argmin()], suggested / 10.
	minI := 0
	for i := range l {
		if l[i] < l[minI] {
			minI = i
		}
	}

	// steep: the steepest descent against log(lr).
	steepI := 0
	best := math.Inf(1)
	for i := 0; i+1 < n; i++ {
		if g := (l[i+1] - l[i]) / (math.Log(r[i+1]) - math.Log(r[i])); g < best {
			best, steepI = g, i
		}
	}

	valleyI := valleyWindow(l)

	// slide: fastai's interval slide rule, lr_diff 15, thresh 0.005.
	const lrDiff, thresh = 15, 0.005
	grad := make([]float64, n)
	for i := range grad {
		switch {
		case n == 1:
		case i == 0:
			grad[i] = l[1] - l[0]
		case i == n-1:
			grad[i] = l[n-1] - l[n-2]
		default:
			grad[i] = (l[i+1] - l[i-1]) / 2
		}
	}
	ri, li := n-1, n-1-lrDiff
	slideI := max(li, 0) // fastai indexes lrs[-16] first: clamp on a short curve
	for li >= 0 && math.Abs(grad[ri]-grad[li]) > thresh {
		slideI = li
		ri--
		li--
	}

	return []LRSuggestion{
		{Name: "minimum", LR: r[minI] / 10, Index: lo + minI},
		{Name: "steep", LR: r[steepI], Index: lo + steepI},
		{Name: "valley", LR: r[valleyI], Index: lo + valleyI},
		{Name: "slide", LR: r[slideI], Index: lo + slideI},
	}, true
}

// lrWindow is the part of a curve of n points, planned for numIt, that
// fastai's suggestions look at: [numIt/10, n-5), or the whole curve when
// that leaves fewer than 2 points.
func lrWindow(n, numIt int) (lo, hi int) {
	lo, hi = numIt/10, n-5
	if hi-lo < 2 {
		lo, hi = 0, n
	}
	return lo, hi
}

// valleyIndex returns fastai's valley suggestion over a smoothed loss
// curve of a test planned for numIt steps: like fastai's lr_find it drops
// the first numIt/10 points and the last 5, then finds the longest strictly
// decreasing subsequence (O(n²) dynamic programming) and suggests the point
// halfway through its middle third:
//
//	sections = (max_end - max_start) / 3
//	idx = max_start + int(sections) + int(sections/2)
//
// It returns an index into losses, and false when there are no points.
func valleyIndex(losses []float64, numIt int) (int, bool) {
	lo, hi := lrWindow(len(losses), numIt)
	if hi <= lo {
		return 0, false
	}
	return lo + valleyWindow(losses[lo:hi]), true
}

// valleyWindow is valleyIndex over a curve already cut to fastai's window;
// l must not be empty.
func valleyWindow(l []float64) int {
	n := len(l)
	lds := make([]int, n)
	for i := range lds {
		lds[i] = 1
	}
	maxStart, maxEnd := 0, 0
	for i := 1; i < n; i++ {
		for j := 0; j < i; j++ {
			if l[i] < l[j] && lds[i] < lds[j]+1 {
				lds[i] = lds[j] + 1
			}
			if lds[maxEnd] < lds[i] {
				maxEnd = i
				maxStart = maxEnd - lds[maxEnd]
			}
		}
	}
	sections := float64(maxEnd-maxStart) / 3
	idx := maxStart + int(sections) + int(sections/2)
	// maxStart may be one before the window when the run starts at its
	// first point (fastai's formula); keep the index inside the curve.
	return min(max(idx, 0), n-1)
}

// allStage is a stage that trains every block of m at multiplier 1 with
// the default optimizer.
func allStage(m *Model[float32]) ResolvedStage {
	names := m.Config.BlockNames()
	mult := make([]float64, len(names))
	for i := range mult {
		mult[i] = 1
	}
	return ResolvedStage{
		Label: "all", Blocks: names, LRMult: mult, Trainable: names,
		LRFactor: 1, Optimizer: DefaultOptimizer(), Schedule: Schedule{}.withDefaults(),
	}
}

func orFloat(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// modelState is everything a range test changes in a model: the values of
// parameters and buffers, their gradients and trainable flags, and the
// blocks' freezing and multipliers.
type modelState struct {
	values    [][]float32
	grads     []*Tensor[float32] // copies; nil where there was none
	trainable []bool
	frozen    []bool
	lrMult    []float64
	trainBN   bool
}

func saveModelState(m *Model[float32]) modelState {
	s := modelState{values: copyWeights(m), trainBN: m.TrainBN}
	for _, p := range m.Params() {
		var g *Tensor[float32]
		if p.Grad != nil {
			g = &Tensor[float32]{Shape: slices.Clone(p.Grad.Shape), Data: slices.Clone(p.Grad.Data)}
		}
		s.grads = append(s.grads, g)
		s.trainable = append(s.trainable, p.Trainable)
	}
	for _, b := range m.Blocks {
		s.frozen = append(s.frozen, b.Frozen)
		s.lrMult = append(s.lrMult, b.LRMult)
	}
	return s
}

func (s modelState) restore(m *Model[float32]) {
	restoreWeights(m, s.values)
	for i, b := range m.Blocks {
		b.Frozen, b.LRMult = s.frozen[i], s.lrMult[i]
	}
	m.TrainBN = s.trainBN
	for i, p := range m.Params() {
		p.Grad, p.Trainable = s.grads[i], s.trainable[i]
	}
}
