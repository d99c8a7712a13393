package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"thaw/trainer"
)

// A run that failed on I/O (a full disk) is recorded as failed, marked so,
// and resumes from its last good checkpoint to the weights of a run that
// never failed; a run that failed otherwise does not resume.
func TestResumeAfterIOFailure(t *testing.T) { dialects(t, testResumeAfterIOFailure) }

func testResumeAfterIOFailure(t *testing.T, at place) {
	ctx := context.Background()
	s, err := at.open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	ref := createRun(t, s, "reference")
	if _, err := s.Train(ctx, ref.ID, trainSpec(t, 2, 3), nil); err != nil {
		t.Fatal(err)
	}

	// The disk fills at the third checkpoint: its write fails as the
	// kernel's would.
	run := createRun(t, s, "disk full")
	rec, err := s.Record(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	spec := trainSpec(t, 2, 3)
	n := 0
	spec.Checkpoint = func(c trainer.Checkpoint) error {
		if n++; n == 3 {
			return &fs.PathError{Op: "write", Path: "ckpt.safetensors.tmp", Err: syscall.ENOSPC}
		}
		return rec.Checkpoint(c)
	}
	res, runErr := trainer.Run(ctx, spec, rec.Report)
	if runErr == nil || res.Status != trainer.StatusFailed {
		t.Fatalf("run with a full disk: status %s, error %v; want failed", res.Status, runErr)
	}
	rec.Finish(res, runErr)
	got, err := s.Run(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != trainer.StatusFailed || !strings.HasPrefix(got.Error, ioFailurePrefix) || !strings.Contains(got.Error, "no space left") {
		t.Fatalf("stored as %s: %q; want failed, marked as I/O", got.Status, got.Error)
	}

	build := func(ResumePoint) (trainer.Spec, error) { return trainSpec(t, 2, 3), nil }
	if _, err := s.Resume(ctx, run.ID, build, nil); err != nil {
		t.Fatalf("resume after the disk was freed: %v", err)
	}
	_, want := lastWeights(t, s, ref.ID)
	_, have := lastWeights(t, s, run.ID)
	if err := sameTensors(have, want); err != nil {
		t.Errorf("resumed run's final weights differ from the reference's: %v", err)
	}

	// Another failure does not resume.
	other := createRun(t, s, "bad spec")
	if err := s.SetStatus(ctx, other.ID, trainer.StatusFailed, "run: batch size -1 is negative"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resume(ctx, other.ID, build, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("resume of a run that failed otherwise: %v, want ErrInvalid", err)
	}
}

func TestIOFailure(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("checkpoint at step 3: %w", &fs.PathError{Op: "sync", Path: "x", Err: syscall.EIO}), true},
		{syscall.EDQUOT, true},
		{syscall.EROFS, true},
		{errors.New("no space left on device"), false}, // text alone proves nothing
		{trainer.ErrDiverged, false},
		{os.ErrNotExist, false},
	} {
		if got := IOFailure(tt.err); got != tt.want {
			t.Errorf("IOFailure(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// A run whose heartbeat is fresh is refused with the seconds left until it
// is stale; once stale it resumes.
func TestResumeLiveSaysHowLong(t *testing.T) { dialects(t, testResumeLiveSaysHowLong) }

func testResumeLiveSaysHowLong(t *testing.T, at place) {
	ctx := context.Background()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := at.open(withClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := createRun(t, s, "live elsewhere") // running, heartbeat now
	build := func(ResumePoint) (trainer.Spec, error) { return trainSpec(t, 1, 0), nil }

	now = now.Add(12 * time.Second)
	_, err = s.Resume(ctx, run.ID, build, nil)
	if !errors.Is(err, ErrLive) || !strings.Contains(err.Error(), "wait 18 s") || !strings.Contains(err.Error(), "heartbeat 12s old") {
		t.Errorf("resume 12 s after the heartbeat: %v; want ErrLive saying wait 18 s", err)
	}
	if err := s.Delete(ctx, run.ID); !errors.Is(err, ErrLive) || !strings.Contains(err.Error(), "wait 18 s") {
		t.Errorf("delete 12 s after the heartbeat: %v; want ErrLive saying wait 18 s", err)
	}
	now = now.Add(DefaultGrace)
	if _, err := s.Resume(ctx, run.ID, build, nil); err != nil {
		t.Errorf("resume once the heartbeat is stale: %v", err)
	}
}

// RunSize counts a run's checkpoint files.
func TestRunSize(t *testing.T) { dialects(t, testRunSize) }

func testRunSize(t *testing.T, at place) {
	ctx := context.Background()
	s, err := at.open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := createRun(t, s, "sized")
	if n, err := s.RunSize(run.ID); err != nil || n != 0 {
		t.Errorf("size before any checkpoint: %d, %v; want 0", n, err)
	}
	if _, err := s.Train(ctx, run.ID, trainSpec(t, 2, 3), nil); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Checkpoints(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for _, c := range cs {
		want += c.Size
	}
	if n, err := s.RunSize(run.ID); err != nil || n != want || n == 0 {
		t.Errorf("size %d, %v; want %d, the checkpoints' sum", n, err, want)
	}
}

// RunSize is called by `thaw runs` while a run replaces its best
// checkpoint: a file that vanishes between the folder's listing and its
// stat is not counted and is no error (a Slurm sweep's `thaw runs` once
// failed on exactly this).
func TestRunSizeWhileFilesVanish(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	run := createRun(t, s, "churn")
	dir := s.runDir(run.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(dir, "kept")
	if err := os.WriteFile(keep, make([]byte, 100), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			p := filepath.Join(dir, fmt.Sprintf("ckpt-%d", i%64))
			os.WriteFile(p, make([]byte, 10), 0o644)
			os.Remove(p)
		}
	}()
	for i := 0; i < 3000; i++ {
		n, err := s.RunSize(run.ID)
		if err != nil {
			t.Errorf("size while files come and go: %v", err)
			break
		}
		if n < 100 {
			t.Errorf("size %d; want at least the kept file's 100 bytes", n)
			break
		}
	}
	close(done)
	wg.Wait()
}
