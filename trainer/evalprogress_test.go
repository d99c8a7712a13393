package trainer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
)

// spy is a layer that calls f before each forward pass of the layer it
// wraps.
type spy struct {
	Layer[float32]
	f func()
}

func (s spy) Forward(x *Tensor[float32], train bool) *Tensor[float32] {
	s.f()
	return s.Layer.Forward(x, train)
}

// TestEvalProgressCountsBatches reads the progress as each batch of a pass
// reaches the head: a validation pass and a gauge pass of 750 samples in
// batches of 256 show 0, 256 and 512 done of 750, and nothing once they
// have ended.
func TestEvalProgressCountsBatches(t *testing.T) {
	m, err := New[float32](runMLPConfig(8, 3), rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	ds := blobs("val", 3, 8, 250, 2)
	var p EvalProgress
	var got []string
	head := m.Blocks[len(m.Blocks)-1]
	// Without its config the head cannot be twinned: one worker, the
	// model itself, takes the batches in order.
	head.config = nil
	head.Layers[0] = spy{head.Layers[0], func() {
		set, done, total := p.Load()
		got = append(got, fmt.Sprintf("%s %d/%d", set, done, total))
	}}
	e := newEvaluator(m)
	e.noCache, e.progress = true, &p
	e.pass(ds, nil, true)
	e.pass(ds, nil, false)
	want := []string{
		"validating 0/750", "validating 256/750", "validating 512/750",
		"gauging source 0/750", "gauging source 256/750", "gauging source 512/750",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if set, done, total := p.Load(); set != EvalNone || done != 0 || total != 0 {
		t.Errorf("after the passes got %v %d/%d, want none", set, done, total)
	}
}

// TestEvalProgressOfARun reads a run's progress through its Control from
// another goroutine as fast as it can while the run trains (the race
// detector checks the reads): every reading is a known set with done
// within total, and the run ends with no pass under way.
func TestEvalProgressOfARun(t *testing.T) {
	spec := cacheSpec(t, cacheCases[0], "gradual")
	ctl := &Control{}
	spec.Control = ctl
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad []string
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			set, done, total := ctl.Evaluation()
			if set > EvalPrefix || done > total || (set == EvalNone) != (total == 0) {
				bad = append(bad, fmt.Sprintf("%d %d/%d", set, done, total))
			}
		}
	})
	_, err := Run(context.Background(), spec, nil)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Errorf("inconsistent readings: %q", bad[:min(len(bad), 5)])
	}
	if set, done, total := ctl.Evaluation(); set != EvalNone || done != 0 || total != 0 {
		t.Errorf("after the run got %v %d/%d, want none", set, done, total)
	}
}
