package store

import (
	"context"
	"testing"
	"time"

	"thaw/trainer"
)

// Judge's table: the boundaries of doubt and staleness, for the default
// grace and for a short one (which doubts after half of it).
func TestJudge(t *testing.T) {
	beat := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		status   Status
		grace    time.Duration
		age      time.Duration
		want     Status
		doubtful bool
		left     time.Duration
	}{
		{trainer.StatusRunning, DefaultGrace, 0, trainer.StatusRunning, false, DefaultGrace},
		{trainer.StatusRunning, DefaultGrace, DefaultDoubt, trainer.StatusRunning, false, DefaultGrace - DefaultDoubt},
		{trainer.StatusRunning, DefaultGrace, DefaultDoubt + time.Millisecond, trainer.StatusRunning, true, DefaultGrace - DefaultDoubt - time.Millisecond},
		{trainer.StatusPaused, DefaultGrace, DefaultGrace - time.Millisecond, trainer.StatusPaused, true, time.Millisecond},
		{trainer.StatusRunning, DefaultGrace, DefaultGrace, trainer.StatusInterrupted, false, 0},
		{trainer.StatusPaused, DefaultGrace, time.Hour, trainer.StatusInterrupted, false, 0},
		{trainer.StatusRunning, 4 * time.Second, 2*time.Second + time.Millisecond, trainer.StatusRunning, true, 2*time.Second - time.Millisecond},
		{trainer.StatusDone, DefaultGrace, time.Hour, trainer.StatusDone, false, 0},
		{trainer.StatusQueued, DefaultGrace, time.Hour, trainer.StatusQueued, false, 0},
		{trainer.StatusStopped, DefaultGrace, time.Hour, trainer.StatusStopped, false, 0},
	}
	for _, tt := range tests {
		got := Judge(Run{Status: tt.status, Heartbeat: beat}, beat.Add(tt.age), tt.grace)
		if got.Status != tt.want || got.Doubtful != tt.doubtful || got.Left != tt.left {
			t.Errorf("%s, heartbeat %v old, grace %v: got %s doubtful %v left %v, want %s doubtful %v left %v",
				tt.status, tt.age, tt.grace, got.Status, got.Doubtful, got.Left, tt.want, tt.doubtful, tt.left)
		}
	}
	if got := Judge(Run{Status: trainer.StatusRunning, Heartbeat: beat}, beat.Add(20*time.Second+300*time.Millisecond), DefaultGrace).String(); got != "interrupted? (stale in 10 s)" {
		t.Errorf("String = %q", got)
	}
}

// Now reads the database's clock, which on one machine is the process's.
func TestNowIsTheDatabasesClock(t *testing.T) { dialects(t, testNowIsTheDatabasesClock) }

func testNowIsTheDatabasesClock(t *testing.T, at place) {
	s := at.mustOpen(t)
	before := time.Now().Add(-time.Millisecond)
	now, err := s.Now(context.Background())
	after := time.Now().Add(time.Millisecond)
	if err != nil || now.Before(before) || now.After(after) {
		t.Errorf("Now = %v (%v), want between %v and %v", now, err, before, after)
	}
}

// TestSkewedNodeStaysLive: a node whose own clock is an hour slow creates
// and heartbeats a run that the database's clock judges live, since
// heartbeats are stamped by that clock too. SQLite's clock is the
// machine's own, so only PostgreSQL has a skew to test.
func TestSkewedNodeStaysLive(t *testing.T) { dialects(t, testSkewedNodeStaysLive) }

func testSkewedNodeStaysLive(t *testing.T, at place) {
	if at.dialect == "sqlite" {
		t.Skip("SQLite's clock is this machine's: nothing can be skewed")
	}
	ctx := context.Background()
	s := at.mustOpen(t)
	s.now = func() time.Time { return time.Now().Add(-time.Hour) } // the node's clock, not a test clock
	r := mustRun(t, s, "on a slow node")
	if err := s.Heartbeat(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	r, err := s.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	live, err := s.Liveness(ctx, r)
	if err != nil || live.Status != trainer.StatusRunning {
		t.Errorf("run of a slow node: %v (%v), want running; heartbeat %v", live, err, r.Heartbeat)
	}
	if stale, err := s.MarkStale(ctx); err != nil || len(stale) != 0 {
		t.Errorf("MarkStale = %v, %v; want none", stale, err)
	}
}
