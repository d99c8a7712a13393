package engine

import (
	"context"
	"fmt"
	"sync"

	"thaw/trainer"
)

// The stored runs as the engine's local operator reads and changes them:
// every run. A server session reads them through a [UserView] instead.

// ListRuns lists the stored runs that match f, newest first (see
// store.Store.ListRuns).
func (e *Engine) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	return e.s.ListRuns(ctx, f)
}

// Run returns the stored run id, a full id or a unique prefix. It returns
// an error wrapping [ErrNotFound] or [ErrAmbiguous].
func (e *Engine) Run(ctx context.Context, id string) (Run, error) { return e.s.Run(ctx, id) }

// MetricNames lists the metrics run has recorded.
func (e *Engine) MetricNames(ctx context.Context, run string) ([]string, error) {
	return e.s.MetricNames(ctx, run)
}

// Series reads a series of run in at most maxPoints buckets (see
// store.Store.Series).
func (e *Engine) Series(ctx context.Context, run, name string, maxPoints int) ([]Bucket, error) {
	return e.s.Series(ctx, run, name, maxPoints)
}

// Stages returns run's stored stage boundaries in order.
func (e *Engine) Stages(ctx context.Context, run string) ([]Stage, error) {
	return e.s.Stages(ctx, run)
}

// Checkpoints returns run's stored checkpoints.
func (e *Engine) Checkpoints(ctx context.Context, run string) ([]Checkpoint, error) {
	return e.s.Checkpoints(ctx, run)
}

// Checkpoint returns the checkpoint id's record.
func (e *Engine) Checkpoint(ctx context.Context, id string) (Checkpoint, error) {
	return e.s.Checkpoint(ctx, id)
}

// Delete deletes run id with its metrics and checkpoints (see
// store.Store.Delete: a live run is refused with [ErrLive]).
func (e *Engine) Delete(ctx context.Context, id string) error { return e.delete(ctx, id, "") }

// delete deletes run id for actor (empty: the local operator), and
// records who did.
func (e *Engine) delete(ctx context.Context, id, actor string) error {
	r, err := e.s.Run(ctx, id)
	if err != nil {
		return err
	}
	if err := e.s.Delete(ctx, r.ID); err != nil {
		return err
	}
	e.act(ctx, r.ID, "delete", actor)
	e.changes.notify()
	return nil
}

// Rename sets run id's name.
func (e *Engine) Rename(ctx context.Context, id, name string) error {
	if err := e.s.Rename(ctx, id, name); err != nil {
		return err
	}
	e.changes.notify()
	return nil
}

// SetTags replaces run id's tags.
func (e *Engine) SetTags(ctx context.Context, id string, tags []string) error {
	if err := e.s.SetTags(ctx, id, tags); err != nil {
		return err
	}
	e.changes.notify()
	return nil
}

// Stop asks run id to stop, wherever it trains: a run of this process
// stops at its recorder's next heartbeat, a queued one at once (see
// store.Store.RequestStop). It returns an error wrapping [ErrNotLive]
// when the run is not running, paused or queued.
func (e *Engine) Stop(ctx context.Context, id string) error { return e.stop(ctx, id, "") }

// stop asks run id to stop for actor (empty: the local operator), and
// records who did.
func (e *Engine) stop(ctx context.Context, id, actor string) error {
	r, err := e.s.Run(ctx, id)
	if err != nil {
		return err
	}
	if err := e.s.RequestStop(ctx, r.ID); err != nil {
		return err
	}
	e.act(ctx, r.ID, "stop", actor)
	e.changes.notify()
	return nil
}

