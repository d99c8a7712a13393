package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"thaw/assets"
	"thaw/store"
	"thaw/trainer"
	"thaw/ui"
)

// Workbench returns the model factory of a server whose runs are runs:
// every session gets its own workbench (ui.New), bound to the session's
// context, whose engine acts for the session's user, whose Runs screen
// lists what that user may see, and whose exported figures go to the
// user's own files, fetched with scp. A user who comes back while a run of
// theirs trains is shown that run at once.
//
// opts is each session's starting point; its Engine, Runs and ExportDir
// are replaced. NoColor is set when the client sent NO_COLOR.
func Workbench(runs *Runs, opts ui.Options) func(Session) tea.Model {
	return func(s Session) tea.Model {
		o := opts
		o.FromEnv = false // the server's environment is not the client's
		// The user names models and data: never the server's files.
		cat := assets.Catalog{Zoo: assets.Zoo()}
		if o.Catalog != nil {
			cat = *o.Catalog
		}
		cat.NoFiles = true
		o.Catalog = &cat
		o.ModelDirs = nil
		o.RunsOutlive = true
		// Plans are saved and loaded in the user's own folder only, opened
		// and checked again for every save and load.
		o.PlanDir = filepath.Join(runs.cfg.Home, userDir(s.User), "plans")
		if _, err := runs.PlanDir(s.User); err != nil {
			runs.log.Warn("plan folder", "user", s.User.Name, "fingerprint", s.User.Fingerprint, "err", err)
		}
		o.PlanRoot = func() (*os.Root, error) { return runs.PlanRoot(s.User) }
		if slices.ContainsFunc(s.Environ, func(e string) bool { return strings.HasPrefix(e, "NO_COLOR=") && e != "NO_COLOR=" }) {
			o.NoColor = true
		}
		eng := &sessionEngine{runs: runs, user: s.User}
		o.Engine = eng
		o.Runs = &RunView{runs: runs, user: s.User}
		o.ExportDir = func(ctx context.Context, id string) (string, string, error) {
			dir, err := runs.FileDir(ctx, s.User, id)
			// The user fetches it by this name: scp -P PORT HOST:<run>/<file> .
			return dir, filepath.Base(dir), err
		}
		m := ui.New(s.Context, o)
		var attach tea.Cmd
		if l := runs.Attach(s.User); l != nil {
			attach = func() tea.Msg { return ui.AttachMsg{Run: l} }
		}
		return &withInit{Model: m, init: attach}
	}
}

// withInit is a workbench with one more command at start.
type withInit struct {
	tea.Model
	init tea.Cmd
}

func (m *withInit) Init() tea.Cmd { return tea.Batch(m.Model.Init(), m.init) }

func (m *withInit) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	var cmd tea.Cmd
	m.Model, cmd = m.Model.Update(msg)
	return m, cmd
}

// sessionEngine is the engine of one session's workbench: it starts runs
// on the server, owned by the session's user. The session's context is
// not the runs': a run goes on when the session ends.
type sessionEngine struct {
	runs *Runs
	user User
}

// Start starts job as the user's run on the server; beyond a limit it is
// queued, and the error says so. The run does not end with ctx, the
// session's: it goes on when the user leaves. A run of a freeze-depth
// sweep is the exception: the sweep is the session's, it is not queued,
// and cancelling the sweep (or leaving) stops it, stored and resumable.
func (e *sessionEngine) Start(ctx context.Context, job trainer.Job, opts store.StartOptions) (*store.Live, error) {
	if slices.Contains(opts.Tags, "sweep") {
		run, err := e.runs.StartNow(e.user, job, opts)
		if err != nil {
			return nil, err
		}
		l := run.Live()
		context.AfterFunc(ctx, l.Control.Stop)
		return l, nil
	}
	run, err := e.runs.Start(e.user, job, opts)
	if err != nil {
		return nil, err
	}
	return run.Live(), nil
}

// Store is the whole store, as ui.RunsEngine requires; the workbench reads
// the runs through its Options.Runs, the user's view, instead.
func (e *sessionEngine) Store() *store.Store { return e.runs.st }

// Prepare prepares a job as the server's engine would start it.
func (e *sessionEngine) Prepare(job trainer.Job) (*trainer.Prepared, error) {
	return e.runs.eng.Prepare(job)
}

// Resume continues a stopped or interrupted run of the user's.
func (e *sessionEngine) Resume(ctx context.Context, id string, _ store.StartOptions) (*store.Live, error) {
	run, err := e.runs.Resume(ctx, e.user, id)
	if err != nil {
		return nil, err
	}
	return run.Live(), nil
}

