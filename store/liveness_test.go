package store

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
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

// deadProcess returns a process of this machine that has ended: a child
// started and waited for, whose pid is then free (or, rarely, another
// process's, with another start time).
func deadProcess(t *testing.T) Process {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	p := self()
	p.PID = cmd.Process.Pid
	start, ok := startTime(strconv.Itoa(p.PID))
	cmd.Wait()
	if !ok {
		start = p.Start // it ended before its start was read: any time will do
	}
	p.Start = start
	return p
}

// Judge's check of the owning process: a live run whose process ran here
// and is gone is interrupted at once, heartbeat fresh or not; one of a
// process that lives, or of another machine, boot or pid namespace, waits
// for its heartbeat to go stale.
func TestJudgeOwnerProcess(t *testing.T) {
	if self().Boot == "" {
		t.Skip("this system does not tell its boot id, pid namespace or process start times")
	}
	beat := time.Now()
	me := self()
	reused := me
	reused.Start++ // this pid, another process
	otherHost, otherBoot := deadProcess(t), deadProcess(t)
	otherHost.Host += "-elsewhere"
	otherBoot.Boot = "another boot"
	tests := []struct {
		name string
		p    Process
		want Status
	}{
		{"this process", me, trainer.StatusRunning},
		{"gone", deadProcess(t), trainer.StatusInterrupted},
		{"pid reused", reused, trainer.StatusInterrupted},
		{"another host", otherHost, trainer.StatusRunning},
		{"another boot or namespace", otherBoot, trainer.StatusRunning},
		{"not recorded", Process{}, trainer.StatusRunning},
	}
	for _, tt := range tests {
		for _, st := range []Status{trainer.StatusRunning, trainer.StatusPaused} {
			got := Judge(Run{Status: st, Heartbeat: beat, Process: tt.p}, beat, DefaultGrace)
			want := tt.want
			if want == trainer.StatusRunning {
				want = st
			}
			if got.Status != want {
				t.Errorf("%s, %s: %s, want %s", tt.name, st, got.Status, want)
			}
		}
	}
}

// A run whose process is gone is interrupted at once for MarkStale and
// resume, with the store's usual grace: no 30 s wait.
func TestGoneOwnerResumesAtOnce(t *testing.T) {
	if self().Boot == "" {
		t.Skip("this system does not tell its boot id, pid namespace or process start times")
	}
	ctx := context.Background()
	s := mustOpen(t)
	run := createRun(t, s, "orphan")
	if got := s.runProcess(t, run.ID); got != self() {
		t.Fatalf("a new run's process: %+v, want this one, %+v", got, self())
	}
	dead := deadProcess(t)
	if _, err := s.db.Exec(`UPDATE runs SET owner_pid = ?, owner_start = ? WHERE id = ?`, dead.PID, dead.Start, run.ID); err != nil {
		t.Fatal(err)
	}
	ids, err := s.MarkStale(ctx)
	if err != nil || len(ids) != 1 || ids[0] != run.ID {
		t.Fatalf("MarkStale = %v, %v; want the orphan", ids, err)
	}
	r, _ := s.Run(ctx, run.ID)
	if r.Status != trainer.StatusInterrupted || !strings.Contains(r.Error, "is gone") {
		t.Errorf("stored %s %q, want interrupted, its process gone", r.Status, r.Error)
	}
	build := func(ResumePoint) (trainer.Spec, error) { return trainSpec(t, 1, 0), nil }
	if _, err := s.Resume(ctx, run.ID, build, nil); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := s.runProcess(t, run.ID); got != self() {
		t.Errorf("the resumed run's process: %+v, want this one", got)
	}
}

func (s *Store) runProcess(t *testing.T, id string) Process {
	t.Helper()
	r, err := s.Run(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Process
}
