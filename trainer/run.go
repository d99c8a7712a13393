package trainer

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/pprof"
	"slices"
	"time"
)

// ErrDiverged is returned by Run when the training loss or the weights
// become NaN or infinite. The model is left holding the last good weights.
var ErrDiverged = errors.New("training diverged: loss is not finite")

// Status is the state of a run.
type Status string

// The statuses of a run, as the store records them. A queued run waits
// for a process to start it.
const (
	StatusQueued      Status = "queued"
	StatusRunning     Status = "running"
	StatusPaused      Status = "paused"
	StatusDone        Status = "done"
	StatusStopped     Status = "stopped"
	StatusDiverged    Status = "diverged"
	StatusInterrupted Status = "interrupted"
	StatusFailed      Status = "failed"
)

// Valid reports whether s is one of the statuses above.
func (s Status) Valid() bool {
	switch s {
	case StatusQueued, StatusRunning, StatusPaused, StatusDone, StatusStopped, StatusDiverged, StatusInterrupted, StatusFailed:
		return true
	}
	return false
}

// Live reports whether a process owns a run with this status: running and
// paused runs send heartbeats; the others are final until resumed, or, for
// a queued run, not started yet.
func (s Status) Live() bool { return s == StatusRunning || s == StatusPaused }

// Final reports whether a run with this status has ended: it is neither
// queued nor live.
func (s Status) Final() bool { return s.Valid() && s != StatusQueued && !s.Live() }

// Spec describes one run: a plan executed on a model and a dataset.
type Spec struct {
	// Model is the base model with its pretrained weights, its head already
	// matching Train's classes (see Model.ReplaceHead). Run trains it in
	// place; when Run returns it holds the final weights (after a
	// divergence, the last weights whose evaluation was finite, or the
	// starting weights), and Result.Best holds the best by validation loss.
	Model *Model[float32]
	// Plan is the plan resolved against Model's blocks.
	Plan *ResolvedPlan
	// Train and Val are the training and validation sets; their classes must
	// be the model's. Val may be nil: then nothing is evaluated and the
	// final weights are kept.
	Train, Val *Dataset
	// Source, when set, drives the forgetting gauge: each evaluation also
	// measures accuracy on Source, the base model's source task, through
	// the current body and SourceHead, the base model's original head
	// when the head was replaced. A nil SourceHead means the model's own
	// head, as trained: Source's classes must then be the model's.
	Source     *Dataset
	SourceHead *Block[float32]
	// GaugeSample is the size of the fixed stratified subset of Source
	// that the gauge measures at each evaluation; the whole of Source is
	// measured at the start and the end. Zero means DefaultGaugeSample;
	// a negative value, or one at least Source's size, the whole set every
	// time.
	GaugeSample int
	// Seed drives every random choice: batch order, dropout. The zero seed
	// is a seed like any other.
	Seed uint64
	// BatchSize is the number of samples per step; zero means 32.
	BatchSize int
	// EvalEvery, when positive, evaluates every EvalEvery steps of the
	// plan in place of the stages' cadence; see [Job.EvalEvery] and
	// [ResolvedStage.EvalInterval]. Zero means the stages' cadence.
	EvalEvery int
	// ReportEvery is the least time between two step reports; zero means
	// 200 ms. Evaluations and stage changes are always reported.
	ReportEvery time.Duration
	// LabelSmoothing is passed to the cross-entropy loss.
	LabelSmoothing float64
	// Control, when set, lets another goroutine pause, resume, stop the run
	// or skip to the next stage.
	Control *Control
	// Checkpoint, when set, is called with the state at the end of each
	// stage, at each new best evaluation and at the end of the run. An
	// error from it fails the run.
	Checkpoint func(Checkpoint) error
	// Resume, when set, continues a run from a checkpoint taken by an
	// earlier Run with the same spec.
	Resume *Checkpoint
	// Prefixes, when set, shares the frozen prefix's outputs with the
	// other runs given the same Prefixes, so that runs on the same data
	// (a sweep's freeze points on one seed) compute each prefix once; the
	// results are the same bits either way (see Prefixes). Nil means the
	// run computes its own.
	Prefixes *Prefixes

	// noCache turns the evaluations' frozen-prefix cache off; the results
	// are the same bits either way (tests check it).
	noCache bool
}

// Defaults of a Spec's zero fields.
const (
	DefaultGaugeSample = 1000
	DefaultBatchSize   = 32
	DefaultReportEvery = 200 * time.Millisecond
	evalBatchSize      = 256
)

