package store

import (
	"os"
	"testing"

	"thaw/store/storetest"
)

// place is where one test keeps a store: a temporary folder for SQLite, a
// schema of its own in the test database for PostgreSQL, with a temporary
// checkpoint root. Opening it twice opens the same store.
type place struct {
	dialect string // "sqlite" or "postgres"
	addr    string // the folder or the URL, whose search_path is the schema
	root    string // the checkpoint root; empty for SQLite's default
}

// dialects runs f as a subtest on SQLite and one on PostgreSQL, each with a
// fresh place; the PostgreSQL one skips, saying how to run it, when
// $THAW_TEST_POSTGRES is not set (see storetest).
func dialects(t *testing.T, f func(t *testing.T, p place)) {
	t.Helper()
	for _, d := range storetest.Dialects {
		t.Run(d, func(t *testing.T) { f(t, newPlace(t, d)) })
	}
}

// newPlace returns a fresh place for dialect, removed when the test ends.
func newPlace(t testing.TB, dialect string) place {
	t.Helper()
	if dialect == "sqlite" {
		return place{dialect: dialect, addr: t.TempDir()}
	}
	return place{dialect: dialect, addr: storetest.Postgres(t), root: t.TempDir()}
}

// open opens the store at p with opts.
func (p place) open(opts ...Option) (*Store, error) {
	if p.root != "" {
		opts = append([]Option{WithCheckpoints(p.root)}, opts...)
	}
	return Open(p.addr, opts...)
}

// mustOpen opens the store at p and closes it when the test ends.
func (p place) mustOpen(t testing.TB, opts ...Option) *Store {
	t.Helper()
	s, err := p.open(opts...)
	if err != nil {
		t.Fatalf("open the %s store: %v", p.dialect, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// env is what a child process needs to open the store at p, for
// placeFromEnv.
func (p place) env() []string {
	return []string{"THAW_TEST_PLACE_DIALECT=" + p.dialect, "THAW_TEST_PLACE_ADDR=" + p.addr, "THAW_TEST_PLACE_ROOT=" + p.root}
}

// placeFromEnv is the place a parent test passed to its child process
// with env; ok is false in a process that is no such child.
func placeFromEnv() (p place, ok bool) {
	p = place{dialect: os.Getenv("THAW_TEST_PLACE_DIALECT"), addr: os.Getenv("THAW_TEST_PLACE_ADDR"), root: os.Getenv("THAW_TEST_PLACE_ROOT")}
	return p, p.addr != ""
}

func TestRebind(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`, `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)`},
		{`SELECT '?', "a?" FROM t WHERE x = ?`, `SELECT '?', "a?" FROM t WHERE x = $1`},
		{`SELECT 'it''s ?' WHERE y LIKE ? ESCAPE '\'`, `SELECT 'it''s ?' WHERE y LIKE $1 ESCAPE '\'`},
		{"SELECT ? -- a comment?\n, ?", "SELECT $1 -- a comment?\n, $2"},
	}
	for _, tt := range tests {
		if got := rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestPgMigration(t *testing.T) {
	got := pgMigration(`CREATE TABLE m (id TEXT NOT NULL, note TEXT DEFAULT 'TEXT', -- TEXT
		PRIMARY KEY (id))` + clustered)
	want := `CREATE TABLE m (id TEXT COLLATE "C" NOT NULL, note TEXT COLLATE "C" DEFAULT 'TEXT', -- TEXT
		PRIMARY KEY (id))`
	if got != want {
		t.Errorf("pgMigration\n got %s\nwant %s", got, want)
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/home/a/thaw", "/home/a/thaw"},
		{"postgres://thaw:s3cret@db:5432/runs?sslmode=require", "postgres://thaw:xxxxx@db:5432/runs?sslmode=require"},
		{"postgresql://db/runs?user=thaw&password=s3cret", "postgresql://db/runs?password=xxxxx&user=thaw"},
		{"postgres://thaw@db/runs", "postgres://thaw@db/runs"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
