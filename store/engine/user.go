package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"thaw/store"
	"thaw/trainer"
)

// Errors of a [UserView]. Test for them with errors.Is.
var (
	// ErrQueued: the run was recorded as queued because a limit was
	// reached; it starts by itself when a run ends.
	ErrQueued = errors.New("queued")
	// ErrForbidden: the run belongs to someone else.
	ErrForbidden = errors.New("not your run")
	// ErrLimit: a limit was reached and the request cannot wait in the
	// queue (a resume or a branch).
	ErrLimit = errors.New("run limit reached")
	// ErrClosed: the engine is shutting down ([Engine.Shutdown]).
	ErrClosed = errors.New("the server is shutting down")
)

// User is who acts through a [UserView]: the SSH server's user, named by
// their key.
type User struct {
	// ID is the user's identity, recorded as the owner of their runs (the
	// SSH server uses the key's fingerprint). It must not be empty: the
	// empty owner is the local operator's.
	ID string
	// Name is how logs call the user; it may be empty and need not be
	// unique.
	Name string
}

// Limits say how the users of one engine share it (see [Engine.For]).
type Limits struct {
	// MaxPerUser bounds the runs one user trains at once, MaxTotal those
	// of all users; zero means no bound. A run started beyond either is
	// queued and starts when a run ends.
	MaxPerUser, MaxTotal int
	// Share lets every user view every run; control stays with the owner.
	Share bool
	// Operator is the ID of the user who owns the runs started outside
	// the users' views (thaw train on the same store, owner ""). Empty:
	// those runs are nobody's, visible only with Share.
	Operator string
}

// WithLimits sets how the engine's users share it: see [Limits].
func WithLimits(l Limits) Option {
	return func(e *Engine) { e.users.limits = l }
}

// WithLogger sets where the engine logs who started, queued, resumed or
// ended a run through a user's view; nil (the default) discards it.
func WithLogger(l *slog.Logger) Option {
	return func(e *Engine) { e.users.log = l }
}

// users is the engine's state shared by its users' views: the runs they
// train in this process or have queued. Its fields after mu are guarded by
// mu; a UserRun has a lock of its own.
type users struct {
	limits Limits
	log    *slog.Logger
	ctx    context.Context // every user run's; cancelled by Shutdown, with ErrClosed
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	runs     map[string]*UserRun // training or queued, by id
	queue    []*UserRun          // queued, oldest first
	starting []*UserRun          // slots held while a run is prepared (ID empty)
	closed   bool
	pending  sync.WaitGroup // runs started here and not seen end
	// onStart is called (outside mu) when a queued run starts.
	onStart func(*UserRun)
}

func (us *users) init() {
	us.ctx, us.cancel = context.WithCancelCause(context.Background())
	us.runs = map[string]*UserRun{}
	if us.log == nil {
		us.log = slog.New(slog.DiscardHandler)
	}
}

// UserRun is one run of a user's: queued, or training in this process. It
// is safe for concurrent use.
type UserRun struct {
	ID    string
	Owner string // the owner's User.ID

	mu      sync.Mutex
	live    *Live // nil while queued
	started bool  // ready is closed
	ready   chan struct{}
	ended   bool
	done    chan struct{}
	res     trainer.Result
	err     error
}

func newUserRun(id, owner string) *UserRun {
	return &UserRun{ID: id, Owner: owner, ready: make(chan struct{}), done: make(chan struct{})}
}

func (run *UserRun) attach(l *Live) {
	run.mu.Lock()
	run.live = l
	run.setReady()
	run.mu.Unlock()
}

// setReady closes ready once; run.mu is held.
func (run *UserRun) setReady() {
	if !run.started {
		run.started = true
		close(run.ready)
	}
}

// Live returns the engine's handle of the run, nil while it is queued.
func (run *UserRun) Live() *Live {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.live
}

// Done is closed when the run has ended (or left the queue without
// starting).
func (run *UserRun) Done() <-chan struct{} { return run.done }

