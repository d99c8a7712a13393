package ui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"thaw/store/engine"
	"thaw/trainer"
)

// waitProgress waits for the next report of a session's feed, or the
// run's end; nothing once the session left the feed.
func waitProgress(f feed) tea.Cmd {
	if f.run == nil {
		return nil
	}
	id := f.run.ID
	return func() tea.Msg {
		p, ok := <-f.ch
		if ok {
			return runProgressMsg{id: id, p: p}
		}
		select {
		case <-f.gone:
			return nil
		case <-f.run.Done():
		}
		res, err := f.run.Wait()
		return runDoneMsg{id: id, res: res, err: err}
	}
}

// loadHistoryCmd reads what the store holds of a live run handed to the
// session (one attached again, or resumed): its curves, stages, best and
// planned total through the read model, for the Train screen to show
// before it goes on from the session's feed.
func loadHistoryCmd(ctx context.Context, b Backend, run *engine.Live) tea.Cmd {
	return func() tea.Msg {
		msg := runHistoryMsg{id: run.ID}
		msg.run, msg.err = readRun(ctx, b, run.ID, 0)
		msg.total, msg.stages = int(msg.run.View.TotalSteps), len(msg.run.View.Stages)
		return msg
	}
}

// startRunCmd starts job through the backend; b is nil when the
// workbench has no store.
func startRunCmd(ctx context.Context, b Backend, job trainer.Job) tea.Cmd {
	return func() tea.Msg {
		if b == nil {
			return errMsg{errors.New("this workbench has no run store: start thaw with a store to train")}
		}
		run, err := b.Start(ctx, job, engine.StartOptions{})
		if err != nil {
			return errMsg{fmt.Errorf("start: %w — fix it on the Plan screen (3) and press enter again", err)}
		}
		return runStartedMsg{run: run}
	}
}

// loadModelsCmd lists the zoo and the model folders given.
func loadModelsCmd(b Backend, dirs []string) tea.Cmd {
	return func() tea.Msg {
		return modelsLoadedMsg{models: listModels(b, dirs)}
	}
}

// openModelCmd loads a model folder typed in on the Models screen.
func openModelCmd(b Backend, dir string) tea.Cmd {
	return func() tea.Msg {
		return modelOpenedMsg{model: loadModel(b, dir)}
	}
}

// loadDataCmd loads job's data and prepares the job as a run would,
// without its forgetting gauge: the split, the shots and the head, for the
// LR preview's lengths, the sweep, the probes and the LR finder.
func loadDataCmd(id int, b Backend, job trainer.Job) tea.Cmd {
	return func() tea.Msg {
		prep, err := b.Inspect(job)
		return dataLoadedMsg{id: id, prep: prep, err: err}
	}
}
