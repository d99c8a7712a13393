package serve

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"

	"charm.land/log/v2"

	"thaw/store"
	"thaw/trainer"
)

// Errors of [Runs]. Test for them with errors.Is.
var (
	// ErrQueued: the run was recorded as queued because a limit was
	// reached; it starts by itself when a run ends.
	ErrQueued = errors.New("queued")
	// ErrForbidden: the run belongs to someone else.
	ErrForbidden = errors.New("not your run")
	// ErrLimit: a limit was reached and the request cannot wait in the
	// queue (a resume or a branch).
	ErrLimit = errors.New("run limit reached")
	// ErrClosed: the server is shutting down.
	ErrClosed = errors.New("the server is shutting down")
)

// RunsConfig says how the server shares its trainer among its users.
type RunsConfig struct {
	// MaxPerUser bounds the runs one user trains at once, MaxTotal those
	// of all users; zero means no bound. A run started beyond either is
	// queued and starts when a run ends.
	MaxPerUser, MaxTotal int
	// Share lets every user view every run; control stays with the owner.
	Share bool
	// Operator is the fingerprint of the key whose sessions own the runs
	// started outside the server (thaw train on the same store, owner
	// ""). Empty: those runs are nobody's here, visible only with Share.
	Operator string
	// Home is the folder holding each user's files: exported figures and
	// saved models, one folder per run, fetched with scp. Required.
	Home string
}

// Runs are the runs the server trains. They belong to the server, not to
// the session that started them: a run goes on when its session ends, a
// later session of the same user finds it and watches it again, and the
// server stops every run (checkpointed, resumable) when it shuts down.
type Runs struct {
	eng    *store.Engine
	st     *store.Store
	cfg    RunsConfig
	log    *log.Logger
	ctx    context.Context // every run's; cancelled by Shutdown
	cancel context.CancelFunc

	mu       sync.Mutex
	runs     map[string]*Run // training or queued, by id
	queue    []*Run          // queued, oldest first
	starting []*Run          // slots held while a run is prepared
	closed   bool
	pending  sync.WaitGroup // runs this server has started and not seen end
	// onStart is called (outside mu) when a queued run starts.
	onStart func(*Run)
}

// Run is one run of the server: queued, or training in this process.
type Run struct {
	ID    string
	Owner string // the owner's fingerprint

	mu    sync.Mutex
	live  *store.Live // nil while queued
	ended bool
	done  chan struct{}
	res   trainer.Result
	err   error
}