// runner holds one run's state; Run builds one and drives it.
type runner struct {
	spec   Spec
	m      *Model[float32]
	plan   *ResolvedPlan
	report func(Progress)

	spe, total int
	opt        Optimizer[float32]
	optCfg     OptimizerConfig
	steps      *stepper

	base     [][]float32 // w₀: every parameter and buffer at the start
	best     []SafeTensor
	lastGood [][]float32
	st       LoopState
	stage    int
	// from is the step the loop starts at: 0, or where a resumed run
	// goes on.
	from int

	// ev runs the evaluations; changes lists the blocks the current
	// stage's steps change, for its cache.
	ev      *evaluator
	changes []int
	// gaugeLive is the gauge's set for the live points (see
	// Spec.GaugeSample); gauged holds its last value on each set with the
	// block versions it was measured at: while they stay the same (body
	// frozen, head new) it cannot change.
	gaugeLive *Dataset
	gauged    map[*Dataset]gaugeValue
	// validated is the last validation with the block versions it was
	// measured at: the run's last evaluation and its final one measure
	// the same weights.
	validated *valValue
	valPasses int // validation passes computed
	ctx       context.Context

	// reporting
	losses       []float64 // step losses since the last report
	lossStart    int       // the step of losses[0]
	lastReport   time.Time
	samplesSince int
	started      time.Time
	samplesTotal int
	// Time spent in training steps (forward, backward, update), in all and
	// since the last report: throughput is measured on it, not on the
	// evaluations and checkpoints around it.
	trainDuration time.Duration
	trainSince    time.Duration
}

// Run executes spec's plan and returns its result. It is synchronous: the
// caller adds the goroutine. report, if not nil, is called from Run's
// goroutine at most every spec.ReportEvery for training steps, and on every
// evaluation, stage change and at the end; it must return quickly (hand
// the Progress to a channel that drops what a slow viewer cannot take).
//
// Run returns ctx.Err() if ctx is cancelled (checked between batches; the
// run ends as stopped; an evaluation or gauge pass under way finishes
// first, so that the stop's checkpoint is the uninterrupted run's state at
// that step), ErrDiverged if the loss or the weights become
// non-finite (the model is restored to the last weights whose evaluation
// was finite, or to the starting weights), an error from spec.Checkpoint,
// or an error describing a spec that cannot run (checked before training).
func Run(ctx context.Context, spec Spec, report func(Progress)) (Result, error) {
	r, err := newRunner(spec, report)
	if err != nil {
		return Result{Status: StatusFailed}, err
	}
	return r.run(ctx)
}

func newRunner(spec Spec, report func(Progress)) (*runner, error) {
	if spec.Model == nil || spec.Plan == nil || spec.Train == nil {
		return nil, errors.New("run: model, plan and training set are required")
	}
	m := spec.Model
	if spec.BatchSize == 0 {
		spec.BatchSize = DefaultBatchSize
	}
	if spec.BatchSize < 0 {
		return nil, fmt.Errorf("run: batch size %d is negative", spec.BatchSize)
	}
	if spec.ReportEvery == 0 {
		spec.ReportEvery = DefaultReportEvery
	}
	if spec.Train.Len() == 0 {
		return nil, fmt.Errorf("run: training set %q is empty", spec.Train.Name)
	}
	for _, ds := range []*Dataset{spec.Train, spec.Val} {
		if ds == nil {
			continue
		}
		if err := ds.CheckConfig(&m.Config); err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
	}
	if spec.Source != nil {
		if !sameShape(spec.Source.Shape, m.Config.InputShape) {
			return nil, fmt.Errorf("run: source set %q has samples of shape %v, the model takes %v", spec.Source.Name, spec.Source.Shape, m.Config.InputShape)
		}
		if spec.SourceHead == nil && !slices.Equal(spec.Source.Classes, m.Config.Classes) {
			return nil, fmt.Errorf("run: source set %q has classes %q, the model's head %q; give the source head", spec.Source.Name, spec.Source.Classes, m.Config.Classes)
		}
	}
	if report == nil {
		report = func(Progress) {}
	}
	r := &runner{spec: spec, m: m, plan: spec.Plan, report: report, stage: -1}
	r.spe = StepsPerEpoch(spec.Train.Len(), spec.BatchSize)
	r.total = r.plan.Len(r.spe)
	// ApplyStage checks that the plan was resolved for this model.
	if err := ApplyStage(m, &r.plan.Stages[0]); err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	r.steps = newStepper(m, spec.Train, spec.Seed, spec.BatchSize)
	r.ev = newEvaluator(m)
	r.ev.noCache = spec.noCache
	r.ev.shared = spec.Prefixes
	r.ev.progress = spec.Control.evalProgress()
	r.steps.ev = r.ev
	r.changes = changing(m)
	r.gaugeLive = GaugeLiveSet(spec.Source, spec.GaugeSample)
	r.gauged = map[*Dataset]gaugeValue{}
	return r, nil
}

