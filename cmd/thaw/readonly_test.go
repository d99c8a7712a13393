package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"thaw/store"
)

// TestReadOnlyStore: thaw runs, show and export read a store in a folder
// made read-only, and leave it as it was. The folder's mode bits decide
// (see store.OpenForReading), so this holds when the tests run as root.
func TestReadOnlyStore(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.CreateRun(ctx, store.Run{Name: "kept", Model: "m", Dataset: "d", Plan: json.RawMessage(`{}`), Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddMetrics(ctx, r.ID, []store.Metric{{Step: 1, Name: "train/loss", Value: 0.5}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	for i := len(paths) - 1; i >= 0; i-- {
		mode := os.FileMode(0o444)
		if fi, err := os.Stat(paths[i]); err == nil && fi.IsDir() {
			mode = 0o555
		}
		os.Chmod(paths[i], mode)
	}
	t.Cleanup(func() {
		for _, p := range paths {
			os.Chmod(p, 0o755)
		}
	})

	stdout, stderr, code := runMain(t, ctx, &Main{}, "runs", "--store", dir)
	if code != 0 || !strings.Contains(stdout, "kept") {
		t.Errorf("runs: exit %d\n%s%s", code, stdout, stderr)
	}
	stdout, stderr, code = runMain(t, ctx, &Main{}, "show", "--store", dir, r.ID)
	if code != 0 || !strings.Contains(stdout, "kept") {
		t.Errorf("show: exit %d\n%s%s", code, stdout, stderr)
	}
	out := filepath.Join(t.TempDir(), "m.csv")
	if _, stderr, code = runMain(t, ctx, &Main{}, "export", "--store", dir, r.ID, "-o", out); code != 0 {
		t.Errorf("export: exit %d\n%s", code, stderr)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(filepath.Join(dir, "thaw.db"+suffix)); err == nil {
			t.Errorf("thaw.db%s appeared in the read-only store", suffix)
		}
	}
}
