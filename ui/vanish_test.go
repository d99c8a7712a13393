package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
	"thaw/trainer"
)

// storedRun records a run that trained nothing, ended with status.
func storedRun(t *testing.T, st *store.Store, name string, status trainer.Status) store.Run {
	t.Helper()
	ctx := context.Background()
	r, err := st.CreateRun(ctx, store.Run{Name: name, Model: "mnist8-mlp", Dataset: "uci-digits"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStatus(ctx, r.ID, status, ""); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunVanishingUnderRunsIsHarmless: deleting the last row on Runs
// (d, y) and deleting the opened run from another process leave the
// workbench running, its cursor on a row that exists. Both used to panic
// with an index out of range in refilter.
func TestRunVanishingUnderRunsIsHarmless(t *testing.T) {
	eng, st := newTestEngine(t)
	storedRun(t, st, "alpha run", trainer.StatusDone)
	time.Sleep(5 * time.Millisecond) // newest first: beta is listed first
	storedRun(t, st, "beta run", trainer.StatusStopped)
	time.Sleep(5 * time.Millisecond)
	gamma := storedRun(t, st, "gamma run", trainer.StatusStopped)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const w, h = 120, 40
	tm := teatest.NewTestModel(t, New(ctx, Options{Backend: eng, NoProbes: true}), teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	keys := func(ks ...string) {
		for _, k := range ks {
			tm.Send(press(k))
		}
	}
	keys("5")
	scr.waitFor(t, "alpha run", "beta run", "gamma run")

	// The last row, deleted here.
	keys("down", "down", "down", "d")
	scr.waitFor(t, "Delete run")
	keys("y")
	scr.waitFor(t, "deleted")
	eventually(t, "alpha is gone from the table", func() bool {
		return !strings.Contains(scr.pump(), "alpha run")
	})

	// The opened run, deleted by another process (thaw rm).
	keys("up", "up", "enter")
	if err := st.Delete(ctx, gamma.ID); err != nil {
		t.Fatal(err)
	}
	scr.waitFor(t, "the run shown was deleted")
	// Still alive: the cursor moves and the table redraws.
	keys("down")
	scr.waitFor(t, "beta run")
	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
}
