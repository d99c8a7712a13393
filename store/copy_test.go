package store

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"testing"

	"thaw/trainer"
)

// TestCopy copies an SQLite store with a finished run (trained, with
// checkpoints and metrics), a stopped one, a branch, a queued one and a
// live one into an empty store of each dialect: every run but the live
// one reads the same on both sides, file for file; a second copy finds
// them all present.
func TestCopy(t *testing.T) { dialects(t, testCopy) }

func testCopy(t *testing.T, at place) {
	ctx := context.Background()
	src := newPlace(t, "sqlite").mustOpen(t)
	done := createRun(t, src, "done")
	if _, err := src.Train(ctx, done.ID, trainSpec(t, 2, 3), nil); err != nil {
		t.Fatal(err)
	}
	if err := src.SetTags(ctx, done.ID, []string{"sweep", "seed:1"}); err != nil {
		t.Fatal(err)
	}
	// A NaN and a value, as AddMetrics stores them.
	if err := src.AddMetrics(ctx, done.ID, []Metric{{Step: 1, Name: "odd", Value: math.NaN()}, {Step: 2, Name: "odd", Value: 0.5}}); err != nil {
		t.Fatal(err)
	}
	cks, err := src.Checkpoints(ctx, done.ID)
	if err != nil || len(cks) == 0 {
		t.Fatalf("checkpoints of the trained run: %d, %v", len(cks), err)
	}
	stopped := mustRun(t, src, "stopped")
	if err := src.SetStatus(ctx, stopped.ID, trainer.StatusStopped, ""); err != nil {
		t.Fatal(err)
	}
	branch, err := src.CreateRun(ctx, Run{Name: "branch", Model: "m", Dataset: "d", ParentCheckpoint: cks[0].ID, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.SetStatus(ctx, branch.ID, trainer.StatusDone, ""); err != nil {
		t.Fatal(err)
	}
	queued, err := src.CreateRun(ctx, Run{Name: "queued", Model: "m", Dataset: "d", Status: trainer.StatusQueued, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	live := mustRun(t, src, "live") // running, its heartbeat fresh

	dst := at.mustOpen(t)
	res, err := Copy(ctx, dst, src)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{done.ID, stopped.ID, branch.ID, queued.ID}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(res.Copied))
	if !slices.Equal(got, want) || !slices.Equal(res.Live, []string{live.ID}) || len(res.Present) != 0 {
		t.Fatalf("Copy = %+v; want copied %v, live %s", res, want, live.ID)
	}
	if res.Files != len(cks) {
		t.Errorf("copied %d files, want %d", res.Files, len(cks))
	}
	if _, err := dst.Run(ctx, live.ID); err == nil {
		t.Error("the live run was copied")
	}

	for _, id := range want {
		a, err := src.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b, err := dst.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("run %s:\nsource %+v\ncopy   %+v", a.Name, a, b)
		}
		for _, read := range []func(*Store) (any, error){
			func(s *Store) (any, error) { return s.Stages(ctx, id) },
			func(s *Store) (any, error) { return s.Checkpoints(ctx, id) },
			func(s *Store) (any, error) { return s.MetricNames(ctx, id) },
			func(s *Store) (any, error) { return s.Series(ctx, id, "train/loss", 0) },
			func(s *Store) (any, error) { return s.Series(ctx, id, "odd", 0) },
		} {
			x, errA := read(src)
			y, errB := read(dst)
			// Printed, since NaN equals nothing, not even itself.
			if errA != nil || errB != nil || fmt.Sprintf("%+v", x) != fmt.Sprintf("%+v", y) {
				t.Errorf("run %s: source %+v (%v), copy %+v (%v)", a.Name, x, errA, y, errB)
			}
		}
	}
	// A downsampled series is summed by the database: SQLite's SUM is
	// compensated (Kahan-Babuska-Neumaier, since 3.43) and PostgreSQL's is
	// not, so a bucket's mean of a dozen values may differ in the last few
	// bits; 1e-12 relative is thousands of ulps and far below anything
	// shown.
	a, errA := src.Series(ctx, done.ID, "train/loss", 7)
	b, errB := dst.Series(ctx, done.ID, "train/loss", 7)
	if errA != nil || errB != nil || len(a) != len(b) {
		t.Fatalf("downsampled: source %d buckets (%v), copy %d (%v)", len(a), errA, len(b), errB)
	}
	for i := range a {
		x, y := a[i], b[i]
		if x.From != y.From || x.To != y.To || x.N != y.N || x.Min != y.Min || x.Max != y.Max ||
			math.Abs(x.Mean-y.Mean) > 1e-12*math.Abs(x.Mean) {
			t.Errorf("downsampled bucket %d: source %+v, copy %+v", i, x, y)
		}
	}
	for _, c := range cks {
		a, errA := os.ReadFile(src.Path(c.Path))
		b, errB := os.ReadFile(dst.Path(c.Path))
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("checkpoint file %s: %d bytes (%v), copy %d bytes (%v)", c.Path, len(a), errA, len(b), errB)
		}
		if _, _, err := dst.OpenCheckpoint(ctx, c.ID); err != nil {
			t.Errorf("copied checkpoint %s: %v", c.Path, err)
		}
	}

	res, err = Copy(ctx, dst, src)
	if err != nil || len(res.Copied) != 0 || len(res.Present) != len(want) {
		t.Errorf("second Copy = %+v, %v; want every run present", res, err)
	}
}

// TestCopyTablesComplete: every table with a column naming a run is one
// that Copy copies.
func TestCopyTablesComplete(t *testing.T) {
	s := mustOpen(t)
	rows, err := s.db.Query(`SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c
		WHERE m.type = 'table' AND (c.name = 'run_id' OR (m.name = 'runs' AND c.name = 'id'))`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		if name == "sweep_tasks" { // copied whole, with its sweep: copySweeps
			continue
		}
		if !slices.ContainsFunc(copyTables, func(c struct{ name, key string }) bool { return c.name == name }) {
			t.Errorf("table %s holds rows of runs but is not in copyTables", name)
		}
	}
}

// TestCopySweeps copies a sweep with a task claimed by a finished run, one
// claimed by a live run and one unclaimed: the sweep and its tasks read
// the same on both sides, but for the live run's task, which is left
// unclaimed where that run did not come.
func TestCopySweeps(t *testing.T) { dialects(t, testCopySweeps) }

func testCopySweeps(t *testing.T, at place) {
	ctx := context.Background()
	src := newPlace(t, "sqlite").mustOpen(t)
	done := createRun(t, src, "done")
	if _, err := src.Train(ctx, done.ID, trainSpec(t, 1, 0), nil); err != nil {
		t.Fatal(err)
	}
	live := mustRun(t, src, "live") // running, its heartbeat fresh
	sw, err := src.CreateSweep(ctx, Sweep{Name: "sweep", Spec: []byte(`{"points":["a","b","c"]}`)}, []SweepTask{
		{Index: 0, Point: "a", Seed: 1}, {Index: 1, Point: "b", Seed: 1}, {Index: 2, Point: "c", Seed: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, run := range []string{done.ID, live.ID} {
		if _, err := src.ClaimSweepTask(ctx, sw.ID, i, run, false); err != nil {
			t.Fatal(err)
		}
	}
	dst := at.mustOpen(t)
	if _, err := Copy(ctx, dst, src); err != nil {
		t.Fatal(err)
	}
	got, err := dst.SweepTasks(ctx, sw.ID)
	if err != nil {
		t.Fatal(err)
	}
	want, err := src.SweepTasks(ctx, sw.ID)
	if err != nil {
		t.Fatal(err)
	}
	want[1].Run = "" // its run is live in src: not copied
	if !reflect.DeepEqual(got, want) {
		t.Errorf("copied tasks %+v, want %+v", got, want)
	}
	if g, err := dst.Sweep(ctx, sw.ID); err != nil || g.Name != sw.Name || string(g.Spec) != string(sw.Spec) {
		t.Errorf("copied sweep %+v, %v; want %+v", g, err, sw)
	}
	// A second copy finds the sweep present and changes nothing.
	if _, err := Copy(ctx, dst, src); err != nil {
		t.Fatal(err)
	}
	if again, _ := dst.SweepTasks(ctx, sw.ID); !reflect.DeepEqual(again, got) {
		t.Errorf("after a second copy %+v, want %+v", again, got)
	}
}
