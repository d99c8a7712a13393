package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store/engine"
)

// brokenBackend panics when the Runs screen lists runs: a bug anywhere
// under a command.
type brokenBackend struct{ *engine.Engine }

func (brokenBackend) List(context.Context, engine.RunFilter) ([]engine.RunView, error) {
	var rows []engine.RunView
	_ = rows[3] // index out of range
	return rows, nil
}

// TestPanicQuitsWithTheStack: a panic in a command ends the program (the
// terminal is restored by its normal exit) with the panic and its stack
// kept for the caller, which logs it and exits non-zero; the session's
// runs are stopped as on q.
func TestPanicQuitsWithTheStack(t *testing.T) {
	eng, _ := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const w, h = 100, 30
	tm := teatest.NewTestModel(t, New(ctx, Options{Backend: brokenBackend{eng}, NoProbes: true}), teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	scr.waitFor(t, "mnist8-mlp")
	tm.Send(press("5"))
	final := tm.FinalModel(t, teatest.WithFinalTimeout(30*time.Second)).(*Model)
	c := final.Crash()
	if c == nil {
		t.Fatal("the program ended without a crash recorded")
	}
	if !strings.Contains(c.Error(), "index out of range") || !strings.Contains(string(c.Stack), "brokenBackend") {
		t.Errorf("crash %v with stack:\n%s", c, c.Stack)
	}
}
