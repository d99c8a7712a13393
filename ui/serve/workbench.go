package serve

import (
	"context"
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"thaw/store"
	"thaw/trainer"
	"thaw/ui"
)

// Workbench returns the model factory of a server whose runs are runs:
// every session gets its own workbench (ui.New), bound to the session's
// context, whose engine acts for the session's user. A user who comes back
// while a run of theirs trains is shown that run at once.
//
// opts is each session's starting point; its Engine is replaced. NoColor
// is set when the client sent NO_COLOR.
func Workbench(runs *Runs, opts ui.Options) func(Session) tea.Model {
	return func(s Session) tea.Model {
		o := opts
		o.FromEnv = false // the server's environment is not the client's
		if slices.ContainsFunc(s.Environ, func(e string) bool { return strings.HasPrefix(e, "NO_COLOR=") && e != "NO_COLOR=" }) {
			o.NoColor = true
		}
		eng := &sessionEngine{runs: runs, user: s.User, ctx: s.Context}
		o.Engine = eng
		m := ui.New(s.Context, o)
		var attach tea.Cmd
		if run := runs.Attach(s.User); run != nil && run.Live() != nil {
			w := eng.watch(run)
			attach = func() tea.Msg { return ui.AttachMsg{Run: w} }
		}
		return &withInit{Model: m, init: attach, eng: eng}
	}
}

// AttachRequest is the message a server sends (see [Server.Send]) to the
// sessions of the owner of run, a queued run that has just started, so
// that their workbenches show it.
func AttachRequest(run *Run) tea.Msg { return attachRequest{run: run} }

// attachRequest asks a session's workbench to watch a run; withInit turns
// it into ui.AttachMsg with a watcher of the session's own.
type attachRequest struct{ run *Run }

// withInit is a workbench with one more command at start, and the
// server's requests turned into the workbench's messages.
type withInit struct {
	tea.Model
	init tea.Cmd
	eng  *sessionEngine
}

func (m *withInit) Init() tea.Cmd { return tea.Batch(m.Model.Init(), m.init) }

func (m *withInit) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if req, ok := msg.(attachRequest); ok {
		if m.eng == nil {
			return m, nil
		}
		msg = ui.AttachMsg{Run: m.eng.watch(req.run)}
	}
	var cmd tea.Cmd
	m.Model, cmd = m.Model.Update(msg)
	return m, cmd
}

// sessionEngine is the engine of one session's workbench: it starts runs
// on the server, owned by the session's user, and watches them with
// watchers that close when the session ends.
type sessionEngine struct {
	runs *Runs
	user User
	ctx  context.Context // the session's
}

// watch returns a watcher of run that closes with the session.
func (e *sessionEngine) watch(run *Run) *Watcher {
	w := run.Watch()
	context.AfterFunc(e.ctx, w.Close)
	return w
}

// Start starts job as the user's run on the server. The session's context
// is not the run's: the run goes on when the session ends.
func (e *sessionEngine) Start(_ context.Context, job ui.Job) (ui.LiveRun, error) {
	run, err := e.runs.Start(e.user, trainerJob(job), store.StartOptions{Name: job.Name, Tags: job.Tags})
	if err != nil {
		return nil, err
	}
	return e.watch(run), nil
}

// trainerJob is the engine's form of what the workbench asks to run.
func trainerJob(j ui.Job) trainer.Job {
	return trainer.Job{
		Model: j.Model, Data: trainer.DataRef{Path: j.Data}, Plan: j.Plan, Shots: j.Shots,
		ValSplit: j.ValSplit, BatchSize: j.Batch, Seed: j.Seed, EvalEvery: j.EvalEvery,
	}
}

// Runs returns the stored runs as the user may see them: their own (and,
// with Share, everyone's); deleting is for the owner only.
func (e *sessionEngine) Runs() *RunView { return &RunView{runs: e.runs, user: e.user} }

// Resume continues a stopped or interrupted run of the user's.
func (e *sessionEngine) Resume(ctx context.Context, id string) (ui.LiveRun, error) {
	run, err := e.runs.Resume(ctx, e.user, id)
	if err != nil {
		return nil, err
	}
	return e.watch(run), nil
}

// Branch starts a run of the user's from the end of stage (1-based) of the
// run parent, which the user must control, going on with cont.
func (e *sessionEngine) Branch(ctx context.Context, parent string, stage int, cont trainer.Plan) (ui.LiveRun, error) {
	run, err := e.runs.Branch(ctx, e.user, parent, store.BranchPoint{Stage: stage}, &store.Continuation{Plan: cont}, store.StartOptions{})
	if err != nil {
		return nil, err
	}
	return e.watch(run), nil
}

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
