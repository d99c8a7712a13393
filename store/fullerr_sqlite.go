package store

// issue 21: the one SQLite-specific bit outside dialect.go, kept apart while
// the PostgreSQL dialect is being written; it belongs with isDBFull there
// (PostgreSQL's own is SQLSTATE 53100, disk_full).

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// isDiskFull reports whether err is the database's "database or disk is
// full": it could not grow its file or its log.
func isDiskFull(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL
}
