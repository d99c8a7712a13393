package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"thaw/assets"
	"thaw/store"
	"thaw/trainer"
)

// TestUserViewOwnership: a user lists, reads and changes their own runs
// only; with Share they read every run and still change only their own;
// the operator owns the runs started outside the views.
func TestUserViewOwnership(t *testing.T) {
	ctx := context.Background()
	for _, share := range []bool{false, true} {
		t.Run(map[bool]string{false: "private", true: "shared"}[share], func(t *testing.T) {
			e, _ := newTestEngine(t, WithLimits(Limits{Share: share, Operator: "op"}))
			t.Cleanup(func() { e.Shutdown(context.Background()) })
			ann, bob, op := e.For(User{ID: "ann"}), e.For(User{ID: "bob"}), e.For(User{ID: "op"})
			mine, err := ann.Submit(testJob(1, 0), StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			mustUserWait(t, mine)
			local, err := e.Start(ctx, testJob(1, 0), StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			mustWait(t, local)

			ids := func(v *UserView) []string {
				rs, err := v.ListRuns(ctx, RunFilter{})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, r := range rs {
					out = append(out, r.ID)
				}
				slices.Sort(out)
				// The read model lists the same runs.
				vs, err := v.List(ctx, RunFilter{})
				if err != nil {
					t.Fatal(err)
				}
				var viewed []string
				for _, rv := range vs {
					viewed = append(viewed, rv.Run.ID)
				}
				slices.Sort(viewed)
				if !slices.Equal(viewed, out) {
					t.Errorf("%s: List %v, ListRuns %v", v.User().ID, viewed, out)
				}
				return out
			}
			if !share {
				// Another user's run is not there to read.
				if _, err := bob.Read(ctx, mine.ID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("bob reads ann's run: %v, want ErrNotFound", err)
				}
				if _, err := bob.ReadSeries(ctx, mine.ID, nil, 0); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("bob reads ann's series: %v, want ErrNotFound", err)
				}
			}
			if _, err := ann.Read(ctx, mine.ID); err != nil {
				t.Errorf("ann reads her run: %v", err)
			}
			both := []string{mine.ID, local.ID}
			slices.Sort(both)
			for _, c := range []struct {
				who  *UserView
				want []string
			}{{ann, []string{mine.ID}}, {bob, nil}, {op, []string{local.ID}}} {
				want := c.want
				if share {
					want = both
				}
				if got := ids(c.who); !slices.Equal(got, want) {
					t.Errorf("%s lists %v, want %v", c.who.User().ID, got, want)
				}
			}

			wantErr := store.ErrNotFound
			if share {
				wantErr = ErrForbidden
			}
			if err := bob.Rename(ctx, mine.ID, "bob's now"); !errors.Is(err, wantErr) {
				t.Errorf("bob renaming ann's run: %v, want %v", err, wantErr)
			}
			if err := bob.SetTags(ctx, mine.ID, []string{"x"}); !errors.Is(err, wantErr) {
				t.Errorf("bob tagging ann's run: %v, want %v", err, wantErr)
			}
			if err := bob.Delete(ctx, mine.ID); !errors.Is(err, wantErr) {
				t.Errorf("bob deleting ann's run: %v, want %v", err, wantErr)
			}
			if _, err := bob.Resume(ctx, mine.ID, StartOptions{}); !errors.Is(err, wantErr) {
				t.Errorf("bob resuming ann's run: %v, want %v", err, wantErr)
			}
			if _, err := bob.Series(ctx, mine.ID, trainer.MetricTrainLoss, 0); share != (err == nil) {
				t.Errorf("bob reading ann's curve: %v (shared %v)", err, share)
			}
			if _, _, err := bob.Confusion(ctx, mine.ID); share != (err == nil) {
				t.Errorf("bob evaluating ann's run: %v (shared %v)", err, share)
			}

			if err := ann.Rename(ctx, mine.ID, "renamed"); err != nil {
				t.Fatal(err)
			}
			if err := ann.SetTags(ctx, mine.ID, []string{"b", "a"}); err != nil {
				t.Fatal(err)
			}
			if r, err := ann.Run(ctx, mine.ID); err != nil || r.Name != "renamed" || !slices.Equal(r.Tags, []string{"a", "b"}) {
				t.Errorf("ann's run after rename and tags: %+v, %v", r, err)
			}
			if err := op.Delete(ctx, local.ID); err != nil {
				t.Errorf("the operator deleting a run of thaw train: %v", err)
			}
		})
	}
}

func mustUserWait(t *testing.T, run *UserRun) trainer.Result {
	t.Helper()
	res, err := run.Wait()
	if err != nil {
		t.Fatalf("run %s: %v", run.ID, err)
	}
	return res
}

// TestUserViewQueue: beyond the per-user limit a run is queued, starts by
// itself when the user's running run ends, and is announced; a sweep's run
// is refused instead; after Shutdown nothing starts.
func TestUserViewQueue(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t, WithLimits(Limits{MaxPerUser: 1}))
	ann := e.For(User{ID: "ann"})
	started := make(chan string, 1)
	e.OnQueuedStart(func(r *UserRun) { started <- r.ID })

	first, err := ann.Submit(testJob(200, 0), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := ann.Submit(testJob(1, 0), StartOptions{})
	if !errors.Is(err, ErrQueued) || second == nil || second.Live() != nil {
		t.Fatalf("a second run: %v, want it queued", err)
	}
	if r, _ := s.Run(ctx, second.ID); r.Status != trainer.StatusQueued {
		t.Errorf("the second run is stored %s, want queued", r.Status)
	}
	if l := ann.Attach(); l == nil || l.ID != first.ID {
		t.Errorf("attach: %v, want the first run", l)
	}
	if err := ann.Stop(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-started:
		if id != second.ID {
			t.Errorf("queued run %s started, want %s", id, second.ID)
		}
	case <-time.After(time.Minute):
		t.Fatal("the queued run never started")
	}
	if res := mustUserWait(t, second); res.Status != trainer.StatusDone {
		t.Errorf("the queued run ended %s", res.Status)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.Submit(testJob(1, 0), StartOptions{}); !errors.Is(err, ErrClosed) {
		t.Errorf("a run after shutdown: %v, want ErrClosed", err)
	}
}

// TestSubscribe: the change feed says when a run starts and ends here,
// holds at most one pending change, and closes with its context.
func TestSubscribe(t *testing.T) {
	e, _ := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	ch := e.Subscribe(ctx)
	l, err := e.Start(context.Background(), testJob(1, 0), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, l)
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no change after a run started and ended")
	}
	if err := e.Rename(context.Background(), l.ID, "renamed"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("no change after a rename")
	}
	cancel()
	deadline := time.After(time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the feed stayed open after its context ended")
		}
	}
}

