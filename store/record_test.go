package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"thaw/trainer"
	"thaw/trainer/safetensors"
)

func TestCheckpointCodecRoundTrip(t *testing.T) {
	spec := trainSpec(t, 1, 0)
	var ckpts []trainer.Checkpoint
	spec.Checkpoint = func(c trainer.Checkpoint) error { ckpts = append(ckpts, c); return nil }
	if _, err := trainer.Run(context.Background(), spec, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range ckpts {
		var buf bytes.Buffer
		if err := EncodeCheckpoint(&buf, c); err != nil {
			t.Fatal(err)
		}
		got, err := DecodeCheckpoint(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != c.Kind || got.Step != c.Step || got.Stage != c.Stage {
			t.Errorf("got %s at step %d stage %d, want %s at %d stage %d", got.Kind, got.Step, got.Stage, c.Kind, c.Step, c.Stage)
		}
		if err := sameTensors(c.Weights, got.Weights); err != nil {
			t.Errorf("%s %d: weights: %v", c.Kind, c.Step, err)
		}
		if err := sameTensors(c.Best, got.Best); err != nil {
			t.Errorf("%s %d: best: %v", c.Kind, c.Step, err)
		}
		if len(got.Optimizer) != len(c.Optimizer) {
			t.Errorf("%d optimizer entries, want %d", len(got.Optimizer), len(c.Optimizer))
		}
		for k, v := range c.Optimizer {
			if g := got.Optimizer[k]; g == nil || !slices.Equal(g.Data, v.Data) || !slices.Equal(g.Shape, v.Shape) {
				t.Errorf("optimizer %s differs", k)
			}
		}
		want, _ := json.Marshal(c.Loop)
		have, _ := json.Marshal(got.Loop)
		if !bytes.Equal(want, have) {
			t.Errorf("loop state %s, want %s", have, want)
		}
		// Deterministic bytes: saving the same state again changes nothing.
		var again bytes.Buffer
		EncodeCheckpoint(&again, got)
		if !bytes.Equal(again.Bytes(), buf.Bytes()) {
			t.Errorf("%s %d: encoding is not deterministic", c.Kind, c.Step)
		}
		// torch's loader needs format=pt; plain names load with strict=False.
		f, err := safetensors.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatal(err)
		}
		if f.Metadata["format"] != "pt" || f.Tensor("fc1.weight") == nil || f.Tensor("optimizer.head.weight.exp_avg") == nil {
			t.Errorf("layout: metadata %v, tensors %d", f.Metadata, len(f.Tensors))
		}
	}
}

func TestDecodeCheckpointRejects(t *testing.T) {
	var plain bytes.Buffer
	safetensors.Write(&plain, []trainer.SafeTensor{{Name: "w", DType: trainer.DTypeF32, Shape: []int{1}, Data: make([]byte, 4)}}, nil)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "corrupt"},
		{"foreign", []byte("PK\x03\x04 this is a zip file, not a checkpoint"), "corrupt"},
		{"plain safetensors", plain.Bytes(), "not a thaw checkpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCheckpoint(bytes.NewReader(tt.data), int64(len(tt.data)))
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrCorrupt mentioning %q", err, tt.want)
			}
		})
	}
	w := []trainer.SafeTensor{{Name: "best.x", DType: trainer.DTypeF32, Shape: []int{1}, Data: make([]byte, 4)}}
	if err := EncodeCheckpoint(&bytes.Buffer{}, trainer.Checkpoint{Kind: "last", Weights: w}); !errors.Is(err, ErrInvalid) {
		t.Errorf("reserved weight name: err = %v, want ErrInvalid", err)
	}
}

