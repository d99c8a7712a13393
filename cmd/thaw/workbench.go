package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"thaw/store"
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
	eng, st, err := m.openEngine(*storeDir)
	if err != nil {
		return err
	}
	defer st.Close()
	model := ui.New(ctx, ui.Options{ModelDirs: dirs, Engine: workbenchEngine{eng}, FromEnv: true})
	p := tea.NewProgram(model, tea.WithContext(ctx), tea.WithInput(m.Stdin), tea.WithOutput(m.Stdout))
	_, err = p.Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// workbenchEngine starts the workbench's runs on the store's engine, as
// thaw train does, so a run started here is the same run.
type workbenchEngine struct{ e *store.Engine }

func (w workbenchEngine) Start(ctx context.Context, job ui.Job) (ui.LiveRun, error) {
	l, err := w.e.Start(ctx, trainerJob(job), store.StartOptions{Name: job.Name, Tags: job.Tags})
	if err != nil {
		return nil, err
	}
	return liveRun{l}, nil
}

// trainerJob is the engine's form of what the workbench asks to run.
func trainerJob(j ui.Job) trainer.Job {
	return trainer.Job{
		Model: j.Model, Data: trainer.DataRef{Path: j.Data}, Plan: j.Plan, Shots: j.Shots,
		ValSplit: j.ValSplit, BatchSize: j.Batch, Seed: j.Seed, EvalEvery: j.EvalEvery,
	}
}

// liveRun is a store.Live as the workbench sees a run.
type liveRun struct{ *store.Live }

func (r liveRun) ID() string                { return r.Live.ID }
func (r liveRun) Control() *trainer.Control { return r.Live.Control }
