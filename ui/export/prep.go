package export

import (
	"fmt"
	"math"
	"slices"
	"sort"
)

// notes collects what was skipped while preparing data, for the caller
// to show the user.
type notes []string

func (n *notes) addf(format string, args ...any) { *n = append(*n, fmt.Sprintf(format, args...)) }

// extract returns the drawable points of s for run r: x from the step or
// epoch, y the value. Points before a branch's start are the parent's and
// are left out silently; non-finite values, and values ≤ 0 when positive
// is set (a log axis), are left out and noted.
func extract(r Run, s *Series, o Options, positive bool, n *notes) []xy {
	if s == nil {
		return nil
	}
	pts := make([]xy, 0, len(s.Points))
	var nonFinite, nonPositive int
	for _, p := range s.Points {
		if r.BranchStep > 0 && p.Step < r.BranchStep {
			continue
		}
		v := p.Value
		switch {
		case math.IsNaN(v) || math.IsInf(v, 0):
			nonFinite++
			continue
		case positive && v <= 0:
			nonPositive++
			continue
		}
		x := float64(p.Step)
		if o.X == XEpoch {
			x = p.Epoch
			if math.IsNaN(x) || math.IsInf(x, 0) {
				nonFinite++
				continue
			}
		}
		pts = append(pts, xy{x, v})
	}
	if nonFinite > 0 {
		n.addf("run %q: %s: skipped %d non-finite point%s (NaN or Inf)", r.label(), s.Name, nonFinite, plural(nonFinite))
	}
	if nonPositive > 0 {
		n.addf("run %q: %s: skipped %d value%s ≤ 0 that a log scale cannot show", r.label(), s.Name, nonPositive, plural(nonPositive))
	}
	if !sort.SliceIsSorted(pts, func(i, j int) bool { return pts[i].x < pts[j].x }) {
		sort.SliceStable(pts, func(i, j int) bool { return pts[i].x < pts[j].x })
	}
	return pts
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// stepAxis maps a run's steps to x coordinates, for stage boundaries and
// the best checkpoint, which are recorded as steps.
type stepAxis struct {
	epoch  bool
	steps  []float64 // steps with a known epoch, increasing
	epochs []float64
}

func newStepAxis(r Run, o Options) stepAxis {
	a := stepAxis{epoch: o.X == XEpoch}
	if !a.epoch {
		return a
	}
	type pair struct{ s, e float64 }
	var pairs []pair
	for _, s := range r.Series {
		for _, p := range s.Points {
			if p.Epoch > 0 && !math.IsInf(p.Epoch, 0) {
				pairs = append(pairs, pair{float64(p.Step), p.Epoch})
			}
		}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		switch {
		case a.s < b.s:
			return -1
		case a.s > b.s:
			return 1
		}
		return 0
	})
	for _, p := range pairs {
		if k := len(a.steps); k > 0 && a.steps[k-1] == p.s {
			continue
		}
		a.steps = append(a.steps, p.s)
		a.epochs = append(a.epochs, p.e)
	}
	return a
}

// x returns the x coordinate of step: the step itself, or its epoch
// interpolated linearly between recorded points (and extrapolated at the
// recorded rate past either end).
func (a stepAxis) x(step int) float64 {
	s := float64(step)
	if !a.epoch {
		return s
	}
	n := len(a.steps)
	switch {
	case n == 0:
		return 0
	case n == 1:
		return a.epochs[0] * s / a.steps[0]
	}
	i := sort.SearchFloat64s(a.steps, s)
	switch {
	case i == 0:
		// Before the first record: epochs are proportional to steps from 0.
		return a.epochs[0] * s / a.steps[0]
	case i == n:
		i = n - 1
	}
	s0, s1 := a.steps[i-1], a.steps[i]
	e0, e1 := a.epochs[i-1], a.epochs[i]
	return e0 + (e1-e0)*(s-s0)/(s1-s0)
}
