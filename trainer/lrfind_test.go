package trainer

import (
	"context"
	"errors"
	"math"
	"testing"
)

func TestFindLRRestoresWeights(t *testing.T) {
	m := mustNew[float32](t, mlpConfig(8), 1)
	m.FreezeBelow(1)
	before := copyWeights(m)
	frozen := []bool{m.Blocks[0].Frozen, m.Blocks[1].Frozen}
	ds := lrBlobs(40, 1)
	if _, err := FindLR(context.Background(), FindLRSpec{Model: m, Train: ds, Seed: 3, BatchSize: 16}); err != nil {
		t.Fatal(err)
	}
	for i, p := range m.Params() {
		if !bitEqual(p.Value.Data, before[i]) {
			t.Errorf("%s changed after FindLR", p.Name)
		}
	}
	for i, b := range m.Blocks {
		if b.Frozen != frozen[i] {
			t.Errorf("block %s: frozen %v after FindLR, want %v", b.Name, b.Frozen, frozen[i])
		}
	}
	if p := m.Params()[0]; p.Trainable || p.Grad != nil {
		t.Errorf("frozen %s: trainable %v, grad %v after FindLR; want false, nil", p.Name, p.Trainable, p.Grad != nil)
	}
}

func TestFindLRSuggestionOnDescent(t *testing.T) {
	m := mustNew[float32](t, mlpConfig(16), 2)
	res, err := FindLR(context.Background(), FindLRSpec{Model: m, Train: lrBlobs(60, 2), Seed: 5, BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.LRs) < 20 {
		t.Fatalf("curve has %d points, want at least 20", len(res.LRs))
	}
	// The sweep is exponential from 1e-7: step i has 1e-7·10^(8i/100).
	for _, i := range []int{0, 10} {
		want := 1e-7 * math.Pow(1e8, float64(i)/100)
		if got := res.LRs[i]; math.Abs(got-want) > 1e-12*want {
			t.Errorf("LRs[%d] = %g, want %g", i, got, want)
		}
	}
	// The loss must diverge at the top of the sweep on this problem.
	if n := len(res.LRs); n == 100 && res.Losses[n-1] < res.Losses[0] {
		t.Errorf("loss did not rise at the end of the sweep: %v … %v", res.Losses[0], res.Losses[n-1])
	}
	lowest := 0
	for i, l := range res.Losses {
		if l < res.Losses[lowest] {
			lowest = i
		}
	}
	i := res.SuggestionIndex
	if res.Suggestion != res.LRs[i] {
		t.Errorf("Suggestion %g is not LRs[%d] = %g", res.Suggestion, i, res.LRs[i])
	}
	// The descending part of the curve: after the flat start, before the
	// lowest smoothed loss, where the loss is falling.
	if i >= lowest || res.Losses[i] >= res.Losses[0] {
		t.Errorf("suggestion at step %d (lr %g, loss %g); lowest loss %g at step %d, first %g: not on the descent",
			i, res.Suggestion, res.Losses[i], res.Losses[lowest], lowest, res.Losses[0])
	}
	if i+1 < len(res.Losses) && res.Losses[i+1] >= res.Losses[i] && res.Losses[i-1] <= res.Losses[i] {
		t.Errorf("loss is not falling around step %d: %v", i, res.Losses[i-1:i+2])
	}
}

func TestFindLRCancelled(t *testing.T) {
	m := mustNew[float32](t, mlpConfig(8), 1)
	before := copyWeights(m)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := FindLR(ctx, FindLRSpec{Model: m, Train: lrBlobs(10, 1)})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	for i, p := range m.Params() {
		if !bitEqual(p.Value.Data, before[i]) {
			t.Errorf("%s changed", p.Name)
		}
	}
}

func TestValleyIndex(t *testing.T) {
	tests := []struct {
		name   string
		losses []float64
		numIt  int
		want   int
	}{
		// Worked by hand with fastai's valley: window [numIt/10, n-5).
		// Decreasing throughout the window [0,10): lds ends at 10 at
		// index 9, max_start = -1, sections = 10/3, idx = -1+3+1 = 3.
		{"all down", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4}, 5, 3},
		// Flat, then down from index 3 to 8, then up; window [1, 12).
		// In the window: 5 5 5 4 3 2 1 0.5 6 7 8; the longest decreasing
		// run is 5 4 3 2 1 0.5 ending at window index 7, lds 6,
		// max_start = 1, sections = 2, idx = 1+2+1 = 4 → curve index 5.
		{"valley", []float64{5, 5, 5, 5, 4, 3, 2, 1, 0.5, 6, 7, 8, 9, 10, 11, 12, 13}, 10, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := valleyIndex(tt.losses, tt.numIt)
			if !ok || got != tt.want {
				t.Errorf("valleyIndex = %d, %v; want %d, true", got, ok, tt.want)
			}
		})
	}
	if _, ok := valleyIndex(nil, 100); ok {
		t.Error("valleyIndex(nil) reported a suggestion")
	}
}

