package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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
	// ErrCheckpointRoot: the checkpoint root is not given where it must
	// be (a PostgreSQL store), does not exist, or is not the one the
	// store's checkpoints were written to.
	ErrCheckpointRoot = errors.New("no usable checkpoint root")
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

// Store is the persistent record of runs, metrics and checkpoints: a
// database, SQLite's file in the store's folder or a PostgreSQL database,
// and a folder per run under the checkpoint root. A Store is safe for
// concurrent use by several goroutines, and several processes (on several
// machines, with PostgreSQL) may open the same store at once.
type Store struct {
	dir      string // the checkpoint root
	db       *sql.DB
	d        *dialect
	root     string // the checkpoint root asked for by WithCheckpoints
	grace    time.Duration
	now      func() time.Time
	testNow  bool // now is a test's clock: Now answers with it, not the database's
	recovery Recovery
	readOnly bool // opened by OpenReadOnly: every write fails with ErrReadOnly

	pgCfg     *pgx.ConnConfig // a PostgreSQL store's address, for Watch's own connection
	queryHook func(string)    // see WithQueryHook
	watch     watch

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

// WithCheckpoints sets the checkpoint root: the folder that holds a folder
// per run with its checkpoint files, which must exist. Every process that
// opens the store must reach the same folder, so with PostgreSQL, whose
// writers may run on several machines, it is a shared file system and
// must be given. Empty means the default: the SQLite store's own folder.
func WithCheckpoints(dir string) Option {
	return func(s *Store) { s.root = dir }
}

// WithQueryHook has hook told of every statement and transaction that
// the store sends to a PostgreSQL database through its pool, with the
// statement's text, before it is sent; for tests that count what a
// reader asks. [Store.Watch]'s listening connection is not counted: it
// only waits. The hook must be safe for concurrent use.
func WithQueryHook(hook func(query string)) Option {
	return func(s *Store) { s.queryHook = hook }
}

// withClock replaces time.Now, for tests.
func withClock(now func() time.Time) Option {
	return func(s *Store) { s.now, s.testNow = now, true }
}

// DefaultDir returns where the store lives unless the user says otherwise:
// $THAW_STORE if set (a folder or a postgres:// URL), else $XDG_DATA_HOME/thaw, else ~/.local/share/thaw.
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

// Open opens the store at addr and brings the schema up to date. addr is
// the folder of an SQLite store, which Open creates (mode 0700, the
// database file mode 0600) when it does not exist, or the postgres:// URL
// of a PostgreSQL database, whose parameters (sslmode, connect_timeout,
// search_path for the schema) pass through to the driver; a PostgreSQL
// store needs [WithCheckpoints].
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
//     never deleted, and so are folders under runs/ that name no run,
//     except under a root given with [WithCheckpoints], which other stores
//     may share. Files elsewhere in dir are left alone.
//
// A checkpoint root given with WithCheckpoints gets a file named
// .thaw-checkpoints when a store first uses it; while the store records
// checkpoints, Open refuses a root without that file, which is what a
// shared folder that is not mounted looks like, rather than mark every
// checkpoint bad.
//
// Open returns an error wrapping [ErrCorrupt] when the database file is
// truncated or is not a database, [ErrNewerSchema] when a newer thaw
// wrote it, and [ErrCheckpointRoot] when the checkpoint root is missing.
// Its errors never hold the database's password. A missing checkpoint
// root, an unreachable server, a wrong password and a newer schema fail
// before anything is written.
func Open(addr string, opts ...Option) (*Store, error) {
	s := &Store{grace: DefaultGrace, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if IsPostgres(addr) {
		return s.openPostgres(addr)
	}
	dir := addr
	s.d = sqliteDialect
	var root string
	if s.root != "" {
		var err error
		if root, err = checkpointRoot(s.root); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.dir = cmp.Or(root, abs)
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

// openPostgres is Open for a PostgreSQL database.
func (s *Store) openPostgres(addr string) (*Store, error) {
	s.d = postgresDialect
	if s.root == "" {
		return nil, fmt.Errorf("open store %s: %w: a PostgreSQL store keeps its checkpoints in files, under a folder every node reaches; name it (--checkpoints DIR)", Redact(addr), ErrCheckpointRoot)
	}
	var err error
	if s.dir, err = checkpointRoot(s.root); err != nil {
		return nil, fmt.Errorf("open store %s: %w", Redact(addr), err)
	}
	ctx := context.Background()
	if s.db, s.pgCfg, err = openPostgres(ctx, addr, s.queryHook); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if !s.readOnly {
		err = s.migrate(ctx)
		if err == nil {
			err = s.recover(ctx)
		}
	} else {
		err = s.checkSchema(ctx)
	}
	if err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open store %s: %w", Redact(addr), err)
	}
	return s, nil
}

// checkpointRoot returns the absolute path of the checkpoint root dir, or
// an error wrapping [ErrCheckpointRoot] when it is not a folder. A root
// that is missing is not made: on a shared file system that is most often
// a mount that is not there, and checkpoints written beside it would be
// seen by no other node.
func checkpointRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("%w: %s does not exist", ErrCheckpointRoot, abs)
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrCheckpointRoot, err)
	case !st.IsDir():
		return "", fmt.Errorf("%w: %s is not a folder", ErrCheckpointRoot, abs)
	}
	return abs, nil
}

// rootMarker is the file that marks a folder given with [WithCheckpoints]
// as the checkpoint root of a store that has used it.
const rootMarker = ".thaw-checkpoints"

// checkRoot makes sure that a checkpoint root given with WithCheckpoints is
// the one the store's checkpoints were written to before recovery judges
// them by it: a shared folder that is not mounted on this machine leaves
// an empty folder at its mount point, and taking that for the root would
// mark every checkpoint of the shared store bad. A root is marked with
// rootMarker when a store first uses it, while it records no checkpoints;
// a root without the mark is refused while it does.
func (s *Store) checkRoot(ctx context.Context) error {
	if s.root == "" {
		return nil // the SQLite store's own folder
	}
	marker := filepath.Join(s.dir, rootMarker)
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM checkpoints WHERE bad = FALSE`).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return fmt.Errorf("%w: the store records %d checkpoints but %s has no %s file; is the shared folder mounted here? (if the files were moved into it by hand, create that file)",
			ErrCheckpointRoot, n, s.dir, rootMarker)
	}
	err := os.WriteFile(marker, []byte("This folder holds the checkpoint files of a thaw store. thaw looks for this file\nto tell the folder from an empty mount point; leave it here.\n"), 0o644)
	if err != nil {
		return fmt.Errorf("checkpoint root %s: %w", s.dir, err)
	}
	return nil
}

// Close closes the database. Files are always complete on disk, so nothing
// else needs flushing.
func (s *Store) Close() error {
	s.watch.mu.Lock()
	if s.watch.stop != nil {
		s.watch.stop()
		s.watch.stop = nil
	}
	s.watch.mu.Unlock()
	return s.db.Close()
}

// Dir returns the absolute path of the checkpoint root, which is the SQLite
// store's folder unless [WithCheckpoints] says otherwise.
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
	if s.d.lockWrites != "" {
		if _, err := tx.ExecContext(ctx, s.d.lockWrites); err != nil {
			tx.Rollback()
			return err
		}
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
