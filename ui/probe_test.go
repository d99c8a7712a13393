package ui

import (
	"fmt"
	"strings"
	"testing"
)

// TestProbesShown: the Blocks screen shows each block's probe once the
// data is chosen, the head with none, and the probes are cached.
func TestProbesShown(t *testing.T) {
	d := newDriverOpts(t, Options{})
	d.chooseModel("mnist8-mlp")
	b := d.m.screens[ScreenBlocks].(*blocksScreen)
	ps := b.probes
	if ps == nil || !ps.done[0] || !ps.done[1] || ps.err != nil {
		t.Fatalf("probes: %+v", ps)
	}
	scr := d.screen()
	for i := range 2 {
		want := fmt.Sprintf("%5.1f%%", 100*ps.acc[i])
		line := lineWith(scr, d.m.s.base.blocks[i].name+" ")
		if !strings.Contains(line, want) {
			t.Errorf("block %d's row %q lacks its probe %s", i, line, want)
		}
	}
	// The data changes and comes back: the probes come from the cache.
	d.keys("enter", "down", "e", "ctrl+u")
	d.typeText("3")
	d.keys("enter")
	if b.probes == ps || !b.probes.done[0] {
		t.Fatalf("3 shots did not probe anew")
	}
	d.keys("e", "ctrl+u")
	d.typeText("0")
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
