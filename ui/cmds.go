package ui

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"

	"thaw/assets"
	"thaw/trainer"
)

// Job is what the workbench asks the engine to run: the base model, the
// data, the plan as edited and the settings of the Plan screen.
type Job struct {
	Model     string       // a zoo name or a model folder
	Data      string       // a built-in task, or a CSV, IDX or image-folder path
	Plan      trainer.Plan // the plan as edited, stages in full
	Shots     int          // samples per class for training, 0 for all
	ValSplit  float64      // fraction held out for validation
	Batch     int
	Seed      uint64
	EvalEvery int      // evaluate every N steps too, 0 for epochs only
	Name      string   // the stored run's name, "" for the engine's
	Tags      []string // tags of the stored run ("sweep:…")
}

// Engine starts recorded runs. The workbench declares what it needs;
// cmd/thaw wires the store's engine.
type Engine interface {
	// Start prepares job and starts it as a recorded run in the
	// background. Errors name the bad input (model, data, plan).
	Start(ctx context.Context, job Job) (LiveRun, error)
}

// LiveRun is a run in progress.
type LiveRun interface {
	// ID is the stored run's id.
	ID() string
	// Progress delivers reports; the run never waits for a reader, so
	// reports may be dropped, never the stored metrics. It is closed when
	// the run ends.
	Progress() <-chan trainer.Progress
	// Control pauses, resumes, skips a stage or stops the run.
	Control() *trainer.Control
	// Wait blocks until the run ends and returns its result.
	Wait() (trainer.Result, error)
}

// waitProgress waits for run's next report, or its end.
func waitProgress(run LiveRun) tea.Cmd {
	ch, id := run.Progress(), run.ID()
	return func() tea.Msg {
		p, ok := <-ch
		if ok {
			return runProgressMsg{id: id, p: p}
		}
		res, err := run.Wait()
		return runDoneMsg{id: id, res: res, err: err}
	}
}

// startRunCmd starts job through the engine.
func startRunCmd(ctx context.Context, eng Engine, job Job) tea.Cmd {
	return func() tea.Msg {
		if eng == nil {
			return errMsg{errors.New("this workbench has no run store: start thaw with a store to train")}
		}
		run, err := eng.Start(ctx, job)
		if err != nil {
			return errMsg{fmt.Errorf("start: %w — fix it on the Plan screen (3) and press enter again", err)}
		}
		return runStartedMsg{run: run}
	}
}

// loadModelsCmd lists the zoo and the model folders given.
func loadModelsCmd(dirs []string) tea.Cmd {
	return func() tea.Msg {
		return modelsLoadedMsg{models: listModels(dirs)}
	}
}

// openModelCmd loads a model folder typed in on the Models screen.
func openModelCmd(dir string) tea.Cmd {
	return func() tea.Msg {
		return modelOpenedMsg{model: loadFolderModel(dir)}
	}
}

// dataInfo is the data of the Plan screen, loaded and checked against the
// model: what the LR preview, the sweep and the probes need.
type dataInfo struct {
	name    string
	samples int
	classes []string
	// train and val count the samples after the validation split and the
	// shots, as the run will draw them.
	train, val int
	// newHead says the head will be replaced for the data's classes.
	newHead bool
}

// loadDataCmd loads data for model cfg and counts its split as the run
// will make it.
func loadDataCmd(id int, cfg *trainer.Config, data string, valSplit float64, shots int, seed uint64) tea.Cmd {
	return func() tea.Msg {
		info, err := inspectData(cfg, data, valSplit, shots, seed)
		return dataLoadedMsg{id: id, info: info, err: err}
	}
}

// Salts of the random streams drawn from a run's seed, as the engine draws
// them: the validation split and the shots.
const saltSplit = 1

func inspectData(cfg *trainer.Config, data string, valSplit float64, shots int, seed uint64) (dataInfo, error) {
	ds, err := loadData(data, cfg.InputShape)
	if err != nil {
		return dataInfo{}, err
	}
	if err := ds.CheckConfig(cfg); errors.Is(err, trainer.ErrShapeMismatch) {
		return dataInfo{}, fmt.Errorf("%w — choose data with %d features per sample, or another model", err, numel(cfg.InputShape))
	}
	info := dataInfo{name: ds.Name, samples: ds.Len(), classes: ds.Classes}
	rng := rand.New(rand.NewPCG(seed, saltSplit))
	train, val, err := ds.Split(rng, valSplit)
	if err != nil {
		return dataInfo{}, err
	}
	if shots > 0 {
		if train, err = train.KShot(rng, shots); err != nil {
			return dataInfo{}, err
		}
	}
	info.train, info.val = train.Len(), val.Len()
	for _, c := range ds.Classes {
		if !slices.Contains(cfg.Classes, c) {
			info.newHead = true
		}
	}
	return info, nil
}

// loadData reads data named as on the command line: a built-in task's
// training split, a CSV file, an IDX images file or an image folder
// converted to shape.
func loadData(data string, shape []int) (*trainer.Dataset, error) {
	if data == "" {
		return nil, errors.New("no data: type a built-in task (see thaw datasets), a CSV or IDX file, or an image folder")
	}
	if t, ok := assets.TaskByName(data); ok {
		return assets.LoadTaskSplit(t, t.Train)
	}
	st, err := os.Stat(data)
	if err != nil {
		var tasks []string
		for _, t := range assets.Tasks() {
			tasks = append(tasks, t.Name)
		}
		return nil, fmt.Errorf("data %q: no task or file by that name — type a task (%s) or an existing path", data, strings.Join(tasks, ", "))
	}
	lower := strings.ToLower(data)
	switch {
	case st.IsDir():
		return trainer.LoadImageFolder(data, shape, trainer.LoadOptions{})
	case strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".csv.gz"):
		return trainer.LoadCSV(data, trainer.LoadOptions{})
	case strings.Contains(filepath.Base(lower), "idx"):
		dir, base := filepath.Split(data)
		labels := strings.Replace(strings.Replace(base, "images", "labels", 1), "idx3", "idx1", 1)
		ds, err := trainer.LoadIDX(data, filepath.Join(dir, labels), trainer.LoadOptions{})
		if ds != nil {
			ds.Name = filepath.Base(data)
		}
		return ds, err
	}
	return nil, fmt.Errorf("data %q: unknown format — want .csv, .csv.gz, an IDX images file or a folder of class folders", data)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