func (r *runner) run(ctx context.Context) (res Result, err error) {
	r.started = time.Now()
	// The evaluator is not given ctx: a stop lets the evaluation and the
	// gauge of the current step finish, so that the stop's checkpoint
	// holds them (and the patience they count), as the uninterrupted run
	// has them at that step. The run stops before its next step.
	r.ctx = ctx
	r.base = copyWeights(r.m)
	r.st = LoopState{BestStep: -1, BestValLoss: math.Inf(1), BestValAcc: math.NaN(), StageBestLoss: math.Inf(1), SourceAccBefore: math.NaN()}
	if c := r.spec.Resume; c != nil {
		// The checkpoint holds the gauge's starting value; one written
		// without it (by a thaw that cut the first gauge pass short on a
		// stop) gets it now, on the starting weights the model still holds.
		before := c.Loop.SourceAccBefore
		if r.gauge() && math.IsNaN(before) {
			before = r.sourceAccuracy(r.spec.Source)
		}
		if err := r.resume(c); err != nil {
			return Result{Status: StatusFailed}, err
		}
		r.st.SourceAccBefore = before
	} else {
		// Announce the first stage before the gauge's first pass, so a
		// viewer hears from the run at once.
		if err := r.enterStage(0, 0); err != nil {
			return r.finish(StatusFailed, err)
		}
		if r.gauge() {
			r.st.SourceAccBefore = r.sourceAccuracy(r.spec.Source)
		}
	}
	r.lastGood = copyWeights(r.m)
	r.lastReport = time.Now()

	status := StatusDone
	for step := r.from; step < r.total; step++ {
		// Controls: cancellation, stop, pause, skip.
		skip := false
		if s, err := r.control(ctx); err != nil {
			status, res.Status = StatusStopped, StatusStopped
			return r.finish(status, err)
		} else if s == controlStop {
			status = StatusStopped
			break
		} else if s == controlSkip {
			skip = true
		}
		stage, stageStep := r.plan.Locate(step, r.spe)
		if skip && step > 0 && stage == r.stage {
			// End the current stage now: evaluate, checkpoint, and jump to
			// the next stage's first step.
			r.st.Stages[r.stage].Skipped = true
			if err := r.endStage(step); err != nil {
				return r.finish(r.failStatus(err), err)
			}
			step = r.plan.Starts(r.spe)[stage] + r.plan.Stages[stage].Len(r.spe) - 1
			continue
		}
		if stage != r.stage {
			if err := r.enterStage(stage, step); err != nil {
				return r.finish(StatusFailed, err)
			}
		}
		s := &r.plan.Stages[stage]
		t0 := time.Now()

		// Learning rate.
		lr := s.LRAt(stageStep, r.spe)

		// Forward, backward, clip, step, on the batch of this step (see
		// stepper). The per-block diagnostics cost about as much as the
		// update, so they are collected only on steps that will be
		// reported: evaluations, and step reports once ReportEvery has
		// passed (a report that falls due during a step waits for the next
		// one).
		stageEnd := stageStep+1 == s.Len(r.spe)
		evalDue := r.evalDue(s, step, stageStep)
		reportDue := time.Since(r.lastReport) >= r.spec.ReportEvery
		var loss float64
		var n int
		r.phase("training", func() {
			loss, n = r.steps.step(step, r.opt, lr, s.Optimizer.ClipNorm, stageEnd || evalDue || reportDue)
		})
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return r.diverged(step)
		}
		r.ev.changed(r.changes...)
		// Weights that an update made non-finite show as a non-finite loss
		// on the next step; only the plan's last step has no next one, so
		// only there is a pass over every weight worth its cost.
		if step+1 == r.total && !paramsFinite(r.m) {
			return r.diverged(step)
		}
		dt := time.Since(t0)
		r.trainDuration += dt
		r.trainSince += dt
		r.samplesSince += n
		r.samplesTotal += n
		// The buffer's first loss says where the buffer starts: after a
		// skipped or early-stopped stage the steps jump.
		if len(r.losses) == 0 {
			r.lossStart = step
		}
		r.losses = append(r.losses, loss)
		r.st.Step = step + 1

		// Evaluation and checkpoint: on the stage's cadence (see evalDue)
		// and at its end.
		if stageEnd {
			if err := r.endStage(step + 1); err != nil {
				return r.finish(r.failStatus(err), err)
			}
			continue
		}
		if evalDue {
			// Early stopping: patience counts evaluations without a better
			// validation loss within the stage.
			stop, err := r.evaluate(step+1, s.Patience)
			if err != nil {
				return r.finish(r.failStatus(err), err)
			}
			if stop {
				r.st.Stages[stage].StoppedEarly = true
				if err := r.endStage(step + 1); err != nil {
					return r.finish(r.failStatus(err), err)
				}
				step = r.plan.Starts(r.spe)[stage] + s.Len(r.spe) - 1
			}
			continue
		}

		// Report.
		if reportDue {
			r.emit(EventStep, math.NaN(), math.NaN(), math.NaN())
		}
	}
	return r.finish(status, nil)
}

