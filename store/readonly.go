package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// ErrReadOnly: the store was opened with [OpenReadOnly] and the call would
// write to it.
var ErrReadOnly = errors.New("store is open read-only")

// OpenReadOnly opens the store in dir for reading only: listing runs,
// showing one, reading metrics and checkpoints, exporting. It creates
// nothing, changes nothing and needs no write permission, so a store on a
// read-only folder or mount, or one that belongs to another user, can be
// read. Unlike [Open] it does not recover from a crash: a run whose process
// died is shown with the status it had (running or paused) until a writer
// opens the store. A bad checkpoint found by [Store.OpenCheckpoint] is
// reported but not marked.
//
// The database is opened in SQLite's read-only mode, so even a process
// that could write the files (root ignores folder permissions) cannot
// change them through this Store; every method that writes returns an error
// wrapping [ErrReadOnly]. While a writer has the store open, its
// write-ahead log is read too, and a reader sees its later commits. A
// folder without write permission in its mode bits, and with no
// write-ahead log left in it, is opened as immutable: SQLite then takes no
// locks and makes no -shm file, which it could not create there.
//
// OpenReadOnly returns an error wrapping [ErrNotFound] when dir holds no
// store, [ErrCorrupt] when the database file is damaged, and
// [ErrNewerSchema] or [ErrOldSchema] when another version of thaw wrote it.
func OpenReadOnly(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, grace: DefaultGrace, now: time.Now, readOnly: true, d: sqliteDialect}
	for _, o := range opts {
		o(s)
	}
	if IsPostgres(dir) {
		return s.openPostgres(dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.dir = abs
	if s.root != "" {
		if s.dir, err = checkpointRoot(s.root); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	path := filepath.Join(abs, dbFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open store: no store in %s (no %s): %w", abs, dbFile, ErrNotFound)
	} else if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := checkFile(path); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	immutable := !walPresent(path) && !writableMode(abs)
	db, err := openReadOnlyDB(path, immutable)
	if err != nil && !immutable && !walPresent(path) {
		// The folder's mode bits allow writing but this process may not
		// (another owner): SQLite could not make its -shm file. With no log
		// to read, the database file alone is the whole store.
		db, err = openReadOnlyDB(path, true)
	}
	if err != nil {
		if isCorrupt(err) {
			err = fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
		}
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.db = db
	return s, nil
}

// ErrOldSchema: the database was written by an older thaw, and a store
// opened read-only cannot bring it up to date.
var ErrOldSchema = errors.New("store was written by an older version of thaw")

// openReadOnlyDB opens the database read-only and checks its schema.
func openReadOnlyDB(path string, immutable bool) (*sql.DB, error) {
	db, err := sql.Open(driverName, dsnReadOnly(path, immutable))
	if err != nil {
		return nil, err
	}
	if err := (&Store{db: db}).checkSchema(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkSchema returns an error unless the database's schema is the one
// this build writes, for a store that cannot bring it up to date.
func (s *Store) checkSchema(ctx context.Context) error {
	have, err := s.SchemaVersion(ctx)
	switch {
	case err != nil:
		return err
	case have > len(migrations):
		return fmt.Errorf("%w: schema version %d, this build knows %d", ErrNewerSchema, have, len(migrations))
	case have < len(migrations):
		return fmt.Errorf("%w: schema version %d, this build reads %d; open it once with a command that writes, such as thaw resume or thaw train", ErrOldSchema, have, len(migrations))
	}
	return nil
}

// walPresent reports whether the database has a non-empty write-ahead log:
// a writer has it open, or died before checkpointing it.
func walPresent(path string) bool {
	st, err := os.Stat(path + "-wal")
	return err == nil && st.Size() > 0
}

// writableMode reports whether the folder's mode bits let anyone write in
// it. It is a property of the folder, not of this process, so it holds for
// root as for anyone: a folder made read-only with chmod is read as one.
func writableMode(dir string) bool {
	st, err := os.Stat(dir)
	return err == nil && st.Mode().Perm()&0o222 != 0
}

// OpenForReading opens the store in dir for a command that only reads it:
// with [Open] where the store can be written, so that a crashed run is
// recovered and shown as interrupted, and with [OpenReadOnly] where it
// cannot: a folder whose mode bits forbid writing, or where Open fails for
// lack of permission, on a read-only file system or on a full disk. [Store.ReadOnly] says
// which. It returns an error wrapping [ErrNotFound] when dir holds no store
// and cannot get one, and Open's or OpenReadOnly's other errors.
func OpenForReading(dir string, opts ...Option) (*Store, error) {
	if st, err := os.Stat(dir); err == nil && st.IsDir() && !writableMode(dir) {
		return OpenReadOnly(dir, opts...)
	}
	s, err := Open(dir, opts...)
	if err != nil && (errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.ENOSPC)) {
		return OpenReadOnly(dir, opts...)
	}
	return s, err
}

// ReadOnly reports whether the store was opened read-only, so that its
// writing methods fail with [ErrReadOnly].
func (s *Store) ReadOnly() bool { return s.readOnly }