// Wait waits for the run to end and returns its result.
func (run *UserRun) Wait() (trainer.Result, error) {
	<-run.done
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.res, run.err
}

func (run *UserRun) finish(res trainer.Result, err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.ended {
		return
	}
	run.ended, run.res, run.err = true, res, err
	run.setReady()
	close(run.done)
}

// UserView is the engine as one user may use it: the runs they may view
// (their own, and every run when the limits share them), changes only to
// their own, and new runs within the limits, owned by them. A run they may
// not view is not found. It is what an SSH session reaches, and nothing
// more; it is safe for concurrent use.
type UserView struct {
	e *Engine
	u User
}

// For returns the engine as user u may use it. It panics when u.ID is
// empty (the local operator uses the engine itself).
func (e *Engine) For(u User) *UserView {
	if u.ID == "" {
		panic("engine: For needs a user id")
	}
	return &UserView{e: e, u: u}
}

// User returns who the view acts for.
func (v *UserView) User() User { return v.u }

// LoadQueue takes into the users' queue the runs of users that an earlier
// process left queued, and starts those the limits allow. Queued runs
// without an owner are left to the front-end that queued them.
func (e *Engine) LoadQueue(ctx context.Context) error {
	us := &e.users
	queued, err := e.s.ListRuns(ctx, store.RunFilter{Status: []trainer.Status{trainer.StatusQueued}})
	if err != nil {
		return fmt.Errorf("load the queue: %w", err)
	}
	us.mu.Lock()
	n := 0
	// ListRuns is newest first; the queue is oldest first.
	for _, q := range slices.Backward(queued) {
		if q.Owner == "" {
			continue
		}
		if _, ok := us.runs[q.ID]; ok {
			continue
		}
		run := newUserRun(q.ID, q.Owner)
		us.runs[q.ID] = run
		us.queue = append(us.queue, run)
		n++
	}
	us.mu.Unlock()
	if n > 0 {
		us.log.Info("queued runs found", "runs", n)
		e.schedule()
	}
	return nil
}

// OnQueuedStart sets a function called with every queued run that
// starts, so that its owner's sessions can show it.
func (e *Engine) OnQueuedStart(f func(*UserRun)) {
	e.users.mu.Lock()
	e.users.onStart = f
	e.users.mu.Unlock()
}

// RequeueStopped puts back in their owners' queues the runs of users that
// an earlier process's [Engine.Shutdown] stopped (store.StopShutdown), to
// resume from their last checkpoints: call it before [Engine.LoadQueue],
// which takes them in with the runs left queued, oldest first. Runs their
// owners stopped stay stopped, and so do runs without an owner. It returns
// how many runs it requeued.
func (e *Engine) RequeueStopped(ctx context.Context) (int, error) {
	us := &e.users
	stopped, err := e.s.ListRuns(ctx, store.RunFilter{Status: []trainer.Status{trainer.StatusStopped}})
	if err != nil {
		return 0, fmt.Errorf("requeue stopped runs: %w", err)
	}
	n := 0
	for _, r := range slices.Backward(stopped) {
		if r.Owner == "" || r.StopReason != store.StopShutdown {
			continue
		}
		err := e.s.Requeue(ctx, r.ID, store.StopShutdown)
		if errors.Is(err, store.ErrInvalid) {
			continue // another server took it first
		}
		if err != nil {
			return n, fmt.Errorf("requeue stopped runs: %w", err)
		}
		us.log.Info("run requeued", "run", r.ID, "why", "the server's shutdown stopped it", "fingerprint", r.Owner)
		n++
	}
	if n > 0 {
		e.changes.notify()
	}
	return n, nil
}

