package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"thaw/trainer"
)

// Preparer resolves a job's names and prepares it to run (see
// trainer.Job.Prepare). The store cannot know how models and data are
// found; the program wires in its catalogue's (assets.Catalog.Prepare).
// It returns a fresh Prepared on every call.
type Preparer func(trainer.Job) (*trainer.Prepared, error)

// Engine starts, resumes and branches recorded runs: the one way the
// command line, the workbench and the server run a job, so that a run
// started anywhere is stored, resumed and branched the same way. An Engine
// is safe for concurrent use; it runs any number of runs at once, each in
// its own goroutine.
type Engine struct {
	s       *Store
	prepare Preparer
	version string
	record  []RecordOption
}

// EngineOption changes an Engine.
type EngineOption func(*Engine)

// WithVersion sets the thaw version recorded with every run the engine
// starts; empty means "devel".
func WithVersion(v string) EngineOption {
	return func(e *Engine) { e.version = v }
}

// WithRecordOptions passes options to the recorder of every run, such as
// [HeartbeatEvery].
func WithRecordOptions(opts ...RecordOption) EngineOption {
	return func(e *Engine) { e.record = append(e.record, opts...) }
}

// NewEngine returns an engine that records in s and prepares jobs with
// prepare. It panics if either is nil.
func NewEngine(s *Store, prepare Preparer, opts ...EngineOption) *Engine {
	if s == nil || prepare == nil {
		panic("store: NewEngine needs a store and a preparer")
	}
	e := &Engine{s: s, prepare: prepare, version: "devel"}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Store returns the engine's store.
func (e *Engine) Store() *Store { return e.s }

// Prepare prepares a job without running it, as Start would: for the
// learning-rate finder, or to show what a job will do.
func (e *Engine) Prepare(job trainer.Job) (*trainer.Prepared, error) { return e.prepare(job) }

// StartOptions say how to record and watch a run.
type StartOptions struct {
	// Name is the run's name; empty means "<plan>: <model> on <data>"
	// (for a branch: the parent's name and where it branched). Resume
	// ignores it.
	Name string
	// Tags group runs, such as the runs of one sweep. Resume ignores
	// them.
	Tags []string
	// Owner is who starts the run: empty for the local operator. Resume
	// ignores it.
	Owner string
	// Ready, when set, is called once from the run's goroutine before
	// training starts, with the run recorded: a command line prints the
	// run's id there, ahead of any progress.
	Ready func(*Live)
	// Report, when set, is called from the run's goroutine with every
	// report, after the store has queued it. It must return quickly:
	// it holds up the trainer. A viewer that may be slow subscribes
	// ([Live.Subscribe]) instead.
	Report func(trainer.Progress)
}

// Live is a run being trained by this process.
type Live struct {
	// ID is the run's id; Run its record as it was when training started.
	ID  string
	Run Run
	// Prepared is the job as prepared: the model being trained, the data,
	// the resolved plan. Its model changes while the run trains; read it
	// only after Done.
	Prepared *trainer.Prepared
	// Control pauses, resumes, stops the run or skips to the next stage.
	Control *trainer.Control
	// From is the step training starts from: 0 for a new run, the
	// checkpoint's step for a resumed run or a branch. Resumed is where
	// Resume continues (zero for Start and Branch).
	From    int64
	Resumed ResumePoint
	// Warning, when not empty, says why a resumed run or a branch may not
	// reproduce the bits of an uninterrupted run (see
	// [JobRecord.KernelWarning]).
	Warning string

	done    chan struct{}
	dropped atomic.Int64 // of the Progress feed

	// feed is the Progress channel: a subscription of its own that
	// nobody cancels.
	feed <-chan trainer.Progress

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	ended  bool // the subscribers are closed; no more reports
	latest trainer.Progress
	seen   bool
	recent []trainer.Progress // the newest reports, at most replayReports
	res    trainer.Result
	err    error
}

// progressBuffer is how many reports a subscription holds for a slow
// viewer before it drops the oldest: at the trainer's 5 reports a second,
// about ten seconds.
const progressBuffer = 64

// replayReports is how many of the newest reports a new subscription
// starts with: they cover what the store may not have written yet when a
// viewer reads the run's past there (its writer lags by one transaction).
const replayReports = progressBuffer / 2

// subscriber is one viewer's feed of a run's reports.
type subscriber struct {
	ch      chan trainer.Progress
	dropped *atomic.Int64
}

func newLive(run Run, prep *trainer.Prepared, ctl *trainer.Control, from int64) *Live {
	l := &Live{
		ID: run.ID, Run: run, Prepared: prep, Control: ctl, From: from,
		done: make(chan struct{}),
		subs: make(map[*subscriber]struct{}),
	}
	l.feed, _ = l.subscribe(&l.dropped)
	return l
}

// Subscribe returns a feed of the run's reports, its own. It starts with
// the newest few reports made before it (up to replayReports), which
// cover what the store may not have written yet: a viewer that shows the
// run's past from the store and goes on from the feed misses nothing, and
// drops by their step the reports it already has. Then it gets every new
// report. Any number of viewers may each subscribe, and each sees every
// report as long as it keeps up. A feed never holds up the trainer nor the
// other feeds: when its viewer falls more than a few seconds behind
// (progressBuffer reports), its oldest reports are dropped; everything a
// report says is recorded in the store regardless.
//
// The channel is closed after the last report when the run ends, or when
// cancel is called. Call cancel when done watching (it may be called more
// than once, and after the run ended); a feed never cancelled is released
// when the run ends. Subscribing to a run that has ended returns a closed
// channel.
func (l *Live) Subscribe() (<-chan trainer.Progress, func()) {
	return l.subscribe(nil)
}

func (l *Live) subscribe(dropped *atomic.Int64) (<-chan trainer.Progress, func()) {
	sub := &subscriber{ch: make(chan trainer.Progress, progressBuffer), dropped: dropped}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ended {
		close(sub.ch)
		return sub.ch, func() {}
	}
	for _, p := range l.recent {
		sub.ch <- p // the buffer holds more than replayReports
	}
	l.subs[sub] = struct{}{}
	return sub.ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[sub]; ok {
			delete(l.subs, sub)
			close(sub.ch)
		}
	}
}