// Branch starts a run of the user's from a checkpoint of a run the user
// controls.
func (e *sessionEngine) Branch(ctx context.Context, parent string, from store.BranchPoint, cont *store.Continuation, opts store.StartOptions) (*store.Live, error) {
	run, err := e.runs.Branch(ctx, e.user, parent, from, cont, opts)
	if err != nil {
		return nil, err
	}
	return run.Live(), nil
}

var _ ui.RunsEngine = (*sessionEngine)(nil)
var _ ui.RunStore = (*RunView)(nil)

// RunView is the store as one user sees it: the runs they may view, and
// changes only to their own. A run they may not view is not found.
type RunView struct {
	runs *Runs
	user User
}

func (v *RunView) st() *store.Store { return v.runs.st }

// ListRuns lists the runs the user may view that match f.
func (v *RunView) ListRuns(ctx context.Context, f store.RunFilter) ([]store.Run, error) {
	if owners := v.runs.visibleOwners(v.user); owners != nil {
		if len(f.Owners) > 0 {
			f.Owners = slices.DeleteFunc(slices.Clone(f.Owners), func(o string) bool { return !slices.Contains(owners, o) })
			if len(f.Owners) == 0 {
				return nil, nil
			}
		} else {
			f.Owners = owners
		}
	}
	return v.st().ListRuns(ctx, f)
}

// Delete deletes a run of the user's.
func (v *RunView) Delete(ctx context.Context, id string) error {
	run, err := v.runs.check(ctx, v.user, id, true)
	if err != nil {
		return err
	}
	return v.st().Delete(ctx, run.ID)
}

// RequestStop stops a run of the user's, wherever it trains.
func (v *RunView) RequestStop(ctx context.Context, id string) error {
	run, err := v.runs.check(ctx, v.user, id, true)
	if err != nil {
		return err
	}
	return v.st().RequestStop(ctx, run.ID)
}

// Run returns a run the user may view.
func (v *RunView) Run(ctx context.Context, id string) (store.Run, error) {
	return v.runs.check(ctx, v.user, id, false)
}

// MetricNames, Series, Stages and Checkpoints read a run the user may view.
func (v *RunView) MetricNames(ctx context.Context, run string) ([]string, error) {
	r, err := v.runs.check(ctx, v.user, run, false)
	if err != nil {
		return nil, err
	}
	return v.st().MetricNames(ctx, r.ID)
}

func (v *RunView) Series(ctx context.Context, run, name string, maxPoints int) ([]store.Bucket, error) {
	r, err := v.runs.check(ctx, v.user, run, false)
	if err != nil {
		return nil, err
	}
	return v.st().Series(ctx, r.ID, name, maxPoints)
}

func (v *RunView) Stages(ctx context.Context, run string) ([]store.Stage, error) {
	r, err := v.runs.check(ctx, v.user, run, false)
	if err != nil {
		return nil, err
	}
	return v.st().Stages(ctx, r.ID)
}

func (v *RunView) Checkpoints(ctx context.Context, run string) ([]store.Checkpoint, error) {
	r, err := v.runs.check(ctx, v.user, run, false)
	if err != nil {
		return nil, err
	}
	return v.st().Checkpoints(ctx, r.ID)
}

// LoadCheckpoint reads a checkpoint of a run the user may view.
func (v *RunView) LoadCheckpoint(ctx context.Context, id string) (trainer.Checkpoint, error) {
	if _, err := v.Checkpoint(ctx, id); err != nil {
		return trainer.Checkpoint{}, err
	}
	return v.st().LoadCheckpoint(ctx, id)
}

// Checkpoint returns a checkpoint of a run the user may view.
func (v *RunView) Checkpoint(ctx context.Context, id string) (store.Checkpoint, error) {
	c, err := v.st().Checkpoint(ctx, id)
	if err != nil {
		return store.Checkpoint{}, err
	}
	if _, err := v.runs.check(ctx, v.user, c.Run, false); err != nil {
		return store.Checkpoint{}, fmt.Errorf("checkpoint %s: %w", id, store.ErrNotFound)
	}
	return c, nil
}

// AttachRequest is the message a server sends (see [Server.Send]) to the
// sessions of the owner of run, a queued run that has just started, so
// that their workbenches show it.
func AttachRequest(run *Run) tea.Msg { return ui.AttachMsg{Run: run.Live()} }