// Shutdown stops every run started through a user's view: each stops
// after its current batch, writes its last checkpoint and is recorded as
// stopped, resumable, with the reason store.StopShutdown (see
// [Engine.RequeueStopped]). Queued runs stay queued for the next process
// (see [Engine.LoadQueue]); nothing starts through a view afterwards
// ([ErrClosed]). It waits for the runs to end, or for ctx.
func (e *Engine) Shutdown(ctx context.Context) error {
	us := &e.users
	us.mu.Lock()
	us.closed = true
	n := 0
	for _, run := range us.runs {
		if !slices.Contains(us.queue, run) {
			n++
		}
	}
	us.mu.Unlock()
	us.log.Info("stopping runs", "runs", n)
	us.cancel(ErrClosed)
	done := make(chan struct{})
	go func() { us.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop runs: %w", ctx.Err())
	}
}

// ---------------------------------------------------------------------
// Who may do what

func (v *UserView) isOperator() bool {
	return v.e.users.limits.Operator != "" && v.u.ID == v.e.users.limits.Operator
}

// canControl reports whether the user may steer, stop, resume, branch,
// rename or delete a run of this owner.
func (v *UserView) canControl(owner string) bool {
	if owner == "" {
		return v.isOperator()
	}
	return owner == v.u.ID
}

// canView reports whether the user may see a run of this owner.
func (v *UserView) canView(owner string) bool {
	return v.e.users.limits.Share || v.canControl(owner)
}

// visibleOwners is the owner filter of the user's run lists; nil means
// all.
func (v *UserView) visibleOwners() []string {
	if v.e.users.limits.Share {
		return nil
	}
	if v.isOperator() {
		return []string{v.u.ID, ""}
	}
	return []string{v.u.ID}
}

// check returns the stored run id (a full id or a unique prefix) when the
// user may view it, or may control it when control is set. A run they may
// not view is reported as not found, so its existence does not leak.
func (v *UserView) check(ctx context.Context, id string, control bool) (Run, error) {
	run, err := v.e.s.Run(ctx, id)
	if err != nil {
		return Run{}, err
	}
	switch {
	case !v.canView(run.Owner):
		return Run{}, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	case control && !v.canControl(run.Owner):
		return Run{}, fmt.Errorf("run %s: %w: it is shared for viewing only", store.Short(run.ID), ErrForbidden)
	}
	return run, nil
}

// Owned returns the stored run id (a full id or a unique prefix) when the
// user controls it: an error wrapping store.ErrNotFound when they may not
// view it, [ErrForbidden] when they may only view it.
func (v *UserView) Owned(ctx context.Context, id string) (Run, error) {
	return v.check(ctx, id, true)
}

// ---------------------------------------------------------------------
// Starting runs

// counts returns the runs training or starting, in all and of owner o;
// us.mu is held.
func (us *users) counts(o string) (total, mine int) {
	for _, run := range slices.Concat(slices.Collect(maps.Values(us.runs)), us.starting) {
		if slices.Contains(us.queue, run) {
			continue
		}
		total++
		if run.Owner == o {
			mine++
		}
	}
	return total, mine
}

// full reports whether owner o may not start another run now; us.mu is
// held.
func (us *users) full(o string) bool {
	total, mine := us.counts(o)
	l := us.limits
	return (l.MaxTotal > 0 && total >= l.MaxTotal) || (l.MaxPerUser > 0 && mine >= l.MaxPerUser)
}

func (us *users) describe() string {
	var parts []string
	if us.limits.MaxPerUser > 0 {
		parts = append(parts, fmt.Sprintf("%d per user", us.limits.MaxPerUser))
	}
	if us.limits.MaxTotal > 0 {
		parts = append(parts, fmt.Sprintf("%d in all", us.limits.MaxTotal))
	}
	return strings.Join(parts, ", ")
}

