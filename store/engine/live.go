package engine

import (
	"sync"
	"sync/atomic"

	"thaw/store"
	"thaw/trainer"
)

// Live is a run being trained by this process.
type Live struct {
	// ID is the run's id; Run its record as it was when training started.
	ID  string
	Run Run
	// Prepared is the job as prepared: the model being trained, the data,
	// the resolved plan. Its model changes while the run trains; read it
	// only after Done.
	Prepared *trainer.Prepared
	// Control pauses, resumes, stops the run or skips to the next stage.
	Control *trainer.Control
	// From is the step training starts from: 0 for a new run, the
	// checkpoint's step for a resumed run or a branch. Resumed is where
	// Resume continues (zero for Start and Branch).
	From    int64
	Resumed store.ResumePoint
	// Warning, when not empty, says why a resumed run or a branch may not
	// reproduce the bits of an uninterrupted run (see
	// [store.JobRecord.KernelWarning]).
	Warning string

	done    chan struct{}
	dropped atomic.Int64 // of the Progress feed

	// feed is the Progress channel: a subscription of its own that
	// nobody cancels.
	feed <-chan trainer.Progress

	// stored is the step up to which the store holds every report's
	// metrics: its recorder's writer sets it after each committed batch
	// (store.OnAck).
	stored *atomic.Int64

	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	ended  bool // the subscribers are closed; no more reports
	latest trainer.Progress
	seen   bool
	// recent are the reports a new subscription replays: every report
	// the store may not hold yet (past stored), and at least the newest
	// replayReports; at most maxReplay.
	recent []trainer.Progress
	res    trainer.Result
	err    error
}

// progressBuffer is how many reports a subscription holds for a slow
// viewer before it drops the oldest: at the trainer's 5 reports a second,
// about ten seconds.
const progressBuffer = 64

// replayReports is how many of the newest reports a new subscription
// starts with at least; it starts with every report the store has not
// committed yet too, however far its writer lags (a loaded machine), so
// that a viewer reading the run's past there and going on from the feed
// has no hole. maxReplay bounds them for a store that stalls: about seven
// minutes of reports at the trainer's 5 a second.
const (
	replayReports = progressBuffer / 2
	maxReplay     = 2048
)

// subscriber is one viewer's feed of a run's reports.
type subscriber struct {
	ch      chan trainer.Progress
	dropped *atomic.Int64
}

// newLive returns the Live of a run training from step from, whose
// recorder sets stored (see recordOptions).
func newLive(run Run, prep *trainer.Prepared, ctl *trainer.Control, from int64, stored *atomic.Int64) *Live {
	l := &Live{
		ID: run.ID, Run: run, Prepared: prep, Control: ctl, From: from,
		done:   make(chan struct{}),
		subs:   make(map[*subscriber]struct{}),
		stored: stored,
	}
	l.feed, _ = l.subscribe(&l.dropped)
	return l
}

// Subscribe returns a feed of the run's reports, its own. It starts with
// the newest reports made before it (every one the store has not
// committed yet, and at least replayReports), which cover what the store
// may not have written yet: a viewer that shows the
// run's past from the store and goes on from the feed misses nothing, and
// drops by their step the reports it already has. Then it gets every new
// report. Any number of viewers may each subscribe, and each sees every
// report as long as it keeps up. A feed never holds up the trainer nor the
// other feeds: when its viewer falls more than a few seconds behind
// (progressBuffer reports), its oldest reports are dropped; everything a
// report says is recorded in the store regardless.
//
// The channel is closed after the last report when the run ends, or when
// cancel is called. Call cancel when done watching (it may be called more
// than once, and after the run ended); a feed never cancelled is released
// when the run ends. Subscribing to a run that has ended returns a closed
// channel.
func (l *Live) Subscribe() (<-chan trainer.Progress, func()) {
	return l.subscribe(nil)
}

func (l *Live) subscribe(dropped *atomic.Int64) (<-chan trainer.Progress, func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Room for the replay, and a live buffer beyond it.
	sub := &subscriber{ch: make(chan trainer.Progress, max(progressBuffer, len(l.recent)+replayReports)), dropped: dropped}
	if l.ended {
		close(sub.ch)
		return sub.ch, func() {}
	}
	for _, p := range l.recent {
		sub.ch <- p
	}
	l.subs[sub] = struct{}{}
	return sub.ch, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[sub]; ok {
			delete(l.subs, sub)
			close(sub.ch)
		}
	}
}

// Subscribers returns how many feeds of the run are open, the Progress
// feed included: one until the run ends, when it drops to zero.
func (l *Live) Subscribers() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.subs)
}

// Progress returns the run's own feed of reports, which nobody cancels: a
// Subscribe made when the run started (see there). It suits the one
// viewer that starts the run and watches it to its end, such as the
// command line; a viewer that may come and go subscribes instead.
func (l *Live) Progress() <-chan trainer.Progress { return l.feed }

// Latest returns the newest report, and false before the first.
func (l *Live) Latest() (trainer.Progress, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latest, l.seen
}

// Evaluation returns how far the run's evaluation pass under way has got:
// which set (validation, the forgetting gauge's source set, the frozen
// prefix of the training set), the samples done and the pass's total;
// trainer.EvalNone between passes. It reads a few atomics the trainer
// updates once per batch of a pass and never waits on the run: a viewer
// polls it on its own clock to show a pass that lasts seconds moving,
// which the rate-limited reports do not.
func (l *Live) Evaluation() (set trainer.EvalSet, done, total int) {
	return l.Control.Evaluation()
}

// Dropped returns the number of reports dropped from Progress because
// nobody took them in time.
func (l *Live) Dropped() int64 { return l.dropped.Load() }

// Done is closed when the run has ended, its result is recorded and its
// goroutines have returned.
func (l *Live) Done() <-chan struct{} { return l.done }

// Wait waits for the run to end and returns its result and error, as
// [store.Store.Train] does: ctx.Err() when the context given to Start was
// cancelled (the run is then stopped), trainer.ErrDiverged, or a recording
// error.
func (l *Live) Wait() (trainer.Result, error) {
	<-l.done
	return l.res, l.err
}

// publish hands p to every feed, dropping a feed's oldest report when its
// buffer is full. Only the run's goroutine calls it; it never blocks on a
// viewer (a feed is only ever taken from by its viewer and by publish,
// under l.mu, so a full buffer has room after one take).
func (l *Live) publish(p trainer.Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.latest, l.seen = p, true
	l.recent = append(l.recent, p)
	stored := l.stored.Load()
	drop := 0
	for len(l.recent)-drop > maxReplay ||
		(len(l.recent)-drop > replayReports && int64(l.recent[drop].Step) <= stored) {
		drop++
	}
	if drop > 0 {
		l.recent = append(l.recent[:0], l.recent[drop:]...)
	}
	for sub := range l.subs {
		for {
			select {
			case sub.ch <- p:
			default:
				select {
				case <-sub.ch:
					if sub.dropped != nil {
						sub.dropped.Add(1)
					}
				default:
				}
				continue
			}
			break
		}
	}
}

// end closes every feed: the run has made its last report.
func (l *Live) end(res trainer.Result, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res, l.err = res, err
	l.ended, l.recent = true, nil
	for sub := range l.subs {
		close(sub.ch)
	}
	clear(l.subs)
}
