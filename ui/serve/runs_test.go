package serve

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"thaw/assets"
	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
	"thaw/ui"
)

// runsServer is a test server whose sessions run the real workbench on a
// real store.
type runsServer struct {
	*testServer
	runs *Runs
	st   *store.Store
	eng  *engine.Engine
}

func startRunsServer(t *testing.T, keys []testKey, edit func(*engine.Limits)) *runsServer {
	t.Helper()
	return startRunsServerZoo(t, keys, edit, assets.Zoo())
}

// startRunsServerZoo is startRunsServer with the base models of zoo.
func startRunsServerZoo(t *testing.T, keys []testKey, edit func(*engine.Limits), zoo fs.FS) *runsServer {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	var limits engine.Limits
	if edit != nil {
		edit(&limits)
	}
	rs := &runsServer{st: st}
	// Cleanups run last first: the server goes, then the runs, then the
	// store.
	t.Cleanup(func() { st.Close() })
	rs.testServer = startServer(t, keys, func(c *Config) {
		// The engine logs to the server's log.
		cat := &assets.Catalog{Zoo: zoo, NoFiles: true}
		rs.eng = engine.New(st, cat, engine.WithLimits(limits), engine.WithLogger(slog.New(c.Logger)))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := rs.eng.Shutdown(ctx); err != nil {
				t.Errorf("runs shutdown: %v", err)
			}
		})
		runs, err := NewRuns(rs.eng, RunsConfig{Home: filepath.Join(dir, "files")})
		if err != nil {
			t.Fatal(err)
		}
		rs.runs = runs
		c.Model = Workbench(runs, ui.Options{})
		c.Files = runs.Files
	})
	rs.eng.OnQueuedStart(func(r *engine.UserRun) { rs.Send(r.Owner, AttachRequest(r)) })
	return rs
}

// statusRe reads the header's run status: "run 0123456789ab running stage 1
// 12/345", or "run 0123456789ab stopped" once it has ended.
var statusRe = regexp.MustCompile(`run ([0-9a-z]{12}) ([a-z]+)(?: stage \d+ (\d+)/\d+)?`)

// runStatus returns the run status on the screen, if any; step is -1 when
// the header shows none.
func runStatus(screen string) (short, status string, step int, ok bool) {
	m := statusRe.FindStringSubmatch(screen)
	if m == nil {
		return "", "", 0, false
	}
	step = -1
	if m[3] != "" {
		step, _ = strconv.Atoi(m[3])
	}
	return m[1], m[2], step, true
}