// evalDue reports whether the run evaluates after global step step,
// step stageStep of stage s (both counting from 0), short of the stage's
// end, where it always does: every EvalEvery steps of the plan when it is
// positive; and, for a stage with Evals, every EvalInterval steps from its
// start when EvalEvery is not given, for one without, at every epoch's
// end (the rule before Evals).
func (r *runner) evalDue(s *ResolvedStage, step, stageStep int) bool {
	every := r.spec.EvalEvery
	switch {
	case every > 0 && (step+1)%every == 0:
		return true
	case s.Evals > 0:
		return every <= 0 && (stageStep+1)%s.EvalInterval(r.spe) == 0
	}
	return (step+1)%r.spe == 0
}

// StepsPerEpoch is the number of batches in an epoch of n samples. The
// last, shorter batch is kept unless it would hold a single sample, which
// BatchNorm cannot normalise in training (PyTorch raises on it too); that
// sample waits for another epoch's shuffle.
func StepsPerEpoch(n, batch int) int {
	spe := (n + batch - 1) / batch
	if n%batch == 1 && spe > 1 {
		spe--
	}
	return spe
}

type controlRequest int

const (
	controlNone controlRequest = iota
	controlStop
	controlSkip
)

// control applies pause, stop and skip requests and cancellation. It blocks
// while the run is paused.
func (r *runner) control(ctx context.Context) (controlRequest, error) {
	if err := ctx.Err(); err != nil {
		return controlNone, err
	}
	c := r.spec.Control
	if c == nil {
		return controlNone, nil
	}
	reportedPause := false
	for {
		paused, stop, skip, changed := c.poll()
		switch {
		case stop:
			return controlStop, nil
		case skip:
			return controlSkip, nil
		case !paused:
			if reportedPause {
				r.lastReport = time.Now()
				r.samplesSince = 0
				r.trainSince = 0
				r.emitStatus(StatusRunning)
			}
			return controlNone, nil
		}
		if !reportedPause {
			r.emitStatus(StatusPaused)
			reportedPause = true
		}
		select {
		case <-ctx.Done():
			return controlNone, ctx.Err()
		case <-changed:
		}
	}
}

// enterStage freezes and unfreezes blocks as stage i says and sets up its
// optimizer: the optimizer is kept across stages with the same settings, so
// blocks that stay trainable keep their state and only newly trainable ones
// start fresh.
func (r *runner) enterStage(i, step int) error {
	s := &r.plan.Stages[i]
	if err := ApplyStage(r.m, s); err != nil {
		return fmt.Errorf("stage %d: %w", i+1, err)
	}
	if r.opt == nil || s.Optimizer != r.optCfg {
		opt, err := newOptimizer(r.m, s.Optimizer)
		if err != nil {
			return fmt.Errorf("stage %d: %w", i+1, err)
		}
		r.opt, r.optCfg = opt, s.Optimizer
	}
	for _, name := range s.Trainable {
		if !slices.Contains(r.st.EverTrainable, name) {
			r.st.EverTrainable = append(r.st.EverTrainable, name)
		}
	}
	r.steps.ce.Smoothing, r.ev.smoothing = s.LabelSmoothing, s.LabelSmoothing
	r.stage = i
	r.changes = changing(r.m)
	// A new stage may thaw a cached block or change how the blocks run;
	// the evaluation caches keep only what can still serve.
	r.ev.dropTrain()
	r.ev.prune()
	if len(r.st.Stages) <= i {
		r.st.Stages = append(r.st.Stages, StageResult{
			Label: s.Label, Trainable: s.Trainable, StartStep: step,
			BestValLoss: math.NaN(), BestValAcc: math.NaN(),
		})
		r.st.StageBestLoss = math.Inf(1)
		r.st.SinceBest = 0
	}
	r.emit(EventStage, math.NaN(), math.NaN(), math.NaN())
	return nil
}