// NewRuns returns the server's runs, recorded by eng. Runs of the
// server's users that an earlier server left queued join the queue. eng
// should prepare jobs with a catalogue that reads no files
// (assets.Catalog.NoFiles), as the sessions' workbenches do: a user names
// models and data, and must not name the server's files.
func NewRuns(eng *store.Engine, cfg RunsConfig, lg *log.Logger) (*Runs, error) {
	if cfg.Home == "" {
		return nil, errors.New("serve: runs: no home folder for users' files")
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("serve: runs: %w", err)
	}
	if lg == nil {
		lg = log.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Runs{eng: eng, st: eng.Store(), cfg: cfg, log: lg, ctx: ctx, cancel: cancel, runs: map[string]*Run{}}
	queued, err := r.st.ListRuns(ctx, store.RunFilter{Status: []trainer.Status{trainer.StatusQueued}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("serve: runs: %w", err)
	}
	// ListRuns is newest first; the queue is oldest first.
	for _, q := range slices.Backward(queued) {
		if q.Owner == "" {
			continue // queued by another front-end, which starts it
		}
		run := newRun(q.ID, q.Owner)
		r.runs[q.ID] = run
		r.queue = append(r.queue, run)
	}
	if len(r.queue) > 0 {
		lg.Info("queued runs found", "runs", len(r.queue))
		r.schedule()
	}
	return r, nil
}

func newRun(id, owner string) *Run {
	return &Run{ID: id, Owner: owner, done: make(chan struct{})}
}

// OnStart sets a function called with every queued run that starts, so
// its owner's sessions can show it (see [AttachRequest]).
func (r *Runs) OnStart(f func(*Run)) {
	r.mu.Lock()
	r.onStart = f
	r.mu.Unlock()
}

// ---------------------------------------------------------------------
// Who may do what

func (r *Runs) isOperator(u User) bool {
	return r.cfg.Operator != "" && u.Fingerprint == r.cfg.Operator
}

// owner is how u is recorded as a run's owner.
func owner(u User) string { return u.Fingerprint }

// canControl reports whether u may steer, stop, resume, branch or delete
// a run of this owner.
func (r *Runs) canControl(u User, runOwner string) bool {
	if runOwner == "" {
		return r.isOperator(u)
	}
	return runOwner == owner(u)
}

// canView reports whether u may see a run of this owner.
func (r *Runs) canView(u User, runOwner string) bool {
	return r.cfg.Share || r.canControl(u, runOwner)
}

// visibleOwners is the owner filter of u's run lists; nil means all.
func (r *Runs) visibleOwners(u User) []string {
	if r.cfg.Share {
		return nil
	}
	if r.isOperator(u) {
		return []string{owner(u), ""}
	}
	return []string{owner(u)}
}

// check returns the stored run id (a full id or a unique prefix) when u
// may view it, or may control it when control is set. A run u may not
// view is reported as not found, so its existence does not leak.
func (r *Runs) check(ctx context.Context, u User, id string, control bool) (store.Run, error) {
	run, err := r.st.Run(ctx, id)
	if err != nil {
		return store.Run{}, err
	}
	switch {
	case !r.canView(u, run.Owner):
		return store.Run{}, fmt.Errorf("run %s: %w", id, store.ErrNotFound)
	case control && !r.canControl(u, run.Owner):
		return store.Run{}, fmt.Errorf("run %s: %w: it is shared for viewing only", store.Short(run.ID), ErrForbidden)
	}
	return run, nil
}

// ---------------------------------------------------------------------
// Starting runs

// counts returns the runs training or starting, in all and of owner o;
// r.mu is held.
func (r *Runs) counts(o string) (total, mine int) {
	for _, run := range slices.Concat(slices.Collect(maps.Values(r.runs)), r.starting) {
		if slices.Contains(r.queue, run) {
			continue
		}
		total++
		if run.Owner == o {
			mine++
		}
	}
	return total, mine
}

// full reports whether owner o may not start another run now; r.mu is
// held.
func (r *Runs) full(o string) bool {
	total, mine := r.counts(o)
	return (r.cfg.MaxTotal > 0 && total >= r.cfg.MaxTotal) || (r.cfg.MaxPerUser > 0 && mine >= r.cfg.MaxPerUser)
}

// Start starts job as a run of u. Beyond a limit the run is recorded as
// queued and Start returns it with an error wrapping [ErrQueued]; it
// starts by itself when a run ends. Other errors are the engine's (bad
// input is a trainer.InputError).
func (r *Runs) Start(u User, job trainer.Job, opts store.StartOptions) (*Run, error) {
	opts.Owner = owner(u)
	opts.Ready, opts.Report = nil, nil
	run, err := r.StartNow(u, job, opts)
	if !errors.Is(err, ErrLimit) {
		return run, err
	}
	q, err := r.eng.Enqueue(r.ctx, job, opts)
	if err != nil {
		return nil, err
	}
	run = newRun(q.ID, q.Owner)
	r.mu.Lock()
	r.runs[q.ID] = run
	r.queue = append(r.queue, run)
	r.mu.Unlock()
	r.log.Info("run queued", "run", q.ID, "user", u.Name, "fingerprint", u.Fingerprint, "limits", r.limits())
	// A run may have ended while this one was being recorded.
	r.schedule()
	return run, fmt.Errorf("run %s: %w: it starts when a running run ends (limits: %s)", store.Short(q.ID), ErrQueued, r.limits())
}

// StartNow starts job as a run of u's when the limits allow, and returns
// an error wrapping [ErrLimit] otherwise: for runs that make no sense
// later, such as one freeze point of a sweep someone is watching.
func (r *Runs) StartNow(u User, job trainer.Job, opts store.StartOptions) (*Run, error) {
	opts.Owner = owner(u)
	opts.Ready, opts.Report = nil, nil
	return r.launch(u, "started", func() (*store.Live, error) {
		return r.eng.Start(r.ctx, job, opts)
	})
}

// Resume continues a stopped or interrupted run of u's, within the limits.
func (r *Runs) Resume(ctx context.Context, u User, id string) (*Run, error) {
	sr, err := r.check(ctx, u, id, true)
	if err != nil {
		return nil, err
	}
	return r.launch(u, "resumed", func() (*store.Live, error) {
		return r.eng.Resume(r.ctx, sr.ID, store.StartOptions{})
	})
}

// Branch starts a new run of u's from a stored checkpoint of a run u
// controls, within the limits (see store.Engine.Branch).
func (r *Runs) Branch(ctx context.Context, u User, parent string, from store.BranchPoint, cont *store.Continuation, opts store.StartOptions) (*Run, error) {
	sr, err := r.check(ctx, u, parent, true)
	if err != nil {
		return nil, err
	}
	opts.Owner = owner(u)
	opts.Ready, opts.Report = nil, nil
	return r.launch(u, "branched from "+store.Short(sr.ID), func() (*store.Live, error) {
		return r.eng.Branch(r.ctx, sr.ID, from, cont, opts)
	})
}

// launch starts a run with start when u is within the limits.
func (r *Runs) launch(u User, what string, start func() (*store.Live, error)) (*Run, error) {
	o := owner(u)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrClosed
	}
	if r.full(o) {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: wait for one of your runs to end (limits: %s)", ErrLimit, r.limits())
	}
	// Hold a slot while the job is prepared, outside the lock.
	slot := newRun("", o)
	r.starting = append(r.starting, slot)
	r.mu.Unlock()
	l, err := start()
	r.mu.Lock()
	r.starting = slices.DeleteFunc(r.starting, func(x *Run) bool { return x == slot })
	if err != nil {
		r.mu.Unlock()
		return nil, err
	}
	run := newRun(l.ID, o)
	r.runs[l.ID] = run
	r.pending.Add(1)
	r.mu.Unlock()
	r.log.Info("run started", "run", l.ID, "how", what, "user", u.Name, "fingerprint", u.Fingerprint)
	run.attach(l)
	go r.pump(run, l)
	return run, nil
}

func (r *Runs) limits() string {
	var parts []string
	if r.cfg.MaxPerUser > 0 {
		parts = append(parts, fmt.Sprintf("%d per user", r.cfg.MaxPerUser))
	}
	if r.cfg.MaxTotal > 0 {
		parts = append(parts, fmt.Sprintf("%d in all", r.cfg.MaxTotal))
	}
	return strings.Join(parts, ", ")
}

// schedule starts queued runs while the limits allow, oldest first.
func (r *Runs) schedule() {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return
		}
		i := slices.IndexFunc(r.queue, func(q *Run) bool { return !r.full(q.Owner) })
		if i < 0 {
			r.mu.Unlock()
			return
		}
		run := r.queue[i]
		r.queue = slices.Delete(r.queue, i, i+1)
		onStart := r.onStart
		r.mu.Unlock()

		l, err := r.eng.Resume(r.ctx, run.ID, store.StartOptions{})
		if err != nil {
			// Stopped while queued (a stop request turns a queued run
			// stopped at once), deleted, or its data went away.
			r.log.Warn("queued run not started", "run", run.ID, "err", err)
			r.mu.Lock()
			delete(r.runs, run.ID)
			r.mu.Unlock()
			run.finish(trainer.Result{}, err)
			continue
		}
		r.mu.Lock()
		r.pending.Add(1)
		r.mu.Unlock()
		r.log.Info("run started", "run", run.ID, "how", "from the queue", "fingerprint", run.Owner)
		run.attach(l)
		go r.pump(run, l)
		if onStart != nil {
			onStart(run)
		}
	}
}