// Subscribers returns how many feeds of the run are open, the Progress
// feed included: one until the run ends, when it drops to zero.
func (l *Live) Subscribers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

// Progress returns the run's own feed of reports, which nobody cancels: a
// Subscribe made when the run started (see there). It suits the one
// viewer that starts the run and watches it to its end, such as the
// command line; a viewer that may come and go subscribes instead.
func (l *Live) Progress() <-chan trainer.Progress { return l.feed }

// Latest returns the newest report, and false before the first.
func (l *Live) Latest() (trainer.Progress, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latest, l.seen
}

// Dropped returns the number of reports dropped from Progress because
// nobody took them in time.
func (l *Live) Dropped() int64 { return l.dropped.Load() }

// Done is closed when the run has ended, its result is recorded and its
// goroutines have returned.
func (l *Live) Done() <-chan struct{} { return l.done }

// Wait waits for the run to end and returns its result and error, as
// [Store.Train] does: ctx.Err() when the context given to Start was
// cancelled (the run is then stopped), trainer.ErrDiverged, or a recording
// error.
func (l *Live) Wait() (trainer.Result, error) {
	<-l.done
	return l.res, l.err
}

// publish hands p to every feed, dropping a feed's oldest report when its
// buffer is full. Only the run's goroutine calls it; it never blocks on a
// viewer (a feed is only ever taken from by its viewer and by publish,
// under l.mu, so a full buffer has room after one take).
func (l *Live) publish(p trainer.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latest, l.seen = p, true
	if len(l.recent) == replayReports {
		l.recent = append(l.recent[:0], l.recent[1:]...)
	}
	l.recent = append(l.recent, p)
	for sub := range l.subs {
		for {
			select {
			case sub.ch <- p:
			default:
				select {
				case <-sub.ch:
					if sub.dropped != nil {
						sub.dropped.Add(1)
					}
				default:
				}
				continue
			}
			break
		}
	}
}

