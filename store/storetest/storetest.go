// Package storetest gives tests a PostgreSQL schema of their own, so that
// the tests of the store and of what is built on it run on both of the
// store's databases.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
)

// Env names the variable that holds the address of a PostgreSQL database
// the tests may make schemas in. .ci/run starts a throwaway server and sets
// it; without it the PostgreSQL variants of the tests skip.
const Env = "THAW_TEST_POSTGRES"

// Dialects are the names of the store's databases, as the tests' subtests
// are named.
var Dialects = []string{"sqlite", "postgres"}

// Postgres returns the address of a new, empty schema in the database $THAW_TEST_POSTGRES
// names (its search_path), dropped with everything in it when the test
// ends. Without the variable it skips the test, saying how to run it.
func Postgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		t.Skipf("no PostgreSQL: set %s to a postgres:// URL of a database the tests may make schemas in (.ci/run starts one; or, as root, source .ci/postgres.sh)", Env)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL", Env) // the error would show the password
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "thaw_test_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("make a schema for the test in %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop the test's schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
