package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"thaw/trainer/termtext"

	"thaw/store"
	"thaw/trainer"
)

// runResume is thaw resume: continue an interrupted or stopped run from its
// last good checkpoint, with the inputs it was started with.
func (m *Main) runResume(ctx context.Context, args []string) error {
	fs := m.newFlags("resume")
	asJSON := fs.Bool("json", false, "write the result to stdout as one JSON object")
	save := fs.String("save", "", "write the fine-tuned model (best weights) to `dir`, loadable as a base model")
	storeDir := storeFlag(fs)
	id, err := parseRun(fs, args)
	if err != nil {
		return err
	}
	st, run, err := openRun(ctx, *storeDir, id)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	defer st.Close()

	// build rebuilds the spec from the stored inputs; it keeps the setup and
	// flags for the output.
	var s *setup
	var f setupFlags
	started := false
	build := func(pt store.ResumePoint) (trainer.Spec, error) {
		rec, err := decodeRunRecord(pt.Run)
		if err != nil {
			return trainer.Spec{}, err
		}
		f = rec.Inputs.flags()
		if s, err = m.prepare(&f); err != nil {
			return trainer.Spec{}, err
		}
		if err := sameInputs(pt.Run, rec, s, &f); err != nil {
			return trainer.Spec{}, err
		}
		for _, skipped := range pt.Skipped {
			fmt.Fprintf(m.Stderr, "skipped %s\n", termtext.Sanitize(skipped.Error()))
		}
		if pt.State == nil {
			fmt.Fprintf(m.Stderr, "run %s: no usable checkpoint, starting again from step 0\n", store.Short(run.ID))
		} else {
			fmt.Fprintf(m.Stderr, "run %s: resuming from the %s checkpoint at step %d\n",
				store.Short(run.ID), pt.Checkpoint.Kind, pt.State.Step)
		}
		started = true
		return s.spec(&f, rec.Inputs.EvalEvery), nil
	}
	prog := newProgress(m.Stderr)
	res, runErr := st.Resume(ctx, run.ID, build, prog.report)
	prog.done()
	if !started {
		// Nothing ran: the run cannot resume, or its inputs are gone.
		if errors.Is(runErr, store.ErrLive) || errors.Is(runErr, store.ErrInvalid) {
			runErr = asUsage(runErr)
		}
		return fmt.Errorf("resume: %w", runErr)
	}
	if err := m.finishRun(s, &f, run, res, runErr, *asJSON, *save); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}

// sameInputs checks that the rebuilt setup is the one the run started
// with: the same starting weights, data and resolved plan. Anything else
// would not continue the run but start a different one.
func sameInputs(r store.Run, rec runRecord, s *setup, f *setupFlags) error {
	h, err := hashModel(s.base.m)
	if err != nil {
		return err
	}
	if h != r.ModelHash {
		return fmt.Errorf("the base model %s is not the one run %s started from (its weights changed)", rec.Inputs.Model, store.Short(r.ID))
	}
	if hashData(s.train, s.val) != r.DatasetHash {
		return fmt.Errorf("the data %s is not the one run %s started with (it changed)", rec.Inputs.Data, store.Short(r.ID))
	}
	want, err1 := json.Marshal(rec.Plan)
	got, err2 := json.Marshal(newPlanOutput(s, f))
	if err1 != nil || err2 != nil || !bytes.Equal(want, got) {
		return fmt.Errorf("the plan %s resolves differently in this thaw than when run %s started", rec.Inputs.Plan, store.Short(r.ID))
	}
	return nil
}