// pump waits for the run to end, then lets the next queued run start.
// The run's reports are its viewers': the workbench of every session
// showing it subscribes to them (store.Live.Subscribe).
func (r *Runs) pump(run *Run, l *store.Live) {
	defer r.pending.Done()
	res, err := l.Wait()
	r.mu.Lock()
	delete(r.runs, run.ID)
	r.mu.Unlock()
	status := res.Status
	if status == "" {
		status = trainer.StatusFailed
	}
	r.log.Info("run ended", "run", run.ID, "status", status, "fingerprint", run.Owner, "err", err)
	run.finish(res, err)
	r.schedule()
}

// Attach returns the newest run u has training on the server, or nil.
func (r *Runs) Attach(u User) *store.Live {
	r.mu.Lock()
	defer r.mu.Unlock()
	var best *Run
	for _, run := range r.runs {
		if run.Owner != owner(u) || run.Live() == nil {
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

// Lookup returns the server's run id (a full id), when it is training or
// queued here and u may view it.
func (r *Runs) Lookup(u User, id string) (*Run, bool) {
	r.mu.Lock()
	run, ok := r.runs[id]
	r.mu.Unlock()
	if !ok || !r.canView(u, run.Owner) {
		return nil, false
	}
	return run, true
}

// Shutdown stops every run this server trains: each stops after its
// current batch, writes its last checkpoint and is recorded as stopped,
// resumable. Queued runs stay queued for the next server. It waits for
// the runs to end, or for ctx.
func (r *Runs) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	n := 0
	for _, run := range r.runs {
		if !slices.Contains(r.queue, run) {
			n++
		}
	}
	r.mu.Unlock()
	r.log.Info("stopping runs", "runs", n)
	r.cancel()
	done := make(chan struct{})
	go func() { r.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("serve: stop runs: %w", ctx.Err())
	}
}

// ---------------------------------------------------------------------
// One run and its watchers

func (run *Run) attach(l *store.Live) {
	run.mu.Lock()
	run.live = l
	run.mu.Unlock()
}

// Live returns the engine's handle of the run, nil while it is queued.
func (run *Run) Live() *store.Live {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.live
}

// Done is closed when the run has ended (or left the queue without
// starting).
func (run *Run) Done() <-chan struct{} { return run.done }

// Wait waits for the run to end and returns its result.
func (run *Run) Wait() (trainer.Result, error) {
	<-run.done
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.res, run.err
}

func (run *Run) finish(res trainer.Result, err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.ended {
		return
	}
	run.ended, run.res, run.err = true, res, err
	close(run.done)
}

// ---------------------------------------------------------------------
// Users' files

// userDir is the folder name of u's files: the fingerprint without its
// "SHA256:" and in base64's URL alphabet, so it is a valid file name.
func userDir(u User) string {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(u.Fingerprint, "SHA256:"))
	if err != nil || len(raw) == 0 {
		// Not a fingerprint x/crypto made; never happens for a verified key.
		raw = []byte(u.Fingerprint)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// FileDir returns the folder where u's files of run id go (exported
// figures, saved models), creating it: <home>/<user>/<run id>/. u must
// control the run. The path is shown to the user, and the same file is
// fetched with `scp -P PORT HOST:<run id>/<file> .`.
func (r *Runs) FileDir(ctx context.Context, u User, id string) (string, error) {
	run, err := r.check(ctx, u, id, true)
	if err != nil {
		return "", err
	}
	dir, err := confinedDir(r.cfg.Home, userDir(u), run.ID)
	if err != nil {
		return "", fmt.Errorf("files of run %s: %w", store.Short(run.ID), err)
	}
	return dir, nil
}

// PlanDir returns the folder of u's plan files, creating it: the Plan
// screen saves and loads there and nowhere else, and scp fetches them as
// plans/<file>.
func (r *Runs) PlanDir(u User) (string, error) {
	dir, err := confinedDir(r.cfg.Home, userDir(u), "plans")
	if err != nil {
		return "", fmt.Errorf("plan folder: %w", err)
	}
	return dir, nil
}

// PlanRoot opens u's plan folder for one save or load, checked as
// [Runs.PlanDir] checks it: a link planted as the folder is refused.
func (r *Runs) PlanRoot(u User) (*os.Root, error) {
	root, err := openConfined(r.cfg.Home, userDir(u), "plans")
	if err != nil {
		return nil, fmt.Errorf("plan folder: %w", err)
	}
	return root, nil
}

// Files is the [FileSource] of the server: a user's folder, read through
// os.Root so that no path, link or "..", leads out of it.
func (r *Runs) Files(u User) (fs.FS, error) {
	root, err := openConfined(r.cfg.Home, userDir(u))
	if err != nil {
		return nil, err
	}
	return rootFS{root.FS(), root}, nil
}

// rootFS is an os.Root's file system that closes the root when done.
type rootFS struct {
	fs.FS
	root *os.Root
}

func (r rootFS) Close() error { return r.root.Close() }