// Submit starts job as a run of the user's. Beyond a limit the run is
// recorded as queued and Submit returns it with an error wrapping
// [ErrQueued]; it starts by itself when a run ends. The run does not end
// with any caller's context: it goes on until it ends, is stopped, or
// [Engine.Shutdown]. Other errors are those of [Engine.Start] (bad input
// is a trainer.InputError) and [ErrClosed].
func (v *UserView) Submit(job trainer.Job, opts StartOptions) (*UserRun, error) {
	us := &v.e.users
	opts.Owner = v.u.ID
	opts.Ready, opts.Report = nil, nil
	run, err := v.startNow(job, opts)
	if !errors.Is(err, ErrLimit) {
		return run, err
	}
	q, err := v.e.Enqueue(us.ctx, job, opts)
	if err != nil {
		return nil, err
	}
	run = newUserRun(q.ID, q.Owner)
	us.mu.Lock()
	us.runs[q.ID] = run
	us.queue = append(us.queue, run)
	us.mu.Unlock()
	us.log.Info("run queued", "run", q.ID, "user", v.u.Name, "fingerprint", v.u.ID, "limits", us.describe())
	// A run may have ended while this one was being recorded.
	v.e.schedule()
	return run, fmt.Errorf("run %s: %w: it starts when a running run ends (limits: %s)", store.Short(q.ID), ErrQueued, us.describe())
}

// startNow starts job as a run of the user's when the limits allow, and
// returns an error wrapping [ErrLimit] otherwise.
func (v *UserView) startNow(job trainer.Job, opts StartOptions) (*UserRun, error) {
	opts.Owner = v.u.ID
	opts.Ready, opts.Report = nil, nil
	return v.launch("started", func(ctx context.Context) (*Live, error) {
		return v.e.Start(ctx, job, opts)
	})
}

// Start starts job as a run of the user's and returns it, as the
// workbench's backend does: beyond a limit it is queued, and Start returns
// a nil run and an error wrapping [ErrQueued]. The run does not end with
// ctx (a session's): it goes on when the user leaves. (A sweep is the
// session's: see [UserView.RunSweep].)
func (v *UserView) Start(ctx context.Context, job trainer.Job, opts StartOptions) (*Live, error) {
	run, err := v.Submit(job, opts)
	if err != nil {
		return nil, err
	}
	return run.Live(), nil
}

// Resume continues a stopped or interrupted run of the user's, within the
// limits (an error wrapping [ErrLimit] beyond them). The run does not end
// with ctx. opts is ignored: a resumed run keeps its record.
func (v *UserView) Resume(ctx context.Context, id string, _ StartOptions) (*Live, error) {
	sr, err := v.check(ctx, id, true)
	if err != nil {
		return nil, err
	}
	run, err := v.launch("resumed", func(rctx context.Context) (*Live, error) {
		return v.e.Resume(rctx, sr.ID, StartOptions{Owner: v.u.ID})
	})
	if err != nil {
		return nil, err
	}
	return run.Live(), nil
}

// Branch starts a new run of the user's from a stored checkpoint of a run
// they control, within the limits (see [Engine.Branch]). The run does not
// end with ctx.
func (v *UserView) Branch(ctx context.Context, parent string, from BranchPoint, cont *Continuation, opts StartOptions) (*Live, error) {
	sr, err := v.check(ctx, parent, true)
	if err != nil {
		return nil, err
	}
	opts.Owner = v.u.ID
	opts.Ready, opts.Report = nil, nil
	run, err := v.launch("branched from "+store.Short(sr.ID), func(rctx context.Context) (*Live, error) {
		return v.e.Branch(rctx, sr.ID, from, cont, opts)
	})
	if err != nil {
		return nil, err
	}
	return run.Live(), nil
}

// launch starts a run with start, under the users' context, when the
// user is within the limits.
func (v *UserView) launch(what string, start func(context.Context) (*Live, error)) (*UserRun, error) {
	us := &v.e.users
	o := v.u.ID
	us.mu.Lock()
	if us.closed {
		us.mu.Unlock()
		return nil, ErrClosed
	}
	if us.full(o) {
		us.mu.Unlock()
		return nil, fmt.Errorf("%w: wait for one of your runs to end (limits: %s)", ErrLimit, us.describe())
	}
	// Hold a slot while the job is prepared, outside the lock.
	slot := newUserRun("", o)
	us.starting = append(us.starting, slot)
	us.mu.Unlock()
	l, err := start(us.ctx)
	us.mu.Lock()
	us.starting = slices.DeleteFunc(us.starting, func(x *UserRun) bool { return x == slot })
	if err != nil {
		us.mu.Unlock()
		slot.finish(trainer.Result{}, err)
		return nil, err
	}
	run := newUserRun(l.ID, o)
	us.runs[l.ID] = run
	us.pending.Add(1)
	us.mu.Unlock()
	// A session that arrived while the run was prepared waits on the slot
	// (see Arrive).
	slot.attach(l)
	us.log.Info("run started", "run", l.ID, "how", what, "user", v.u.Name, "fingerprint", v.u.ID)
	run.attach(l)
	go v.e.pump(run, l)
	return run, nil
}

