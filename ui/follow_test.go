package ui

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
	"thaw/store/engine"
	"thaw/store/storetest"
	"thaw/trainer"
)

// The variables that make this test binary, run again, the other process
// of TestFollowSharedStore: it writes runs to the store and exits.
const (
	writerAddr = "THAW_TEST_WRITER_ADDR"
	writerRoot = "THAW_TEST_WRITER_ROOT"
	writerName = "THAW_TEST_WRITER_NAME"
)

// TestWriterProcess is not a test: run by TestFollowSharedStore as a
// process of its own, it records a finished and a queued run, named after
// $THAW_TEST_WRITER_NAME, in the store at $THAW_TEST_WRITER_ADDR.
func TestWriterProcess(t *testing.T) {
	addr := os.Getenv(writerAddr)
	if addr == "" {
		t.Skip("run by TestFollowSharedStore")
	}
	st, err := store.Open(addr, store.WithCheckpoints(os.Getenv(writerRoot)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	name := os.Getenv(writerName)
	r, err := st.CreateRun(ctx, store.Run{Name: name + "-done", Model: "mnist8-mlp", Dataset: "mnist8"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStatus(ctx, r.ID, trainer.StatusDone, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateRun(ctx, store.Run{Name: name + "-queued", Model: "mnist8-mlp", Dataset: "mnist8", Status: trainer.StatusQueued}); err != nil {
		t.Fatal(err)
	}
}

// queryCounter counts the statements a store sends while on.
type queryCounter struct {
	on atomic.Bool
	mu sync.Mutex
	qs []string
}

func (c *queryCounter) hook(q string) {
	if c.on.Load() {
		c.mu.Lock()
		c.qs = append(c.qs, strings.Join(strings.Fields(q), " "))
		c.mu.Unlock()
	}
}

// count counts the statements sent during d.
func (c *queryCounter) count(d time.Duration) []string {
	c.mu.Lock()
	c.qs = nil
	c.mu.Unlock()
	c.on.Store(true)
	time.Sleep(d)
	c.on.Store(false)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.qs
}

// TestFollowSharedStore: a workbench on a PostgreSQL store shows the runs
// another process writes within a second, sends no query while nothing
// changes, and after its LISTEN connection is cut reads everything again,
// so that runs written meanwhile appear too.
func TestFollowSharedStore(t *testing.T) {
	addr := storetest.Postgres(t)
	root := t.TempDir()
	var qc queryCounter
	st, err := store.Open(addr, store.WithCheckpoints(root), store.WithQueryHook(qc.hook))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := engine.New(st, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true, Backend: eng})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 30))
	scr := newScreenReader(tm.Output(), 120, 30)
	scr.waitFor(t, "digits-cnn")
	tm.Send(press("5")) // the Runs screen
	time.Sleep(1500 * time.Millisecond)

	idle := func(when string) {
		t.Helper()
		if qs := qc.count(3 * time.Second); len(qs) > 0 {
			t.Errorf("%s, the workbench sent %d statements in 3 s while nothing changed: %q", when, len(qs), qs)
		} else {
			t.Logf("%s: 0 statements in 3 s while nothing changed", when)
		}
	}
	idle("with no runs")

	// appears waits at most d for the screen to show every string of want.
	appears := func(d time.Duration, want ...string) (time.Duration, bool) {
		start := time.Now()
		for time.Since(start) < d {
			s := scr.pump()
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(s, w)
			}
			if ok {
				return time.Since(start), true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return time.Since(start), false
	}
	write := func(name string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestWriterProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), writerAddr+"="+addr, writerRoot+"="+root, writerName+"="+name)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the writer process: %v\n%s", err, out)
		}
	}

	write("far-away")
	if took, ok := appears(time.Second, "far-away-done", "far-away-queued"); !ok {
		t.Fatalf("runs written by another process did not appear within 1 s; screen:\n%s", scr.pump())
	} else {
		t.Logf("runs written by another process appeared %v after it exited", took.Round(time.Millisecond))
	}
	time.Sleep(time.Second)
	idle("with two runs")

	// Cut the LISTEN connection and write while it is down or coming
	// back: the workbench must read everything again once it listens.
	db, err := sql.Open("pgx", os.Getenv(storetest.Env))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The workbench's store is the only one listening in this test.
	var cut int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid))
		FROM pg_stat_activity WHERE query = 'LISTEN thaw_runs' AND datname = current_database() AND pid <> pg_backend_pid()`).Scan(&cut); err != nil {
		t.Fatal(err)
	}
	if cut < 1 {
		t.Fatal("no LISTEN connection to cut")
	}
	// Nothing changed, but what was sent while the connection was down
	// is lost: the workbench reads again (which also shows that the
	// counter counts).
	if qs := qc.count(1500 * time.Millisecond); len(qs) == 0 {
		t.Error("the workbench did not read again after its LISTEN connection came back")
	} else {
		t.Logf("after the LISTEN connection was cut: read again, %d statements", len(qs))
	}
	write("after-cut")
	if _, ok := appears(5*time.Second, "after-cut-done", "after-cut-queued"); !ok {
		t.Fatalf("runs written around a lost LISTEN connection did not appear; screen:\n%s", scr.pump())
	}
	time.Sleep(time.Second)
	idle("after the reconnection")

	if err := tm.Quit(); err != nil {
		t.Fatal(err)
	}
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
	cancel()
	checkNoLeak(t)
}
