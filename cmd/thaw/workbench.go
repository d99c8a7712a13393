package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"thaw/trainer"
	"thaw/ui"
)

// modelDirs is a repeatable --model flag.
type modelDirs []string

func (d *modelDirs) String() string { return fmt.Sprint(*d) }
func (d *modelDirs) Set(v string) error {
	*d = append(*d, v)
	return nil
}

// isTerminal reports whether both stdin and stdout are terminals, so the
// workbench can draw and read keys.
func (m *Main) isTerminal() bool {
	in, ok1 := m.Stdin.(*os.File)
	out, ok2 := m.Stdout.(*os.File)
	return ok1 && ok2 && term.IsTerminal(in.Fd()) && term.IsTerminal(out.Fd())
}

// runWorkbench is thaw without a command: the workbench on this terminal.
func (m *Main) runWorkbench(ctx context.Context, args []string) error {
	fs := m.newFlags("")
	var dirs modelDirs
	fs.Var(&dirs, "model", "also list the model in `dir` (repeatable)")
	storeDir := storeFlag(fs)
	fs.Usage = func() { fmt.Fprint(m.Stderr, usage) }
	if err := parse(fs, args); err != nil {
		return err
	}
	eng := &workbenchEngine{m: m, storeDir: *storeDir}
	model := ui.New(ctx, ui.Options{ModelDirs: dirs, Engine: eng, FromEnv: true})
	p := tea.NewProgram(model, tea.WithContext(ctx), tea.WithInput(m.Stdin), tea.WithOutput(m.Stdout))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// workbenchEngine starts the workbench's runs the way thaw train does:
// prepared from the same flags, recorded in the same store.
type workbenchEngine struct {
	m        *Main
	storeDir string
}

func (e *workbenchEngine) Start(ctx context.Context, job ui.Job) (ui.LiveRun, error) {
	planJSON, err := json.Marshal(job.Plan)
	if err != nil {
		return nil, err
	}
	f := &setupFlags{
		model: job.Model, data: dataSpec{data: job.Data}, plan: "workbench plan", planJSON: planJSON,
		shots: job.Shots, valSplit: job.ValSplit, batch: job.Batch, seed: job.Seed,
	}
	// The headless messages must not reach the workbench's screen.
	quiet := *e.m
	quiet.Stderr = io.Discard
	s, err := quiet.prepare(f)
	if err != nil {
		return nil, err
	}
	st, run, err := quiet.createRun(s, f, job.EvalEvery, job.Name, e.storeDir)
	if err != nil {
		return nil, err
	}
	lr := &liveRun{id: run.ID, ch: make(chan trainer.Progress, 64), done: make(chan struct{})}
	spec := s.spec(f, job.EvalEvery)
	spec.Control = &lr.control
	go func() {
		defer st.Close()
		res, err := st.Train(ctx, run.ID, spec, func(p trainer.Progress) {
			select {
			case lr.ch <- p:
			default: // the workbench is behind: it redraws from the next one
			}
		})
		lr.mu.Lock()
		lr.res, lr.err = res, err
		lr.mu.Unlock()
		close(lr.ch)
		close(lr.done)
	}()
	return lr, nil
}

// liveRun is a run of the workbench training in a goroutine.
type liveRun struct {
	id      string
	ch      chan trainer.Progress
	done    chan struct{}
	control trainer.Control

	mu  sync.Mutex
	res trainer.Result
	err error
}

func (r *liveRun) ID() string                        { return r.id }
func (r *liveRun) Progress() <-chan trainer.Progress { return r.ch }
func (r *liveRun) Control() *trainer.Control         { return &r.control }
func (r *liveRun) Wait() (trainer.Result, error) {
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res, r.err
}
