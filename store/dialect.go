package store

// This file holds everything that differs between the two databases a
// store can live in, SQLite (a folder) and PostgreSQL (a postgres:// URL):
// the drivers and connection strings, the placeholders, the column types
// and table options of the migrations, the error codes that mean "try
// again", the database's clock, how writers take turns, and SQLite's check
// of its file header. The rest of the package speaks portable SQL with ?
// placeholders and does not know which database it talks to. Upserts
// (INSERT … ON CONFLICT … DO UPDATE SET … = excluded.…) read the same in
// both and need nothing here.

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
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

// dialect is what the store does differently in one database.
type dialect struct {
	// name is the database's name as messages say it.
	name string
	// nowQuery reads the database's clock in milliseconds since the epoch,
	// which [Store.Now] judges heartbeats by.
	nowQuery string
	// sharedClock is true when the database's clock may be another
	// machine's: the store then stamps heartbeats with it too, so that a
	// node whose own clock is skewed cannot make a live run look stale.
	// SQLite's clock is always this machine's.
	sharedClock bool
	// lockWrites, if not empty, is run first in every write transaction.
	lockWrites string
	// migration rewrites a statement of [migrations] for the database.
	migration func(string) string
}

// sqliteDialect: julianday('now') is the time of the current statement,
// good to the millisecond. A write transaction starts with the write lock
// (_txlock=immediate in the DSN), so writers already take turns.
var sqliteDialect = &dialect{
	name:     "SQLite",
	nowQuery: `SELECT CAST(ROUND((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER)`,
	migration: func(q string) string {
		if strings.HasPrefix(q, pgOnly) {
			return ""
		}
		return q
	},
}

// isBusy reports whether err means that the database was locked by another
// connection for longer than the busy timeout, or (PostgreSQL) that the
// transaction lost a serialization conflict or a deadlock, so that the
// whole transaction may be retried.
func isBusy(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	switch pgCode(err) {
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return true
	}
	return false
}

// isCorrupt reports whether err means that the database file is damaged or
// is not a database at all.
func isCorrupt(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return true
		}
		return false
	}
	switch pgCode(err) {
	case "XX001", "XX002": // data_corrupted, index_corrupted
		return true
	}
	return false
}

// isDBFull reports whether err means that the database could not be
// written for want of space or because the disk failed.
func isDBFull(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		switch e.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			return true
		}
		return false
	}
	switch pgCode(err) {
	case "53100", "58030": // disk_full, io_error
		return true
	}
	return false
}

// isDiskFull reports whether err is the database's "disk is full": it
// could not grow its file or its log (SQLite's SQLITE_FULL, PostgreSQL's
// disk_full), a narrower case than isDBFull's.
func isDiskFull(err error) bool {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()&0xff == sqlite3.SQLITE_FULL
	}
	return pgCode(err) == "53100"
}

// pgCode returns PostgreSQL's SQLSTATE of err, or "" when err is not an
// error from the server.
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
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

// IsPostgres reports whether addr names a PostgreSQL database, a
// postgres:// or postgresql:// URL, rather than the folder of an SQLite
// store.
func IsPostgres(addr string) bool {
	a := strings.ToLower(addr)
	return strings.HasPrefix(a, "postgres://") || strings.HasPrefix(a, "postgresql://")
}