// end closes every feed: the run has made its last report.
func (l *Live) end(res trainer.Result, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res, l.err = res, err
	l.ended, l.recent = true, nil
	for sub := range l.subs {
		close(sub.ch)
	}
	clear(l.subs)
}

// launch trains spec with rec in a goroutine of its own, which returns
// once the run has ended and is recorded.
func (e *Engine) launch(ctx context.Context, l *Live, rec *Recorder, spec trainer.Spec, opts StartOptions) {
	spec.Control = l.Control
	go func() {
		defer close(l.done)
		if opts.Ready != nil {
			opts.Ready(l)
		}
		res, err := rec.train(ctx, spec, func(p trainer.Progress) {
			l.publish(p)
			if opts.Report != nil {
				opts.Report(p)
			}
		})
		l.end(res, err)
	}()
}

// recordOptions are the engine's recorder options with the stop watch.
func (e *Engine) recordOptions(ctl *trainer.Control) []RecordOption {
	return append(slices.Clip(e.record), StopWith(ctl))
}

// Start prepares job, records it as a new run and trains it in a goroutine
// of its own. ctx governs the run: cancelling it stops the run (as
// stopped, resumable), so a run that should outlive a request or an SSH
// session gets a context of its own. The run goroutine returns once the run
// has ended; [Live.Done] says when.
//
// Start returns the preparer's error (trainer.InputError for bad input)
// and the store's errors; nothing is recorded then.
func (e *Engine) Start(ctx context.Context, job trainer.Job, opts StartOptions) (*Live, error) {
	prep, err := e.prepare(job)
	if err != nil {
		return nil, err
	}
	run, err := e.create(ctx, prep, opts, Run{})
	if err != nil {
		return nil, err
	}
	ctl := &trainer.Control{}
	rec, err := e.s.Record(ctx, run.ID, e.recordOptions(ctl)...)
	if err != nil {
		e.s.SetStatus(context.WithoutCancel(ctx), run.ID, trainer.StatusFailed, err.Error())
		return nil, err
	}
	l := newLive(run, prep, ctl, 0)
	e.launch(ctx, l, rec, prep.Spec(), opts)
	return l, nil
}

// Enqueue prepares job, to check it, and records it as a queued run that
// [Engine.Resume] starts later (a sweep queues its runs and starts them
// one at a time). It returns the queued run.
func (e *Engine) Enqueue(ctx context.Context, job trainer.Job, opts StartOptions) (Run, error) {
	prep, err := e.prepare(job)
	if err != nil {
		return Run{}, err
	}
	return e.create(ctx, prep, opts, Run{Status: trainer.StatusQueued})
}

// create records a run of prep; base carries the status and the parent.
func (e *Engine) create(ctx context.Context, prep *trainer.Prepared, opts StartOptions, base Run) (Run, error) {
	raw, err := json.Marshal(NewJobRecord(prep))
	if err != nil {
		return Run{}, fmt.Errorf("record the job: %w", err)
	}
	hash, err := trainer.ModelHash(prep.Model)
	if err != nil {
		return Run{}, fmt.Errorf("record the job: %w", err)
	}
	name := opts.Name
	if name == "" {
		// A task or file as the user named it: the training set itself is
		// called after its split ("digits-5to9/train").
		name = fmt.Sprintf("%s: %s on %s", prep.Plan.Name, filepath.Base(prep.ModelName), filepath.Base(prep.Job.Data.Path))
	}
	base.Name, base.Tags, base.Owner = name, opts.Tags, opts.Owner
	base.Model, base.ModelHash = prep.ModelName, hash
	base.Dataset, base.DatasetHash = prep.Train.Name, trainer.DataHash(prep.Train, prep.Val)
	base.Plan, base.Seed, base.Version = raw, int64(prep.Job.Seed), e.version
	return e.s.CreateRun(ctx, base)
}

