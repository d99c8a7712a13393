package export

import (
	"strings"
	"testing"
)

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		min, max float64
		want     string // the labelled ticks
	}{
		{1, 24, "5 10 15 20"}, // a short run: whole steps only, not 2.5 12.5 22.5
		{0, 135, "0 20 40 60 80 100 120"},
		{0, 100000, "0 20k 40k 60k 80k 100k"},
		{0, 3, "0 0.5 1.0 1.5 2.0 2.5 3.0"}, // epochs
		{0.888, 0.972, "0.90 0.92 0.94 0.96"},
		{-0.04, 0.84, "0 0.2 0.4 0.6 0.8"}, // no "-0"
		{0, 0.0012, "0 0.0002 0.0004 0.0006 0.0008 0.0010"},
	} {
		var labels []string
		for _, tk := range (niceTicks{}).Ticks(tc.min, tc.max) {
			if tk.Label != "" {
				labels = append(labels, tk.Label)
			}
			if tk.Value < tc.min || tk.Value > tc.max {
				t.Errorf("%g..%g: tick %g outside", tc.min, tc.max, tk.Value)
			}
		}
		if got := strings.Join(labels, " "); got != tc.want {
			t.Errorf("%g..%g: got %q, want %q", tc.min, tc.max, got, tc.want)
		}
	}
}