// settle waits until the number of goroutines is back to at most n.
func settle(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines outlive the run, had %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRecorderRecordsRun(t *testing.T) { dialects(t, testRecorderRecordsRun) }

func testRecorderRecordsRun(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	run := createRun(t, s, "recorded")
	before := runtime.NumGoroutine()
	spec := trainSpec(t, 2, 5)
	var acks []int64
	res, err := s.Train(ctx, run.ID, spec, nil, HeartbeatEvery(5*time.Millisecond),
		OnAck(func(step int64) { acks = append(acks, step) }))
	if err != nil {
		t.Fatal(err)
	}
	settle(t, before)

	got, err := s.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != trainer.StatusDone || got.Finished.IsZero() {
		t.Errorf("status %s, finished %v, want done", got.Status, got.Finished)
	}
	// Every step's loss, at the count of completed steps.
	loss := rawSeries(t, s, run.ID, trainer.MetricTrainLoss)
	if len(loss) != res.Steps || loss[0][0] != 1 || loss[len(loss)-1][0] != uint64(res.Steps) {
		t.Errorf("train/loss: %d points from %v, want steps 1..%d", len(loss), loss[:1], res.Steps)
	}
	if len(acks) == 0 || acks[len(acks)-1] != int64(res.Steps) {
		t.Errorf("acks end at %v, want %d", acks[max(len(acks)-1, 0):], res.Steps)
	}
	names, err := s.MetricNames(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{trainer.MetricTrainLoss, trainer.MetricValLoss, trainer.MetricValAcc, trainer.MetricLR,
		trainer.MetricEpoch, trainer.MetricSamplesPerSec, trainer.BlockMetric("head", trainer.BlockGradNorm),
		trainer.BlockMetric("fc1", trainer.BlockDrift), trainer.BlockMetric("fc2", trainer.BlockUpdateRatio),
		trainer.BlockMetric("fc3", trainer.BlockLR)} {
		if !slices.Contains(names, n) {
			t.Errorf("no %s among %v", n, names)
		}
	}
	if slices.Contains(names, trainer.MetricSourceAcc) {
		t.Errorf("source/acc stored although there is no gauge")
	}
	stages, err := s.Stages(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(stages) != len(res.Stages) {
		t.Fatalf("%d stages, want %d", len(stages), len(res.Stages))
	}
	for i, st := range stages {
		want := res.Stages[i]
		if st.Name != want.Label || st.Start != int64(want.StartStep) || st.End != int64(want.EndStep) ||
			!slices.Equal(st.Trainable, want.Trainable) {
			t.Errorf("stage %d = %+v, want %+v", i, st, want)
		}
	}
	cs, err := s.Checkpoints(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	count := map[Kind]int{}
	for _, c := range cs {
		count[c.Kind]++
		if _, err := s.LoadCheckpoint(ctx, c.ID); err != nil {
			t.Error(err)
		}
	}
	if count[KindStageEnd] != len(res.Stages) || count[KindBest] != 1 || count[KindLast] != 1 {
		t.Errorf("checkpoints by kind %v, want %d stage-end, 1 best, 1 last", count, len(res.Stages))
	}
	// Files and rows agree: retention removed the files of what it deleted.
	entries, _ := os.ReadDir(s.runDir(run.ID))
	if len(entries) != len(cs) {
		t.Errorf("%d files for %d checkpoints", len(entries), len(cs))
	}
}

// stopAt returns a report function that stops the run once a report says
// at least step steps are done.
func stopAt(c *trainer.Control, step int) func(trainer.Progress) {
	return func(p trainer.Progress) {
		if p.Step >= step {
			c.Stop()
		}
	}
}

// rebuild is a build function for Resume that makes trainSpec again.
func rebuild(t *testing.T, epochs, evalEvery int) func(ResumePoint) (trainer.Spec, error) {
	return func(ResumePoint) (trainer.Spec, error) { return trainSpec(t, epochs, evalEvery), nil }
}

// stoppedRun trains a run until step stop and returns it, stopped.
func stoppedRun(t *testing.T, s *Store, stop int) Run {
	t.Helper()
	run := createRun(t, s, "stopped")
	spec := trainSpec(t, 2, 5)
	spec.Control = &trainer.Control{}
	res, err := s.Train(context.Background(), run.ID, spec, stopAt(spec.Control, stop))
	if err != nil || res.Status != trainer.StatusStopped {
		t.Fatalf("stopped run: %v, %v", res.Status, err)
	}
	return run
}

func TestResumeMatchesUninterrupted(t *testing.T) { dialects(t, testResumeMatchesUninterrupted) }

func testResumeMatchesUninterrupted(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	full := createRun(t, s, "full")
	want, err := s.Train(ctx, full.ID, trainSpec(t, 2, 5), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Stopped mid-stage, then resumed twice more from mid-stage stops.
	run := stoppedRun(t, s, 23)
	for _, stop := range []int{41, 58} {
		spec := trainSpec(t, 2, 5)
		spec.Control = &trainer.Control{}
		build := func(ResumePoint) (trainer.Spec, error) { return spec, nil }
		if res, err := s.Resume(ctx, run.ID, build, stopAt(spec.Control, stop)); err != nil || res.Status != trainer.StatusStopped {
			t.Fatalf("resume to %d: %v, %v", stop, res.Status, err)
		}
	}
	got, err := s.Resume(ctx, run.ID, rebuild(t, 2, 5), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Steps != want.Steps || got.BestValLoss != want.BestValLoss || got.BestStep != want.BestStep {
		t.Errorf("resumed: %d steps, best %v at %d; want %d, %v at %d", got.Steps, got.BestValLoss, got.BestStep,
			want.Steps, want.BestValLoss, want.BestStep)
	}
	for _, name := range []string{trainer.MetricTrainLoss, trainer.MetricValLoss, trainer.MetricValAcc} {
		if err := sameSeries(t, s, full.ID, run.ID, name); err != nil {
			t.Error(err)
		}
	}
	_, w1 := lastWeights(t, s, full.ID)
	_, w2 := lastWeights(t, s, run.ID)
	if err := sameTensors(w1, w2); err != nil {
		t.Errorf("final weights: %v", err)
	}
	r, _ := s.Run(ctx, run.ID)
	if r.Status != trainer.StatusDone {
		t.Errorf("status %s, want done", r.Status)
	}
}

func TestResumeSkipsBadCheckpoint(t *testing.T) { dialects(t, testResumeSkipsBadCheckpoint) }

func testResumeSkipsBadCheckpoint(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	full := createRun(t, s, "full")
	if _, err := s.Train(ctx, full.ID, trainSpec(t, 2, 5), nil); err != nil {
		t.Fatal(err)
	}
	run := stoppedRun(t, s, 30)
	newest, err := s.LastGoodCheckpoint(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Flip bytes in the middle of the newest checkpoint's file.
	p := s.Path(newest.Path)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+8; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var from ResumePoint
	build := func(pt ResumePoint) (trainer.Spec, error) { from = pt; return trainSpec(t, 2, 5), nil }
	if _, err := s.Resume(ctx, run.ID, build, nil); err != nil {
		t.Fatal(err)
	}
	if from.Checkpoint.ID == newest.ID || from.State == nil || len(from.Skipped) == 0 ||
		!errors.Is(from.Skipped[0], ErrCorrupt) || !strings.Contains(from.Skipped[0].Error(), p) {
		t.Errorf("resumed from %+v, skipping %v; want another checkpoint than the damaged %s", from.Checkpoint, from.Skipped, p)
	}
	if err := sameSeries(t, s, full.ID, run.ID, trainer.MetricTrainLoss); err != nil {
		t.Error(err)
	}
	_, w1 := lastWeights(t, s, full.ID)
	_, w2 := lastWeights(t, s, run.ID)
	if err := sameTensors(w1, w2); err != nil {
		t.Errorf("final weights: %v", err)
	}

	// LoadCheckpoint of a damaged file: an error naming it, the
	// checkpoint marked bad, and LastGoodCheckpoint passes it over.
	last, err := s.LastGoodCheckpoint(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	p = s.Path(last.Path)
	if err := os.WriteFile(p, []byte("not a checkpoint"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadCheckpoint(ctx, last.ID); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), p) {
		t.Errorf("LoadCheckpoint of a damaged file: %v, want ErrCorrupt naming %s", err, p)
	}
	if c, err := s.LastGoodCheckpoint(ctx, run.ID); err != nil || c.ID == last.ID {
		t.Errorf("LastGoodCheckpoint after damage: %v, %v; want another one", c.ID, err)
	}
}

func TestResumeRefuses(t *testing.T) { dialects(t, testResumeRefuses) }

func testResumeRefuses(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	live := createRun(t, s, "live")
	done := createRun(t, s, "done")
	if err := s.SetStatus(ctx, done.ID, trainer.StatusDone, ""); err != nil {
		t.Fatal(err)
	}
	called := false
	build := func(ResumePoint) (trainer.Spec, error) { called = true; return trainer.Spec{}, nil }
	tests := []struct {
		id   string
		want error
		text string
	}{
		{live.ID, ErrLive, "it is running"},
		{done.ID, ErrInvalid, "it is done"},
		{"zzzz", ErrNotFound, "zzzz"},
	}
	for _, tt := range tests {
		_, err := s.Resume(ctx, tt.id, build, nil)
		if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("Resume(%s) = %v, want %v saying %q", tt.id, err, tt.want, tt.text)
		}
	}
	if called {
		t.Error("build was called for a run that cannot resume")
	}
	// A failing build changes nothing.
	stopped := createRun(t, s, "stopped")
	s.SetStatus(ctx, stopped.ID, trainer.StatusStopped, "")
	boom := errors.New("model folder is gone")
	if _, err := s.Resume(ctx, stopped.ID, func(ResumePoint) (trainer.Spec, error) { return trainer.Spec{}, boom }, nil); !errors.Is(err, boom) {
		t.Errorf("err = %v, want the build error", err)
	}
	if r, _ := s.Run(ctx, stopped.ID); r.Status != trainer.StatusStopped {
		t.Errorf("status after a failed build: %s, want stopped", r.Status)
	}
}

func TestRecorderSurfacesWriteErrors(t *testing.T) { dialects(t, testRecorderSurfacesWriteErrors) }

func testRecorderSurfacesWriteErrors(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	run := createRun(t, s, "doomed")
	before := runtime.NumGoroutine()
	rec, err := s.Record(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.db.Close() // every write now fails
	rec.Report(trainer.Progress{Step: 3, FirstStep: 0, Losses: []float64{1, 2, 3}, ValLoss: 1, ValAcc: 0.5})
	if err := rec.Flush(); err == nil {
		t.Error("Flush after a failed write: nil error")
	}
	if err := rec.Checkpoint(trainer.Checkpoint{Kind: "last", Step: 3}); err == nil {
		t.Error("Checkpoint after a failed write: nil error")
	}
	if err := rec.Finish(trainer.Result{Status: trainer.StatusDone}, nil); err == nil || rec.Err() == nil {
		t.Errorf("Finish = %v, Err = %v, want errors", err, rec.Err())
	}
	settle(t, before)
	if _, err := s.Record(ctx, run.ID); err == nil {
		t.Error("Record on a closed store: nil error")
	}
}

func TestRecordRefusesFinishedRun(t *testing.T) { dialects(t, testRecordRefusesFinishedRun) }

func testRecordRefusesFinishedRun(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	run := createRun(t, s, "over")
	s.SetStatus(ctx, run.ID, trainer.StatusDone, "")
	if _, err := s.Record(ctx, run.ID); !errors.Is(err, ErrNotLive) {
		t.Errorf("Record of a done run: %v, want ErrNotLive", err)
	}
	if _, err := s.Record(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Record of no run: %v, want ErrNotFound", err)
	}
}

func TestRecorderCloseMarksInterrupted(t *testing.T) { dialects(t, testRecorderCloseMarksInterrupted) }

func testRecorderCloseMarksInterrupted(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	run := createRun(t, s, "abandoned")
	rec, err := s.Record(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec.Report(trainer.Progress{Step: 2, Losses: []float64{1, 2}, ValLoss: math.NaN(), ValAcc: math.NaN(), SourceAcc: math.NaN()})
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	r, _ := s.Run(ctx, run.ID)
	if r.Status != trainer.StatusInterrupted {
		t.Errorf("status %s, want interrupted", r.Status)
	}
	if n := len(rawSeries(t, s, run.ID, trainer.MetricTrainLoss)); n != 2 {
		t.Errorf("%d losses stored, want the 2 reported", n)
	}
}

func TestReportDoesNotWaitForTheDatabase(t *testing.T) {
	dialects(t, testReportDoesNotWaitForTheDatabase)
}

func testReportDoesNotWaitForTheDatabase(t *testing.T, at place) {
	ctx := context.Background()
	s := at.mustOpen(t)
	run := createRun(t, s, "patient")
	rec, err := s.Record(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Another writer holds the database (transactions start as writers).
	blocker, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blocker.ExecContext(ctx, `UPDATE runs SET name = name WHERE id = ?`, run.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range 100 {
		rec.Report(trainer.Progress{Step: i + 1, FirstStep: i, Losses: []float64{float64(i)},
			ValLoss: math.NaN(), ValAcc: math.NaN(), SourceAcc: math.NaN()})
	}
	// 100 reports queue in far less than one write; the bound is loose
	// for slow machines and the race detector.
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("100 reports took %v while the database was locked", d)
	}
	time.Sleep(50 * time.Millisecond)
	if err := blocker.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := rec.Finish(trainer.Result{Status: trainer.StatusDone}, nil); err != nil {
		t.Fatal(err)
	}
	if n := len(rawSeries(t, s, run.ID, trainer.MetricTrainLoss)); n != 100 {
		t.Errorf("%d losses stored, want 100", n)
	}
}