// prepareStored prepares the job of a stored run again and checks that it
// is the run's: the same starting weights, data and, when plan is true,
// resolved plan. Anything else would not continue the run but start a
// different one.
func (e *Engine) prepareStored(r Run, job trainer.Job, rec JobRecord, plan bool) (*trainer.Prepared, error) {
	prep, err := e.prepare(job)
	if err != nil {
		return nil, err
	}
	h, err := trainer.ModelHash(prep.Model)
	if err != nil {
		return nil, err
	}
	if h != r.ModelHash {
		return nil, fmt.Errorf("the base model %s is not the one run %s started from (its weights changed)", job.Model, Short(r.ID))
	}
	if trainer.DataHash(prep.Train, prep.Val) != r.DatasetHash {
		return nil, fmt.Errorf("the data %s is not the one run %s started with (it changed)", job.Data.Path, Short(r.ID))
	}
	if plan && !reflect.DeepEqual(normalizeSummary(prep.Summary()), normalizeSummary(rec.Plan)) {
		return nil, fmt.Errorf("the plan %s resolves differently in this thaw than when run %s started", prep.Plan.Name, Short(r.ID))
	}
	return prep, nil
}

// normalizeSummary makes summaries compare as their JSON does: an empty
// list and none are the same.
func normalizeSummary(s trainer.PlanSummary) trainer.PlanSummary {
	s.Stages = slices.Clone(s.Stages)
	for i := range s.Stages {
		if len(s.Stages[i].Trainable) == 0 {
			s.Stages[i].Trainable = nil
		}
	}
	if len(s.Stages) == 0 {
		s.Stages = nil
	}
	return s
}

// Resume continues the run id from its last good checkpoint (see
// [Store.Resume] for how it is chosen), rebuilding it from its stored job,
// and trains it in a goroutine of its own, as Start does. A queued run
// starts from step 0. opts' Ready and Report apply; Live.Resumed says where
// it continues.
//
// Resume returns, before anything changes in the store, an error wrapping
// [ErrNotFound] or [ErrAmbiguous] when id matches no run or several,
// [ErrLive] when the run is live, [ErrInvalid] when it has ended otherwise
// than interrupted or stopped or has no job record, the preparer's error,
// and an error when the model, data or plan are not the ones the run
// started with.
func (e *Engine) Resume(ctx context.Context, id string, opts StartOptions) (*Live, error) {
	var prep *trainer.Prepared
	var warning string
	build := func(pt ResumePoint) (trainer.Spec, error) {
		rec, err := DecodeJob(pt.Run)
		if err != nil {
			return trainer.Spec{}, err
		}
		warning = rec.KernelWarning()
		if prep, err = e.prepareStored(pt.Run, rec.Job, rec, true); err != nil {
			return trainer.Spec{}, err
		}
		return prep.Spec(), nil
	}
	ctl := &trainer.Control{}
	rec, spec, pt, err := e.s.startResume(ctx, id, build, e.recordOptions(ctl)...)
	if err != nil {
		return nil, err
	}
	run, err := e.s.runByID(ctx, rec.run)
	if err != nil {
		rec.Close()
		return nil, err
	}
	l := newLive(run, prep, ctl, pt.Step())
	l.Resumed, l.Warning = pt, warning
	e.launch(ctx, l, rec, spec, opts)
	return l, nil
}

// BranchPoint says where in its parent a branch starts: at the end of
// stage Stage (counting from 1), or, when Stage is zero, at a stored
// checkpoint at step Step.
type BranchPoint struct {
	Stage int
	Step  int64
}

