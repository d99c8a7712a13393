package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"strconv"
	"thaw/trainer/termtext"

	"thaw/store/engine"
	"thaw/trainer"
)

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
	in, err := m.preparer().Inputs(*model, d)
	if errors.Is(err, trainer.ErrShapeMismatch) {
		return fmt.Errorf("predict: %w", asUsage(err))
	}
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	// Labels the model knows are scored; others only said to be unknown.
	if in.Unscored != nil {
		fmt.Fprintf(m.Stderr, "predict: no accuracy: %s\n", termtext.Sanitize(in.Unscored.Error()))
	}
	correct, err := writePredictions(ctx, csv.NewWriter(m.Stdout), in)
	if err != nil {
		return fmt.Errorf("predict: %w", err)
	}
	if in.Scored {
		fmt.Fprintf(m.Stderr, "accuracy %.2f%% (%d of %d) on %s\n", 100*float64(correct)/float64(in.Data.Len()),
			correct, in.Data.Len(), termtext.Sanitize(in.Data.Name))
	}
	return nil
}

// writePredictions writes the header index,[file,]predicted,<classes...>
// and one row per sample of in: its index, its file when in.Files is not
// nil, the most probable class and the softmax probability of every
// class. Class names are sanitised; encoding/csv quotes them. It returns
// how many samples were predicted as their label, which means something
// only for scored inputs.
func writePredictions(ctx context.Context, w *csv.Writer, in *engine.Inputs) (int, error) {
	mod, files := in.Model, in.Files
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
	off := len(head)
	row := make([]string, off+len(classes))
	correct, err := in.Predict(ctx, func(i, best int, probs []float64) error {
		row[0] = strconv.Itoa(i)
		if files != nil {
			row[1] = termtext.Sanitize(files[i])
		}
		row[off-1] = classes[best]
		for c, p := range probs {
			row[off+c] = strconv.FormatFloat(p, 'g', 6, 64)
		}
		return w.Write(row)
	})
	if err != nil {
		return correct, err
	}
	w.Flush()
	return correct, w.Error()
}
