package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"thaw/trainer"
)

// snapshot records every file under dir: mode, size, modification time
// and content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := d.Info()
		if err != nil {
			return err
		}
		sum := ""
		if st.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		out[p] = st.Mode().String() + " " + st.ModTime().String() + " " + sum
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// chmodTree makes every folder under dir r-x and every file r--, and undoes
// it when the test ends.
func chmodTree(t *testing.T, dir string) {
	t.Helper()
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	})
	for i := len(paths) - 1; i >= 0; i-- {
		mode := os.FileMode(0o444)
		if st, err := os.Stat(paths[i]); err == nil && st.IsDir() {
			mode = 0o555
		}
		if err := os.Chmod(paths[i], mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, p := range paths {
			os.Chmod(p, 0o755)
		}
	})
}

// TestOpenReadOnly: a store in a read-only folder can be listed. The test
// holds when run as root, which ignores folder permissions: what it checks
// is that OpenReadOnly writes nothing (no -wal or -shm file, no recovery of
// the stale run, not one byte or timestamp changed) and that the database
// handle itself refuses writes, as SQLite's read-only mode does for root
// too. As another user it also checks that Open fails where OpenReadOnly
// works. SQLite-only: it is about SQLite's files and their permissions.
func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A run whose heartbeat is an hour old: Open would mark it interrupted.
	past := func() time.Time { return time.Now().Add(-time.Hour) }
	w, err := Open(dir, withClock(past))
	if err != nil {
		t.Fatal(err)
	}
	run := mustRun(t, w, "kept")
	if _, err := w.SaveCheckpoint(ctx, run.ID, CheckpointMeta{Step: 3, Kind: KindLast}, func(wr io.Writer) error {
		_, err := wr.Write([]byte("weights"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	chmodTree(t, dir)
	before := snapshot(t, dir)

	s, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := s.ListRuns(ctx, RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].ID != run.ID || runs[0].Status != trainer.StatusRunning {
		t.Fatalf("ListRuns = %+v, %v; want the one run, still running", runs, err)
	}
	cps, err := s.Checkpoints(ctx, run.ID)
	if err != nil || len(cps) != 1 {
		t.Fatalf("Checkpoints = %v, %v", cps, err)
	}
	f, _, err := s.OpenCheckpoint(ctx, cps[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Writes are refused by the store, and by SQLite under it.
	if err := s.SetStatus(ctx, run.ID, trainer.StatusStopped, ""); !errors.Is(err, ErrReadOnly) {
		t.Errorf("SetStatus: %v, want ErrReadOnly", err)
	}
	if err := s.Delete(ctx, run.ID); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Delete: %v, want ErrReadOnly", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE runs SET name = 'changed'`); err == nil {
		t.Error("the database handle accepted an UPDATE")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	for p, v := range after {
		if before[p] != v {
			t.Errorf("%s changed or appeared", p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("%s disappeared", p)
		}
	}

	if os.Geteuid() != 0 {
		if _, err := Open(dir); err == nil {
			t.Error("Open succeeded in a read-only folder")
		}
	}
}

// TestOpenReadOnlyBesideWriter: a reader opened while a writer has the
// store open sees the writer's commits, including later ones, which live in
// the write-ahead log. SQLite-only: the log is SQLite's file.
func TestOpenReadOnlyBesideWriter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w := mustOpenDir(t, dir)
	mustRun(t, w, "first")
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mustRun(t, w, "second")
	runs, err := r.ListRuns(ctx, RunFilter{})
	if err != nil || len(runs) != 2 {
		t.Fatalf("ListRuns = %d runs, %v; want 2", len(runs), err)
	}
	if _, err := OpenReadOnly(t.TempDir()); !errors.Is(err, ErrNotFound) {
		t.Errorf("empty folder: %v, want ErrNotFound", err)
	}
}

// TestOpenForReading: a reading command recovers a crashed run where it
// can write, and still reads a store it cannot write. SQLite-only: what it
// cannot write is SQLite's folder.
func TestOpenForReading(t *testing.T) {
	ctx := context.Background()
	stale := func(t *testing.T) (string, Run) {
		dir := t.TempDir()
		w, err := Open(dir, withClock(func() time.Time { return time.Now().Add(-time.Hour) }))
		if err != nil {
			t.Fatal(err)
		}
		r := mustRun(t, w, "crashed")
		w.Close()
		return dir, r
	}

	dir, run := stale(t)
	s, err := OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Run(ctx, run.ID)
	if s.ReadOnly() || err != nil || got.Status != trainer.StatusInterrupted {
		t.Errorf("writable: read-only %v, status %q, %v; want a writer that marked the run interrupted", s.ReadOnly(), got.Status, err)
	}
	s.Close()

	// The folder's mode bits decide, for root as for anyone.
	dir, run = stale(t)
	chmodTree(t, dir)
	before := snapshot(t, dir)
	s, err = OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Run(ctx, run.ID)
	if !s.ReadOnly() || err != nil || got.Status != trainer.StatusRunning {
		t.Errorf("read-only folder: read-only %v, status %q, %v; want a reader that changed nothing", s.ReadOnly(), got.Status, err)
	}
	s.Close()
	if after := snapshot(t, dir); len(after) != len(before) {
		t.Errorf("files changed: %d before, %d after", len(before), len(after))
	}
}