func (b BranchPoint) String() string {
	if b.Stage > 0 {
		return fmt.Sprintf("the end of stage %d", b.Stage)
	}
	return fmt.Sprintf("step %d", b.Step)
}

// Continuation is how a branch goes on after its branch point: Plan's
// stages, or, when Plan has none, Preset expanded for the model's blocks.
type Continuation struct {
	Plan   trainer.Plan
	Preset *trainer.PresetRef
}

// Branch starts a new run from a stored checkpoint of the run parent: its
// weights, optimizer and loop state at the branch point, its job (model,
// data, split, seed, batch), and a continuation. A nil continuation
// is the rest of the parent's plan: the branch then reproduces the parent
// from that point bit for bit (same binary, same machine). Otherwise the
// branch's plan is the parent's stages up to the branch point (a stage the
// point falls inside ends there) followed by the continuation's stages,
// each with its own plan's defaults. The new run records the parent, the
// checkpoint and its step; its curves begin after that step.
//
// Branch returns an error wrapping [ErrNotFound] when the parent or a
// usable checkpoint at that point does not exist (the error lists the
// points there are), [ErrInvalid] when the parent has no job record or the
// point is out of range, a trainer.InputError for a continuation that does
// not resolve against the model's blocks, and the errors of Start.
func (e *Engine) Branch(ctx context.Context, parent string, from BranchPoint, cont *Continuation, opts StartOptions) (*Live, error) {
	pr, err := e.s.Run(ctx, parent)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	rec, err := DecodeJob(pr)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	ck, err := e.branchCheckpoint(ctx, pr, from)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	state, err := e.s.LoadCheckpoint(ctx, ck.ID)
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	prep, err := e.prepareStored(pr, rec.Job, rec, cont == nil)
	if err != nil {
		return nil, fmt.Errorf("branch from %s: %w", Short(pr.ID), err)
	}
	spe := prep.StepsPerEpoch()
	if cont != nil {
		plan := cont.Plan
		if len(plan.Stages) == 0 && cont.Preset != nil {
			if plan, err = trainer.Preset(cont.Preset.Name, prep.Plan.Blocks, cont.Preset.LR, cont.Preset.Epochs); err != nil {
				return nil, fmt.Errorf("branch: %w", trainer.BadInput(err))
			}
		}
		if err := continuePlan(prep, &state, plan, spe); err != nil {
			return nil, fmt.Errorf("branch: %w", err)
		}
	}
	if state.Step > prep.TotalSteps() {
		return nil, fmt.Errorf("branch: %w: %s is step %d, beyond the plan's %d steps", ErrInvalid, from, state.Step, prep.TotalSteps())
	}
	if opts.Name == "" {
		opts.Name = fmt.Sprintf("%s, branch at step %d", pr.Name, ck.Step)
	}
	run, err := e.create(ctx, prep, opts, Run{ParentRun: pr.ID, ParentCheckpoint: ck.ID})
	if err != nil {
		return nil, fmt.Errorf("branch: %w", err)
	}
	ctl := &trainer.Control{}
	ropts := append(e.recordOptions(ctl), resumeFrom(state.Loop, int64(state.Step)))
	recorder, err := e.s.Record(ctx, run.ID, ropts...)
	if err != nil {
		e.s.SetStatus(context.WithoutCancel(ctx), run.ID, trainer.StatusFailed, err.Error())
		return nil, fmt.Errorf("branch: %w", err)
	}
	spec := prep.Spec()
	spec.Resume = &state
	l := newLive(run, prep, ctl, int64(state.Step))
	l.Warning = rec.KernelWarning()
	e.launch(ctx, l, recorder, spec, opts)
	return l, nil
}

