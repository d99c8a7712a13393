package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer/termtext"
)

// runResume is thaw resume: continue an interrupted, stopped or queued run
// from its last good checkpoint, with the job it was started with.
func (m *Main) runResume(ctx context.Context, args []string) error {
	fs := m.newFlags("resume")
	asJSON := fs.Bool("json", false, "write the result to stdout as one JSON object")
	save := fs.String("save", "", "write the fine-tuned model (best weights) to `dir`, loadable as a base model")
	storeDir := storeFlag(fs)
	m.dataBudgetFlag(fs)
	id, err := parseRun(fs, args)
	if err != nil {
		return err
	}
	m.limitMemory()
	eng, st, err := m.openEngine(*storeDir)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	defer st.Close()
	prog := newProgress(m.Stderr)
	live, err := eng.Resume(ctx, id, engine.StartOptions{Ready: m.announceResume, Report: prog.report})
	if err != nil {
		// The store's errors say "resume <run>: …" already.
		if strings.HasPrefix(err.Error(), "resume") {
			return storeUsage(err)
		}
		return fmt.Errorf("resume: %w", storeUsage(err))
	}
	if err := m.finishRun(ctx, eng, live, prog, *asJSON, *save); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	return nil
}

// announceResume says on stderr where a resumed run continues from.
func (m *Main) announceResume(l *engine.Live) {
	m.warn(l)
	pt := l.Resumed
	for _, skipped := range pt.Skipped {
		fmt.Fprintf(m.Stderr, "skipped %s\n", termtext.Sanitize(skipped.Error()))
	}
	if pt.State == nil {
		fmt.Fprintf(m.Stderr, "run %s: no usable checkpoint, starting from step 0\n", store.Short(l.ID))
	} else {
		fmt.Fprintf(m.Stderr, "run %s: resuming from the %s checkpoint at step %d\n",
			store.Short(l.ID), pt.Checkpoint.Kind, pt.State.Step)
	}
}

// storeUsage marks as bad input the store's errors that say the user named
// a run that does not exist, or cannot do what they asked.
func storeUsage(err error) error {
	for _, e := range []error{store.ErrNotFound, store.ErrAmbiguous, store.ErrLive, store.ErrInvalid} {
		if errors.Is(err, e) {
			return asUsage(err)
		}
	}
	return err
}

// warn says on stderr why a resumed run or a branch may not reproduce an
// uninterrupted run's bits, if it may not.
func (m *Main) warn(l *engine.Live) {
	if l.Warning != "" {
		fmt.Fprintf(m.Stderr, "warning: run %s: %s\n", store.Short(l.ID), l.Warning)
	}
}
