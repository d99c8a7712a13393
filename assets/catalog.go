package assets

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"

	"thaw/trainer"
	"thaw/trainer/termtext"
)

// Catalog resolves the names a user gives a job: base models (a zoo
// model's name or a folder), data (a built-in task's name, a CSV or IDX
// file, an image folder) and the forgetting gauge's source set. The CLI,
// the workbench and the server all resolve through one, so a name means
// the same everywhere.
//
// Errors the user causes (unknown names, malformed files, data the model
// cannot take) are trainer.InputError values.
type Catalog struct {
	// Zoo holds the base models, one folder per model as [Zoo] returns
	// them; nil means none.
	Zoo fs.FS
	// MaxBytes is the memory budget for loading a user's data file or
	// folder (trainer.LoadOptions.MaxBytes): past it the load is refused,
	// naming the file and the limit. Zero means trainer.DefaultMaxBytes().
	MaxBytes int64
	// MaxBytesName is what raises MaxBytes, named in those errors
	// (trainer.LoadOptions.MaxBytesName), such as a flag.
	MaxBytesName string
	// NoFiles resolves the zoo's models and the built-in tasks only: a
	// name that is not one of them is unknown, and no file or folder is
	// looked at. The SSH server's catalogue is one, so that its users
	// cannot make it read the server's files.
	NoFiles bool
}

// NewCatalog returns a catalogue of the embedded zoo and tasks.
func NewCatalog() *Catalog { return &Catalog{Zoo: Zoo()} }

// BaseModel is a base model resolved by name and loaded.
type BaseModel struct {
	// Name is the zoo name, or the folder as an absolute path.
	Name string
	// Zoo reports whether the model came from the zoo.
	Zoo bool
	// Model is the model with its pretrained weights; Model.Config holds
	// its architecture, blocks and classes, Model.Count its parameters.
	Model *trainer.Model[float32]
	// Meta is what the model's card states (zoo models); nil when the
	// model has no meta.json.
	Meta *ModelMeta
	// Card is the model card in markdown; empty when there is none.
	Card string
}

// ModelNames lists the zoo's models, sorted.
func (c *Catalog) ModelNames() []string { return ZooModels(c.Zoo) }

