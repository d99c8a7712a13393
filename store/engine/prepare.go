package engine

import (
	"errors"
	"fmt"
	"strings"

	"thaw/assets"
	"thaw/trainer"
)

// names resolves the names in a job: *assets.Catalog is the engine's.
// Tests give one of their own to prepare jobs on their small models.
type names interface {
	// Model resolves and loads a base model by name.
	Model(name string) (*assets.BaseModel, error)
	// Source returns the forgetting gauge's set of a base model; nil
	// when it has none.
	Source(b *assets.BaseModel) (*trainer.Dataset, error)
	// ResolveData makes a data reference independent of the working
	// folder.
	ResolveData(ref trainer.DataRef) (trainer.DataRef, error)
	// Data loads a split of the data, every sample decoded.
	Data(ref trainer.DataRef, shape []int, split assets.DataSplit) (*trainer.Dataset, error)
	// TrainingData loads the training split of the data, possibly with
	// samples decoded on demand.
	TrainingData(ref trainer.DataRef, shape []int) (*trainer.Dataset, func([]int) ([]float32, error), error)
}

// withNames replaces the catalogue's name resolution, for tests.
func withNames(n names) Option {
	return func(e *Engine) { e.names = n }
}

// Prepare resolves a job's names and prepares it to run (see
// trainer.Job.Prepare), as Start does: the job's settings are checked
// (trainer.Job.Check), the model is loaded, the plan resolved against its
// blocks before any data is read, then the data and the forgetting
// gauge's source set are loaded (at once, on two cores). The prepared job
// holds absolute paths for files and folders. Every call returns a fresh
// Prepared.
//
// Errors the user causes (unknown names, malformed files, data the model
// cannot take, settings out of range) are trainer.InputError values.
func (e *Engine) Prepare(job trainer.Job) (*trainer.Prepared, error) {
	return e.prepare(job, e.names)
}

// prepare is Prepare resolving names with n.
func (e *Engine) prepare(job trainer.Job, n names) (*trainer.Prepared, error) {
	if err := job.Check(); err != nil {
		return nil, err
	}
	base, err := n.Model(job.Model)
	if err != nil {
		return nil, err
	}
	job.Model = base.Name
	if _, _, err := job.ResolvePlan(base.Model.Config.BlockNames()); err != nil {
		return nil, err
	}
	if job.Data, err = n.ResolveData(job.Data); err != nil {
		return nil, err
	}
	var src *trainer.Dataset
	srcErr := make(chan error, 1)
	go func() {
		var err error
		if job.Init != trainer.InitScratch {
			src, err = n.Source(base)
		}
		srcErr <- err
	}()
	ds, samples, err := n.TrainingData(job.Data, base.Model.Config.InputShape)
	if serr := <-srcErr; err == nil {
		err = serr
	}
	if err != nil {
		return nil, err
	}
	return job.Prepare(trainer.JobInputs{Model: base.Model, ModelName: base.Name, Data: ds, Samples: samples, Source: src})
}

// Inspect prepares job as a run would be prepared but without its
// forgetting gauge: the split, the shots and the head, for a plan's
// lengths, the sweep, the probes and the learning-rate finder. Data the
// model cannot take is an error that says what the model wants.
func (e *Engine) Inspect(job trainer.Job) (*trainer.Prepared, error) {
	base, err := e.names.Model(job.Model)
	if err != nil {
		return nil, err
	}
	ds, err := e.names.Data(job.Data, base.Model.Config.InputShape, assets.SplitTrain)
	if err != nil {
		return nil, err
	}
	if err := ds.CheckConfig(&base.Model.Config); errors.Is(err, trainer.ErrShapeMismatch) {
		return nil, fmt.Errorf("%w — choose data with %s values per sample, or another model", err, shapeString(base.Model.Config.InputShape))
	}
	return job.Prepare(trainer.JobInputs{Model: base.Model, ModelName: base.Name, Data: ds})
}

// shapeString writes a sample shape as 1×28×28.
func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "×")
}
