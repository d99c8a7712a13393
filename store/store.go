package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Errors returned by the store. Test for them with errors.Is; the returned
// errors wrap them with the id or file they concern.
var (
	// ErrNotFound: no run, stage or checkpoint has the given id.
	ErrNotFound = errors.New("not found")
	// ErrAmbiguous: an id prefix matches more than one run.
	ErrAmbiguous = errors.New("ambiguous id prefix")
	// ErrInvalid: an argument is out of range, such as an unknown status.
	ErrInvalid = errors.New("invalid argument")
	// ErrCorrupt: the database file or a checkpoint file is damaged.
	ErrCorrupt = errors.New("corrupt")
	// ErrNewerSchema: the database was written by a newer thaw.
	ErrNewerSchema = errors.New("store was written by a newer version of thaw")
	// ErrLive: the run is running or paused in a live process.
	ErrLive = errors.New("run is live")
	// ErrNotLive: the run is no longer running or paused, for example
	// because another process marked it interrupted.
	ErrNotLive = errors.New("run is not running")
)

// DefaultGrace is how long a running run may go without a heartbeat before
// [Open] or [Store.MarkStale] declares it interrupted (at once, when its
// process ran on this machine and is gone; see [Judge]). Writers should call
// [Store.Heartbeat] several times within it; every few seconds is plenty.
const DefaultGrace = 30 * time.Second

// Store is the persistent record of runs, metrics and checkpoints: one
// database file and a folder per run under one root directory. A Store is
// safe for concurrent use by several goroutines, and several processes may
// open the same directory at once.
type Store struct {
	dir      string
	db       *sql.DB
	grace    time.Duration
	now      func() time.Time
	testNow  bool // now is a test's clock: Now answers with it, not the database's
	recovery Recovery
	readOnly bool // opened by OpenReadOnly: every write fails with ErrReadOnly

	// AddMetrics's multi-row statements, prepared on first use.
	stmtMu sync.Mutex
	stmts  map[stmtKey]*sql.Stmt
}

// Option changes how [Open] opens a store.
type Option func(*Store)

// WithGrace sets how old a running run's heartbeat may be before the run is
// declared interrupted. Zero or negative means [DefaultGrace].
func WithGrace(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.grace = d
		}
	}
}

// withClock replaces time.Now, for tests.
func withClock(now func() time.Time) Option {
	return func(s *Store) { s.now, s.testNow = now, true }
}

// DefaultDir returns where the store lives unless the user says otherwise:
// $THAW_STORE if set, else $XDG_DATA_HOME/thaw, else ~/.local/share/thaw.
// It returns an error only when none of them is set and the home directory
// is unknown.
func DefaultDir() (string, error) {
	if d := os.Getenv("THAW_STORE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "thaw"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("store location: %w", err)
	}
	return filepath.Join(home, ".local", "share", "thaw"), nil
}

// Open opens the store in dir, creating dir (mode 0700) and the database
// (mode 0600) when they do not exist, and brings the schema up to date.
//
// Open also recovers from a crash of an earlier process; [Store.Recovery]
// says what it did:
//   - a run that is running or paused but whose heartbeat is older than the
//     grace period (see [WithGrace]) becomes interrupted;
//   - temporary checkpoint files in the folders of runs that are not live are
//     removed;
//   - a checkpoint whose file is missing or has the wrong size is marked bad.
//     Its hash is checked later, by [Store.OpenCheckpoint], because hashing
//     every checkpoint would make Open as slow as reading them all;
//   - files under runs/ that the store does not know, in the folders of runs
//     that are not live, are moved to quarantine/ with their relative path,
//     never deleted. Files elsewhere in dir are left alone.
//
// Open returns an error wrapping [ErrCorrupt] when the database file is
// truncated or is not a database, and [ErrNewerSchema] when a newer thaw
// wrote it.
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, grace: DefaultGrace, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.dir = abs
	path := filepath.Join(abs, dbFile)
	if err := checkFile(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// Create the file ourselves so that it gets mode 0600; SQLite gives its
	// -wal and -shm files the same mode as the database.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	f.Close()
	db, err := sql.Open(driverName, dsn(path))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.db = db
	ctx := context.Background()
	if err := s.migrate(ctx); err != nil {
		db.Close()
		if isCorrupt(err) {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.recover(ctx); err != nil {
		db.Close()
		if isCorrupt(err) {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	return s, nil
}

// Close closes the database. Files are always complete on disk, so nothing
// else needs flushing.
func (s *Store) Close() error {
	return s.db.Close()
}

// Dir returns the absolute path of the store's root directory.
func (s *Store) Dir() string { return s.dir }

// Path returns the absolute path of a file given relative to the store root,
// such as [Checkpoint].Path.
func (s *Store) Path(rel string) string {
	return filepath.Join(s.dir, filepath.FromSlash(rel))
}

// tx runs fn in a write transaction and commits it. When the database stays
// locked past the busy timeout, which only a very long transaction in another
// process can cause, the whole transaction is retried a few times so that
// callers do not see "database is locked".
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	const attempts = 5
	var err error
	for i := 0; i < attempts; i++ {
		err = s.tryTx(ctx, fn)
		if err == nil || !isBusy(err) {
			return storageError(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(i+1) * 50 * time.Millisecond):
		}
	}
	return err
}

func (s *Store) tryTx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.readOnly {
		return ErrReadOnly
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs one statement in a transaction of its own, retrying like tx.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, q, args...)
		return err
	})
	return res, err
}

// ms converts a time to the stored form, milliseconds since the epoch.
func ms(t time.Time) int64 { return t.UnixMilli() }

// fromMS converts a stored time back; NULL becomes the zero time.
func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64)
}