// schedule starts queued runs while the limits allow, oldest first.
func (e *Engine) schedule() {
	us := &e.users
	for {
		us.mu.Lock()
		if us.closed {
			us.mu.Unlock()
			return
		}
		i := slices.IndexFunc(us.queue, func(q *UserRun) bool { return !us.full(q.Owner) })
		if i < 0 {
			us.mu.Unlock()
			return
		}
		run := us.queue[i]
		us.queue = slices.Delete(us.queue, i, i+1)
		onStart := us.onStart
		us.mu.Unlock()

		l, err := e.startQueued(run.ID)
		if err != nil {
			// Stopped while queued (a stop request turns a queued run
			// stopped at once), deleted, or its data went away.
			us.log.Warn("queued run not started", "run", run.ID, "err", err)
			us.mu.Lock()
			delete(us.runs, run.ID)
			us.mu.Unlock()
			run.finish(trainer.Result{}, err)
			continue
		}
		us.mu.Lock()
		us.pending.Add(1)
		us.mu.Unlock()
		us.log.Info("run started", "run", run.ID, "how", "from the queue", "fingerprint", run.Owner)
		run.attach(l)
		go e.pump(run, l)
		if onStart != nil {
			onStart(run)
		}
	}
}

// startQueued resumes the queued run id. A run that is not queued any
// more is not started: Resume would take a stopped run too, and its owner
// stopped it while it waited (a stop request turns a queued run stopped).
func (e *Engine) startQueued(id string) (*Live, error) {
	us := &e.users
	r, err := e.s.Run(us.ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status != trainer.StatusQueued {
		return nil, fmt.Errorf("run %s: %w: it is %s, no longer queued", store.Short(id), store.ErrInvalid, r.Status)
	}
	return e.Resume(us.ctx, id, StartOptions{})
}

// pump waits for the run to end, then lets the next queued run start.
// The run's reports are its viewers': the workbench of every session
// showing it subscribes to them ([Live.Subscribe]).
func (e *Engine) pump(run *UserRun, l *Live) {
	us := &e.users
	defer us.pending.Done()
	res, err := l.Wait()
	us.mu.Lock()
	delete(us.runs, run.ID)
	us.mu.Unlock()
	status := res.Status
	if status == "" {
		status = trainer.StatusFailed
	}
	us.log.Info("run ended", "run", run.ID, "status", status, "fingerprint", run.Owner, "err", err)
	run.finish(res, err)
	e.schedule()
}

// Attach returns the newest run the user has training in this process, or
// nil.
func (v *UserView) Attach() *Live {
	us := &v.e.users
	us.mu.Lock()
	defer us.mu.Unlock()
	return v.attachLocked()
}

// Arrive returns what a session of the user's that arrives now should
// show: the newest run the user has training in this process, as
// [UserView.Attach] does. When none trains yet but runs of theirs are
// being started (prepared and recorded: started in another session, or
// leaving the queue), it returns nil and a channel that receives the first
// of those that starts, and is closed without one when none does; the
// channel never blocks its sender, so nobody need read it. Both nil:
// nothing to show.
func (v *UserView) Arrive() (*Live, <-chan *Live) {
	us := &v.e.users
	us.mu.Lock()
	if l := v.attachLocked(); l != nil {
		us.mu.Unlock()
		return l, nil
	}
	var pending []*UserRun
	for _, run := range us.starting {
		if run.Owner == v.u.ID {
			pending = append(pending, run)
		}
	}
	for _, run := range us.runs {
		// Out of the queue with no Live yet: schedule is starting it.
		if run.Owner == v.u.ID && run.Live() == nil && !slices.Contains(us.queue, run) {
			pending = append(pending, run)
		}
	}
	us.mu.Unlock()
	if len(pending) == 0 {
		return nil, nil
	}
	ch := make(chan *Live, 1)
	go func() {
		defer close(ch)
		// Each one ends its start, well or not, within its preparation.
		for _, run := range pending {
			<-run.ready
			if l := run.Live(); l != nil {
				ch <- l
				return
			}
		}
	}()
	return nil, ch
}

// attachLocked is Attach; us.mu is held.
func (v *UserView) attachLocked() *Live {
	us := &v.e.users
	var best *UserRun
	for _, run := range us.runs {
		if run.Owner != v.u.ID || run.Live() == nil {
			continue
		}
		// Run ids sort by creation time.
		if best == nil || run.ID > best.ID {
			best = run
		}
	}
	if best == nil {
		return nil
	}
	return best.Live()
}

// Lookup returns the run id (a full id) when it is training or queued in
// this process and the user may view it.
func (v *UserView) Lookup(id string) (*UserRun, bool) {
	us := &v.e.users
	us.mu.Lock()
	run, ok := us.runs[id]
	us.mu.Unlock()
	if !ok || !v.canView(run.Owner) {
		return nil, false
	}
	return run, true
}

// ---------------------------------------------------------------------
// Reading and changing stored runs

// ListRuns lists the runs the user may view that match f.
func (v *UserView) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	f, ok := v.visible(f)
	if !ok {
		return nil, nil
	}
	return v.e.s.ListRuns(ctx, f)
}

