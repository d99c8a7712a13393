package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// fired waits up to d for a value on ch and reports whether one came.
func fired(ch <-chan struct{}, d time.Duration) bool {
	select {
	case _, ok := <-ch:
		return ok
	case <-time.After(d):
		return false
	}
}

// TestWatchOtherWriter: a store's watch fires when another handle, with
// connections of its own as another process's would be, creates a run,
// changes its status or adds metrics, and stays quiet while nothing
// changes (a heartbeat alone is no change).
func TestWatchOtherWriter(t *testing.T) {
	dialects(t, func(t *testing.T, p place) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		viewer, writer := p.mustOpen(t), p.mustOpen(t)
		ch := viewer.Watch(ctx)
		if !fired(ch, 3*time.Second) {
			t.Fatal("no first value after Watch")
		}
		if fired(ch, 1500*time.Millisecond) {
			t.Fatal("the watch fired while nothing changed")
		}
		r := mustRun(t, writer, "elsewhere")
		if !fired(ch, 2*time.Second) {
			t.Fatal("a run created by another handle was not announced")
		}
		if err := writer.AddMetrics(ctx, r.ID, []Metric{{Name: "loss", Step: 1, Value: 0.5}, {Name: "acc", Step: 1, Value: 0.5}}); err != nil {
			t.Fatal(err)
		}
		if !fired(ch, 2*time.Second) {
			t.Fatal("metrics added by another handle were not announced")
		}
		if p.dialect == "postgres" {
			// SQLite sees any commit; PostgreSQL's trigger leaves
			// heartbeats out.
			if err := writer.Heartbeat(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
			if fired(ch, 1500*time.Millisecond) {
				t.Fatal("a heartbeat alone was announced")
			}
		}
		if err := writer.SetStatus(ctx, r.ID, "done", ""); err != nil {
			t.Fatal(err)
		}
		if !fired(ch, 2*time.Second) {
			t.Fatal("a status set by another handle was not announced")
		}
		cancel()
		if _, ok := <-ch; ok {
			if _, ok := <-ch; ok {
				t.Fatal("the channel is not closed after ctx is done")
			}
		}
	})
}

// TestWatchReconnect: when the LISTEN connection is cut, the watch
// reconnects and fires, for the watcher to read everything again, and
// then hears changes as before.
func TestWatchReconnect(t *testing.T) {
	p := newPlace(t, "postgres")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viewer, writer := p.mustOpen(t), p.mustOpen(t)
	ch := viewer.Watch(ctx)
	if !fired(ch, 3*time.Second) {
		t.Fatal("no first value after Watch")
	}
	pid := viewer.watch.pid.Load()
	db, err := sql.Open("pgx", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ok bool
	if err := db.QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, int(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the LISTEN connection %d: %v %v", pid, ok, err)
	}
	if !fired(ch, 3*time.Second) {
		t.Fatal("no value after the LISTEN connection was cut and came back")
	}
	if got := viewer.watch.pid.Load(); got == pid {
		t.Fatalf("still listening on process %d", pid)
	}
	mustRun(t, writer, "after")
	if !fired(ch, 2*time.Second) {
		t.Fatal("a run created after the reconnection was not announced")
	}
}

// TestWatchStale: on PostgreSQL a heartbeat is not announced, but a live
// run that stops sending them is, once when it turns doubtful and once
// when its grace is over, without anything written; a run that ended is
// not.
func TestWatchStale(t *testing.T) {
	p := newPlace(t, "postgres")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	viewer, writer := p.mustOpen(t, WithGrace(2*time.Second)), p.mustOpen(t)
	ch := viewer.Watch(ctx)
	if !fired(ch, 3*time.Second) {
		t.Fatal("no first value after Watch")
	}
	r := mustRun(t, writer, "dies")
	if !fired(ch, 2*time.Second) {
		t.Fatal("a new run was not announced")
	}
	if err := writer.Heartbeat(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if fired(ch, 500*time.Millisecond) {
		t.Fatal("a heartbeat was announced")
	}
	start := time.Now()
	if !fired(ch, 5*time.Second) {
		t.Fatal("a run without heartbeats was not announced as doubtful")
	}
	if !fired(ch, 5*time.Second) {
		t.Fatal("a run without heartbeats was not announced past its grace")
	}
	t.Logf("doubtful and stale announced within %v", time.Since(start).Round(time.Millisecond))
	if fired(ch, 2500*time.Millisecond) {
		t.Fatal("a stale run was announced again")
	}

	r2 := mustRun(t, writer, "ends")
	if err := writer.SetStatus(ctx, r2.ID, "done", ""); err != nil {
		t.Fatal(err)
	}
	if !fired(ch, 2*time.Second) {
		t.Fatal("a run's end was not announced")
	}
	// Its start's and its end's values may come apart (by more than a
	// few hundred milliseconds on a loaded machine): drain them until a
	// second passes quietly, well before a doubtful run would be told
	// (its doubt period, two seconds here, then the next tick).
	for fired(ch, time.Second) {
	}
	if fired(ch, 4*time.Second) {
		t.Fatal("a run that ended was announced as stale")
	}
}