// Subscribe returns a channel that receives a value (and holds at most
// one) whenever the stored runs may have changed: one started, resumed,
// branched, queued or ended here, or was deleted, renamed, retagged or
// stopped through the engine, or changed by another process, which the
// store learns of by itself (see store.Store.Watch: on PostgreSQL by
// notifications, on SQLite by a cheap check every second). A value also
// comes soon after subscribing and after the store's connection for
// notifications came back: the subscriber then reads again everything it
// shows. On PostgreSQL nothing is sent to the database while nothing
// changes. The channel is closed when ctx is done.
func (e *Engine) Subscribe(ctx context.Context) <-chan struct{} {
	return e.changes.subscribe(ctx)
}

// changes is the engine's change feed. Its fields are guarded by mu.
// While it has subscribers it follows the store's watch, if any.
type changes struct {
	mu    sync.Mutex
	subs  map[chan struct{}]struct{}
	watch func(context.Context) <-chan struct{}
	stop  context.CancelFunc // the store watch's, while followed
}

func (c *changes) subscribe(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	c.mu.Lock()
	if c.subs == nil {
		c.subs = map[chan struct{}]struct{}{}
	}
	c.subs[ch] = struct{}{}
	if c.watch != nil && c.stop == nil {
		wctx, stop := context.WithCancel(context.Background())
		c.stop = stop
		w := c.watch(wctx)
		go func() {
			for range w {
				c.notify()
			}
		}()
	}
	c.mu.Unlock()
	context.AfterFunc(ctx, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.subs, ch)
		close(ch)
		if len(c.subs) == 0 && c.stop != nil {
			c.stop()
			c.stop = nil
		}
	})
	return ch
}

// notify tells every subscriber, never waiting for one.
func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending there
		}
	}
}

// Confusion evaluates the best checkpoint of run id on its validation
// set, prepared again from the run's stored job as the engine prepared
// it: counts[i][j] samples of class i predicted as j.
func (e *Engine) Confusion(ctx context.Context, id string) (classes []string, counts [][]int, err error) {
	run, err := e.s.Run(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	rec, err := DecodeJob(run)
	if err != nil {
		return nil, nil, err
	}
	// The weights --save writes and every view's best: the read model's.
	best, isBest, err := e.bestCheckpoint(ctx, run)
	if err != nil {
		return nil, nil, err
	}
	ck, err := e.s.LoadCheckpoint(ctx, best.ID)
	if err != nil {
		return nil, nil, err
	}
	weights := ck.Weights
	if !isBest && ck.Best != nil {
		weights = ck.Best
	}
	prep, err := e.Prepare(rec.Job)
	if err != nil {
		return nil, nil, err
	}
	if err := prep.Model.LoadState(weights); err != nil {
		return nil, nil, fmt.Errorf("best checkpoint of %s: %w", Short(run.ID), err)
	}
	classes = prep.Val.Classes
	counts = make([][]int, len(classes))
	for i := range counts {
		counts[i] = make([]int, len(classes))
	}
	x := &trainer.Tensor[float32]{}
	var ys []int
	for _, idx := range prep.Val.Batches(nil, 256) {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		ys = prep.Val.Batch(x, ys, idx)
		logits := prep.Model.Forward(x, false)
		k := logits.Len() / max(len(ys), 1)
		for i, y := range ys {
			row := logits.Data[i*k : (i+1)*k]
			p := 0
			for j, v := range row {
				if v > row[p] {
					p = j
				}
			}
			if y < len(classes) && p < len(classes) {
				counts[y][p]++
			}
		}
	}
	return classes, counts, nil
}

// Read returns the read model of run id (see [Read]).
func (e *Engine) Read(ctx context.Context, id string) (RunView, error) { return Read(ctx, e.s, id) }

// List returns the read model of every run f selects (see [List]).
func (e *Engine) List(ctx context.Context, f RunFilter) ([]RunView, error) { return List(ctx, e.s, f) }

// ReadSeries returns the series of run id at their real steps (see
// [ReadSeries]).
func (e *Engine) ReadSeries(ctx context.Context, id string, names []string, maxPoints int) ([]Series, error) {
	return ReadSeries(ctx, e.s, id, names, maxPoints)
}