// newOptimizer builds the optimizer a stage asks for.
func newOptimizer(m *Model[float32], c OptimizerConfig) (Optimizer[float32], error) {
	switch c.Kind {
	case OptimizerSGD:
		return NewSGD(m, c.Momentum, c.WeightDecay, c.Nesterov)
	case OptimizerAdamW:
		return NewAdamW(m, c.Beta1, c.Beta2, c.Eps, c.WeightDecay)
	}
	return nil, fmt.Errorf("unknown optimizer %q", c.Kind)
}

// endStage evaluates at the end of the current stage, records it and
// writes its checkpoint.
func (r *runner) endStage(step int) error {
	// The stage's end is set first, so that a best checkpoint of this
	// evaluation holds it too.
	r.st.Stages[r.stage].EndStep = step
	if _, err := r.evaluate(step, 0); err != nil {
		r.st.Stages[r.stage].EndStep = 0 // not ended: its best checkpoint failed
		return err
	}
	return r.checkpoint(CheckpointStageEnd, step)
}

// evaluate measures the validation set (and the source set), reports and
// keeps the best weights. It reports whether the stage stops early: with
// a positive patience, when this is the patience-th evaluation in a row
// without a better validation loss within the stage (the report then says
// so).
func (r *runner) evaluate(step, patience int) (stop bool, err error) {
	if r.spec.Val == nil {
		r.emit(EventEval, math.NaN(), math.NaN(), r.sourceAccIfGauge())
		return false, nil
	}
	loss, acc := r.validation()
	src := r.sourceAccIfGauge()
	if !math.IsNaN(loss) && !math.IsInf(loss, 0) {
		r.lastGood = copyWeightsInto(r.lastGood, r.m)
	}
	sr := &r.st.Stages[r.stage]
	if loss < r.st.StageBestLoss {
		r.st.StageBestLoss = loss
		r.st.SinceBest = 0
		sr.BestValLoss, sr.BestValAcc = loss, acc
	} else {
		r.st.SinceBest++
		stop = patience > 0 && r.st.SinceBest >= patience
	}
	r.emitEval(loss, acc, src, stop)
	if loss < r.st.BestValLoss {
		r.st.BestValLoss, r.st.BestValAcc, r.st.BestStep = loss, acc, step
		if r.best, err = r.m.StateDict(); err != nil {
			return stop, err
		}
		if err := r.checkpoint(CheckpointBest, step); err != nil {
			return stop, err
		}
	}
	return stop, nil
}

// validation returns the mean loss and the accuracy on the validation set.
// While no block has changed since the last validation it returns that
// one's numbers without computing.
func (r *runner) validation() (loss, acc float64) {
	ds := r.spec.Val
	if ds == nil || ds.Len() == 0 {
		return math.NaN(), math.NaN()
	}
	if v := r.validated; v != nil && slices.Equal(v.ver, r.ev.version) && v.smoothing == r.ev.smoothing {
		return v.loss, v.acc
	}
	var sum float64
	var correct int
	r.phase("validation", func() { sum, correct = r.ev.pass(ds, nil, true) })
	r.valPasses++
	n := float64(ds.Len())
	loss, acc = sum/n, float64(correct)/n
	r.validated = &valValue{slices.Clone(r.ev.version), r.ev.smoothing, loss, acc}
	return loss, acc
}

type valValue struct {
	ver       []uint64
	smoothing float64
	loss, acc float64
}

// phase runs f with the CPU profiler's label phase=name, which the
// goroutines f starts inherit: a profile of a run splits by it (go tool
// pprof -tags).
func (r *runner) phase(name string, f func()) {
	ctx := r.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	pprof.Do(ctx, pprof.Labels("phase", name), func(context.Context) { f() })
}

func (r *runner) gauge() bool { return r.spec.Source != nil }