// startRun drives the workbench from the Models screen: the model at
// index i of the zoo, its card's target task, the gradual preset; enter
// on Plan once the data has loaded. It returns the screen's short run id.
func startRun(t *testing.T, tm *terminal, i int) string {
	t.Helper()
	tm.waitScreen(t, "digits-cnn", "mnist8-mlp")
	for range i {
		tm.stdin.Write([]byte("j"))
	}
	tm.stdin.Write([]byte("\r")) // Models → Blocks
	tm.waitScreen(t, "trainable")
	tm.stdin.Write([]byte("\r"))  // Blocks → Plan
	tm.waitScreen(t, " train / ") // the data has loaded
	tm.stdin.Write([]byte("\r"))  // start
	deadline := time.Now().Add(waitLimit)
	for {
		s := tm.screen()
		if short, _, _, ok := runStatus(s); ok {
			return short
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run started; screen:\n%s", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitStep waits until the screen shows run short running at a step past
// after. (Two runs started within a millisecond share their short id; the
// wait goes on while the screen shows the other.)
func waitStep(t *testing.T, tm *terminal, short string, after int) int {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := tm.screen()
		got, status, step, ok := runStatus(s)
		if ok && got == short && step > after && status == string(trainer.StatusRunning) {
			return step
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s never ran past step %d on screen:\n%s", short, after, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunOutlivesConnection: a run started over SSH goes on when its user
// quits, and when the connection drops; each next session of its owner
// shows it again, its step count advanced.
func TestRunOutlivesConnection(t *testing.T) {
	if raceEnabled {
		t.Skip("preparing the CNN's job takes minutes under the race detector")
	}
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	tm := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	short := startRun(t, tm, 0) // digits-cnn: minutes of training
	step := waitStep(t, tm, short, 0)

	runs, err := rs.st.ListRuns(context.Background(), store.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("stored runs: %v, %v; want one", runs, err)
	}
	id := runs[0].ID
	if runs[0].Owner != alice.fp {
		t.Errorf("run owner %q, want alice's key %s", runs[0].Owner, alice.fp)
	}
	run, ok := rs.runs.For(User{Fingerprint: alice.fp}).Lookup(id)
	if !ok {
		t.Fatal("the server does not train the run")
	}
	// advance waits for the run to move on with no session watching.
	advance := func(past int) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			if p, ok := run.Live().Latest(); ok && p.Step > past {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the run did not pass step %d with no session", past)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// Quitting says the run goes on, and it does.
	tm.stdin.Write([]byte("q"))
	tm.waitScreen(t, "goes on training on the server")
	tm.stdin.Write([]byte("y"))
	if code := tm.wait(t); code != 0 {
		t.Errorf("exit status %d after quitting, want 0", code)
	}
	advance(step + 2)
	c2 := rs.mustDial(t, alice)
	tm2 := openTerminal(t, c2, 120, 40)
	step2 := waitStep(t, tm2, short, step+2)

	// The connection drops: the run goes on too.
	c2.Close()
	advance(step2 + 2)
	tm3 := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	step3 := waitStep(t, tm3, short, step2+2)
	t.Logf("step %d when alice quit, %d when she came back, %d after her connection dropped and she came back",
		step, step2, step3)
}

// longJob is mnist8-mlp on uci-digits for epochs epochs per stage of the
// gradual preset: small to prepare, as long as asked to train.
func longJob(t *testing.T, epochs int) trainer.Job {
	t.Helper()
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Seed: 1}
	if err := job.SetPlan("gradual", 0, epochs, 0); err != nil {
		t.Fatal(err)
	}
	// The preset as it expanded before its cadence and patience: an
	// evaluation every epoch and no early stop, so the run lasts its
	// whole length.
	job.Preset.Legacy = true
	return job
}

func userOf(k testKey) User { return User{Fingerprint: k.fp, Name: "test"} }

// waitStatus waits until the stored run id has status want.
func waitStatus(t *testing.T, st *store.Store, id string, want trainer.Status) store.Run {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		r, err := st.Run(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == want {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s is %s, want %s", store.Short(id), r.Status, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunsBelongToTheirOwner(t *testing.T) {
	alice, bob, op := newKey(t, "alice"), newKey(t, "bob"), newKey(t, "operator")
	for _, share := range []bool{false, true} {
		t.Run("share="+strconv.FormatBool(share), func(t *testing.T) {
			rs := startRunsServer(t, []testKey{alice, bob, op}, func(c *engine.Limits) {
				c.Share = share
				c.Operator = op.fp
			})
			ctx := context.Background()
			run, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 100000), engine.StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// A run of thaw train on the same store: no owner.
			local, err := rs.eng.Start(ctx, longJob(t, 100000), engine.StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { local.Control.Stop(); local.Wait() })

			view := func(k testKey) *engine.UserView { return rs.runs.For(userOf(k)) }
			ids := func(k testKey) []string {
				rr, err := view(k).ListRuns(ctx, store.RunFilter{})
				if err != nil {
					t.Fatal(err)
				}
				var out []string
				for _, r := range rr {
					out = append(out, r.ID)
				}
				slices.Sort(out)
				return out
			}
			both := []string{run.ID, local.ID}
			slices.Sort(both)
			cases := []struct {
				who  testKey
				want []string
			}{
				{alice, []string{run.ID}},
				{bob, nil},
				{op, []string{local.ID}},
			}
			for _, c := range cases {
				want := c.want
				if share {
					want = both
				}
				if got := ids(c.who); !slices.Equal(got, want) {
					t.Errorf("%s lists %v, want %v", c.who.line[len(c.who.line)-5:], got, want)
				}
			}

			// Bob cannot stop, delete, resume or branch alice's run;
			// without sharing he cannot even see that it exists.
			wantErr := store.ErrNotFound
			if share {
				wantErr = engine.ErrForbidden
			}
			if err := view(bob).Stop(ctx, run.ID); !errors.Is(err, wantErr) {
				t.Errorf("bob stopping alice's run: %v, want %v", err, wantErr)
			}
			if err := view(bob).Delete(ctx, run.ID); !errors.Is(err, wantErr) {
				t.Errorf("bob deleting alice's run: %v, want %v", err, wantErr)
			}
			if _, err := rs.runs.For(userOf(bob)).Branch(ctx, run.ID, engine.BranchPoint{Stage: 1}, nil, engine.StartOptions{}); !errors.Is(err, wantErr) {
				t.Errorf("bob branching alice's run: %v, want %v", err, wantErr)
			}
			if err := view(alice).Stop(ctx, local.ID); !errors.Is(err, wantErr) {
				t.Errorf("alice stopping the operator's run: %v, want %v", err, wantErr)
			}
			if _, err := view(bob).Run(ctx, run.ID); share != (err == nil) {
				t.Errorf("bob reading alice's run: %v (share %v)", err, share)
			}
			if r := rs.runs.For(userOf(bob)).Attach(); r != nil {
				t.Errorf("bob's session would attach to run %s", r.ID)
			}

			// Bob's workbench does not show alice's run; alice's does.
			tmBob := openTerminal(t, rs.mustDial(t, bob), 120, 40)
			s := tmBob.waitScreen(t, "digits-cnn")
			if _, _, _, ok := runStatus(s); ok {
				t.Errorf("bob's workbench shows a run:\n%s", s)
			}
			tmAlice := openTerminal(t, rs.mustDial(t, alice), 120, 40)
			waitStep(t, tmAlice, engine.Short(run.ID), 0)

			// The operator stops the run of thaw train, through the store,
			// and alice her own.
			if err := view(op).Stop(ctx, local.ID); err != nil {
				t.Errorf("operator stopping a run of thaw train: %v", err)
			}
			if err := view(alice).Stop(ctx, run.ID); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, rs.st, run.ID, trainer.StatusStopped)
			waitStatus(t, rs.st, local.ID, trainer.StatusStopped)
		})
	}
}

// TestRunLimits: beyond the per-user limit a run is queued, shown as
// queued, and starts when the user's running run ends; its owner's
// session then shows it.
func TestRunLimits(t *testing.T) {
	alice, bob := newKey(t, "alice"), newKey(t, "bob")
	rs := startRunsServer(t, []testKey{alice, bob}, func(c *engine.Limits) { c.MaxPerUser = 1; c.MaxTotal = 2 })
	ctx := context.Background()
	first, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 100), engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 100), engine.StartOptions{})
	if !errors.Is(err, engine.ErrQueued) {
		t.Fatalf("second run of alice: %v, want it queued", err)
	}
	waitStatus(t, rs.st, second.ID, trainer.StatusQueued)
	// Bob is within both limits.
	bobs, err := rs.runs.For(userOf(bob)).Submit(longJob(t, 100), engine.StartOptions{})
	if err != nil {
		t.Fatalf("bob's run: %v", err)
	}
	// Now the total is reached: bob's next one waits too.
	if _, err := rs.runs.For(userOf(bob)).Submit(longJob(t, 100), engine.StartOptions{}); !errors.Is(err, engine.ErrQueued) {
		t.Fatalf("bob's second run: %v, want it queued", err)
	}
	if _, err := rs.runs.For(userOf(alice)).Resume(ctx, first.ID, engine.StartOptions{}); err == nil {
		t.Error("resuming a live run succeeded")
	}

	tm := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	waitStep(t, tm, engine.Short(first.ID), 0)
	first.Live().Control.Stop()
	waitStatus(t, rs.st, first.ID, trainer.StatusStopped)
	waitStatus(t, rs.st, second.ID, trainer.StatusRunning)
	// Alice's workbench moves to the run that has just started.
	waitStep(t, tm, engine.Short(second.ID), 0)
	bobs.Live().Control.Stop()
	rs.waitLog(t, "run queued", "from the queue")
}

// finalWeights returns the weights of run id's last checkpoint.
func finalWeights(t *testing.T, st *store.Store, id string) (int64, []trainer.SafeTensor) {
	t.Helper()
	ck, err := st.LastGoodCheckpoint(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	c, err := st.LoadCheckpoint(context.Background(), ck.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ck.Step, c.Weights
}

// TestShutdownStopsRunsResumably: the server's shutdown stops a run
// mid-training with a checkpoint; resuming it ends at the same weights,
// bit for bit, as the same job run without a stop.
func TestShutdownStopsRunsResumably(t *testing.T) {
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	ctx := context.Background()
	run, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 3), engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitLimit)
	for {
		if p, ok := run.Live().Latest(); ok && p.Step > 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not start training")
		}
		time.Sleep(5 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := rs.eng.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	stopped := waitStatus(t, rs.st, run.ID, trainer.StatusStopped)
	stopStep, _ := finalWeights(t, rs.st, run.ID)
	if stopStep == 0 {
		t.Fatal("the stopped run has no checkpoint past step 0")
	}
	if _, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 3), engine.StartOptions{}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("start after shutdown: %v, want engine.ErrClosed", err)
	}

	// thaw resume does this: the engine continues the stored run.
	resumed, err := rs.eng.Resume(ctx, run.ID, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := resumed.Wait(); err != nil {
		t.Fatal(err)
	}
	rec, err := store.DecodeJob(stopped)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := rs.eng.Start(ctx, rec.Job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whole.Wait(); err != nil {
		t.Fatal(err)
	}
	stepA, a := finalWeights(t, rs.st, run.ID)
	stepB, b := finalWeights(t, rs.st, whole.ID)
	if stepA != stepB || stepA <= stopStep || len(a) != len(b) || len(a) == 0 {
		t.Fatalf("resumed run ends at step %d with %d tensors, uninterrupted at %d with %d", stepA, len(a), stepB, len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(a[i].Data, b[i].Data) {
			t.Errorf("tensor %s differs between the resumed and the uninterrupted run", a[i].Name)
		}
	}
	t.Logf("stopped at step %d of %d; resumed and uninterrupted runs end at step %d with the same %d tensors",
		stopStep, stepA, stepA, len(a))
}

// TestUsersCannotNameServerFiles: a job or a workbench naming a file or
// folder of the server is refused before anything is read.
func TestUsersCannotNameServerFiles(t *testing.T) {
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	secret := filepath.Join(t.TempDir(), "secret.csv")
	if err := os.WriteFile(secret, []byte("f0,label\n1,a\n2,b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []trainer.Job{
		{Model: "mnist8-mlp", Data: trainer.DataRef{Path: secret}},
		{Model: filepath.Dir(secret), Data: trainer.DataRef{Path: "uci-digits"}},
		{Model: "/", Data: trainer.DataRef{Path: "/etc/passwd"}},
	}
	for _, job := range cases {
		job.Seed = 1
		if err := job.SetPlan("head", 0, 1, 0); err != nil {
			t.Fatal(err)
		}
		_, err := rs.runs.For(userOf(alice)).Submit(job, engine.StartOptions{})
		var ie trainer.InputError
		if !errors.As(err, &ie) || !strings.Contains(err.Error(), "only the") {
			t.Errorf("job on %s / %s: %v, want it refused as not offered", job.Model, job.Data.Path, err)
		}
	}
	if runs, _ := rs.st.ListRuns(context.Background(), store.RunFilter{}); len(runs) != 0 {
		t.Errorf("%d runs recorded", len(runs))
	}
	// The workbench's catalogue is the same: its Plan screen cannot read
	// the file either.
	tm := openTerminal(t, rs.mustDial(t, alice), 160, 40)
	tm.waitScreen(t, "mnist8-mlp")
	tm.stdin.Write([]byte("jj\r")) // mnist8-mlp → Blocks
	tm.waitScreen(t, "trainable")
	tm.stdin.Write([]byte("\r")) // → Plan
	tm.waitScreen(t, " train / ")
	tm.stdin.Write([]byte("e\x15" + secret + "\r")) // edit the data field
	tm.waitScreen(t, "only the built-in tasks are offered here")
}

// TestPlanFilesStayHome: the Plan screen saves and loads plan files in the
// user's own folder only.
func TestPlanFilesStayHome(t *testing.T) {
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	outside := filepath.Join(t.TempDir(), "outside.json")
	tm := openTerminal(t, rs.mustDial(t, alice), 160, 40)
	tm.waitScreen(t, "mnist8-mlp")
	tm.stdin.Write([]byte("jj\r")) // mnist8-mlp → Blocks
	tm.waitScreen(t, "trainable")
	tm.stdin.Write([]byte("\r")) // → Plan
	tm.waitScreen(t, " train / ")
	for _, p := range []string{outside, "../../escape.json", "plans/../../../escape.json"} {
		tm.stdin.Write([]byte("s\x15" + p + "\r"))
		tm.waitScreen(t, "save plan:")
		tm.stdin.Write([]byte("\x1b")) // close the prompt if it stayed open
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("a plan was saved outside the user's folder, to %s", outside)
	}
	if m, _ := filepath.Glob(filepath.Join(rs.runs.cfg.Home, "*.json")); len(m) > 0 {
		t.Errorf("plans escaped the user's folder: %v", m)
	}
	tm.stdin.Write([]byte("s\x15mine.json\r"))
	tm.waitScreen(t, "saved the plan to mine.json")
	dir, _ := rs.runs.PlanDir(userOf(alice))
	if _, err := os.Stat(filepath.Join(dir, "mine.json")); err != nil {
		t.Errorf("the plan is not in the user's folder: %v", err)
	}
	tm.stdin.Write([]byte("L\x15/etc/passwd\r"))
	tm.waitScreen(t, "load plan:")
}

// TestRunOutlivesItsSession: a run does not stop with the context it was
// started with (a session's): it goes on when the user leaves. (A sweep is
// the session's: UserView.RunSweep stops with its context.)
func TestRunOutlivesItsSession(t *testing.T) {
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, func(c *engine.Limits) { c.MaxPerUser = 1 })
	eng := rs.runs.For(userOf(alice))

	ctx, cancel := context.WithCancel(context.Background())
	l, err := eng.Start(ctx, longJob(t, 100), engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(waitLimit)
	for p, ok := l.Latest(); !ok || p.Step < 20; p, ok = l.Latest() {
		if st, _ := rs.st.Run(context.Background(), l.ID); st.Status != trainer.StatusRunning {
			t.Fatalf("the run is %s after its session's context ended", st.Status)
		}
		if time.Now().After(deadline) {
			t.Fatal("the run did not reach step 20")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Control.Stop()
	waitStatus(t, rs.st, l.ID, trainer.StatusStopped)
}

// TestTwoSessionsWatchOneRun: a second session of a run's owner is shown
// the run, with its model and data, while the first still watches it;
// each session has its own feed of the run's reports, and a session that
// goes away leaves nothing subscribed behind.
func TestTwoSessionsWatchOneRun(t *testing.T) {
	if raceEnabled {
		t.Skip("preparing the CNN's job takes minutes under the race detector")
	}
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	tm := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	short := startRun(t, tm, 0) // digits-cnn: minutes of training
	step := waitStep(t, tm, short, 0)
	runs, err := rs.st.ListRuns(context.Background(), store.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("stored runs: %v, %v; want one", runs, err)
	}
	run, ok := rs.runs.For(User{Fingerprint: alice.fp}).Lookup(runs[0].ID)
	if !ok {
		t.Fatal("the server does not train the run")
	}
	l := run.Live()
	feeds := func(want int) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for l.Subscribers() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d feeds of the run open, want %d", l.Subscribers(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	feeds(2) // the run's own and the first session's

	c2 := rs.mustDial(t, alice)
	tm2 := openTerminal(t, c2, 120, 40)
	tm2.waitScreen(t, runs[0].Model+" → ")
	feeds(3)
	// Both screens go on.
	step2 := waitStep(t, tm2, short, step)
	waitStep(t, tm, short, step2)
	waitStep(t, tm2, short, step2)

	c2.Close()
	feeds(2)
	waitStep(t, tm, short, step2+1)
}

// TestRunsRefuseAFileReadingCatalogue: a server whose engine resolves
// names to files would let its users read the server's files; NewRuns
// refuses it.
func TestRunsRefuseAFileReadingCatalogue(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := engine.New(st, &assets.Catalog{Zoo: assets.Zoo()})
	if _, err := NewRuns(eng, RunsConfig{Home: t.TempDir()}); err == nil {
		t.Error("NewRuns took an engine whose catalogue reads files")
	}
}

// gatedZoo is a zoo whose next read of a model's weights, once armed,
// waits until released: a run's preparation held at will.
type gatedZoo struct {
	fs.FS
	weights string // the file held, such as mnist8-mlp/model.safetensors
	mu      sync.Mutex
	armed   bool
	held    chan struct{} // closed when a read is held
	release chan struct{}
	once    sync.Once
}

func newGatedZoo(t *testing.T, model string) *gatedZoo {
	g := &gatedZoo{FS: assets.Zoo(), weights: model + "/" + trainer.WeightsFile,
		held: make(chan struct{}), release: make(chan struct{})}
	t.Cleanup(g.open)
	return g
}

func (g *gatedZoo) arm() {
	g.mu.Lock()
	g.armed = true
	g.mu.Unlock()
}

// open releases the held read, if any, and every later one.
func (g *gatedZoo) open() { g.once.Do(func() { close(g.release) }) }

func (g *gatedZoo) Open(name string) (fs.File, error) {
	g.mu.Lock()
	hold := g.armed && name == g.weights
	if hold {
		g.armed = false
	}
	g.mu.Unlock()
	if hold {
		close(g.held)
		<-g.release
	}
	return g.FS.Open(name)
}

// TestSessionArrivingWhileARunIsPrepared: a session that arrives while a
// run of its user's is being prepared (held in reading the model's
// weights) shows Models, then the run as soon as it starts; another
// user's session arriving then shows no run.
func TestSessionArrivingWhileARunIsPrepared(t *testing.T) {
	alice, bob := newKey(t, "alice"), newKey(t, "bob")
	zoo := newGatedZoo(t, "mnist8-mlp")
	rs := startRunsServerZoo(t, []testKey{alice, bob}, nil, zoo)
	job := longJob(t, 1000)
	type submitted struct {
		run *engine.UserRun
		err error
	}
	subc := make(chan submitted, 1)
	zoo.arm()
	go func() {
		run, err := rs.runs.For(userOf(alice)).Submit(job, engine.StartOptions{})
		subc <- submitted{run, err}
	}()
	select {
	case <-zoo.held:
	case <-time.After(waitLimit):
		t.Fatal("the run's preparation never read the model's weights")
	}

	// The sessions have arrived once their workbenches show Models.
	tm := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	tmBob := openTerminal(t, rs.mustDial(t, bob), 120, 40)
	for _, s := range []string{tm.waitScreen(t, "digits-cnn", "mnist8-mlp"), tmBob.waitScreen(t, "digits-cnn", "mnist8-mlp")} {
		if _, _, _, ok := runStatus(s); ok {
			t.Fatalf("a session shows a run before it exists:\n%s", s)
		}
	}
	zoo.open()
	var sub submitted
	select {
	case sub = <-subc:
	case <-time.After(waitLimit):
		t.Fatal("the run did not start")
	}
	if sub.err != nil {
		t.Fatal(sub.err)
	}
	waitStep(t, tm, engine.Short(sub.run.ID), 0)
	if s := tmBob.screen(); strings.Contains(s, engine.Short(sub.run.ID)) {
		t.Errorf("bob's session shows alice's run:\n%s", s)
	}
	sub.run.Live().Control.Stop()
	waitStatus(t, rs.st, sub.run.ID, trainer.StatusStopped)
}
