package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"thaw/trainer"
)

func writeBytes(b []byte) func(io.Writer) error {
	return func(w io.Writer) error { _, err := w.Write(b); return err }
}

func TestCheckpointRoundTrip(t *testing.T) { dialects(t, testCheckpointRoundTrip) }

func testCheckpointRoundTrip(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	r := mustRun(t, s, "r")
	data := bytes.Repeat([]byte("weights!"), 100_000)
	c, err := s.SaveCheckpoint(ctx, r.ID, CheckpointMeta{Step: 500, Stage: 1, Kind: KindLast}, writeBytes(data))
	if err != nil {
		t.Fatal(err)
	}
	if want := "runs/" + r.ID + "/ckpt-500-last.safetensors"; c.Path != want || c.Size != int64(len(data)) {
		t.Errorf("checkpoint %+v, want path %s", c, want)
	}
	f, got, err := s.OpenCheckpoint(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(b, data) || got.SHA256 != c.SHA256 {
		t.Error("contents differ")
	}
	// A failing writer leaves neither a file nor a row.
	_, err = s.SaveCheckpoint(ctx, r.ID, CheckpointMeta{Step: 600, Kind: KindLast},
		func(w io.Writer) error { w.Write([]byte("part")); return errors.New("disk on fire") })
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("failing writer: %v", err)
	}
	entries, _ := os.ReadDir(s.runDir(r.ID))
	if len(entries) != 1 {
		t.Errorf("folder holds %d files, want 1", len(entries))
	}
	if _, err := s.SaveCheckpoint(ctx, r.ID, CheckpointMeta{Kind: "odd"}, writeBytes(nil)); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := s.SaveCheckpoint(ctx, "nope", CheckpointMeta{Kind: KindBest}, writeBytes(nil)); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown run: %v", err)
	}
	last, err := s.LastGoodCheckpoint(ctx, r.ID)
	if err != nil || last.ID != c.ID {
		t.Errorf("LastGoodCheckpoint = %v, %v", last.ID, err)
	}
	if err := s.DeleteCheckpoint(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LastGoodCheckpoint(ctx, r.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("LastGoodCheckpoint after delete: %v", err)
	}
}

func TestCheckpointFlippedBytes(t *testing.T) { dialects(t, testCheckpointFlippedBytes) }

func testCheckpointFlippedBytes(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	r := mustRun(t, s, "r")
	var cs []Checkpoint
	for step := int64(100); step <= 300; step += 100 {
		c, err := s.SaveCheckpoint(ctx, r.ID, CheckpointMeta{Step: step, Kind: KindStageEnd},
			writeBytes(bytes.Repeat([]byte{byte(step)}, 4096)))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	p := s.Path(cs[2].Path)
	b, _ := os.ReadFile(p)
	b[1000] ^= 0xff
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.OpenCheckpoint(ctx, cs[2].ID)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Fatalf("OpenCheckpoint(flipped): %v; want ErrCorrupt naming %s", err, p)
	}
	got, _ := s.Checkpoint(ctx, cs[2].ID)
	if !got.Bad || !strings.Contains(got.Problem, "sha256") {
		t.Errorf("flipped checkpoint recorded as %+v", got)
	}
	for _, c := range cs[:2] {
		f, _, err := s.OpenCheckpoint(ctx, c.ID)
		if err != nil {
			t.Errorf("other checkpoint at step %d: %v", c.Step, err)
			continue
		}
		f.Close()
	}
	last, err := s.LastGoodCheckpoint(ctx, r.ID)
	if err != nil || last.ID != cs[1].ID {
		t.Errorf("LastGoodCheckpoint = step %d, %v; want step 200", last.Step, err)
	}
}

func TestOpenRecoversFiles(t *testing.T) { dialects(t, testOpenRecoversFiles) }

func testOpenRecoversFiles(t *testing.T, at place) {
	ctx := context.Background()
	s, err := at.open()
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir() // the checkpoint root
	r := mustRun(t, s, "r")
	var cs []Checkpoint
	for _, step := range []int64{1, 2, 3} {
		c, err := s.SaveCheckpoint(ctx, r.ID, CheckpointMeta{Step: step, Kind: KindLast}, writeBytes([]byte("0123456789")))
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if err := s.SetStatus(ctx, r.ID, trainer.StatusStopped, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()

	runDir := filepath.Join(dir, "runs", r.ID)
	os.Remove(filepath.Join(runDir, "ckpt-1-last.safetensors"))                                          // missing
	os.WriteFile(filepath.Join(runDir, "ckpt-2-last.safetensors"), []byte("01"), 0o600)                  // truncated
	os.WriteFile(filepath.Join(runDir, ".ckpt-4-last.safetensors.tmp2718281828"), []byte("half"), 0o600) // crash mid-write
	os.WriteFile(filepath.Join(runDir, "notes.txt"), []byte("mine"), 0o600)                              // foreign
	os.WriteFile(filepath.Join(dir, "README"), []byte("mine"), 0o600)                                    // foreign, at the root
	os.MkdirAll(filepath.Join(dir, "runs", "not-a-run"), 0o700)                                          // foreign folder

	s = at.mustOpen(t)
	rec := s.Recovery()
	// A root given apart from the database may be shared with other
	// stores: a folder naming no run of this one stays where it is.
	quarantined, foreign := []string{"quarantine/runs/" + r.ID + "/notes.txt", "quarantine/runs/not-a-run"}, ""
	if at.root != "" {
		quarantined, foreign = quarantined[:1], "runs/not-a-run"
	}
	if len(rec.BadCheckpoints) != 2 || len(rec.TempRemoved) != 1 || len(rec.Quarantined) != len(quarantined) {
		t.Errorf("Recovery = %+v", rec)
	}
	if foreign != "" {
		if _, err := os.Stat(s.Path(foreign)); err != nil {
			t.Errorf("%s: %v", foreign, err)
		}
	}
	for i, wantBad := range []bool{true, true, false} {
		c, _ := s.Checkpoint(ctx, cs[i].ID)
		if c.Bad != wantBad {
			t.Errorf("checkpoint at step %d: bad %v (%s), want %v", c.Step, c.Bad, c.Problem, wantBad)
		}
	}
	for _, p := range append(quarantined, "README") {
		if _, err := os.Stat(s.Path(p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(runDir, ".ckpt-4-last.safetensors.tmp2718281828")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file survived: %v", err)
	}
}

// TestOpenDamagedDatabase is SQLite-only: it damages SQLite's own database
// file, which a PostgreSQL store does not have.
func TestOpenDamagedDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, s, "r")
	for step := int64(0); step < 200; step++ {
		ms := make([]Metric, 20)
		for i := range ms {
			ms[i] = Metric{Step: step, Name: string(rune('a' + i)), Value: 1}
		}
		if err := s.AddMetrics(ctx, r.ID, ms); err != nil {
			t.Fatal(err)
		}
	}
	s.Close() // checkpoints the WAL into the database file
	path := filepath.Join(dir, dbFile)
	fi, _ := os.Stat(path)
	if fi.Size() < 8192 {
		t.Fatalf("database is only %d bytes", fi.Size())
	}
	orig, _ := os.ReadFile(path)

	tests := []struct {
		name string
		data []byte
	}{
		{"truncated to half", orig[:len(orig)/2]},
		{"truncated inside the header", orig[:50]},
		{"not a database", bytes.Repeat([]byte("x"), 4096)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open: %v; want ErrCorrupt naming %s", err, path)
			}
		})
	}
}