func (r *runner) sourceAccIfGauge() float64 {
	if !r.gauge() {
		return math.NaN()
	}
	return r.sourceAccuracy(r.gaugeLive)
}

type gaugeValue struct {
	acc float64
	ver []uint64
}

// GaugeLiveSet returns the set the forgetting gauge measures at each
// evaluation for a source set and a Spec.GaugeSample: a fixed stratified
// subset of about n samples (drawn with a fixed seed, so every run of the
// same source gauges the same samples), or src itself. Nil for a nil src.
func GaugeLiveSet(src *Dataset, n int) *Dataset {
	if n == 0 {
		n = DefaultGaugeSample
	}
	if src == nil || n < 0 || n >= src.Len() {
		return src
	}
	// Split's draw, without copying the part that is not gauged.
	_, live, err := src.splitIndices(rand.New(rand.NewPCG(0, saltGauge)), float64(n)/float64(src.Len()))
	if err != nil {
		return src
	}
	return src.Subset(live)
}

// saltGauge draws the gauge's live subset.
const saltGauge = 4

// sourceAccuracy measures the source task through the current body and
// the source head (the model's own head when it was kept): the forgetting
// gauge. While the blocks it runs through keep their versions (the body
// frozen under a new head) it returns the last value without computing.
func (r *runner) sourceAccuracy(ds *Dataset) float64 {
	used := r.ev.version
	if r.spec.SourceHead != nil {
		used = used[:len(used)-1]
	}
	if g, ok := r.gauged[ds]; ok && slices.Equal(g.ver, used) {
		return g.acc
	}
	if ds.Len() == 0 {
		return math.NaN()
	}
	var correct int
	r.phase("gauge", func() { _, correct = r.ev.pass(ds, r.spec.SourceHead, false) })
	acc := float64(correct) / float64(ds.Len())
	r.gauged[ds] = gaugeValue{acc, slices.Clone(used)}
	return acc
}

// Evaluate returns m's mean cross-entropy loss and its accuracy on ds, in
// inference mode (BatchNorm's running statistics, no dropout), its batches
// spread over GOMAXPROCS goroutines and summed in order, so the result does
// not depend on the number of cores. Both are NaN for an empty ds. It
// panics if ds's samples do not fit m's input shape; Dataset.CheckConfig
// tells beforehand.
func Evaluate(m *Model[float32], ds *Dataset) (loss, acc float64) {
	if ds == nil || ds.Len() == 0 {
		return math.NaN(), math.NaN()
	}
	e := newEvaluator(m)
	e.noCache = true
	sum, correct := e.pass(ds, nil, true)
	n := float64(ds.Len())
	return sum / n, float64(correct) / n
}

// countCorrect counts the rows whose largest logit is the label's.
func countCorrect(logits *Tensor[float32], y []int) int {
	k := logits.Len() / max(len(y), 1)
	n := 0
	for i, label := range y {
		row := logits.Data[i*k : (i+1)*k]
		best := 0
		for j, v := range row {
			if v > row[best] {
				best = j
			}
		}
		if best == label {
			n++
		}
	}
	return n
}

// checkpoint hands the state to spec.Checkpoint.
func (r *runner) checkpoint(kind CheckpointKind, step int) error {
	if r.spec.Checkpoint == nil {
		return nil
	}
	w, err := r.m.StateDict()
	if err != nil {
		return err
	}
	st := r.st
	st.Step = step
	st.Stages = slices.Clone(r.st.Stages)
	st.EverTrainable = slices.Clone(r.st.EverTrainable)
	if err := r.spec.Checkpoint(Checkpoint{
		Kind: kind, Step: step, Stage: r.stage,
		Weights: w, Best: r.best, Optimizer: r.opt.State(), Loop: st,
	}); err != nil {
		return fmt.Errorf("checkpoint at step %d: %w", step, err)
	}
	return nil
}

