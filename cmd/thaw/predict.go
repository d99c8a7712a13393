package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"thaw/trainer/termtext"

	"thaw/assets"
	"thaw/trainer"
)

// predictBatch is the number of samples per forward pass.
const predictBatch = 256

// runPredict is thaw predict: the model's class probabilities for every
// sample, as CSV on stdout.
func (m *Main) runPredict(ctx context.Context, args []string) error {
	fs := m.newFlags("predict")
	var d trainer.DataRef
	model := fs.String("model", "", "model: a zoo model's `name` or a folder with config.json and model.safetensors")
	dataFlags(fs, &d, "data: a built-in task (its test split), a .csv/.csv.gz file, an IDX images file or an image folder")
	if err := parse(fs, args); err != nil {
		return err
	}
	cat := m.catalog()
	base, err := cat.Model(*model)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	mod := base.Model
	ds, err := cat.Data(d, mod.Config.InputShape, assets.SplitTest)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	if err := ds.CheckConfig(&mod.Config); errors.Is(err, trainer.ErrShapeMismatch) {
		return fmt.Errorf("predict: %w", asUsage(err))
	}
	if err := writePredictions(ctx, csv.NewWriter(m.Stdout), mod, ds); err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	return nil
}

// writePredictions writes the header index,predicted,<classes...> and one
// row per sample: its index, the most probable class and the softmax
// probability of every class. Class names are sanitised; encoding/csv
// quotes them.
func writePredictions(ctx context.Context, w *csv.Writer, mod *trainer.Model[float32], ds *trainer.Dataset) error {
	classes := make([]string, len(mod.Config.Classes))
	for i, c := range mod.Config.Classes {
		classes[i] = termtext.Sanitize(c)
	}
	if err := w.Write(append([]string{"index", "predicted"}, classes...)); err != nil {
		return err
	}
	x := &trainer.Tensor[float32]{}
	var y []int
	row := make([]string, 2+len(classes))
	probs := make([]float64, len(classes))
	for _, idx := range ds.Batches(nil, predictBatch) {
		if err := ctx.Err(); err != nil {
			return err
		}
		y = ds.Batch(x, y, idx)
		logits := mod.Forward(x, false)
		k := len(classes)
		for j, i := range idx {
			best := trainer.Softmax(probs, logits.Data[j*k:(j+1)*k])
			row[0] = strconv.Itoa(i)
			row[1] = classes[best]
			for c, p := range probs {
				row[2+c] = strconv.FormatFloat(p, 'g', 6, 64)
			}
			if err := w.Write(row); err != nil {
				return err
			}
		}
	}
	w.Flush()
	return w.Error()
}
