package ui

import (
	"context"
	"errors"
	"fmt"

	tea "charm.land/bubbletea/v2"

	"thaw/assets"
	"thaw/store"
	"thaw/trainer"
	"thaw/ui/export"
)

// Engine starts recorded runs: store.Engine, which the workbench
// declares only as far as it uses it.
type Engine interface {
	// Start prepares job and starts it as a recorded run in the
	// background. Errors name the bad input (model, data, plan).
	Start(ctx context.Context, job trainer.Job, opts store.StartOptions) (*store.Live, error)
}

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
// session: its curves, stages and plan, for the Train screen to show
// before it goes on from the session's feed.
func loadHistoryCmd(ctx context.Context, src RunStore, run *store.Live) tea.Cmd {
	return func() tea.Msg {
		msg := runHistoryMsg{id: run.ID}
		if rec, err := store.DecodeJob(run.Run); err == nil {
			msg.stages = len(rec.Plan.Stages)
			for _, st := range rec.Plan.Stages {
				msg.total += st.Steps
			}
		}
		msg.run, msg.err = export.Load(ctx, src, run.ID, nil, 0)
		return msg
	}
}

// startRunCmd starts job through the engine.
func startRunCmd(ctx context.Context, eng Engine, job trainer.Job) tea.Cmd {
	return func() tea.Msg {
		if eng == nil {
			return errMsg{errors.New("this workbench has no run store: start thaw with a store to train")}
		}
		run, err := eng.Start(ctx, job, store.StartOptions{})
		if err != nil {
			return errMsg{fmt.Errorf("start: %w — fix it on the Plan screen (3) and press enter again", err)}
		}
		return runStartedMsg{run: run}
	}
}

// loadModelsCmd lists the zoo and the model folders given.
func loadModelsCmd(cat *assets.Catalog, dirs []string) tea.Cmd {
	return func() tea.Msg {
		return modelsLoadedMsg{models: listModels(cat, dirs)}
	}
}

// openModelCmd loads a model folder typed in on the Models screen.
func openModelCmd(cat *assets.Catalog, dir string) tea.Cmd {
	return func() tea.Msg {
		return modelOpenedMsg{model: loadModel(cat, dir)}
	}
}

// loadDataCmd loads job's data and prepares the job as a run would,
// without its forgetting gauge: the split, the shots and the head, for the
// LR preview's lengths, the sweep, the probes and the LR finder.
func loadDataCmd(id int, cat *assets.Catalog, job trainer.Job) tea.Cmd {
	return func() tea.Msg {
		prep, err := inspectData(cat, job)
		return dataLoadedMsg{id: id, prep: prep, err: err}
	}
}

func inspectData(cat *assets.Catalog, job trainer.Job) (*trainer.Prepared, error) {
	base, err := cat.Model(job.Model)
	if err != nil {
		return nil, err
	}
	ds, err := cat.Data(job.Data, base.Model.Config.InputShape, assets.SplitTrain)
	if err != nil {
		return nil, err
	}
	if err := ds.CheckConfig(&base.Model.Config); errors.Is(err, trainer.ErrShapeMismatch) {
		return nil, fmt.Errorf("%w — choose data with %s values per sample, or another model", err, shapeString(base.Model.Config.InputShape))
	}
	return job.Prepare(trainer.JobInputs{Model: base.Model, ModelName: base.Name, Data: ds})
}