// resume loads a checkpoint's weights, loop state and optimizer state.
func (r *runner) resume(c *Checkpoint) error {
	if c.Step < 0 || c.Step > r.total {
		return fmt.Errorf("resume: checkpoint step %d is outside the plan's %d steps", c.Step, r.total)
	}
	if err := r.m.LoadState(c.Weights); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	r.ev.changed()
	r.st = c.Loop
	r.st.Step = c.Step
	r.st.Stages = slices.Clone(c.Loop.Stages)
	r.st.EverTrainable = slices.Clone(c.Loop.EverTrainable)
	r.best = c.Best
	r.from = c.Step
	if c.Step == r.total {
		// Nothing left to train, but the run still ends with its last
		// checkpoint, the uninterrupted run's: the last stage's blocks and
		// optimizer state.
		if err := r.enterStage(len(r.plan.Stages)-1, c.Step); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		if err := r.opt.LoadState(c.Optimizer); err != nil {
			return fmt.Errorf("resume: %w", err)
		}
		return nil
	}
	// Enter the stage of the next step without reporting it as new when it
	// had begun before the checkpoint, then load the optimizer's state.
	stage, stageStep := r.plan.Locate(c.Step, r.spe)
	if stage < len(r.st.Stages) && stageStep > 0 {
		// A stage that ended at c.Step before its planned end (its
		// patience run out, or skipped) is not trained on: the run goes
		// on at the next stage's planned start, as it did.
		if sr := r.st.Stages[stage]; sr.EndStep == c.Step && (sr.StoppedEarly || sr.Skipped) {
			r.from = r.plan.Starts(r.spe)[stage] + r.plan.Stages[stage].Len(r.spe)
		}
	}
	if err := r.enterStage(stage, c.Step); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	// A stage whose optimizer differs from the one before starts with a
	// fresh one, as enterStage gives an uninterrupted run.
	if stageStep == 0 && stage > 0 && r.plan.Stages[stage-1].Optimizer != r.plan.Stages[stage].Optimizer {
		return nil
	}
	if err := r.opt.LoadState(c.Optimizer); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}

// stopping reports whether the run's context is cancelled.
func (r *runner) stopping() bool { return r.ctx != nil && r.ctx.Err() != nil }

// failStatus is the status a run ends with after err: stopped when err is
// the context's cancellation, failed otherwise.
func (r *runner) failStatus(err error) Status {
	if r.stopping() && errors.Is(err, r.ctx.Err()) {
		return StatusStopped
	}
	return StatusFailed
}

// diverged restores the last good weights and ends the run as diverged.
func (r *runner) diverged(step int) (Result, error) {
	restoreWeights(r.m, r.lastGood)
	r.ev.changed()
	r.st.Step = step
	return r.finish(StatusDiverged, ErrDiverged)
}

// finish computes the result, writes the last checkpoint and reports the
// end.
func (r *runner) finish(status Status, err error) (Result, error) {
	res := Result{
		Status:          status,
		Steps:           r.st.Step,
		Stages:          slices.Clone(r.st.Stages),
		BestStep:        r.st.BestStep,
		BestValLoss:     r.st.BestValLoss,
		BestValAcc:      r.st.BestValAcc,
		FinalValLoss:    math.NaN(),
		FinalValAcc:     math.NaN(),
		SourceAccBefore: r.st.SourceAccBefore,
		SourceAccAfter:  math.NaN(),
		Audit:           r.audit(),
		Best:            r.best,
	}
	if res.BestStep < 0 {
		res.BestValLoss = math.NaN()
	}
	// A stopped run ends at once: its final evaluation is skipped (the
	// result says so), its last checkpoint still written.
	res.FinalSkipped = status == StatusStopped && (r.spec.Val != nil || r.gauge())
	if r.spec.Val != nil && !res.FinalSkipped {
		res.FinalValLoss, res.FinalValAcc = r.validation()
	}
	if r.gauge() && !res.FinalSkipped {
		res.SourceAccAfter = r.sourceAccuracy(r.spec.Source)
	}
	if secs := r.trainDuration.Seconds(); secs > 0 {
		res.SamplesPerSec = float64(r.samplesTotal) / secs
	}
	if status != StatusFailed && r.opt != nil {
		if cerr := r.checkpoint(CheckpointLast, r.st.Step); cerr != nil && err == nil {
			res.Status, err = StatusFailed, cerr
		}
	}
	res.Wall = time.Since(r.started)
	r.emitStatus(res.Status)
	return res, err
}

// audit checks that every block that was never trainable is bit-identical
// to its starting weights and buffers.
func (r *runner) audit() Audit {
	var a Audit
	i := 0
	for _, b := range r.m.Blocks {
		ps := blockParams(b)
		if slices.Contains(r.st.EverTrainable, b.Name) {
			i += len(ps)
			continue
		}
		a.Checked = append(a.Checked, b.Name)
		for _, p := range ps {
			if !bitEqual(p.Value.Data, r.base[i]) {
				a.Changed = append(a.Changed, b.Name)
				break
			}
			i++
		}
	}
	return a
}

