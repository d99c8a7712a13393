package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sync/atomic"

	"thaw/assets"
	"thaw/store"
	"thaw/trainer"
)

// Engine prepares, starts, resumes, branches and sweeps recorded runs,
// trains probes and finds learning rates: the one way the command line,
// the workbench and the server run a job, so that a run started anywhere
// is stored, resumed and branched the same way. It resolves names through
// its catalogue and records in its store.
//
// An Engine is safe for concurrent use; it runs any number of runs at
// once, each in its own goroutine. Its users' shared state (see [Engine.For])
// is guarded by a lock of its own, and its change feed by another.
type Engine struct {
	s       *store.Store
	cat     *assets.Catalog
	names   names
	version string
	record  []store.RecordOption
	users   users
	changes changes
	// sweepSlots bounds the sweep runs training at once, over all sweeps.
	sweepSlots slots
}

// Option changes an Engine.
type Option func(*Engine)

// WithVersion sets the thaw version recorded with every run the engine
// starts; empty means "devel".
func WithVersion(v string) Option {
	return func(e *Engine) { e.version = v }
}

// WithRecordOptions passes options to the recorder of every run, such as
// [store.HeartbeatEvery].
func WithRecordOptions(opts ...store.RecordOption) Option {
	return func(e *Engine) { e.record = append(e.record, opts...) }
}

// New returns an engine that records in s and resolves the names of
// models and data with cat; a nil cat is the embedded zoo and tasks
// (assets.NewCatalog). A nil s makes an engine that only prepares: it
// prepares and inspects jobs, probes, finds learning rates, labels inputs
// and lists models (thaw lr-find and thaw predict need no store), and its
// methods that record or read runs panic.
func New(s *store.Store, cat *assets.Catalog, opts ...Option) *Engine {
	if cat == nil {
		cat = assets.NewCatalog()
	}
	e := &Engine{s: s, cat: cat, names: cat, version: "devel", sweepSlots: newSlots(runtime.GOMAXPROCS(0))}
	for _, o := range opts {
		o(e)
	}
	e.users.init()
	if s != nil {
		e.changes.watch = s.Watch
	}
	return e
}

// Store returns the engine's store, for the command line's reads and
// maintenance; a workbench or a server session reaches runs through the
// engine's methods or a user's view instead.
func (e *Engine) Store() *store.Store { return e.s }

// StartOptions say how to record and watch a run.
type StartOptions struct {
	// Name is the run's name; empty means "<plan>: <model> on <data>"
	// (for a branch: the parent's name and where it branched). Resume
	// ignores it.
	Name string
	// Tags group runs, such as the runs of one sweep. Resume ignores
	// them.
	Tags []string
	// Owner is who starts the run: empty for the local operator. For
	// Resume it is who resumes it, recorded with the run (the run keeps
	// its owner).
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
	// Prefixes, when set, shares the run's frozen prefix outputs with the
	// other runs given the same one (see trainer.Spec's Prefixes): the
	// runs of a sweep. Nil means none.
	Prefixes *trainer.Prefixes
	// NoGauge leaves the forgetting gauge out: the run trains and is
	// evaluated on its validation set exactly as with it, but measures
	// nothing on the source task (a sweep's runs, whose table shows no
	// forgetting, save its passes).
	NoGauge bool
}

// launch trains spec with rec in a goroutine of its own, which returns
// once the run has ended and is recorded.
func (e *Engine) launch(ctx context.Context, l *Live, rec *store.Recorder, spec trainer.Spec, opts StartOptions) {
	spec.Control = l.Control
	if opts.Prefixes != nil {
		spec.Prefixes = opts.Prefixes
	}
	if opts.NoGauge {
		spec.Source, spec.SourceHead = nil, nil
	}
	go func() {
		defer close(l.done)
		// Where it trains, for a shared store's viewers; a run that
		// cannot record it still trains.
		e.s.SetRanOn(context.WithoutCancel(ctx), l.ID, thisHost)
		if opts.Ready != nil {
			opts.Ready(l)
		}
		res, err := rec.Train(ctx, spec, func(p trainer.Progress) {
			l.publish(p)
			if opts.Report != nil {
				opts.Report(p)
			}
		})
		l.end(res, err)
		e.changes.notify()
	}()
}

// recordOptions are the engine's recorder options with the stop watch,
// for a run under ctx: a run that [Engine.Shutdown] stops (ctx is then
// the users' and cancelled with [ErrClosed]) is recorded as stopped by the
// shutdown, to resume when the server starts again.
func (e *Engine) recordOptions(ctx context.Context, ctl *trainer.Control, stored *atomic.Int64) []store.RecordOption {
	why := store.WhyStopped(func(err error) string {
		if errors.Is(err, context.Canceled) && errors.Is(context.Cause(ctx), ErrClosed) {
			return store.StopShutdown
		}
		return ""
	})
	return append(slices.Clip(e.record), store.StopWith(ctl), why, store.OnAck(stored.Store))
}

// Start prepares job, records it as a new run and trains it in a goroutine
// of its own. ctx governs the run: cancelling it stops the run (as
// stopped, resumable), so a run that should outlive a request or an SSH
// session gets a context of its own. The run goroutine returns once the run
// has ended; [Live.Done] says when.
//
// Start returns the errors of [Engine.Prepare] (trainer.InputError for bad input)
// and the store's errors; nothing is recorded then.
func (e *Engine) Start(ctx context.Context, job trainer.Job, opts StartOptions) (*Live, error) {
	return e.start(ctx, job, opts, e.names)
}