// visible narrows f to the owners the user may view; ok is false when
// it selects none of them.
func (v *UserView) visible(f RunFilter) (_ RunFilter, ok bool) {
	if owners := v.visibleOwners(); owners != nil {
		if len(f.Owners) > 0 {
			f.Owners = slices.DeleteFunc(slices.Clone(f.Owners), func(o string) bool { return !slices.Contains(owners, o) })
			if len(f.Owners) == 0 {
				return f, false
			}
		} else {
			f.Owners = owners
		}
	}
	return f, true
}

// List returns the read model of the runs the user may view that match
// f (see [List]).
func (v *UserView) List(ctx context.Context, f RunFilter) ([]RunView, error) {
	f, ok := v.visible(f)
	if !ok {
		return nil, nil
	}
	return List(ctx, v.e.s, f)
}

// Read returns the read model of a run the user may view (see [Read]).
func (v *UserView) Read(ctx context.Context, id string) (RunView, error) {
	r, err := v.check(ctx, id, false)
	if err != nil {
		return RunView{}, err
	}
	return Read(ctx, v.e.s, r.ID)
}

// ReadSeries returns the series of a run the user may view (see
// [ReadSeries]).
func (v *UserView) ReadSeries(ctx context.Context, id string, names []string, maxPoints int) ([]Series, error) {
	r, err := v.check(ctx, id, false)
	if err != nil {
		return nil, err
	}
	return ReadSeries(ctx, v.e.s, r.ID, names, maxPoints)
}

// Delete deletes a run of the user's.
func (v *UserView) Delete(ctx context.Context, id string) error {
	run, err := v.check(ctx, id, true)
	if err != nil {
		return err
	}
	return v.e.delete(ctx, run.ID, v.u.ID)
}

// Rename renames a run of the user's.
func (v *UserView) Rename(ctx context.Context, id, name string) error {
	run, err := v.check(ctx, id, true)
	if err != nil {
		return err
	}
	return v.e.Rename(ctx, run.ID, name)
}

// SetTags replaces the tags of a run of the user's.
func (v *UserView) SetTags(ctx context.Context, id string, tags []string) error {
	run, err := v.check(ctx, id, true)
	if err != nil {
		return err
	}
	return v.e.SetTags(ctx, run.ID, tags)
}

