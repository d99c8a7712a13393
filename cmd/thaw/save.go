package main

import (
	"context"
	"fmt"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
)

// runSave is thaw save: a loadable model folder from any stored checkpoint
// of a run.
func (m *Main) runSave(ctx context.Context, args []string) error {
	fs := m.newFlags("save")
	which := fs.String("checkpoint", "best", "which weights: `best` (the lowest val loss), last, stage:K (the end of stage K) or step:N")
	out := fs.String("o", "", "the model `dir` to write (config.json and model.safetensors)")
	storeDir := storeFlag(fs)
	m.dataBudgetFlag(fs)
	id, err := parseRun(fs, args)
	if err != nil {
		return err
	}
	if *out == "" {
		return usagef("save: -o DIR is required: where to write the model")
	}
	if _, _, err := engine.CheckpointRef(*which).Parse(); err != nil {
		return usagef("save: --checkpoint: %w", err)
	}
	st, err := openStoreForReading(*storeDir)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer st.Close()
	r, err := findRun(ctx, st, id)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	eng := engine.New(st, m.catalog())
	mod, ck, err := eng.CheckpointModel(ctx, r.ID, engine.CheckpointRef(*which))
	if err != nil {
		return fmt.Errorf("save: %w", storeUsage(err))
	}
	if err := trainer.SaveModel(*out, mod); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	fmt.Fprintf(m.Stderr, "saved run %s's %s weights (the %s checkpoint at step %d) to %s\n",
		store.Short(r.ID), termtext.Sanitize(*which), ck.Kind, ck.Step, termtext.Sanitize(*out))
	return nil
}
