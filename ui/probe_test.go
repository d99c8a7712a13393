package ui

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"thaw/store/engine"
)

// TestProbesOnTheSweepsFooting: the Blocks screen's probes are measured
// on the sweep's data and seeds, so each seed's accuracy equals the
// sweep's own probe of that block (engine.SweepProbes, read at the lowest
// validation loss too), bit for bit; the raw input's probe is shown as
// the baseline; the probe with the lowest mean validation loss is marked;
// and the probes are cached per job.
func TestProbesOnTheSweepsFooting(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a sweep and its probes")
	}
	eng, _ := newEngine(t)
	d := newDriverOpts(t, Options{Backend: eng})
	sweepSetup(d)
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	ps := b.probes
	if ps == nil || ps.err != nil || ps.seeds != engine.DefaultSweepSeeds {
		t.Fatalf("probes: %+v", ps)
	}
	d.keys("w")
	if b.sweep == nil || b.sweep.err != nil {
		t.Fatalf("sweep: %+v", b.sweep)
	}
	want, err := eng.SweepProbes(context.Background(), b.sweep.tb.Sweep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 {
		t.Fatalf("the sweep has %d probes, want fc1's and fc2's", len(want))
	}
	for k, pr := range want {
		got := ps.scores[k+1]
		if len(got) != len(pr.Acc) {
			t.Fatalf("probe of %s: %d seeds, the sweep's %d", pr.Block, len(got), len(pr.Acc))
		}
		for s := range got {
			if got[s].ValAcc != pr.Acc[s] {
				t.Errorf("probe of %s, seed %d: %v, the sweep's %v", pr.Block, s, got[s].ValAcc, pr.Acc[s])
			}
		}
	}

	// The baseline, and the mark on the lowest mean validation loss.
	scr := d.screen()
	raw, ok := ps.stats(engine.ProbeInput)
	if !ok || !strings.Contains(lineWith(scr, "raw input"), "the baseline") ||
		!strings.Contains(lineWith(scr, "raw input"), sweepMeanSD(raw.AccMean, raw.AccSD, true)) {
		t.Errorf("no raw-input baseline %+v:\n%s", raw, scr)
	}
	best, lowest := 0, math.Inf(1)
	for k := engine.ProbeInput; k <= 1; k++ {
		if st, _ := ps.stats(k); st.LossMean < lowest {
			best, lowest = k, st.LossMean
		}
	}
	name := map[int]string{-1: "raw input", 0: "fc1", 1: "fc2"}[best]
	if line := lineWith(scr, "★ "+name+" "); !strings.Contains(line, "best") {
		t.Errorf("the best probe, %s, is not marked:\n%s", name, scr)
	}
	if best >= 0 {
		if line := lineWith(scr, "  "+name+" "); !strings.Contains(line, "★") {
			t.Errorf("the best probe's block, %s, is not marked in the table: %q", name, line)
		}
	}

	// On a screen too short for the probes' panel under the sweep (80×24),
	// its one-line summary stands in: the baseline and the best probe,
	// the same figures, and no heading without its rows.
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	small := d.screen()
	d.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	sum := lineWith(small, "Probes")
	bestSt, _ := ps.stats(best)
	for _, want := range []string{fmt.Sprintf("raw input %.1f%% baseline", 100*raw.AccMean),
		fmt.Sprintf("★ %s %.1f%% best", name, 100*bestSt.AccMean)} {
		if !strings.Contains(sum, want) {
			t.Errorf("at 80×24 the probes' line %q lacks %q:\n%s", sum, want, small)
		}
	}
	if strings.Contains(small, "val acc of a linear probe") {
		t.Errorf("at 80×24 the probes' panel heading is drawn, its rows cut:\n%s", small)
	}

	// The data changes and comes back: the probes come from the cache.
	d.keys("enter", "e", "ctrl+u") // the cursor is still on shots
	d.typeText("3")
	d.keys("enter")
	if b.probes == ps || b.probes.scores[0] == nil {
		t.Fatalf("3 shots did not probe anew")
	}
	d.keys("e", "ctrl+u")
	d.typeText("5")
	d.keys("enter")
	if b.probes != ps {
		t.Errorf("the probes of the first job were not reused from the cache")
	}
}

// lineWith returns the first line of s containing sub.
func lineWith(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