// TestQueuedRunStoppedWhileWaiting: a queued run its owner stops does not
// start when a slot frees (Resume would take a stopped run).
func TestQueuedRunStoppedWhileWaiting(t *testing.T) {
	ctx := context.Background()
	e, s := newTestEngine(t, WithLimits(Limits{MaxPerUser: 1}))
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	ann := e.For(User{ID: "ann"})
	first, err := ann.Submit(testJob(200, 0), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := ann.Submit(testJob(1, 0), StartOptions{})
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("a second run: %v, want it queued", err)
	}
	if err := ann.Stop(ctx, second.ID); err != nil {
		t.Fatal(err)
	}
	if err := ann.Stop(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	mustUserWait(t, first)
	select {
	case <-second.Done():
	case <-time.After(time.Minute):
		t.Fatal("the stopped queued run never left the queue")
	}
	if _, err := second.Wait(); err == nil {
		t.Error("the stopped queued run started")
	}
	if r, _ := s.Run(ctx, second.ID); r.Status != trainer.StatusStopped {
		t.Errorf("the stopped queued run is %s, want stopped", r.Status)
	}
}

// gatedNames is testNames whose next Model, once armed, waits until
// released: a run's preparation held at will.
type gatedNames struct {
	testNames
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // receives when a call is held
	release chan struct{} // a held call goes on when it receives
}

func (g *gatedNames) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

func (g *gatedNames) Model(name string) (*assets.BaseModel, error) {
	g.mu.Lock()
	hold := g.armed
	g.armed = false
	g.mu.Unlock()
	if hold {
		g.held <- struct{}{}
		<-g.release
	}
	return g.testNames.Model(name)
}

// TestArrive: a session arriving while a run of its user's is being
// started, by a view or from the queue, is handed it once it starts, and
// told when the start failed; another user is handed nothing.
func TestArrive(t *testing.T) {
	ctx := context.Background()
	g := &gatedNames{held: make(chan struct{}), release: make(chan struct{})}
	e, _ := newTestEngine(t, withNames(g), WithLimits(Limits{MaxPerUser: 1}))
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	ann, bob := e.For(User{ID: "ann"}), e.For(User{ID: "bob"})
	if l, ch := ann.Arrive(); l != nil || ch != nil {
		t.Fatalf("arrive with no run: %v, %v", l, ch)
	}
	// held waits for the gate to hold a preparation, then arrives as
	// ann and bob, and releases it.
	held := func() <-chan *Live {
		t.Helper()
		select {
		case <-g.held:
		case <-time.After(time.Minute):
			t.Fatal("no preparation reached the model")
		}
		l, ch := ann.Arrive()
		if l != nil || ch == nil {
			t.Fatalf("ann arriving while her run is prepared: %v, %v; want to wait", l, ch)
		}
		if l, ch := bob.Arrive(); l != nil || ch != nil {
			t.Errorf("bob arriving while ann's run is prepared: %v, %v; want nothing", l, ch)
		}
		g.release <- struct{}{}
		return ch
	}
	handed := func(ch <-chan *Live, id string) {
		t.Helper()
		select {
		case l, ok := <-ch:
			if id == "" && ok {
				t.Errorf("handed run %s, want none", l.ID)
			}
			if id != "" && (!ok || l.ID != id) {
				t.Errorf("handed %v (%v), want run %s", l, ok, id)
			}
		case <-time.After(time.Minute):
			t.Fatal("nothing handed over")
		}
	}

	// Started by a view.
	g.arm()
	subc := make(chan *UserRun, 1)
	go func() {
		run, err := ann.Submit(testJob(200, 0), StartOptions{})
		if err != nil {
			t.Error(err)
		}
		subc <- run
	}()
	ch := held()
	first := <-subc
	handed(ch, first.ID)

	// Started from the queue.
	second, err := ann.Submit(testJob(1, 0), StartOptions{})
	if !errors.Is(err, ErrQueued) {
		t.Fatalf("second run: %v, want it queued", err)
	}
	g.arm()
	if err := ann.Stop(ctx, first.ID); err != nil {
		t.Fatal(err)
	}
	handed(held(), second.ID)
	mustUserWait(t, second)

	// A start that fails.
	g.arm()
	bad := testJob(1, 0)
	bad.Data.Path = "no-such-data"
	go func() {
		if _, err := ann.Submit(bad, StartOptions{}); err == nil {
			t.Error("a job on unknown data started")
		}
	}()
	handed(held(), "")
}
