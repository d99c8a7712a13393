package trainer

import (
	"math"
	"slices"
	"strings"
	"testing"
)

func TestPickPoint(t *testing.T) {
	nan := math.NaN()
	row := func(point string, params int, loss ...float64) SweepRow {
		acc := make([]float64, len(loss))
		for i := range acc {
			acc[i] = 0.8
		}
		return SweepRow{Point: point, Trainable: params, ValLoss: loss, ValAcc: acc}
	}
	for _, tc := range []struct {
		name          string
		rows          []SweepRow
		index, lowest int
		within        []int
		clear         bool
		note          string // a part of the note
	}{{
		name: "clear: the others are far worse",
		rows: []SweepRow{
			row("head", 100, 0.70, 0.72, 0.69),
			row("fc1", 1000, 0.50, 0.52, 0.48),
			row("conv1", 5000, 0.90, 0.85, 0.95),
		},
		index: 1, lowest: 1, within: []int{1}, clear: true,
		note: "fc1: the lowest mean validation loss (0.5000 over 3 seeds)",
	}, {
		// head − fc1 per seed: 0.01, −0.02, 0.02, 0.01; mean 0.005, sd
		// 0.0173, standard error 0.0087: within, and fewer parameters.
		name: "one standard error prefers fewer parameters",
		rows: []SweepRow{
			row("head", 100, 0.51, 0.50, 0.50, 0.52),
			row("fc1", 1000, 0.50, 0.52, 0.48, 0.51),
		},
		index: 0, lowest: 1, within: []int{0, 1},
		note: "head: within one standard error of fc1's",
	}, {
		// The same pair, but the row within trains more: the lowest stays.
		name: "within but more parameters",
		rows: []SweepRow{
			row("head", 1000, 0.51, 0.50, 0.50, 0.52),
			row("fc1", 100, 0.50, 0.52, 0.48, 0.51),
		},
		index: 1, lowest: 1, within: []int{0, 1},
		note: "head within one standard error, but training no fewer parameters",
	}, {
		// A steady small gap is outside one standard error of the paired
		// differences though the rows' own spreads overlap widely.
		name: "paired: a consistent gap is not within",
		rows: []SweepRow{
			row("head", 100, 0.31, 0.61, 0.91),
			row("fc1", 1000, 0.30, 0.60, 0.90),
		},
		index: 1, lowest: 1, within: []int{1}, clear: true,
	}, {
		name: "of several within, the fewest parameters",
		rows: []SweepRow{
			row("head", 10, 0.51, 0.50, 0.50, 0.52),
			row("fc1", 100, 0.50, 0.51, 0.50, 0.51),
			row("conv2", 1000, 0.50, 0.52, 0.48, 0.51),
		},
		index: 0, lowest: 2, within: []int{0, 1, 2},
	}, {
		name: "equal parameters: the lower mean loss",
		rows: []SweepRow{
			row("a", 10, 0.50, 0.52, 0.48, 0.51),
			row("b", 10, 0.51, 0.50, 0.50, 0.52),
		},
		index: 0, lowest: 0, within: []int{0, 1},
	}, {
		name: "one seed: no standard error",
		rows: []SweepRow{
			row("head", 100, 0.51),
			row("fc1", 1000, 0.50),
		},
		index: 1, lowest: 1, within: []int{1},
		note: "one seed gives no standard error",
	}, {
		name: "seeds without results are left out of the pairs",
		rows: []SweepRow{
			row("head", 100, 0.51, nan, 0.50, 0.52, 0.50),
			row("fc1", 1000, 0.50, 0.10, 0.52, 0.48, 0.51),
			row("conv1", 5000, nan, nan, nan, nan, nan),
		},
		// Without the NaN seed, head − fc1: 0.01, −0.02, 0.04, −0.01;
		// fc1's mean counts its 0.10 and stays the lowest.
		index: 0, lowest: 1, within: []int{0, 1},
	}, {
		name:  "no results",
		rows:  []SweepRow{row("head", 100, nan, nan)},
		index: -1, lowest: -1,
		note: "no freeze point has a result yet",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := PickPoint(tc.rows)
			if got.Index != tc.index || got.Lowest != tc.lowest || !slices.Equal(got.Within, tc.within) || got.Clear != tc.clear {
				t.Errorf("got index %d, lowest %d, within %v, clear %v; want %d, %d, %v, %v (%s)",
					got.Index, got.Lowest, got.Within, got.Clear, tc.index, tc.lowest, tc.within, tc.clear, got.Note)
			}
			if !strings.Contains(got.Note, tc.note) {
				t.Errorf("note %q, want it to contain %q", got.Note, tc.note)
			}
		})
	}
}

func TestSweepRowStats(t *testing.T) {
	r := SweepRow{ValLoss: []float64{0.4, math.NaN(), 0.6}, ValAcc: []float64{0.8, 0.1, 0.9}}
	got := r.Stats()
	// Tolerance: a few ulps of the sums of three numbers.
	const tol = 1e-12
	near := func(a, b float64) bool { return math.Abs(a-b) <= tol }
	if got.Seeds != 2 || !near(got.LossMean, 0.5) || !near(got.LossSD, math.Sqrt(0.02)) ||
		!near(got.AccMean, 0.85) || !near(got.AccSD, math.Sqrt(0.005)) {
		t.Errorf("got %+v; want 2 seeds, loss 0.5 ± %v, acc 0.85 ± %v", got, math.Sqrt(0.02), math.Sqrt(0.005))
	}
	if s := (SweepRow{ValLoss: []float64{0.4}, ValAcc: []float64{0.8}}).Stats(); s.LossMean != 0.4 || !math.IsNaN(s.LossSD) {
		t.Errorf("one seed: got %+v; want mean 0.4, sd NaN", s)
	}
}