// Stop stops a run of the user's, wherever it trains (see
// store.Store.RequestStop).
func (v *UserView) Stop(ctx context.Context, id string) error {
	run, err := v.check(ctx, id, true)
	if err != nil {
		return err
	}
	return v.e.stop(ctx, run.ID, v.u.ID)
}

// Run returns a run the user may view.
func (v *UserView) Run(ctx context.Context, id string) (Run, error) {
	return v.check(ctx, id, false)
}

// MetricNames, Series, Stages and Checkpoints read a run the user may
// view.
func (v *UserView) MetricNames(ctx context.Context, run string) ([]string, error) {
	r, err := v.check(ctx, run, false)
	if err != nil {
		return nil, err
	}
	return v.e.s.MetricNames(ctx, r.ID)
}

func (v *UserView) Series(ctx context.Context, run, name string, maxPoints int) ([]Bucket, error) {
	r, err := v.check(ctx, run, false)
	if err != nil {
		return nil, err
	}
	return v.e.s.Series(ctx, r.ID, name, maxPoints)
}

func (v *UserView) Stages(ctx context.Context, run string) ([]Stage, error) {
	r, err := v.check(ctx, run, false)
	if err != nil {
		return nil, err
	}
	return v.e.s.Stages(ctx, r.ID)
}

func (v *UserView) Checkpoints(ctx context.Context, run string) ([]Checkpoint, error) {
	r, err := v.check(ctx, run, false)
	if err != nil {
		return nil, err
	}
	return v.e.s.Checkpoints(ctx, r.ID)
}

// Checkpoint returns a checkpoint of a run the user may view.
func (v *UserView) Checkpoint(ctx context.Context, id string) (Checkpoint, error) {
	c, err := v.e.s.Checkpoint(ctx, id)
	if err != nil {
		return Checkpoint{}, err
	}
	if _, err := v.check(ctx, c.Run, false); err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", id, store.ErrNotFound)
	}
	return c, nil
}

// Confusion evaluates the best weights of a run the user may view: see
// [Engine.Confusion].
func (v *UserView) Confusion(ctx context.Context, id string) (classes []string, counts [][]int, err error) {
	run, err := v.check(ctx, id, false)
	if err != nil {
		return nil, nil, err
	}
	return v.e.Confusion(ctx, run.ID)
}

// Subscribe returns a channel that receives a value whenever the stored
// runs may have changed, as [Engine.Subscribe] does; the user's view
// filters nothing, so a viewer re-reads its list through the view.
func (v *UserView) Subscribe(ctx context.Context) <-chan struct{} { return v.e.Subscribe(ctx) }

// ---------------------------------------------------------------------
// What every user may do alike

// Models lists the engine's base models (see [Engine.Models]).
func (v *UserView) Models() []string { return v.e.Models() }

// Model resolves and loads a base model (see [Engine.Model]).
func (v *UserView) Model(name string) (*BaseModel, error) { return v.e.Model(name) }

// Prepare prepares a job as a run of the engine's would start (see
// [Engine.Prepare]).
func (v *UserView) Prepare(job trainer.Job) (*trainer.Prepared, error) { return v.e.Prepare(job) }

// Inspect prepares a job without its forgetting gauge (see
// [Engine.Inspect]).
func (v *UserView) Inspect(job trainer.Job) (*trainer.Prepared, error) { return v.e.Inspect(job) }

// Probe trains a block's probe, recording nothing (see [Engine.Probe]).
func (v *UserView) Probe(ctx context.Context, job trainer.Job, k int) (ProbeScore, error) {
	return v.e.Probe(ctx, job, k)
}

// FindLR runs the learning-rate range test, recording nothing (see
// [Engine.FindLR]).
func (v *UserView) FindLR(ctx context.Context, job trainer.Job, stage int) (trainer.LRFindResult, error) {
	return v.e.FindLR(ctx, job, stage)
}
