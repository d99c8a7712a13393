package engine

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"thaw/trainer"
)

// evalSteps returns the steps of the evaluation reports among ps.
func evalSteps(ps []trainer.Progress) []int {
	var out []int
	for _, p := range ps {
		if p.Event == trainer.EventEval {
			out = append(out, p.Step)
		}
	}
	return out
}

func TestLiveSubscribersEachSeeEveryEvaluation(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	got := make([][]trainer.Progress, 2)
	ready := func(l *Live) {
		// Subscribed before the first report: each sees them all.
		for i := range got {
			ch, cancel := l.Subscribe()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer cancel()
				for p := range ch {
					got[i] = append(got[i], p)
				}
			}()
		}
		if n := l.Subscribers(); n != 3 {
			t.Errorf("%d feeds open, want the Progress feed and 2 subscriptions", n)
		}
	}
	l, err := e.Start(ctx, testJob(2, 4), StartOptions{Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	res := mustWait(t, l)
	wg.Wait()
	settle(t, before)
	if res.Status != trainer.StatusDone {
		t.Fatalf("status %s", res.Status)
	}
	stored := rawSeries(t, s, l.ID, trainer.MetricValLoss)
	if len(stored) == 0 {
		t.Fatal("no evaluations stored")
	}
	for i, ps := range got {
		steps := evalSteps(ps)
		if len(steps) != len(stored) {
			t.Fatalf("subscriber %d saw %d evaluations, the store has %d", i, len(steps), len(stored))
		}
		for k, st := range steps {
			if uint64(st) != stored[k][0] {
				t.Errorf("subscriber %d: evaluation %d at step %d, stored at step %d", i, k, st, stored[k][0])
			}
		}
		if ps[len(ps)-1].Event != trainer.EventDone {
			t.Errorf("subscriber %d: last report %v, want the end", i, ps[len(ps)-1].Event)
		}
	}
	if n := l.Subscribers(); n != 0 {
		t.Errorf("%d feeds open after the run ended", n)
	}
	// Subscribing to an ended run gives a closed feed.
	ch, cancel := l.Subscribe()
	if _, ok := <-ch; ok {
		t.Error("a feed of an ended run gave a report")
	}
	cancel()
	cancel()
}

// A subscriber that never reads neither blocks nor slows the run: the run
// makes every step and stores every loss, and the feed holds the newest
// reports, the end last.
func TestLiveSubscriberNeverRead(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t)
	before := runtime.NumGoroutine()
	var idle <-chan trainer.Progress
	var reports int
	// An evaluation every step: far more reports than a feed holds.
	l, err := e.Start(ctx, testJob(2, 1), StartOptions{
		Ready:  func(l *Live) { idle, _ = l.Subscribe() },
		Report: func(trainer.Progress) { reports++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	res := mustWait(t, l)
	settle(t, before)
	if res.Status != trainer.StatusDone || res.Steps != l.Prepared.TotalSteps() {
		t.Fatalf("result %s after %d of %d steps", res.Status, res.Steps, l.Prepared.TotalSteps())
	}
	if n := len(rawSeries(t, s, l.ID, trainer.MetricTrainLoss)); n != res.Steps {
		t.Errorf("stored %d training losses for %d steps", n, res.Steps)
	}
	if reports <= progressBuffer {
		t.Fatalf("only %d reports: the feed never filled", reports)
	}
	var kept []trainer.Progress
	for p := range idle {
		kept = append(kept, p)
	}
	if len(kept) != progressBuffer || kept[len(kept)-1].Event != trainer.EventDone {
		t.Fatalf("the idle feed kept %d reports ending with %v, want the newest %d ending with the end",
			len(kept), kept[len(kept)-1].Event, progressBuffer)
	}
	for i := 1; i < len(kept); i++ {
		if kept[i].Step < kept[i-1].Step {
			t.Fatalf("kept reports out of order: step %d after %d", kept[i].Step, kept[i-1].Step)
		}
	}
	if l.Dropped() == 0 {
		t.Error("the unread Progress feed dropped nothing")
	}
}

// Viewers come and go while the run trains: a cancelled feed is closed at
// once, and nothing of it outlives the run.
func TestLiveSubscribeCancel(t *testing.T) {
	ctx := context.Background()
	e, _ := newTestEngine(t)
	before := runtime.NumGoroutine()
	// Ready runs on the run's goroutine, so the count is added here,
	// before Start: an Add there could race the Wait below.
	const viewers = 8
	var wg sync.WaitGroup
	wg.Add(viewers)
	ready := func(l *Live) {
		for range viewers {
			ch, cancel := l.Subscribe()
			go func() {
				defer wg.Done()
				<-ch // a report, or the end
				cancel()
				cancel()
				for range ch { // closed by cancel: drains what was left
				}
			}()
		}
	}
	l, err := e.Start(ctx, testJob(2, 1), StartOptions{Ready: ready})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if n := l.Subscribers(); n > 1 {
		t.Errorf("%d feeds open after their viewers left, want the Progress feed only", n)
	}
	mustWait(t, l)
	settle(t, before)
	if n := l.Subscribers(); n != 0 {
		t.Errorf("%d feeds open after the run ended", n)
	}
}

// A viewer that comes late starts with the newest reports made before it,
// in order, then goes on live without a repeat.
func TestLiveSubscribeReplaysTheNewest(t *testing.T) {
	ctx := context.Background()
	e, _ := newTestEngine(t)
	var before []trainer.Progress
	var mu sync.Mutex
	report := func(p trainer.Progress) {
		mu.Lock()
		before = append(before, p)
		mu.Unlock()
	}
	l, err := e.Start(ctx, testJob(2, 1), StartOptions{Report: report})
	if err != nil {
		t.Fatal(err)
	}
	// Subscribe once well over replayReports reports were made.
	for {
		mu.Lock()
		n := len(before)
		mu.Unlock()
		if n > replayReports+10 {
			break
		}
		runtime.Gosched()
	}
	// Paused, the run cannot end before the subscription.
	l.Control.Pause()
	late, cancel := l.Subscribe()
	defer cancel()
	var got []trainer.Progress
	for p := range late {
		got = append(got, p)
		if len(got) == replayReports { // the replayed ones
			l.Control.Resume()
		}
	}
	mustWait(t, l)
	mu.Lock()
	defer mu.Unlock()
	// The feed is the tail of every report, from at most replayReports
	// before the subscription.
	if len(got) < replayReports || len(got) > len(before) {
		t.Fatalf("the late feed had %d reports of %d", len(got), len(before))
	}
	tail := before[len(before)-len(got):]
	for i := range got {
		if got[i].Step != tail[i].Step || got[i].Event != tail[i].Event {
			t.Fatalf("report %d of the late feed is step %d event %v, want step %d event %v",
				i, got[i].Step, got[i].Event, tail[i].Step, tail[i].Event)
		}
	}
}

// TestLiveReplaysWhatTheStoreLacks: a new subscription starts with every
// report past the step the store has committed, however many (a writer
// lagging on a loaded machine), at least the newest replayReports, and at
// most maxReplay; then it goes on live.
func TestLiveReplaysWhatTheStoreLacks(t *testing.T) {
	stored := new(atomic.Int64)
	l := newLive(Run{ID: "r"}, nil, &trainer.Control{}, 0, stored)
	publish := func(from, to int) {
		for s := from; s <= to; s++ {
			l.publish(trainer.Progress{Step: s})
		}
	}
	replay := func() []int {
		ch, cancel := l.Subscribe()
		defer cancel()
		var steps []int
		for range len(ch) {
			steps = append(steps, (<-ch).Step)
		}
		return steps
	}
	span := func(from, to int) []int {
		var s []int
		for i := from; i <= to; i++ {
			s = append(s, i)
		}
		return s
	}
	// The store has steps up to 100 of 300: the replay is 101 to 300.
	stored.Store(100)
	publish(1, 300)
	if got := replay(); !slices.Equal(got, span(101, 300)) {
		t.Errorf("store at 100 of 300: replay %v", got)
	}
	// It catches up: the newest replayReports still.
	stored.Store(300)
	publish(301, 301)
	if got := replay(); !slices.Equal(got, span(301-replayReports+1, 301)) {
		t.Errorf("store caught up: replay %v", got)
	}
	// A stalled store: at most maxReplay, the newest.
	publish(302, 301+maxReplay+10)
	if got := replay(); !slices.Equal(got, span(301+10+1, 301+maxReplay+10)) {
		t.Errorf("store stalled: replay of %d, %v…", len(got), got[:min(3, len(got))])
	}
	// After the replay, the feed goes on live.
	ch, cancel := l.Subscribe()
	defer cancel()
	for range len(ch) {
		<-ch
	}
	publish(5000, 5000)
	if p := <-ch; p.Step != 5000 {
		t.Errorf("live after the replay: step %d", p.Step)
	}
}
