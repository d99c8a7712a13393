package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"thaw/store"
	"thaw/store/storetest"
	"thaw/trainer"
)

// TestPostgresStoreBadInput: a PostgreSQL store that cannot be used is one
// line without the password and a non-zero exit, before anything is
// written. None of these needs a server; the store's tests check a wrong
// password and a newer schema against a real one.
func TestPostgresStoreBadInput(t *testing.T) {
	t.Setenv("THAW_CHECKPOINTS", "")
	const down = "postgres://thaw:s3cret@127.0.0.1:1/thaw?sslmode=disable" // nothing listens on port 1
	root := t.TempDir()
	missing := filepath.Join(root, "not-mounted")
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unreachable", []string{"runs", "--store", down, "--checkpoints", root}, exitFailed, "connection refused"},
		{"no checkpoint root", []string{"runs", "--store", down}, exitUsage, "--checkpoints DIR"},
		{"missing checkpoint root", []string{"runs", "--store", down, "--checkpoints", missing}, exitUsage, missing},
		{"bad sslmode", []string{"runs", "--store", "postgres://thaw:s3cret@db/thaw?sslmode=bogus", "--checkpoints", root}, exitFailed, "sslmode is invalid"},
		{"password as a parameter", []string{"runs", "--store", "postgres://thaw@db/thaw?password=s3cret&sslmode=bogus", "--checkpoints", root}, exitFailed, "password=xxxxx"},
		{"not a URL", []string{"runs", "--store", "postgres://thaw:s3cret@[db/thaw", "--checkpoints", root}, exitFailed, "cannot parse"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMain()
			var out, errOut bytes.Buffer
			m.Stdout, m.Stderr = &out, &errOut
			err := m.Run(context.Background(), tt.args)
			if err == nil {
				t.Fatalf("no error; stdout %q", out.String())
			}
			msg := err.Error()
			if got := exitCode(err); got != tt.code {
				t.Errorf("exit code %d, want %d (%s)", got, tt.code, msg)
			}
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q: want one line saying %q", msg, tt.want)
			}
			if all := msg + out.String() + errOut.String(); strings.Contains(all, "s3cret") {
				t.Errorf("the password is shown: %q", all)
			}
		})
	}
}

// TestStoreCopyToPostgres: thaw store copy of an SQLite store with a
// finished, a stopped and a branched run into PostgreSQL; thaw show --json
// of every run is the same on both sides, and copying again copies
// nothing.
func TestStoreCopyToPostgres(t *testing.T) {
	t.Setenv("THAW_CHECKPOINTS", "")
	pg := storetest.Postgres(t)
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(t.TempDir(), "store")
	train := func(name string) string {
		t.Helper()
		stdout, stderr, code := runMain(t, ctx, &Main{}, "train", "--json", "--store", dir, "--model", fx.model, "--data", fx.data,
			"--epochs", "2", "--name", name)
		if code != 0 {
			t.Fatalf("train %s: exit %d:\n%s", name, code, stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatalf("train %s: %v:\n%s", name, err, stdout)
		}
		return got["run"].(string)
	}
	done := train("finished")
	stopped := train("stopped")
	// Stopped by hand: what a stop leaves in the store is the status.
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetStatus(ctx, stopped, trainer.StatusStopped, ""); err != nil {
		t.Fatal(err)
	}
	st.Close()
	stdout, stderr, code := runMain(t, ctx, &Main{}, "branch", "--json", "--store", dir, done, "--from", "1")
	if code != 0 {
		t.Fatalf("branch: exit %d:\n%s", code, stderr)
	}
	var br map[string]any
	json.Unmarshal([]byte(stdout), &br)
	branch := br["run"].(string)

	root := t.TempDir()
	_, stderr, code = runMain(t, ctx, &Main{}, "store", "copy", dir, pg, "--checkpoints", root)
	if code != 0 || !strings.Contains(stderr, "copied 3 runs") {
		t.Fatalf("store copy: exit %d:\n%s", code, stderr)
	}
	if u, _ := url.Parse(pg); u != nil {
		if pw, ok := u.User.Password(); ok && strings.Contains(stderr, pw) {
			t.Errorf("store copy shows the password: %s", stderr)
		}
	}
	for _, id := range []string{done, stopped, branch} {
		a, errA, codeA := runMain(t, ctx, &Main{}, "show", "--json", "--store", dir, id)
		b, errB, codeB := runMain(t, ctx, &Main{}, "show", "--json", "--store", pg, "--checkpoints", root, id)
		if codeA != 0 || codeB != 0 {
			t.Fatalf("show %s: exit %d, %d:\n%s\n%s", id, codeA, codeB, errA, errB)
		}
		if a != b {
			t.Errorf("show --json %s differs:\nSQLite:\n%s\nPostgreSQL:\n%s", id, a, b)
		}
	}
	_, stderr, code = runMain(t, ctx, &Main{}, "store", "copy", dir, pg, "--checkpoints", root)
	if code != 0 || !strings.Contains(stderr, "copied 0 runs") || !strings.Contains(stderr, "3 were there already") {
		t.Errorf("second store copy: exit %d:\n%s", code, stderr)
	}
}

// TestCheckpointsEnvIsForPostgres: $THAW_CHECKPOINTS is the checkpoint
// root of a PostgreSQL store only; an SQLite store keeps its own folder,
// so that setting it for a shared store does not move a local store's
// checkpoints out from under it.
func TestCheckpointsEnvIsForPostgres(t *testing.T) {
	elsewhere := t.TempDir()
	t.Setenv("THAW_CHECKPOINTS", elsewhere)
	dir := filepath.Join(t.TempDir(), "store")
	st, err := openStore(storeRef{addr: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, _ := filepath.Abs(dir); st.Dir() != got {
		t.Errorf("SQLite store's checkpoint root %s, want its folder %s", st.Dir(), got)
	}
	_, err = openStore(storeRef{addr: "postgres://thaw@127.0.0.1:1/thaw?sslmode=disable"})
	if err == nil || errors.Is(err, store.ErrCheckpointRoot) {
		t.Errorf("PostgreSQL store with $THAW_CHECKPOINTS: %v; want it to get past the root to the (absent) server", err)
	}
}
