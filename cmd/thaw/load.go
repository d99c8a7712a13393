package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"thaw/assets"
	"thaw/assets/recipes"
	"thaw/trainer"
)

// baseModel is a loaded base model and where it came from.
type baseModel struct {
	m *trainer.Model[float32]
	// name is the zoo name or the folder as given.
	name string
	// zoo reports whether the model came from the zoo.
	zoo bool
}

// loadModel resolves --model: a model of m.Zoo by name when there is one,
// otherwise a folder on disk. Unknown names and malformed files are bad
// input.
func (m *Main) loadModel(name string) (*baseModel, error) {
	if name == "" {
		return nil, usagef("--model is required (a zoo model or a folder; see thaw models)")
	}
	if m.Zoo != nil && fs.ValidPath(name) && !strings.Contains(name, "/") {
		if _, err := fs.Stat(m.Zoo, path.Join(name, trainer.ConfigFile)); err == nil {
			mod, err := trainer.LoadModelFS[float32](m.Zoo, name)
			if err != nil {
				return nil, fmt.Errorf("load zoo model %q: %w", name, err)
			}
			return &baseModel{m: mod, name: name, zoo: true}, nil
		}
	}
	st, err := os.Stat(name)
	if err != nil || !st.IsDir() {
		zoo := assets.ZooModels(m.Zoo)
		list := "the zoo is empty"
		if len(zoo) > 0 {
			list = "zoo models: " + strings.Join(zoo, ", ")
		}
		return nil, usagef("unknown model %q: no zoo model or folder by that name (%s)", name, list)
	}
	mod, err := trainer.LoadModel[float32](name)
	if err != nil {
		return nil, usagef("load model: %w", err)
	}
	return &baseModel{m: mod, name: name}, nil
}

// sourceFor returns the held-out source set of a base model for the
// forgetting gauge: the test split of the source task its meta.json names
// (zoo models), or nil when the model declares none.
func (m *Main) sourceFor(b *baseModel) (*trainer.Dataset, error) {
	if !b.zoo {
		return nil, nil
	}
	meta, ok, err := zooMeta(m.Zoo, b.name)
	if err != nil {
		return nil, fmt.Errorf("source task of %s: %w", b.name, err)
	}
	if !ok || meta.SourceTask == "" {
		return nil, nil
	}
	t, ok := assets.TaskByName(meta.SourceTask)
	if !ok {
		return nil, fmt.Errorf("source task %q of model %q is not in the catalogue", meta.SourceTask, b.name)
	}
	split := t.Test
	if split == "" {
		split = t.Train
	}
	ds, err := recipes.LoadTaskSplit(t, split)
	if err != nil {
		return nil, fmt.Errorf("source task of %s: %w", b.name, err)
	}
	return ds, nil
}

// zooMeta reads a zoo model's meta.json (what its card states); ok is
// false when the model has none.
func zooMeta(zoo fs.FS, name string) (meta assets.ModelMeta, ok bool, err error) {
	raw, err := fs.ReadFile(zoo, path.Join(name, assets.MetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return meta, false, nil
	}
	if err != nil {
		return meta, false, err
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return meta, false, fmt.Errorf("%s: %w", path.Join(name, assets.MetaFile), err)
	}
	return meta, true, nil
}

// dataSpec is what selects a dataset on the command line.
type dataSpec struct {
	data   string // a task name or a path
	labels string // the IDX labels file, when not found by MNIST's naming
}

// split names of a built-in task to load.
const (
	splitTrain = "train"
	splitTest  = "test"
)

// load reads the data: a built-in task's split (splitTest falls back to
// the training split of a task without a test split), a CSV file, an IDX
// images file or an image folder converted to shape. Every failure is bad
// input.
func (d dataSpec) load(shape []int, split string) (*trainer.Dataset, error) {
	if d.data == "" {
		return nil, usagef("--data is required (a task, a CSV or IDX file, or an image folder; see thaw datasets)")
	}
	if t, ok := assets.TaskByName(d.data); ok {
		name := t.Train
		if split == splitTest && t.Test != "" {
			name = t.Test
		}
		ds, err := recipes.LoadTaskSplit(t, name)
		return ds, asUsage(err)
	}
	st, err := os.Stat(d.data)
	if err != nil {
		var tasks []string
		for _, t := range assets.Tasks() {
			tasks = append(tasks, t.Name)
		}
		return nil, usagef("unknown data %q: no task or file by that name (tasks: %s)", d.data, strings.Join(tasks, ", "))
	}
	var ds *trainer.Dataset
	lower := strings.ToLower(d.data)
	switch {
	case st.IsDir():
		ds, err = trainer.LoadImageFolder(d.data, shape, trainer.LoadOptions{})
	case strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".csv.gz"):
		ds, err = trainer.LoadCSV(d.data, trainer.LoadOptions{})
	case d.labels != "" || strings.Contains(filepath.Base(lower), "idx"):
		labels := d.labels
		if labels == "" {
			if labels, err = idxLabels(d.data); err != nil {
				return nil, asUsage(err)
			}
		}
		ds, err = trainer.LoadIDX(d.data, labels, trainer.LoadOptions{})
		if ds != nil {
			ds.Name = filepath.Base(d.data)
		}
	default:
		return nil, usagef("data %q: unknown format (want .csv, .csv.gz, an IDX file with --labels, or a folder of class folders)", d.data)
	}
	if err != nil {
		return nil, usagef("load data: %w", err)
	}
	return ds, nil
}

// idxLabels finds the labels file of an IDX images file by MNIST's naming:
// train-images-idx3-ubyte[.gz] goes with train-labels-idx1-ubyte[.gz].
func idxLabels(images string) (string, error) {
	dir, base := filepath.Split(images)
	guess := strings.Replace(base, "images", "labels", 1)
	guess = strings.Replace(guess, "idx3", "idx1", 1)
	if guess == base {
		return "", fmt.Errorf("data %q: cannot tell the labels file from the name; pass --labels", images)
	}
	// The labels may be gzipped when the images are not, or the other way.
	for _, g := range []string{guess, guess + ".gz", strings.TrimSuffix(guess, ".gz")} {
		p := filepath.Join(dir, g)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("data %q: no labels file %q next to it; pass --labels", images, filepath.Join(dir, guess))
}

// checkShape reports, as bad input, data whose samples the model cannot
// take.
func checkShape(ds *trainer.Dataset, mod *trainer.Model[float32]) error {
	err := ds.CheckConfig(&mod.Config)
	if errors.Is(err, trainer.ErrShapeMismatch) {
		return usageError{err}
	}
	return nil
}
