package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
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