// lrBlobs is blobs with the class names of mlpConfig.
func lrBlobs(n int, seed uint64) *Dataset {
	d := blobs("blobs", 3, 4, n, seed)
	d.Classes = []string{"a", "b", "c"}
	return d
}

// TestSuggestLRs checks fastai's four suggestions on curves built so that
// each rule's answer can be worked by hand (fastai/callback/schedule.py:
// minimum, steep, valley, slide), over a 100-step sweep from 1e-7 to 10:
// the rules see points [10, 95).
func TestSuggestLRs(t *testing.T) {
	const n = 100
	lrs := make([]float64, n)
	for i := range lrs {
		lrs[i] = 1e-7 * math.Pow(1e8, float64(i)/(n-1))
	}
	// Curve A: a gentle fall to i=50, a fall steepening to i=60 (its
	// steepest segment is 59→60), a slow fall to the minimum at i=75,
	// then a linear rise.
	a := make([]float64, n)
	for i := range a {
		x := float64(i)
		switch {
		case i <= 50:
			a[i] = 2 - 0.004*x
		case i <= 60:
			a[i] = 1.8 - 0.06*(x-50) - 0.001*(x-50)*(x-50)
		case i <= 75:
			a[i] = 1.1 - 0.01*(x-60)
		default:
			a[i] = 0.95 + 0.1*(x-75)
		}
	}
	// Curve B: flat to i=50, then a parabola.
	b := make([]float64, n)
	for i := range b {
		b[i] = 1
		if x := float64(i - 50); i > 50 {
			b[i] += 0.02 * x * x
		}
	}
	tests := []struct {
		name   string
		losses []float64
		want   map[string]int // rule → index of the marked point
	}{
		{"A", a, map[string]int{
			// The lowest point.
			"minimum": 75,
			// The steepest segment starts at 59.
			"steep": 59,
			// Strictly falling over the whole window up to 75, window
			// index 65: lds = 66, max_start = -1, sections = 66/3 = 22,
			// idx = -1 + 22 + 11 = 32, point 10+32.
			"valley": 42,
			// The rise is linear: the gradients at the window's end (94)
			// and 15 before (79) are equal, so the slide stops at once
			// with lrs[-16], point 79.
			"slide": 79,
		}},
		{"B", b, map[string]int{
			"minimum": 10, // flat: the first of the lowest
			// Gradients inside the parabola differ by 0.04·15 between
			// points 15 apart; at 50 the central difference is 0.01,
			// before it 0: the first pair within 0.005 is (49, 34), and
			// the last left point kept is 35.
			"slide": 35,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SuggestLRs(lrs, tt.losses, n)
			if !ok || len(got) != 4 {
				t.Fatalf("SuggestLRs: %v, %v", got, ok)
			}
			for i, name := range []string{"minimum", "steep", "valley", "slide"} {
				if got[i].Name != name {
					t.Errorf("suggestion %d is %q, want %q", i, got[i].Name, name)
				}
			}
			for _, s := range got {
				want, ok := tt.want[s.Name]
				if !ok {
					continue
				}
				if s.Index != want {
					t.Errorf("%s: index %d, want %d", s.Name, s.Index, want)
				}
				wantLR := lrs[want]
				if s.Name == "minimum" {
					wantLR /= 10
				}
				if s.LR != wantLR {
					t.Errorf("%s: lr %g, want %g", s.Name, s.LR, wantLR)
				}
			}
		})
	}
	if _, ok := SuggestLRs(nil, nil, 100); ok {
		t.Error("SuggestLRs on an empty curve reported suggestions")
	}
}
