package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"thaw/store"
	"thaw/trainer"
)

// CheckpointRef picks a stored checkpoint of a run: "best" (the weights of
// the lowest validation loss), "last" (the newest weights), "stage:K" (the
// end of stage K, from 1) or "step:N" (a checkpoint at step N).
type CheckpointRef string

// Parse checks r and returns what it names: kind is best, last, stage or
// step, and n the stage or step. It returns an error wrapping [store.ErrInvalid]
// for anything else.
func (r CheckpointRef) Parse() (kind string, n int64, err error) {
	s := string(r)
	switch s {
	case "best", "last":
		return s, 0, nil
	}
	for _, k := range []string{"stage", "step"} {
		if v, ok := strings.CutPrefix(s, k+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err == nil && (n >= 1 || (k == "step" && n >= 0)) {
				return k, n, nil
			}
		}
	}
	return "", 0, fmt.Errorf("%w: checkpoint %q: want best, last, stage:K (K from 1) or step:N", store.ErrInvalid, s)
}

// CheckpointModel returns the model of run id with the weights of one of
// its stored checkpoints (see [CheckpointRef]), ready to save as a base
// model, and the checkpoint they came from. The run's job is prepared
// again to build the model (its head matched to the data's classes), so
// the model and data must still be where the run found them.
//
// It returns an error wrapping [store.ErrNotFound] when the run or such a
// checkpoint does not exist (the error says what there is), [store.ErrInvalid]
// for a bad ref or a run without a job record, [store.ErrCorrupt] when the
// checkpoint's file is damaged, and the errors of [Engine.Prepare].
func (e *Engine) CheckpointModel(ctx context.Context, id string, ref CheckpointRef) (*trainer.Model[float32], Checkpoint, error) {
	kind, n, err := ref.Parse()
	if err != nil {
		return nil, store.Checkpoint{}, err
	}
	r, err := e.s.Run(ctx, id)
	if err != nil {
		return nil, store.Checkpoint{}, err
	}
	rec, err := store.DecodeJob(r)
	if err != nil {
		return nil, store.Checkpoint{}, err
	}
	var ck Checkpoint
	isBest := false
	switch kind {
	case "stage":
		ck, err = e.branchCheckpoint(ctx, r, BranchPoint{Stage: int(n)})
	case "step":
		ck, err = e.branchCheckpoint(ctx, r, BranchPoint{Step: n})
	case "last":
		ck, err = e.s.LastGoodCheckpoint(ctx, r.ID)
	case "best":
		ck, isBest, err = e.bestCheckpoint(ctx, r)
	}
	if err != nil {
		return nil, store.Checkpoint{}, err
	}
	state, err := e.s.LoadCheckpoint(ctx, ck.ID)
	if err != nil {
		return nil, ck, err
	}
	weights := state.Weights
	if kind == "best" && !isBest && state.Best != nil {
		weights = state.Best
	}
	prep, err := e.Prepare(rec.Job)
	if err != nil {
		return nil, ck, fmt.Errorf("rebuild the model of run %s: %w", store.Short(r.ID), err)
	}
	if err := prep.Model.LoadState(weights); err != nil {
		return nil, ck, fmt.Errorf("checkpoint %s of run %s: %w", ck.Path, store.Short(r.ID), err)
	}
	return prep.Model, ck, nil
}

// bestCheckpoint returns where run r's best weights are stored: the
// checkpoint the read model names for its best (see [Best]), so that the
// weights saved and the figures every view shows are of one evaluation.
// isBest says the checkpoint is of kind best at that step; otherwise it
// carries the best weights beside its own.
func (e *Engine) bestCheckpoint(ctx context.Context, r store.Run) (ck store.Checkpoint, isBest bool, err error) {
	v, err := Read(ctx, e.s, r.ID)
	if err != nil {
		return store.Checkpoint{}, false, err
	}
	if v.Best.Checkpoint == "" {
		return store.Checkpoint{}, false, fmt.Errorf("run %s has no best weights stored (%w): nothing was evaluated, or its checkpoints are gone; try --checkpoint last",
			store.Short(r.ID), store.ErrNotFound)
	}
	ck, err = e.s.Checkpoint(ctx, v.Best.Checkpoint)
	return ck, v.Best.CheckpointIsBest, err
}
