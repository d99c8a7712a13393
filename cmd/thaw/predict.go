package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"thaw/trainer/termtext"

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
	m.dataBudgetFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	m.limitMemory()
	cat := m.catalog()
	base, err := cat.Model(*model)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	mod := base.Model
	ds, files, err := cat.Inputs(d, mod.Config.InputShape)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	if err := ds.CheckConfig(&mod.Config); errors.Is(err, trainer.ErrShapeMismatch) {
		return fmt.Errorf("predict: %w", asUsage(err))
	}
	// Labels the model knows are scored; others only said to be unknown.
	scored := len(ds.Classes) > 0
	if scored {
		if err := ds.Relabel(mod.Config.Classes); err != nil {
			scored = false
			fmt.Fprintf(m.Stderr, "predict: no accuracy: %s\n", termtext.Sanitize(err.Error()))
		}
	}
	correct, err := writePredictions(ctx, csv.NewWriter(m.Stdout), mod, ds, files)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	if scored {
		fmt.Fprintf(m.Stderr, "accuracy %.2f%% (%d of %d) on %s\n", 100*float64(correct)/float64(ds.Len()),
			correct, ds.Len(), termtext.Sanitize(ds.Name))
	}
	return nil
}

// writePredictions writes the header index,[file,]predicted,<classes...>
// and one row per sample: its index, its file when files is not nil, the
// most probable class and the softmax probability of every class. Class
// names are sanitised; encoding/csv quotes them. It returns how many
// samples were predicted as their label, which means something only for
// labelled data relabelled to the model's classes.
func writePredictions(ctx context.Context, w *csv.Writer, mod *trainer.Model[float32], ds *trainer.Dataset, files []string) (int, error) {
	classes := make([]string, len(mod.Config.Classes))
	for i, c := range mod.Config.Classes {
		classes[i] = termtext.Sanitize(c)
	}
	head := []string{"index", "predicted"}
	if files != nil {
		head = []string{"index", "file", "predicted"}
	}
	if err := w.Write(append(head, classes...)); err != nil {
		return 0, err
	}
	x := &trainer.Tensor[float32]{}
	var y []int
	off := len(head)
	row := make([]string, off+len(classes))
	correct := 0
	probs := make([]float64, len(classes))
	for _, idx := range ds.Batches(nil, predictBatch) {
		if err := ctx.Err(); err != nil {
			return correct, err
		}
		y = ds.Batch(x, y, idx)
		logits := mod.Forward(x, false)
		k := len(classes)
		for j, i := range idx {
			best := trainer.Softmax(probs, logits.Data[j*k:(j+1)*k])
			if best == y[j] {
				correct++
			}
			row[0] = strconv.Itoa(i)
			if files != nil {
				row[1] = termtext.Sanitize(files[i])
			}
			row[off-1] = classes[best]
			for c, p := range probs {
				row[off+c] = strconv.FormatFloat(p, 'g', 6, 64)
			}
			if err := w.Write(row); err != nil {
				return correct, err
			}
		}
	}
	w.Flush()
	return correct, w.Error()
}
