package store

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"thaw/trainer"
)

// How a store learns that another process changed its runs:
//
//   - PostgreSQL: triggers NOTIFY on the channel pgChannel when a run is
//     created, changed, deleted, or gains metrics (see the dialect file),
//     whichever process wrote it; the store LISTENs on a connection of its
//     own, outside the pool, which only waits while nothing changes. A
//     LISTEN connection misses what is sent while it is down, so after
//     every (re)connection the watchers are told that anything may have
//     changed. A heartbeat alone tells the watchers nothing: a viewer
//     re-reading every few seconds per live run would cost as much as
//     polling. But a run whose heartbeats stop reads first as doubtful
//     and then as interrupted although nothing was written: the listener
//     keeps when it last heard from each live run and tells the watchers
//     when such a run passes the doubt period and the grace (a local
//     timer; no query).
//   - SQLite: one machine, no notifications across processes. A connection
//     of the pool is held and asked PRAGMA data_version every
//     sqliteWatchEvery: the number changes when another connection, of this
//     process or another, commits to the file. It reads SQLite's shared
//     memory, not the database.

// sqliteWatchEvery is how often an SQLite store's watcher looks for
// commits by other connections.
const sqliteWatchEvery = time.Second

// listenRetry bounds the wait between attempts to reconnect a lost LISTEN
// connection: it starts at listenRetry/50 and doubles up to listenRetry.
const listenRetry = 5 * time.Second

// heardEvery is how often the listener looks for live runs it has not
// heard from for the doubt period or the grace, by its own clock.
const heardEvery = time.Second

// watch is a store's watchers, fed by one listener that runs while there
// is at least one. Its fields are guarded by mu.
type watch struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
	stop context.CancelFunc // the listener's

	pid atomic.Uint32 // the LISTEN connection's server process, for tests
}

// Watch returns a channel that receives a value (and holds at most one)
// whenever the store's runs may have changed, by this process or any
// other: a run created, deleted, changed (not its heartbeat alone) or with
// new metrics. A value also comes soon after Watch is called, and after
// the store lost its connection for notifications and got it back: the
// watcher should then read again whatever it shows. The channel is closed
// when ctx is done. See above for how each database is watched.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	w := &s.watch
	w.mu.Lock()
	if w.subs == nil {
		w.subs = map[chan struct{}]struct{}{}
	}
	w.subs[ch] = struct{}{}
	if w.stop == nil {
		lctx, stop := context.WithCancel(context.Background())
		w.stop = stop
		if s.pgCfg != nil {
			go s.listenPostgres(lctx)
		} else {
			go s.watchSQLite(lctx)
		}
	}
	w.mu.Unlock()
	context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.subs, ch)
		close(ch)
		if len(w.subs) == 0 && w.stop != nil {
			w.stop()
			w.stop = nil
		}
	})
	return ch
}

// changed tells every watcher, never waiting for one.
func (s *Store) changed() {
	w := &s.watch
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs {
		select {
		case ch <- struct{}{}:
		default: // a change is already pending there
		}
	}
}

// listenPostgres LISTENs until ctx is done, reconnecting when the
// connection is lost, and tells the watchers of every notification for
// this store's schema and of every (re)connection.
func (s *Store) listenPostgres(ctx context.Context) {
	wait := listenRetry / 50
	for ctx.Err() == nil {
		if s.listenOnce(ctx) {
			wait = listenRetry / 50
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, listenRetry)
	}
}

// listenOnce connects, LISTENs and passes notifications on until the
// connection fails or ctx is done. It reports whether it got as far as
// listening.
func (s *Store) listenOnce(ctx context.Context) bool {
	conn, err := pgx.ConnectConfig(ctx, s.pgCfg.Copy())
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	var schema string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return false
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgChannel); err != nil {
		return false
	}
	s.watch.pid.Store(conn.PgConn().PID())
	// Whatever happened before LISTEN took effect was not heard.
	s.changed()
	h := &heard{at: map[string]heardRun{}}
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.judgeHeard(hctx, h)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		f := strings.Fields(n.Payload)
		if len(f) != 3 || f[0] != schema {
			continue
		}
		id, what := f[1], f[2]
		h.mu.Lock()
		switch what {
		case "heartbeat", "metrics", string(trainer.StatusRunning), string(trainer.StatusPaused):
			h.at[id] = heardRun{at: time.Now()} // alive
		default: // ended, queued or deleted: nothing to judge
			delete(h.at, id)
		}
		h.mu.Unlock()
		if what != "heartbeat" {
			s.changed()
		}
	}
}

// heard is when the listener last heard from each live run. Its fields
// are guarded by mu.
type heard struct {
	mu sync.Mutex
	at map[string]heardRun
}

type heardRun struct {
	at      time.Time
	doubted bool // the watchers were told it turned doubtful
}

// judgeHeard tells the watchers, every heardEvery until ctx is done, when
// a live run has not been heard from for the doubt period (see [Judge])
// or the grace, with a second's margin for the database's clock, which
// judges. A run past its grace is forgotten.
func (s *Store) judgeHeard(ctx context.Context, h *heard) {
	doubt := min(DefaultDoubt, s.grace/2) + time.Second
	grace := s.grace + time.Second
	t := time.NewTicker(heardEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tell := false
		h.mu.Lock()
		for id, r := range h.at {
			switch age := time.Since(r.at); {
			case age > grace:
				delete(h.at, id)
				tell = true
			case age > doubt && !r.doubted:
				h.at[id] = heardRun{at: r.at, doubted: true}
				tell = true
			}
		}
		h.mu.Unlock()
		if tell {
			s.changed()
		}
	}
}

// watchSQLite asks PRAGMA data_version every sqliteWatchEvery on a
// connection of its own until ctx is done.
func (s *Store) watchSQLite(ctx context.Context) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return
	}
	defer conn.Close()
	var last int64
	if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&last); err != nil {
		return
	}
	s.changed()
	t := time.NewTicker(sqliteWatchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var v int64
		if err := conn.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v); err != nil {
			return // the store is closed
		}
		if v != last {
			last = v
			s.changed()
		}
	}
}
