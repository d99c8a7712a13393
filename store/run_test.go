package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"thaw/trainer"
)

func TestMigrationsIdempotent(t *testing.T) { dialects(t, testMigrationsIdempotent) }

func testMigrationsIdempotent(t *testing.T, at place) {
	for i := 0; i < 3; i++ {
		s, err := at.open()
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		v, err := s.SchemaVersion(context.Background())
		if err != nil || v != len(migrations) {
			t.Errorf("open %d: version %d, %v; want %d", i, v, err, len(migrations))
		}
		if i == 0 {
			mustRun(t, s, "kept")
		}
		s.Close()
	}
	s := at.mustOpen(t)
	runs, err := s.ListRuns(context.Background(), RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs after reopening: %d, %v; want 1", len(runs), err)
	}
	if at.dialect != "sqlite" {
		return // the file's mode is SQLite's alone
	}
	fi, err := os.Stat(filepath.Join(at.addr, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("database mode %v, want 0600", got)
	}
}

func TestRunCRUD(t *testing.T) { dialects(t, testRunCRUD) }

func testRunCRUD(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	a := mustRun(t, s, "Gradual on fashion")
	if len(a.ID) != idLen || a.Status != trainer.StatusRunning {
		t.Fatalf("created %+v", a)
	}
	got, err := s.Run(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != a.Name || string(got.Plan) != string(a.Plan) || got.Seed != 1 || !got.Created.Equal(a.Created) {
		t.Errorf("Run = %+v, want %+v", got, a)
	}
	if got, err := s.Run(ctx, Short(a.ID)); err != nil || got.ID != a.ID {
		t.Errorf("Run(short) = %s, %v", got.ID, err)
	}
	if _, err := s.Run(ctx, "zzzzzzzz"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Run(unknown): %v, want ErrNotFound", err)
	}

	// A branch from a checkpoint of a.
	ck, err := s.SaveCheckpoint(ctx, a.ID, CheckpointMeta{Step: 10, Kind: KindStageEnd}, writeBytes([]byte("w")))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateRun(ctx, Run{Name: "branch", Model: "other", ParentCheckpoint: ck.ID})
	if err != nil {
		t.Fatal(err)
	}
	if b.ParentRun != a.ID || string(b.Plan) != "null" {
		t.Errorf("branch %+v", b)
	}
	if _, err := s.Run(ctx, a.ID[:4]); !errors.Is(err, ErrAmbiguous) && a.ID[:4] == b.ID[:4] {
		t.Errorf("Run(common prefix): %v, want ErrAmbiguous", err)
	}
	br, err := s.Branches(ctx, a.ID)
	if err != nil || len(br) != 1 || br[0].ID != b.ID {
		t.Errorf("Branches = %v, %v", br, err)
	}
	if _, err := s.CreateRun(ctx, Run{ParentCheckpoint: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("CreateRun(unknown parent): %v", err)
	}
	if _, err := s.CreateRun(ctx, Run{Plan: json.RawMessage("{")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("CreateRun(bad plan): %v", err)
	}

	if err := s.SetStatus(ctx, a.ID, trainer.StatusFailed, "boom"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, a.ID, "weird", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetStatus(weird): %v", err)
	}
	if err := s.SetStatus(ctx, "nope", trainer.StatusDone, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetStatus(unknown): %v", err)
	}
	if err := s.Heartbeat(ctx, a.ID); !errors.Is(err, ErrNotLive) {
		t.Errorf("Heartbeat(failed run): %v, want ErrNotLive", err)
	}
	if err := s.Heartbeat(ctx, b.ID); err != nil {
		t.Errorf("Heartbeat: %v", err)
	}
	got, _ = s.Run(ctx, a.ID)
	if got.Status != trainer.StatusFailed || got.Error != "boom" || got.Finished.IsZero() {
		t.Errorf("after SetStatus: %+v", got)
	}

	tests := []struct {
		name string
		f    RunFilter
		want []string
	}{
		{"all, newest first", RunFilter{}, []string{b.ID, a.ID}},
		{"status", RunFilter{Status: []Status{trainer.StatusFailed}}, []string{a.ID}},
		{"name ignores case", RunFilter{Name: "GRADUAL"}, []string{a.ID}},
		{"name with wildcard is literal", RunFilter{Name: "%"}, nil},
		{"model", RunFilter{Model: "other"}, []string{b.ID}},
		{"dataset", RunFilter{Dataset: "fashion"}, []string{a.ID}},
		{"limit", RunFilter{Limit: 1}, []string{b.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, err := s.ListRuns(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range runs {
				got = append(got, r.ID)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	// Deleting a removes its rows and folder; the branch stays, orphaned.
	if err := s.Delete(ctx, b.ID); !errors.Is(err, ErrLive) {
		t.Errorf("Delete(live run): %v, want ErrLive", err)
	}
	if err := s.Delete(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Run after Delete: %v", err)
	}
	if _, err := os.Stat(s.runDir(a.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder after Delete: %v", err)
	}
	if cs, _ := s.Checkpoints(ctx, a.ID); len(cs) != 0 {
		t.Errorf("checkpoints after Delete: %v", cs)
	}
	got, _ = s.Run(ctx, b.ID)
	if got.ParentRun != "" || got.ParentCheckpoint != "" {
		t.Errorf("branch after deleting its parent: %+v", got)
	}
	if err := s.Delete(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Delete twice: %v", err)
	}
}

func TestStaleHeartbeatBecomesInterrupted(t *testing.T) {
	dialects(t, testStaleHeartbeatBecomesInterrupted)
}

func testStaleHeartbeatBecomesInterrupted(t *testing.T, at place) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	s, err := at.open(withClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	stale := mustRun(t, s, "stale")
	fresh := mustRun(t, s, "fresh")
	done := mustRun(t, s, "done")
	paused := mustRun(t, s, "paused")
	if err := s.SetStatus(ctx, done.ID, trainer.StatusDone, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, paused.ID, trainer.StatusPaused, ""); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// 40 s later only fresh sends a heartbeat (from a process that allows
	// an hour of silence, so that it does not mark the others yet).
	now = now.Add(40 * time.Second)
	s, err = at.open(withClock(clock), WithGrace(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, fresh.ID); err != nil {
		t.Fatal(err)
	}
	s.Close()
	now = now.Add(10 * time.Second)
	s = at.mustOpen(t, withClock(clock), WithGrace(30*time.Second))
	want := map[string]Status{stale.ID: trainer.StatusInterrupted, paused.ID: trainer.StatusInterrupted,
		fresh.ID: trainer.StatusRunning, done.ID: trainer.StatusDone}
	for id, st := range want {
		r, err := s.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != st {
			t.Errorf("%s: status %s, want %s", r.Name, r.Status, st)
		}
	}
	if got := len(s.Recovery().Interrupted); got != 2 {
		t.Errorf("Recovery().Interrupted has %d runs, want 2", got)
	}
	if err := s.Heartbeat(ctx, stale.ID); !errors.Is(err, ErrNotLive) {
		t.Errorf("Heartbeat of interrupted run: %v, want ErrNotLive", err)
	}
}

func TestStages(t *testing.T) { dialects(t, testStages) }

func testStages(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	r := mustRun(t, s, "r")
	put := []Stage{
		{Index: 0, Name: "head", Trainable: []string{"head"}, Start: 0, End: -1},
		{Index: 0, Name: "head", Trainable: []string{"head"}, Start: 0, End: 100},
		{Index: 1, Name: "+fc1", Trainable: []string{"fc1", "head"}, Start: 100, End: -1},
	}
	for _, st := range put {
		if err := s.PutStage(ctx, r.ID, st); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Stages(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].End != 100 || got[1].End != -1 || got[1].Trainable[0] != "fc1" {
		t.Errorf("Stages = %+v", got)
	}
	if err := s.PutStage(ctx, "nope", put[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("PutStage(unknown run): %v", err)
	}
}

func TestID(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	a, b := newID(t0), newID(t0.Add(time.Millisecond))
	if len(a) != idLen || a >= b {
		t.Errorf("ids %s, %s: want 26 characters in time order", a, b)
	}
	if a[:10] != b[:10] && a[:9] != b[:9] {
		t.Errorf("ids a millisecond apart differ early: %s %s", a, b)
	}
	if n, ok := normalizeID(" " + strings.ToUpper(a[:8]) + " "); !ok || n != a[:8] {
		t.Errorf("normalizeID = %q, %v", n, ok)
	}
}

// TestMigrationFromSchema1 opens a store written at schema version 1 with
// runs in every status it knew: they keep their status and lose nothing,
// and gain the columns of version 2 at their zero values.
func TestMigrationFromSchema1(t *testing.T) { dialects(t, testMigrationFromSchema1) }

func testMigrationFromSchema1(t *testing.T, at place) {
	ctx := context.Background()
	all := migrations
	migrations = all[:1]
	old, err := at.open()
	migrations = all
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := old.SchemaVersion(ctx); v != 1 {
		t.Fatalf("schema %d, want 1", v)
	}
	// Version 1's runs table, written as version 1 wrote it.
	statuses := []Status{trainer.StatusRunning, trainer.StatusDone, trainer.StatusStopped, trainer.StatusInterrupted}
	for i, st := range statuses {
		_, err := old.db.ExecContext(ctx, `INSERT INTO runs (id, name, model, model_hash, dataset,
			dataset_hash, plan, seed, version, status, created_ms, heartbeat_ms, error)
			VALUES (?, ?, 'm', 'h', 'd', 'dh', '{}', 1, 'v', ?, ?, ?, '')`,
			fmt.Sprintf("0000000000000000000000000%d", i), string(st), st, 1000+i, time.Now().UnixMilli())
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.db.ExecContext(ctx, `INSERT INTO stages (run_id, idx, name, trainable, start_step)
		VALUES ('00000000000000000000000001', 0, 'head', '["head"]', 0)`); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := at.mustOpen(t)
	if v, _ := s.SchemaVersion(ctx); v != len(migrations) {
		t.Fatalf("schema %d after opening, want %d", v, len(migrations))
	}
	runs, err := s.ListRuns(ctx, RunFilter{})
	if err != nil || len(runs) != len(statuses) {
		t.Fatalf("%d runs, %v; want %d", len(runs), err, len(statuses))
	}
	for _, r := range runs {
		if string(r.Status) != r.Name || r.Owner != "" || r.Tags != nil || r.StopRequested || r.ParentStep != 0 {
			t.Errorf("run %s: %+v", r.Name, r)
		}
	}
	if st, _ := s.Stages(ctx, "00000000000000000000000001"); len(st) != 1 {
		t.Errorf("the done run lost its stage: %v", st)
	}
	// The new status is accepted, an unknown one still refused.
	if err := s.SetStatus(ctx, runs[0].ID, trainer.StatusQueued, ""); err != nil {
		t.Errorf("queued: %v", err)
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE runs SET status = 'sleeping' WHERE id = ?`, runs[0].ID); err == nil {
		t.Error("the status CHECK is gone")
	}
}

// TestRename: a run's name changes in place; an empty name and an
// unknown run are refused.
func TestRename(t *testing.T) { dialects(t, testRename) }

func testRename(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	r := mustRun(t, s, "before")
	if err := s.Rename(ctx, r.ID, "after"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Run(ctx, r.ID); err != nil || got.Name != "after" {
		t.Errorf("renamed run: %q, %v; want \"after\"", got.Name, err)
	}
	if err := s.Rename(ctx, r.ID, " "); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty name: %v, want ErrInvalid", err)
	}
	if err := s.Rename(ctx, "0000000000000000000000000z", "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown run: %v, want ErrNotFound", err)
	}
}

// TestStopReason: the recorder stores why a run stopped with its status
// (none when a stop was asked for), a requeue takes only a run stopped for the reason asked, and resuming
// clears it.
func TestStopReason(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t)
	why := WhyStopped(func(err error) string {
		if errors.Is(err, context.Canceled) {
			return StopShutdown
		}
		return ""
	})
	tests := []struct {
		name   string
		status trainer.Status
		err    error
		asked  bool // a stop was requested before the run ended
		want   string
	}{
		{"cancelled", trainer.StatusStopped, context.Canceled, false, StopShutdown},
		{"cancelled while a stop was asked for", trainer.StatusStopped, context.Canceled, true, ""},
		{"stopped by its control", trainer.StatusStopped, nil, false, ""},
		{"done", trainer.StatusDone, nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustRun(t, s, tt.name)
			rec, err := s.Record(ctx, r.ID, why)
			if err != nil {
				t.Fatal(err)
			}
			if tt.asked {
				if err := s.RequestStop(ctx, r.ID); err != nil {
					t.Fatal(err)
				}
			}
			rec.Finish(trainer.Result{Status: tt.status}, tt.err)
			got, err := s.Run(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.status || got.StopReason != tt.want {
				t.Fatalf("run is %s, stop reason %q; want %s, %q", got.Status, got.StopReason, tt.status, tt.want)
			}
			err = s.Requeue(ctx, r.ID, StopShutdown)
			if tt.want == "" {
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("requeue: %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Run(ctx, r.ID); got.Status != trainer.StatusQueued || got.StopReason != "" || !got.Finished.IsZero() {
				t.Errorf("requeued run is %s, stop reason %q, finished %v; want queued, none", got.Status, got.StopReason, got.Finished)
			}
			if err := s.Requeue(ctx, r.ID, StopShutdown); !errors.Is(err, ErrInvalid) {
				t.Errorf("second requeue: %v, want ErrInvalid", err)
			}
		})
	}
}