// Redact returns addr with its password, if any, replaced by "xxxxx", for
// messages; a folder comes back unchanged.
func Redact(addr string) string {
	if !IsPostgres(addr) {
		return addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		// Not a URL we can take apart: show only what it is.
		return addr[:strings.Index(addr, ":")] + "://…"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// pgConnectTimeout bounds how long opening a PostgreSQL store waits for
// the server when the address sets no connect_timeout.
const pgConnectTimeout = 10 * time.Second

// postgresDialect: now() is the start of the current transaction by the
// server's clock. Writers take turns through a transaction-scoped advisory
// lock, named after the schema so that stores in different schemas of one
// database do not wait for each other: a write transaction then sees every
// earlier commit and is never interleaved with another, as in SQLite, so
// the read-then-write transactions of the store need no SERIALIZABLE
// isolation and no retry loop of their own.
var postgresDialect = &dialect{
	name:        "PostgreSQL",
	nowQuery:    `SELECT CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)`,
	sharedClock: true,
	lockWrites:  `SELECT pg_advisory_xact_lock(hashtext('thaw:' || current_schema()))`,
	migration:   pgMigration,
}

// openPostgres connects to the database at addr through pgx's
// database/sql driver, with ? placeholders rewritten, and checks that the
// server answers. addr's sslmode, connect_timeout and other parameters
// pass through to pgx; search_path picks the schema. The errors never
// hold the password.
func openPostgres(ctx context.Context, addr string, hook func(string)) (*sql.DB, *pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(addr)
	if err != nil {
		return nil, nil, pgError(addr, err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := sql.OpenDB(rebindConnector{stdlib.GetConnector(*cfg), hook})
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(time.Minute)
	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout+time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, pgError(addr, err)
	}
	return db, cfg, nil
}

// pgError makes err, from connecting to addr, one line without the
// password. pgx leaves the password out already; this also holds for a
// password that some message quotes back, such as one in the wrong place.
func pgError(addr string, err error) error {
	// pgx puts the error of each address it tried on a line of its own,
	// and with sslmode=prefer it tries each twice, with TLS and without.
	var lines []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.Join(strings.Fields(l), " "); l != "" && !slices.Contains(lines, l) {
			lines = append(lines, l)
		}
	}
	msg := strings.ReplaceAll(strings.Join(lines, "; "), ":; ", ": ")
	if u, perr := url.Parse(addr); perr == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
		if pw := u.Query().Get("password"); pw != "" {
			msg = strings.ReplaceAll(msg, pw, "xxxxx")
		}
	}
	return &redactedError{msg: Redact(addr) + ": " + msg, err: err}
}

// redactedError is an error whose text has been cleaned of a password but
// which still unwraps to the driver's error, for isBusy and the like.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// rebindConnector hands out pgx connections that take the store's ?
// placeholders.
// hook, if not nil, is told of every statement and transaction the
// store sends (see [WithQueryHook]).
type rebindConnector struct {
	driver.Connector
	hook func(string)
}

func (c rebindConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &rebindConn{conn.(*stdlib.Conn), c.hook}, nil
}

// rebindConn is pgx's connection with every statement's ? placeholders
// rewritten to PostgreSQL's $1, $2, …; everything else (transactions,
// pings, session reset, argument checks) is pgx's own.
type rebindConn struct {
	*stdlib.Conn
	hook func(string)
}

func (c *rebindConn) sent(q string) {
	if c.hook != nil {
		c.hook(q)
	}
}

func (c *rebindConn) Prepare(q string) (driver.Stmt, error) {
	c.sent(q)
	return c.Conn.Prepare(rebind(q))
}

func (c *rebindConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.sent(q)
	return c.Conn.PrepareContext(ctx, rebind(q))
}

func (c *rebindConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.sent(q)
	return c.Conn.ExecContext(ctx, rebind(q), args)
}

func (c *rebindConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.sent(q)
	return c.Conn.QueryContext(ctx, rebind(q), args)
}

func (c *rebindConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.sent("BEGIN")
	return c.Conn.BeginTx(ctx, opts)
}

// pgOnly starts a statement of [migrations] that only PostgreSQL runs.
const pgOnly = "-- PostgreSQL only\n"

// The NOTIFY triggers of a PostgreSQL store (see [Store.Watch]): on the
// channel pgChannel, the payload is "schema run what", the schema so that
// stores in different schemas of one database can tell their own
// changes, and what one of: the run's status when it is created or any
// of its columns but the heartbeat changes (its status, stop request,
// name, …), "heartbeat" when only its heartbeat does, "deleted", and
// "metrics" when metrics are added to it. PostgreSQL delivers one
// notification of equal payloads per transaction, so a run announces
// each at most once per transaction however many rows it writes. The
// metrics trigger runs once per statement, over the rows it inserted.
const (
	pgChannel = "thaw_runs"

	pgRunsNotifyFunc = `CREATE FUNCTION thaw_runs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM pg_notify('thaw_runs', TG_TABLE_SCHEMA || ' ' || OLD.id || ' deleted');
	ELSIF TG_OP = 'INSERT' OR (to_jsonb(OLD) - 'heartbeat_ms') IS DISTINCT FROM (to_jsonb(NEW) - 'heartbeat_ms') THEN
		PERFORM pg_notify('thaw_runs', TG_TABLE_SCHEMA || ' ' || NEW.id || ' ' || NEW.status);
	ELSIF OLD.heartbeat_ms IS DISTINCT FROM NEW.heartbeat_ms THEN
		PERFORM pg_notify('thaw_runs', TG_TABLE_SCHEMA || ' ' || NEW.id || ' heartbeat');
	END IF;
	RETURN NULL;
END
$$`
	pgRunsNotifyTrigger = `CREATE TRIGGER runs_notify AFTER INSERT OR UPDATE OR DELETE ON runs
		FOR EACH ROW EXECUTE FUNCTION thaw_runs_notify()`
	pgMetricsNotifyFunc = `CREATE FUNCTION thaw_metrics_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('thaw_runs', TG_TABLE_SCHEMA || ' ' || r.run_id || ' metrics')
		FROM (SELECT DISTINCT run_id FROM added) AS r;
	RETURN NULL;
END
$$`
	pgMetricsNotifyTrigger = `CREATE TRIGGER metrics_notify AFTER INSERT ON metrics
		REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION thaw_metrics_notify()`
)

// rebind numbers the ? placeholders of q as $1, $2, …, leaving string
// literals, quoted names and comments alone.
func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	n := 0
	return mapCode(q, func(code string) string {
		if !strings.Contains(code, "?") {
			return code
		}
		var b strings.Builder
		for _, r := range code {
			if r == '?' {
				n++
				b.WriteString("$" + strconv.Itoa(n))
				continue
			}
			b.WriteRune(r)
		}
		return b.String()
	})
}

