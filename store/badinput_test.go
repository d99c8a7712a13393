package store

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"thaw/trainer"
)

// oneLine fails the test unless err is one line that holds none of the
// secrets.
func oneLine(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error is more than one line: %q", msg)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, s) {
			t.Errorf("error shows the password %q: %s", s, msg)
		}
	}
}

// rawDB opens the database at p without the store, so that a test can
// look at it without migrating or recovering anything.
func rawDB(t *testing.T, at place) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if at.dialect == "sqlite" {
		db, err = sql.Open(driverName, dsnReadOnly(filepath.Join(at.addr, dbFile), false))
	} else {
		db, _, err = openPostgres(context.Background(), at.addr, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// tablesAt counts the tables in the store at p, to check that a failed
// Open wrote nothing.
func tablesAt(t *testing.T, at place) int {
	t.Helper()
	q := `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()`
	if at.dialect == "sqlite" {
		if _, err := os.Stat(filepath.Join(at.addr, dbFile)); errors.Is(err, os.ErrNotExist) {
			return 0
		}
		q = `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'`
	}
	var n int
	if err := rawDB(t, at).QueryRow(q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestOpenMissingCheckpointRoot: a checkpoint root that is missing, or a
// PostgreSQL store without one, is one clear error, and the database is
// left untouched.
func TestOpenMissingCheckpointRoot(t *testing.T) { dialects(t, testOpenMissingCheckpointRoot) }

func testOpenMissingCheckpointRoot(t *testing.T, at place) {
	missing := filepath.Join(t.TempDir(), "not-mounted")
	_, err := Open(at.addr, WithCheckpoints(missing))
	if !errors.Is(err, ErrCheckpointRoot) || !strings.Contains(err.Error(), missing) {
		t.Errorf("Open with a missing checkpoint root: %v; want ErrCheckpointRoot naming it", err)
	}
	oneLine(t, err)
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the missing root was made: %v", err)
	}
	if at.dialect == "postgres" {
		_, err := Open(at.addr)
		if !errors.Is(err, ErrCheckpointRoot) || !strings.Contains(err.Error(), "--checkpoints") {
			t.Errorf("Open of PostgreSQL without a checkpoint root: %v; want ErrCheckpointRoot saying --checkpoints", err)
		}
		oneLine(t, err)
	}
	if n := tablesAt(t, at); n != 0 {
		t.Errorf("%d tables after the failed Open, want 0", n)
	}
}

// TestOpenNewerSchema: a store written by a newer thaw is refused with
// ErrNewerSchema, and nothing in it changes.
func TestOpenNewerSchema(t *testing.T) { dialects(t, testOpenNewerSchema) }

func testOpenNewerSchema(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_ms) VALUES (?, 0)`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, s, "from the future")
	s.Close()
	_, err := at.open(WithGrace(1)) // were recovery to run, r would become interrupted
	if !errors.Is(err, ErrNewerSchema) {
		t.Fatalf("Open of a newer schema: %v; want ErrNewerSchema", err)
	}
	oneLine(t, err)
	var st string
	var heartbeat int64
	if err := rawDB(t, at).QueryRow(`SELECT status, heartbeat_ms FROM runs WHERE id = ?`, r.ID).Scan(&st, &heartbeat); err != nil {
		t.Fatal(err)
	}
	if st != string(r.Status) || heartbeat != r.Heartbeat.UnixMilli() {
		t.Errorf("after the refused Open the run is %s, heartbeat %d; want %s, %d", st, heartbeat, r.Status, r.Heartbeat.UnixMilli())
	}
}

// TestOpenPostgresUnreachable: a server that does not answer, or refuses
// the password, is one line without the password and a failed Open.
func TestOpenPostgresUnreachable(t *testing.T) {
	at := newPlace(t, "postgres")
	u, err := url.Parse(at.addr)
	if err != nil {
		t.Fatal(err)
	}
	password, _ := u.User.Password()

	wrong := *u
	wrong.User = url.UserPassword(u.User.Username(), "wrong-"+password)
	_, err = Open(wrong.String(), WithCheckpoints(at.root))
	if err == nil {
		t.Skip("the test server accepts any password (trust authentication): nothing to check")
	}
	oneLine(t, err, "wrong-"+password, password)
	t.Logf("wrong password: %v", err)
	if !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("wrong password: %v; want the server's reason", err)
	}

	down := *u
	down.Host = "127.0.0.1:1" // nothing listens on port 1
	_, err = Open(down.String(), WithCheckpoints(at.root))
	oneLine(t, err, password)
	t.Logf("unreachable: %v", err)
	if !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("unreachable server: %v; want its address", err)
	}
	if n := tablesAt(t, at); n != 0 {
		t.Errorf("%d tables after the failed Opens, want 0", n)
	}
}

// TestOpenReadOnlyPostgres: a PostgreSQL store opened read-only reads
// runs and refuses every write with ErrReadOnly.
func TestOpenReadOnlyPostgres(t *testing.T) {
	ctx := context.Background()
	at := newPlace(t, "postgres")
	w := at.mustOpen(t)
	r := mustRun(t, w, "kept")
	s, err := OpenReadOnly(at.addr, WithCheckpoints(at.root))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.ReadOnly() {
		t.Error("ReadOnly() = false")
	}
	if got, err := s.Run(ctx, r.ID); err != nil || got.Name != "kept" {
		t.Errorf("Run = %+v, %v", got, err)
	}
	if err := s.SetStatus(ctx, r.ID, trainer.StatusStopped, ""); !errors.Is(err, ErrReadOnly) {
		t.Errorf("SetStatus on a read-only store: %v, want ErrReadOnly", err)
	}
}

// TestOpenUnmountedRoot: a checkpoint root that is an empty folder, as a
// shared folder that is not mounted leaves, is refused while the store
// records checkpoints, and no checkpoint is marked bad.
func TestOpenUnmountedRoot(t *testing.T) { dialects(t, testOpenUnmountedRoot) }

func testOpenUnmountedRoot(t *testing.T, at place) {
	ctx := context.Background()
	if at.root == "" {
		at.root = t.TempDir() // SQLite with a root of its own, as --checkpoints gives
	}
	s := at.mustOpen(t)
	r := mustRun(t, s, "r")
	if _, err := s.SaveCheckpoint(ctx, r.ID, CheckpointMeta{Step: 1, Kind: KindLast}, writeBytes([]byte("weights"))); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, r.ID, trainer.StatusStopped, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()

	mountPoint := t.TempDir()
	_, err := Open(at.addr, WithCheckpoints(mountPoint))
	if !errors.Is(err, ErrCheckpointRoot) || !strings.Contains(err.Error(), "mounted") {
		t.Errorf("Open with an empty root: %v; want ErrCheckpointRoot asking whether it is mounted", err)
	}
	oneLine(t, err)
	s = at.mustOpen(t)
	if c, err := s.LastGoodCheckpoint(ctx, r.ID); err != nil || c.Bad {
		t.Errorf("after the refused Open: %+v, %v; want the checkpoint good", c, err)
	}
}