// emit reports a Progress for an event; loss, acc and src are NaN unless
// the event is an evaluation.
func (r *runner) emit(ev Event, loss, acc, src float64) {
	r.emitAs(ev, StatusRunning, loss, acc, src, false)
}

// emitEval reports an evaluation; stop says that it ends the stage early.
func (r *runner) emitEval(loss, acc, src float64, stop bool) {
	r.emitAs(EventEval, StatusRunning, loss, acc, src, stop)
}

func (r *runner) emitAs(ev Event, status Status, loss, acc, src float64, stop bool) {
	now := time.Now()
	p := Progress{
		Event: ev, Step: r.st.Step, TotalSteps: r.total,
		Epoch: float64(r.st.Step) / float64(r.spe),
		Stage: r.stage, ValLoss: loss, ValAcc: acc, SourceAcc: src,
		TrainLoss: math.NaN(), Status: status,
		FirstStep: r.lossStart, Losses: r.losses,
		StoppedEarly: stop,
	}
	if r.stage >= 0 {
		p.StageLabel = r.plan.Stages[r.stage].Label
	}
	if len(r.losses) > 0 {
		p.TrainLoss = r.losses[len(r.losses)-1]
	}
	if r.trainSince > 0 && r.samplesSince > 0 {
		p.SamplesPerSec = float64(r.samplesSince) / r.trainSince.Seconds()
	}
	// The ETA goes by wall time per step since the last report, so it
	// counts the evaluations and checkpoints as well.
	if n := len(r.losses); n > 0 {
		perStep := now.Sub(r.lastReport) / time.Duration(n)
		p.ETA = time.Duration(r.total-r.st.Step) * perStep
	}
	p.Blocks = r.blockProgress()
	r.report(p)
	r.losses = r.losses[:0:0]
	r.samplesSince = 0
	r.trainSince = 0
	r.lastReport = now
}

// emitStatus reports a change of status; a final status is EventDone.
func (r *runner) emitStatus(s Status) {
	ev := EventDone
	if s == StatusRunning || s == StatusPaused {
		ev = EventStep
	}
	r.emitAs(ev, s, math.NaN(), math.NaN(), math.NaN(), false)
}

// blockProgress gathers the per-block diagnostics: the optimizer's last
// step and the drift from the starting weights.
func (r *runner) blockProgress() []BlockProgress {
	var stats []BlockStats
	if r.opt != nil {
		stats = r.opt.Stats()
	}
	out := make([]BlockProgress, len(r.m.Blocks))
	i := 0
	for bi, b := range r.m.Blocks {
		bp := BlockProgress{Name: b.Name, Trainable: !b.Frozen}
		if bi < len(stats) && stats[bi].Updated {
			bp.LR, bp.GradNorm, bp.UpdateRatio = stats[bi].LR, stats[bi].GradNorm, stats[bi].UpdateRatio
		}
		var d, w0 float64
		for _, p := range blockParams(b) {
			if !p.Buffer {
				for j, v := range p.Value.Data {
					base := float64(r.base[i][j])
					d += (float64(v) - base) * (float64(v) - base)
					w0 += base * base
				}
			}
			i++
		}
		if w0 > 0 {
			bp.Drift = math.Sqrt(d / w0)
		}
		out[bi] = bp
	}
	return out
}

// copyWeights copies every parameter and buffer of m, in Params order.
func copyWeights[T Float](m *Model[T]) [][]T { return copyWeightsInto(nil, m) }

// copyWeightsInto is snapshot reusing dst's storage.
func copyWeightsInto[T Float](dst [][]T, m *Model[T]) [][]T {
	ps := m.Params()
	if len(dst) != len(ps) {
		dst = make([][]T, len(ps))
	}
	for i, p := range ps {
		dst[i] = append(dst[i][:0], p.Value.Data...)
	}
	return dst
}

// restoreWeights copies a snapshot back into m.
func restoreWeights[T Float](m *Model[T], snap [][]T) {
	for i, p := range m.Params() {
		copy(p.Value.Data, snap[i])
	}
}

// paramsFinite reports whether every trainable parameter is finite.
func paramsFinite[T Float](m *Model[T]) bool {
	for _, p := range m.Params() {
		if p.Trainable && !allFinite(p.Value.Data) {
			return false
		}
	}
	return true
}

// bitEqual reports whether a and b hold the same bits (NaNs included).
func bitEqual(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
