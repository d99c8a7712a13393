package engine

import (
	"context"
	"errors"

	"thaw/assets"
	"thaw/trainer"
)

// predictBatch is the number of samples per forward pass.
const predictBatch = 256

// Inputs is a model and the data it labels (see [Engine.Inputs]).
type Inputs struct {
	Model *trainer.Model[float32]
	Data  *trainer.Dataset
	// Files names the file of every sample of an image folder, relative
	// to it with forward slashes; nil for other data.
	Files []string
	// Scored says that the data's labels are among the model's classes
	// (relabelled to the model's order), so predictions are scored;
	// Unscored, when not nil, says why labelled data is not.
	Scored   bool
	Unscored error
}

// Inputs resolves and loads model and the data it is to label: a built-in
// task's test split, a file or folder, with or without labels. Labels the
// model knows are relabelled to its classes and scored; data whose labels
// it does not know is labelled all the same, and Unscored says why it is
// not scored. It returns an InputError for an unknown model or data, and
// an error wrapping trainer.ErrShapeMismatch for data the model cannot
// take.
func (e *Engine) Inputs(model string, data trainer.DataRef) (*Inputs, error) {
	base, err := e.cat.Model(model)
	if err != nil {
		return nil, err
	}
	mod := base.Model
	ds, files, err := e.cat.Inputs(data, mod.Config.InputShape)
	if err != nil {
		return nil, err
	}
	if err := ds.CheckConfig(&mod.Config); errors.Is(err, trainer.ErrShapeMismatch) {
		return nil, err
	}
	in := &Inputs{Model: mod, Data: ds, Files: files}
	if len(ds.Classes) > 0 {
		if err := ds.Relabel(mod.Config.Classes); err != nil {
			in.Unscored = err
		} else {
			in.Scored = true
		}
	}
	return in, nil
}

// Predict runs the model over every sample in order, in batches, and calls
// each with the sample's index, the most probable class and the softmax
// probability of every class (a buffer each call reuses). It returns how
// many samples were predicted as their label, which means something only
// when in.Scored, and the first error of each or ctx.
func (in *Inputs) Predict(ctx context.Context, each func(i, best int, probs []float64) error) (correct int, err error) {
	mod, ds := in.Model, in.Data
	k := len(mod.Config.Classes)
	x := &trainer.Tensor[float32]{}
	var y []int
	probs := make([]float64, k)
	for _, idx := range ds.Batches(nil, predictBatch) {
		if err := ctx.Err(); err != nil {
			return correct, err
		}
		y = ds.Batch(x, y, idx)
		logits := mod.Forward(x, false)
		for j, i := range idx {
			best := trainer.Softmax(probs, logits.Data[j*k:(j+1)*k])
			if best == y[j] {
				correct++
			}
			if err := each(i, best, probs); err != nil {
				return correct, err
			}
		}
	}
	return correct, nil
}

// TestScore measures p's model with the weights a run's --save writes
// (res.Best, else the model's final weights) on the held-out test split of
// its task, a score that selected nothing: the accuracy and the number of
// samples. n is zero, with no error, when the run made no step or its data
// is not a built-in task with a test split. p's model is changed: it holds
// the best weights afterwards.
func (e *Engine) TestScore(p *trainer.Prepared, res trainer.Result) (acc float64, n int, err error) {
	if res.Steps == 0 {
		return 0, 0, nil
	}
	test, err := e.cat.TestSet(p.Job.Data)
	if err != nil || test == nil {
		return 0, 0, err
	}
	if err := test.Relabel(p.Model.Config.Classes); err != nil {
		return 0, 0, err
	}
	if err := test.CheckConfig(&p.Model.Config); err != nil {
		return 0, 0, err
	}
	if res.Best != nil {
		if err := p.Model.LoadState(res.Best); err != nil {
			return 0, 0, err
		}
	}
	_, acc = trainer.Evaluate(p.Model, test)
	return acc, test.Len(), nil
}

// Models lists the catalogue's base models by name, sorted.
func (e *Engine) Models() []string { return e.cat.ModelNames() }

// Model resolves and loads a base model: a model of the catalogue's zoo by
// name, or (unless the catalogue reads no files) a model folder. Errors
// the user causes are InputErrors (see assets.Catalog.Model).
func (e *Engine) Model(name string) (*BaseModel, error) { return e.cat.Model(name) }

// Catalog returns the engine's catalogue of models and data.
func (e *Engine) Catalog() *assets.Catalog { return e.cat }
