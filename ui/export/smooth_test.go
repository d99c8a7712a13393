package export

import (
	"math"
	"testing"
)

func TestSmooth(t *testing.T) {
	nan := math.NaN()
	for _, tc := range []struct {
		name   string
		src    []float64
		weight float64
		want   []float64
	}{
		{"empty", nil, 0.6, []float64{}},
		{"weight 0 copies", []float64{3, 1, 2}, 0, []float64{3, 1, 2}},
		// TensorBoard leaves a constant series alone (tensorboard#786).
		{"constant", []float64{2, 2, 2}, 0.9, []float64{2, 2, 2}},
		// By hand: last1 = 0.5·1 = 0.5, debiased 0.5/(1 − 0.5) = 1, so the
		// first value is itself; last2 = 0.5·0.5 + 0.5·3 = 1.75, debiased
		// 1.75/(1 − 0.25) = 7/3.
		{"debiased", []float64{1, 3}, 0.5, []float64{1, 7.0 / 3}},
		// A NaN passes through and does not count towards the debias.
		{"nan skipped", []float64{1, nan, 3}, 0.5, []float64{1, nan, 7.0 / 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Smooth(nil, tc.src, tc.weight)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				// 1e-12: a few float64 roundings of values near 1.
				if !(math.Abs(got[i]-tc.want[i]) < 1e-12 || math.IsNaN(got[i]) && math.IsNaN(tc.want[i])) {
					t.Errorf("got %v, want %v", got, tc.want)
					break
				}
			}
		})
	}
}

func TestDecimate(t *testing.T) {
	pts := make([]xy, 10000)
	for i := range pts {
		pts[i] = xy{float64(i), math.Sin(float64(i) / 7)}
	}
	pts[4321].y = 5  // a spike
	pts[8765].y = -5 // a dip
	const cols = 100
	got := decimate(pts, 0, 9999, cols)
	if len(got) > 4*cols {
		t.Errorf("%d points, want at most %d", len(got), 4*cols)
	}
	if got[0] != pts[0] || got[len(got)-1] != pts[len(pts)-1] {
		t.Errorf("first/last %v %v, want %v %v", got[0], got[len(got)-1], pts[0], pts[len(pts)-1])
	}
	var hasSpike, hasDip bool
	for i, p := range got {
		hasSpike = hasSpike || p == pts[4321]
		hasDip = hasDip || p == pts[8765]
		if i > 0 && p.x < got[i-1].x {
			t.Fatalf("out of order at %d", i)
		}
	}
	if !hasSpike || !hasDip {
		t.Errorf("extremes lost: spike %v, dip %v", hasSpike, hasDip)
	}
	if short := pts[:300]; len(decimate(short, 0, 299, cols)) != 300 {
		t.Error("a series within 4 points a column was decimated")
	}
}