// Model resolves and loads a base model: a model of the zoo by name when
// there is one, otherwise a folder holding config.json and
// model.safetensors. An empty or unknown name (the error lists the zoo) and
// a folder whose files do not load are InputErrors; a zoo model that does
// not load is not the user's doing and is a plain error.
func (c *Catalog) Model(name string) (*BaseModel, error) {
	if name == "" {
		return nil, trainer.BadInput(errors.New("no base model given (a zoo model or a folder; see thaw models)"))
	}
	if c.Zoo != nil && fs.ValidPath(name) && !strings.Contains(name, "/") {
		if _, err := fs.Stat(c.Zoo, path.Join(name, trainer.ConfigFile)); err == nil {
			mod, err := trainer.LoadModelFS[float32](c.Zoo, name)
			if err != nil {
				return nil, fmt.Errorf("load zoo model %q: %w", name, err)
			}
			b := &BaseModel{Name: name, Zoo: true, Model: mod}
			if b.Meta, err = zooMeta(c.Zoo, name); err != nil {
				return nil, fmt.Errorf("zoo model %s: %w", name, err)
			}
			if card, err := fs.ReadFile(c.Zoo, path.Join(name, CardFile)); err == nil {
				b.Card = string(card)
			}
			return b, nil
		}
	}
	if c.NoFiles {
		return nil, trainer.BadInput(fmt.Errorf("unknown model %q: only the zoo's models are offered here (%s)",
			termtext.Sanitize(name), strings.Join(c.ModelNames(), ", ")))
	}
	st, err := os.Stat(name)
	if err != nil || !st.IsDir() {
		list := "the zoo is empty"
		if zoo := c.ModelNames(); len(zoo) > 0 {
			list = "zoo models: " + strings.Join(zoo, ", ")
		}
		return nil, trainer.BadInput(fmt.Errorf("unknown model %q: no zoo model or folder by that name (%s)", name, list))
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	mod, err := trainer.LoadModel[float32](abs)
	if err != nil {
		return nil, trainer.BadInput(fmt.Errorf("load model: %w", err))
	}
	return &BaseModel{Name: abs, Model: mod}, nil
}

// zooMeta reads a zoo model's meta.json; nil when it has none.
func zooMeta(zoo fs.FS, name string) (*ModelMeta, error) {
	raw, err := fs.ReadFile(zoo, path.Join(name, MetaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var meta ModelMeta
	if err := json.Unmarshal(raw, &meta); err != nil {
		return nil, fmt.Errorf("%s: %w", path.Join(name, MetaFile), err)
	}
	return &meta, nil
}

// Source returns the held-out source set of a base model for the
// forgetting gauge: the test split (else the training split) of the source
// task its meta.json names, or nil when it names none.
func (c *Catalog) Source(b *BaseModel) (*trainer.Dataset, error) {
	if b.Meta == nil || b.Meta.SourceTask == "" {
		return nil, nil
	}
	t, ok := TaskByName(b.Meta.SourceTask)
	if !ok {
		return nil, fmt.Errorf("source task %q of model %q is not in the catalogue", b.Meta.SourceTask, b.Name)
	}
	split := t.Test
	if split == "" {
		split = t.Train
	}
	ds, err := loadTaskSplit(t, split, c.loadOptions())
	if err != nil {
		return nil, fmt.Errorf("source task of %s: %w", b.Name, err)
	}
	return ds, nil
}

// DataSplit says which split of a built-in task to load.
type DataSplit int

// The splits of a task.
const (
	SplitTrain DataSplit = iota // the training split, for training and lr-find
	SplitTest                   // the test split, or the training split of a task without one
)

// Data loads the data ref names: a built-in task's split, a CSV file (.csv
// or .csv.gz), an IDX images file (its labels file given or found by
// MNIST's naming) or an image folder whose images are converted to shape.
// Every failure is an InputError; an unknown name lists the tasks.
func (c *Catalog) Data(ref trainer.DataRef, shape []int, split DataSplit) (*trainer.Dataset, error) {
	return c.load(ref, shape, split, c.loadOptions())
}

// Inputs loads data for a model to label, as Data loads a test split, but
// takes data without labels too: a CSV file without a label column, a flat
// folder of images. Such a dataset has no classes (see
// trainer.LoadOptions.Unlabelled). For an image folder, files names the
// file of every sample, in order, relative to the folder with forward
// slashes ("cat/001.png"); it is nil for other data.
func (c *Catalog) Inputs(ref trainer.DataRef, shape []int) (ds *trainer.Dataset, files []string, err error) {
	opts := trainer.LoadOptions{MaxBytes: c.MaxBytes, MaxBytesName: c.MaxBytesName, Unlabelled: true}
	if ds, err = c.load(ref, shape, SplitTest, opts); err != nil {
		return nil, nil, err
	}
	if st, err := os.Stat(ref.Path); err == nil && st.IsDir() {
		if files, err = trainer.ImageFiles(ref.Path, opts); err != nil {
			return nil, nil, trainer.BadInput(fmt.Errorf("load data: %w", err))
		}
		for i, f := range files {
			if rel, err := filepath.Rel(ref.Path, f); err == nil {
				files[i] = filepath.ToSlash(rel)
			}
		}
	}
	return ds, files, nil
}

// TestSet returns the held-out test split of the task ref names, for a
// score that selects nothing; nil, and no error, when ref is not a
// built-in task or its task has no test split (a file's data is all
// training and validation).
func (c *Catalog) TestSet(ref trainer.DataRef) (*trainer.Dataset, error) {
	t, ok := TaskByName(ref.Path)
	if !ok || t.Test == "" {
		return nil, nil
	}
	ds, err := loadTaskSplit(t, t.Test, c.loadOptions())
	return ds, trainer.BadInput(err)
}

func (c *Catalog) load(ref trainer.DataRef, shape []int, split DataSplit, opts trainer.LoadOptions) (*trainer.Dataset, error) {
	if ref.Path == "" {
		return nil, trainer.BadInput(errors.New("no data given (a task, a CSV or IDX file, or an image folder; see thaw datasets)"))
	}
	if t, ok := TaskByName(ref.Path); ok {
		name := t.Train
		if split == SplitTest && t.Test != "" {
			name = t.Test
		}
		ds, err := loadTaskSplit(t, name, opts)
		return ds, trainer.BadInput(err)
	}
	if c.NoFiles {
		var tasks []string
		for _, t := range Tasks() {
			tasks = append(tasks, t.Name)
		}
		return nil, trainer.BadInput(fmt.Errorf("unknown data %q: only the built-in tasks are offered here (%s)",
			termtext.Sanitize(ref.Path), strings.Join(tasks, ", ")))
	}
	st, err := os.Stat(ref.Path)
	if err != nil {
		var tasks []string
		for _, t := range Tasks() {
			tasks = append(tasks, t.Name)
		}
		return nil, trainer.BadInput(fmt.Errorf("unknown data %q: no task or file by that name (tasks: %s)", ref.Path, strings.Join(tasks, ", ")))
	}
	var ds *trainer.Dataset
	lower := strings.ToLower(ref.Path)
	switch {
	case st.IsDir():
		ds, err = trainer.LoadImageFolder(ref.Path, shape, opts)
	case strings.HasSuffix(lower, ".csv") || strings.HasSuffix(lower, ".csv.gz"):
		ds, err = trainer.LoadCSV(ref.Path, opts)
	case ref.Labels != "" || strings.Contains(filepath.Base(lower), "idx"):
		labels := ref.Labels
		if labels == "" {
			if labels, err = IDXLabels(ref.Path); err != nil {
				return nil, trainer.BadInput(err)
			}
		}
		ds, err = trainer.LoadIDX(ref.Path, labels, opts)
		if ds != nil {
			ds.Name = filepath.Base(ref.Path)
		}
	default:
		return nil, trainer.BadInput(fmt.Errorf("data %q: unknown format (want .csv, .csv.gz, an IDX file with its labels file, or a folder of class folders)", ref.Path))
	}
	if err != nil {
		return nil, trainer.BadInput(fmt.Errorf("load data: %w", err))
	}
	return ds, nil
}

// IDXLabels finds the labels file of an IDX images file by MNIST's naming:
// train-images-idx3-ubyte[.gz] goes with train-labels-idx1-ubyte[.gz].
func IDXLabels(images string) (string, error) {
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

// ResolveData returns ref with a file or folder as an absolute path, so
// that a stored job resolves from any working folder; a task's name is
// left as it is.
func (c *Catalog) ResolveData(ref trainer.DataRef) (trainer.DataRef, error) {
	if _, ok := TaskByName(ref.Path); !ok && ref.Path != "" {
		if _, err := os.Stat(ref.Path); err == nil {
			abs, err := filepath.Abs(ref.Path)
			if err != nil {
				return ref, err
			}
			ref.Path = abs
		}
	}
	if ref.Labels != "" {
		abs, err := filepath.Abs(ref.Labels)
		if err != nil {
			return ref, err
		}
		ref.Labels = abs
	}
	return ref, nil
}

// TrainingData loads the training split of the data ref names, as Data
// does, for a job to train on: a built-in task's images are then decoded
// only for the samples the job keeps, through samples (see
// trainer.JobInputs.Samples), which is nil for other data. Every failure
// is an InputError.
func (c *Catalog) TrainingData(ref trainer.DataRef, shape []int) (ds *trainer.Dataset, samples func([]int) ([]float32, error), err error) {
	if t, ok := TaskByName(ref.Path); ok {
		ds, samples, err = loadSplitLazy(t, t.Train, c.loadOptions())
		return ds, samples, trainer.BadInput(err)
	}
	ds, err = c.Data(ref, shape, SplitTrain)
	return ds, nil, err
}

// ModelSummary is what a list of models shows of one: read from its
// config.json and meta.json, without its weights.
type ModelSummary struct {
	Name   string
	Config *trainer.Config
	// Params is the number of parameters and buffers' values, as
	// trainer.Model.Count counts them.
	Params int
	// Meta is the card's facts; nil when the model has none.
	Meta *ModelMeta
}

// Describe summarises the zoo model name without loading its weights. It
// returns an error naming the file when its config or meta.json does not
// parse, and an InputError when the zoo has no such model.
func (c *Catalog) Describe(name string) (ModelSummary, error) {
	if c.Zoo == nil || !fs.ValidPath(name) {
		return ModelSummary{}, trainer.BadInput(fmt.Errorf("no zoo model %q", name))
	}
	b, err := fs.ReadFile(c.Zoo, path.Join(name, trainer.ConfigFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ModelSummary{}, trainer.BadInput(fmt.Errorf("no zoo model %q", name))
	}
	if err != nil {
		return ModelSummary{}, err
	}
	cfg, err := trainer.ParseConfig(b)
	if err != nil {
		return ModelSummary{}, fmt.Errorf("%s: %w", path.Join(name, trainer.ConfigFile), err)
	}
	// The count does not depend on the weights; any seed builds the model.
	mod, err := trainer.New[float32](cfg, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return ModelSummary{}, fmt.Errorf("%s: %w", name, err)
	}
	total, _ := mod.Count()
	meta, err := zooMeta(c.Zoo, name)
	if err != nil {
		return ModelSummary{}, err
	}
	return ModelSummary{Name: name, Config: cfg, Params: total, Meta: meta}, nil
}

// loadOptions are the loaders' options of c's budget.
func (c *Catalog) loadOptions() trainer.LoadOptions {
	return trainer.LoadOptions{MaxBytes: c.MaxBytes, MaxBytesName: c.MaxBytesName}
}