// start is Start resolving names with n.
func (e *Engine) start(ctx context.Context, job trainer.Job, opts StartOptions, n names) (*Live, error) {
	prep, err := e.prepare(job, n)
	if err != nil {
		return nil, err
	}
	run, err := e.create(ctx, prep, opts, store.Run{})
	if err != nil {
		return nil, err
	}
	ctl, stored := &trainer.Control{}, new(atomic.Int64)
	rec, err := e.s.Record(ctx, run.ID, e.recordOptions(ctx, ctl, stored)...)
	if err != nil {
		e.s.SetStatus(context.WithoutCancel(ctx), run.ID, trainer.StatusFailed, err.Error())
		return nil, err
	}
	l := newLive(run, prep, ctl, 0, stored)
	e.launch(ctx, l, rec, prep.Spec(), opts)
	return l, nil
}

// Enqueue prepares job, to check it, and records it as a queued run that
// [Engine.Resume] starts later (a sweep queues its runs and starts them
// one at a time). It returns the queued run.
func (e *Engine) Enqueue(ctx context.Context, job trainer.Job, opts StartOptions) (store.Run, error) {
	prep, err := e.Prepare(job)
	if err != nil {
		return store.Run{}, err
	}
	return e.create(ctx, prep, opts, store.Run{Status: trainer.StatusQueued})
}

// create records a run of prep; base carries the status and the parent.
func (e *Engine) create(ctx context.Context, prep *trainer.Prepared, opts StartOptions, base store.Run) (store.Run, error) {
	raw, err := json.Marshal(store.NewJobRecord(prep))
	if err != nil {
		return store.Run{}, fmt.Errorf("record the job: %w", err)
	}
	hash, err := trainer.ModelHash(prep.Model)
	if err != nil {
		return store.Run{}, fmt.Errorf("record the job: %w", err)
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
	run, err := e.s.CreateRun(ctx, base)
	if err == nil {
		e.changes.notify()
	}
	return run, err
}

// prepareStored prepares the job of a stored run again and checks that it
// is the run's: the same starting weights, data and, when plan is true,
// resolved plan. Anything else would not continue the run but start a
// different one.
func (e *Engine) prepareStored(r store.Run, job trainer.Job, rec store.JobRecord, plan bool) (*trainer.Prepared, error) {
	prep, err := e.Prepare(job)
	if err != nil {
		return nil, err
	}
	h, err := trainer.ModelHash(prep.Model)
	if err != nil {
		return nil, err
	}
	if h != r.ModelHash {
		return nil, fmt.Errorf("the base model %s is not the one run %s started from (its weights changed)", job.Model, store.Short(r.ID))
	}
	if trainer.DataHash(prep.Train, prep.Val) != r.DatasetHash {
		return nil, fmt.Errorf("the data %s is not the one run %s started with (it changed)", job.Data.Path, store.Short(r.ID))
	}
	if plan && !reflect.DeepEqual(normalizeSummary(prep.Summary()), normalizeSummary(rec.Plan)) {
		return nil, fmt.Errorf("the plan %s resolves differently in this thaw than when run %s started", prep.Plan.Name, store.Short(r.ID))
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
// [store.Store.Resume] for how it is chosen), rebuilding it from its stored job,
// and trains it in a goroutine of its own, as Start does. A queued run
// starts from step 0. opts' Ready and Report apply; Live.Resumed says where
// it continues.
//
// Resume returns, before anything changes in the store, an error wrapping
// [store.ErrNotFound] or [store.ErrAmbiguous] when id matches no run or several,
// [store.ErrLive] when the run is live, [store.ErrInvalid] when it has ended otherwise
// than interrupted or stopped or has no job record, the errors of [Engine.Prepare],
// and an error when the model, data or plan are not the ones the run
// started with.
func (e *Engine) Resume(ctx context.Context, id string, opts StartOptions) (*Live, error) {
	var prep *trainer.Prepared
	var warning string
	build := func(pt store.ResumePoint) (trainer.Spec, error) {
		rec, err := store.DecodeJob(pt.Run)
		if err != nil {
			return trainer.Spec{}, err
		}
		warning = rec.KernelWarning()
		if prep, err = e.prepareStored(pt.Run, rec.Job, rec, true); err != nil {
			return trainer.Spec{}, err
		}
		return prep.Spec(), nil
	}
	ctl, stored := &trainer.Control{}, new(atomic.Int64)
	rec, spec, pt, err := e.s.StartResume(ctx, id, build, e.recordOptions(ctx, ctl, stored)...)
	if err != nil {
		return nil, err
	}
	run, err := e.s.Run(ctx, rec.Run())
	if err != nil {
		rec.Close()
		return nil, err
	}
	l := newLive(run, prep, ctl, pt.Step(), stored)
	l.Resumed, l.Warning = pt, warning
	if pt.Run.Status != trainer.StatusQueued {
		// A queued run starting is not anyone's resume.
		e.act(ctx, run.ID, "resume", opts.Owner)
	}
	e.changes.notify()
	e.launch(ctx, l, rec, spec, opts)
	return l, nil
}