// branchCheckpoint finds the good checkpoint of run r at a branch point:
// the stage-end one of that stage, or the most complete one at that step.
func (e *Engine) branchCheckpoint(ctx context.Context, r Run, from BranchPoint) (Checkpoint, error) {
	if from.Stage < 0 || from.Step < 0 {
		return Checkpoint{}, fmt.Errorf("%w: branch point %s", ErrInvalid, from)
	}
	cs, err := e.s.Checkpoints(ctx, r.ID)
	if err != nil {
		return Checkpoint{}, err
	}
	var best *Checkpoint
	var points []string
	for i := range cs {
		c := &cs[i]
		if c.Bad {
			continue
		}
		if c.Kind == KindStageEnd {
			points = append(points, fmt.Sprintf("stage %d (step %d)", c.Stage+1, c.Step))
		}
		var match bool
		if from.Stage > 0 {
			match = c.Kind == KindStageEnd && c.Stage == from.Stage-1
		} else {
			match = c.Step == from.Step
		}
		if match && (best == nil || kindRank(c.Kind) > kindRank(best.Kind)) {
			best = c
		}
	}
	if best == nil {
		steps := "none"
		if len(cs) > 0 {
			var ss []string
			for _, c := range cs {
				if !c.Bad {
					ss = append(ss, fmt.Sprint(c.Step))
				}
			}
			steps = fmt.Sprint(slices.Compact(ss))
		}
		return Checkpoint{}, fmt.Errorf("run %s has no usable checkpoint at %s (%w); stage ends: %s; checkpoint steps: %s",
			Short(r.ID), from, ErrNotFound, cmp.Or(fmt.Sprint(points), "none"), steps)
	}
	return *best, nil
}

// continuePlan replaces prep's plan by the parent's stages up to the state's
// step followed by cont's, and ends the loop state's current stage there
// when the step falls inside it.
func continuePlan(prep *trainer.Prepared, state *trainer.Checkpoint, cont trainer.Plan, spe int) error {
	parent := prep.Job.Plan
	step := state.Step
	k, inStage := prep.Plan.Locate(step, spe)
	if step >= prep.TotalSteps() {
		k, inStage = len(prep.Plan.Stages), 0
	}
	stages := flatten(parent)[:k]
	if inStage > 0 {
		// The stage the branch leaves ends at the branch point.
		s := flatten(parent)[k]
		s.Epochs, s.Steps = 0, inStage
		stages = append(stages, s)
		if k < len(state.Loop.Stages) {
			state.Loop.Stages = slices.Clone(state.Loop.Stages)
			state.Loop.Stages[k].EndStep = step
		}
	}
	if len(cont.Stages) == 0 {
		return trainer.BadInput(errors.New("the continuation plan has no stages"))
	}
	stages = append(stages, flatten(cont)...)
	plan := trainer.Plan{Name: cmp.Or(cont.Name, "branch"), Description: cont.Description, Stages: stages}
	rp, err := plan.Resolve(prep.Plan.Blocks)
	if err != nil {
		return trainer.BadInput(fmt.Errorf("continuation plan: %w", err))
	}
	prep.Job.Plan, prep.Job.Preset, prep.Plan = plan, nil, rp
	return nil
}

// flatten returns p's stages with the plan's defaults written into each,
// so that they keep their meaning in another plan.
func flatten(p trainer.Plan) []trainer.Stage {
	out := slices.Clone(p.Stages)
	for i := range out {
		s := &out[i]
		if s.Epochs == 0 && s.Steps == 0 {
			s.Epochs = p.Epochs
		}
		s.LR = cmp.Or(s.LR, p.LR)
		s.LRFactor = cmp.Or(s.LRFactor, p.LRFactor)
		s.Patience = cmp.Or(s.Patience, p.Patience)
		s.TrainBN = s.TrainBN || p.TrainBN
		if s.Schedule == nil {
			s.Schedule = p.Schedule
		}
		if s.Optimizer == nil {
			s.Optimizer = p.Optimizer
		}
	}
	return out
}
