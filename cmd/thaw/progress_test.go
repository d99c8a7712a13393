package main

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"

	"thaw/trainer"
)

func TestBar(t *testing.T) {
	tests := []struct {
		done, total, width int
		want               string
	}{
		{0, 10, 4, "▕    ▏"},
		{5, 10, 4, "▕██  ▏"},
		{10, 10, 4, "▕████▏"},
		{1, 16, 4, "▕▎   ▏"}, // 1/16 of 4 cells is a quarter cell
		{1, 8, 4, "▕▌   ▏"},  // and 1/8 is half a cell
		{12, 10, 4, "▕████▏"},
		{3, 0, 4, "▕████▏"},
	}
	for _, tt := range tests {
		if got := bar(tt.done, tt.total, tt.width); got != tt.want {
			t.Errorf("bar(%d, %d, %d) = %q, want %q", tt.done, tt.total, tt.width, got, tt.want)
		}
	}
}

// On a 60-column terminal every redraw of the progress line stays on its
// one line: nothing scrolls, the cursor stays on the first row.
func TestProgressFitsNarrowTerminal(t *testing.T) {
	for _, cols := range []int{60, 30, 200} {
		emu := vt.NewEmulator(cols, 5)
		p := newProgress(emu)
		p.tty, p.width = true, func() int { return cols }
		for step := range 50 {
			p.report(trainer.Progress{Event: trainer.EventStep, Step: step * 1000, TotalSteps: 50_000,
				StageLabel: "stage 2: +fc2,conv2 (discriminative)", TrainLoss: 1.2345, SamplesPerSec: 123456,
				ETA: 3 * time.Hour, ValAcc: math.NaN()})
			if pos := emu.CursorPosition(); pos.Y != 0 {
				t.Fatalf("%d columns: after redraw %d the cursor is on row %d, want 0:\n%s", cols, step, pos.Y, emu.String())
			}
		}
		if cols >= 80 && !strings.Contains(emu.String(), "▕") {
			t.Errorf("%d columns: no bar:\n%s", cols, emu.String())
		}
	}
}
