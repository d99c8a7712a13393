package store

// This file holds everything that is specific to SQLite: the driver, the
// connection string with its pragmas, the error codes that mean "try again",
// the check of the file header, and the one table option that is not standard
// SQL. The rest of the package speaks portable SQL, so that a PostgreSQL
// dialect can later replace this file.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// driverName is the database/sql driver registered by modernc.org/sqlite.
const driverName = "sqlite"

// dbFile is the name of the database file inside the store folder. SQLite
// keeps dbFile+"-wal" and dbFile+"-shm" next to it.
const dbFile = "thaw.db"

// busyTimeoutMS is how long a statement waits for another connection or
// process to release the write lock before SQLite reports SQLITE_BUSY.
const busyTimeoutMS = 10000

// clustered is appended to CREATE TABLE for tables that are only ever read
// through their primary key: SQLite then stores the rows in the primary-key
// b-tree itself instead of in a rowid table plus an index, which halves the
// size of the metrics table and makes a range scan read consecutive pages.
// Other databases need nothing here.
const clustered = " WITHOUT ROWID"

// dsn returns the connection string for the database at path. The pragmas
// travel in the DSN so that database/sql applies them to every pooled
// connection, not just the first:
//
//   - busy_timeout makes a writer wait for the lock instead of failing;
//   - journal_mode=WAL lets readers run while one writer writes, also across
//     processes;
//   - synchronous=NORMAL is durable at every checkpoint of the WAL and safe
//     against corruption, without an fsync per transaction;
//   - foreign_keys enforces the REFERENCES clauses and ON DELETE CASCADE;
//   - temp_store=MEMORY keeps statement journals in memory: every
//     multi-row INSERT inside a transaction gets one (so that a failing
//     statement can be undone alone), and as a temporary file it cost
//     AddMetrics a third of its time in write system calls;
//   - _txlock=immediate starts every transaction as a writer, so that a
//     transaction never has to upgrade a read lock to a write lock, which is
//     the one case where SQLite returns SQLITE_BUSY without waiting.
func dsn(path string) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// dsnReadOnly returns the connection string for reading the database at
// path without writing anything: SQLite's read-only mode, and with
// immutable the promise that nothing changes the file, which lets SQLite
// skip locking and the -shm file. The journal mode is not set: WAL is
// recorded in the file, and setting it would be a write.
func dsnReadOnly(path string, immutable bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeoutMS))
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("mode", "ro")
	if immutable {
		q.Set("immutable", "1")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// nowQuery reads the database's clock in milliseconds since the epoch,
// which [Store.Now] judges heartbeats by. julianday('now') is the time of
// the current statement, good to the millisecond; PostgreSQL would say
// (EXTRACT(EPOCH FROM now()) * 1000)::BIGINT.
const nowQuery = `SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)`

// isBusy reports whether err means that the database was locked by another
// connection for longer than the busy timeout, so that the whole transaction
// may be retried.
func isBusy(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// isCorrupt reports whether err means that the database file is damaged or
// is not a database at all.
func isCorrupt(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return true
	}
	return false
}

// isDBFull reports whether err means that the database could not be
// written for want of space or because the disk failed.
func isDBFull(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
		return true
	}
	return false
}

// checkFile looks at the header of an existing database file before SQLite
// opens it, so that a damaged file gets a clear error at Open instead of a
// failure deep inside some later query. An empty file is a new database.
//
// The header records the page size and the number of pages
// (https://www.sqlite.org/fileformat2.html#the_database_header); a file that
// is shorter than that has been truncated. The size check is skipped while a
// write-ahead log is present, because pages may then still live in the log.
func checkFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return nil
	}
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		return fmt.Errorf("%w: %s is %d bytes, shorter than a database header", ErrCorrupt, path, fi.Size())
	}
	if !bytes.Equal(h[:16], []byte("SQLite format 3\x00")) {
		return fmt.Errorf("%w: %s is not an SQLite database", ErrCorrupt, path)
	}
	pageSize := int64(binary.BigEndian.Uint16(h[16:18]))
	if pageSize == 1 {
		pageSize = 65536
	}
	pages := int64(binary.BigEndian.Uint32(h[28:32]))
	changes := binary.BigEndian.Uint32(h[24:28])
	validFor := binary.BigEndian.Uint32(h[92:96])
	if wal, err := os.Stat(path + "-wal"); err == nil && wal.Size() > 0 {
		return nil
	}
	// The page count is only trustworthy when the "version-valid-for" number
	// matches the change counter; older writers did not maintain it.
	if changes == validFor && pages > 0 && fi.Size() < pages*pageSize {
		return fmt.Errorf("%w: %s is %d bytes but its header says %d pages of %d bytes; the file was truncated",
			ErrCorrupt, path, fi.Size(), pages, pageSize)
	}
	return nil
}
