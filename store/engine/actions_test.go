package engine

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"thaw/trainer"
)

// syncBuffer is a log's buffer shared with the runs' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestWhoStoppedResumedDeleted: a user who stops, resumes and deletes a
// run through their view is recorded with the run (the deletion's record
// outlives it), read back by the read model, and logged; the local
// operator is recorded by login.
func TestWhoStoppedResumedDeleted(t *testing.T) {
	ctx := context.Background()
	var log syncBuffer
	e, s := newTestEngine(t, WithLogger(slog.New(slog.NewTextHandler(&log, nil))))
	ann := e.For(User{ID: "ann-key", Name: "ann"})

	l, err := ann.Start(ctx, testJob(400, 5), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if bs, _ := s.Series(ctx, l.ID, trainer.MetricTrainLoss, 1); len(bs) > 0 && bs[0].To >= 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run never reached step 10")
		}
	}
	if err := ann.Stop(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := l.Wait(); res.Status != trainer.StatusStopped {
		t.Fatalf("run %s, want stopped", res.Status)
	}
	r, err := e.Resume(ctx, l.ID, StartOptions{}) // the local operator
	if err != nil {
		t.Fatal(err)
	}
	mustWait(t, r)

	v, err := e.Read(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range v.Actions {
		got = append(got, a.Action+" by "+a.Actor)
	}
	want := []string{"stop by ann-key", "resume by " + localActor()}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("actions %q, want %q", got, want)
	}

	if err := ann.Delete(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	acts, err := s.Actions(ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(acts); n != 3 || acts[2].Action != "delete" || acts[2].Actor != "ann-key" || acts[2].At.IsZero() {
		t.Errorf("after the delete: %+v", acts)
	}
	for _, w := range []string{"run stop", "run resume", "run delete", "by=ann-key", l.ID} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("the log lacks %q:\n%s", w, log.String())
		}
	}
}
