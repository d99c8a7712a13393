package trainer

import "sync"

// Control lets another goroutine steer a run between batches, and see
// how far an evaluation pass has got. The zero value is ready to use; a
// Control serves one run.
type Control struct {
	mu      sync.Mutex
	paused  bool
	stop    bool
	skip    bool
	changed chan struct{} // closed and replaced on every change

	eval EvalProgress
}

// Evaluation returns how far the run's evaluation pass under way has got
// (see EvalProgress): its set, the samples done and its total; EvalNone
// between passes. It never waits on the run.
func (c *Control) Evaluation() (set EvalSet, done, total int) { return c.evalProgress().Load() }

// evalProgress is where the run's evaluator counts; nil for a nil c.
func (c *Control) evalProgress() *EvalProgress {
	if c == nil {
		return nil
	}
	return &c.eval
}

func (c *Control) set(f func()) {
	c.mu.Lock()
	f()
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	c.mu.Unlock()
}

// Pause holds the run before its next batch until Resume or Stop.
func (c *Control) Pause() { c.set(func() { c.paused = true }) }

// Resume continues a paused run.
func (c *Control) Resume() { c.set(func() { c.paused = false }) }

// Stop ends the run after the current batch; it ends as stopped.
func (c *Control) Stop() { c.set(func() { c.stop = true }) }

// Skip ends the current stage after the current batch and goes on with the
// next one.
func (c *Control) Skip() { c.set(func() { c.skip = true }) }

// poll returns the pending requests, clearing skip, and a channel that is
// closed on the next change.
func (c *Control) poll() (paused, stop, skip bool, changed <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	paused, stop, skip = c.paused, c.stop, c.skip
	c.skip = false
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return paused, stop, skip, c.changed
}
