package trainer

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
)

// pointRun is what a run reports and ends with, to compare bit for bit.
type pointRun struct {
	res     Result
	evals   []Progress
	weights []SafeTensor
}

// sweepSpecs builds one spec per freeze point of c's model: the first
// stage of gradual trained from each block, on the same data and seed, as
// a sweep runs them. The same arguments give the same specs.
func sweepSpecs(t *testing.T, c cacheCase) []Spec {
	t.Helper()
	var specs []Spec
	probe := cacheSpec(t, c, "gradual")
	blocks := probe.Model.Config.BlockNames()
	for _, b := range blocks {
		spec := cacheSpec(t, c, "gradual")
		p, err := PresetGradual(blocks, 3e-3, 2).FreezeBelow(blocks, b)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Plan, err = p.FirstStage().Resolve(blocks); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, spec)
	}
	return specs
}

func runPoint(t *testing.T, spec Spec) pointRun {
	t.Helper()
	var col collect
	res, err := Run(context.Background(), spec, col.report)
	if err != nil {
		t.Error(err)
	}
	w, err := spec.Model.StateDict()
	if err != nil {
		t.Error(err)
	}
	return pointRun{res, col.evals(), w}
}

// samePointRun reports how a and b differ, bit for bit, or "".
func samePointRun(a, b pointRun) string {
	bits := math.Float64bits
	switch {
	case a.res.Steps != b.res.Steps || a.res.BestStep != b.res.BestStep:
		return "steps"
	case bits(a.res.BestValLoss) != bits(b.res.BestValLoss) || bits(a.res.FinalValLoss) != bits(b.res.FinalValLoss) ||
		bits(a.res.SourceAccAfter) != bits(b.res.SourceAccAfter):
		return "result"
	case len(a.evals) != len(b.evals):
		return "number of evaluations"
	case !sameTensors(a.weights, b.weights) || !sameTensors(a.res.Best, b.res.Best):
		return "weights"
	}
	for i := range a.evals {
		x, y := a.evals[i], b.evals[i]
		if x.Step != y.Step || bits(x.ValLoss) != bits(y.ValLoss) || bits(x.ValAcc) != bits(y.ValAcc) || bits(x.SourceAcc) != bits(y.SourceAcc) {
			return fmt.Sprintf("evaluation %d", i+1)
		}
	}
	return ""
}

// TestPrefixesBitIdentical runs a sweep's points (every freeze point of
// gradual's first stage, one seed's data) each computing its own frozen
// prefix, then sharing one Prefixes one after another, then sharing one
// all at once: every run must be the same bits, and the shared runs must
// have taken prefixes from one another.
func TestPrefixesBitIdentical(t *testing.T) {
	for _, c := range cacheCases {
		if c.keepHead && c.zoo == "" {
			continue // the same prefixes as with a new head
		}
		t.Run(c.name, func(t *testing.T) {
			var alone []pointRun
			for _, spec := range sweepSpecs(t, c) {
				alone = append(alone, runPoint(t, spec))
			}

			// From the input up, each point extends the prefix the one
			// before shared; from the head down, each takes a shorter
			// prefix the first computed on its way.
			for _, order := range []string{"up", "down"} {
				shared := NewPrefixes()
				specs := sweepSpecs(t, c)
				for n := range specs {
					i := n
					if order == "down" {
						i = len(specs) - 1 - n
					}
					spec := specs[i]
					spec.Prefixes = shared
					if d := samePointRun(runPoint(t, spec), alone[i]); d != "" {
						t.Errorf("point %d, sharing in turn %s: %s differ", i, order, d)
					}
				}
				if shared.Hits() == 0 {
					t.Errorf("%s: no run took a prefix from another", order)
				}
			}

			shared := NewPrefixes()

			shared = NewPrefixes()
			specs := sweepSpecs(t, c)
			got := make([]pointRun, len(specs))
			var wg sync.WaitGroup
			for i, spec := range specs {
				spec.Prefixes = shared
				wg.Go(func() { got[i] = runPoint(t, spec) })
			}
			wg.Wait()
			for i := range got {
				if d := samePointRun(got[i], alone[i]); d != "" {
					t.Errorf("point %d, sharing at once: %s differ", i, d)
				}
			}
		})
	}
}

// TestPrefixesKeyed checks that runs share only what is the same bits: a
// prefix with other weights, or another set, is computed anew.
func TestPrefixesKeyed(t *testing.T) {
	c := cacheCases[0]
	shared := NewPrefixes()
	spec := sweepSpecs(t, c)[1] // trains from conv2: conv1 is the prefix
	spec.Prefixes = shared
	want := runPoint(t, spec)

	// The same point with other conv1 weights must not take the first
	// run's prefix.
	other := sweepSpecs(t, c)[1]
	other.Prefixes = shared
	w := other.Model.Blocks[0].Layers[0].Params()[0].Value.Data
	w[0] += 0.5
	hits := shared.Hits()
	got := runPoint(t, other)
	if shared.Hits() != hits {
		t.Errorf("a prefix of other weights took %d shared outputs", shared.Hits()-hits)
	}
	if samePointRun(got, want) == "" {
		t.Error("other weights gave the same run")
	}
	// And its own computation matches a run that shares nothing.
	alone := sweepSpecs(t, c)[1]
	alone.Model.Blocks[0].Layers[0].Params()[0].Value.Data[0] += 0.5
	if d := samePointRun(runPoint(t, alone), got); d != "" {
		t.Errorf("other weights, shared against alone: %s differ", d)
	}
}