// mapCode returns q with f applied to its stretches of SQL, between string
// literals ('…'), quoted names ("…") and comments (-- to the end of the
// line), which are copied unchanged.
func mapCode(q string, f func(string) string) string {
	var b strings.Builder
	start := 0
	for i := 0; i < len(q); i++ {
		var end int
		switch {
		case q[i] == '\'' || q[i] == '"':
			end = strings.IndexByte(q[i+1:], q[i])
			if end < 0 {
				end = len(q)
			} else {
				end += i + 2
			}
		case q[i] == '-' && i+1 < len(q) && q[i+1] == '-':
			end = strings.IndexByte(q[i:], '\n')
			if end < 0 {
				end = len(q)
			} else {
				end += i
			}
		default:
			continue
		}
		b.WriteString(f(q[start:i]))
		b.WriteString(q[i:end])
		start, i = end, end-1
	}
	b.WriteString(f(q[start:]))
	return b.String()
}

// textType matches the TEXT type in a statement of the migrations.
var textType = regexp.MustCompile(`\bTEXT\b`)

// pgMigration rewrites a statement of the migrations for PostgreSQL:
//   - the table option WITHOUT ROWID is SQLite's; PostgreSQL keeps every
//     table apart from its indexes;
//   - text columns compare byte by byte, with the "C" collation, as
//     SQLite's BINARY collation does, so that ORDER BY id and the id
//     prefix ranges of [Store.Run] mean the same whatever locale the
//     database was made with.
func pgMigration(q string) string {
	q = strings.TrimPrefix(q, pgOnly)
	return mapCode(q, func(code string) string {
		code = strings.ReplaceAll(code, clustered, "")
		return textType.ReplaceAllString(code, `TEXT COLLATE "C"`)
	})
}
