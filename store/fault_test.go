package store

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"thaw/trainer"
)

// The fault-injection test runs training in a child process (this test
// binary again, running TestFaultChild), kills it with SIGKILL at a random
// moment, reopens the store and checks what survived; the next child
// resumes the same run. Environment:
//
//	THAW_FAULT_KILLS  how many kills (default 30)
//	THAW_FAULT_SEED   seed of the kill moments (default 1)
//
// A long soak by hand:
//
//	THAW_FAULT_KILLS=2000 go test -run TestFaultInjection -timeout 2h ./store/
const (
	envFaultDir = "THAW_FAULT_DIR" // set in the child, which finds its store with placeFromEnv
	envFaultRun = "THAW_FAULT_RUN" // set in the child: the run to resume; empty for a new one
)

// faultEpochs and faultEvalEvery size the child's plan: long enough that
// most kills land in training, with a best or stage-end checkpoint every
// few steps.
const (
	faultEpochs    = 8
	faultEvalEvery = 4
)

// faultSpec is the child's spec; the parent's reference run uses the same.
func faultSpec(t testing.TB) trainer.Spec {
	spec := trainSpec(t, faultEpochs, faultEvalEvery)
	spec.ReportEvery = 2 * time.Millisecond
	return spec
}

// TestFaultChild is the child's side; it does nothing in a normal test run.
// It prints "run <id>" once it knows its run, "ack <step>" after every
// stored batch of metrics and "done" when the run completes.
func TestFaultChild(t *testing.T) {
	at, ok := placeFromEnv()
	if !ok || os.Getenv(envFaultDir) == "" {
		t.Skip("run by TestFaultInjection")
	}
	s, err := at.open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	ack := OnAck(func(step int64) { fmt.Fprintf(os.Stdout, "ack %d\n", step) })
	beat := HeartbeatEvery(50 * time.Millisecond)
	id := os.Getenv(envFaultRun)
	var res trainer.Result
	if id == "" {
		run := createRun(t, s, "fault")
		fmt.Fprintf(os.Stdout, "run %s\n", run.ID)
		res, err = s.Train(ctx, run.ID, faultSpec(t), nil, ack, beat)
	} else {
		build := func(ResumePoint) (trainer.Spec, error) { return faultSpec(t), nil }
		res, err = s.Resume(ctx, id, build, nil, ack, beat)
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Status == trainer.StatusDone {
		fmt.Fprintln(os.Stdout, "done")
	}
}

// childOutput is what a child printed.
type childOutput struct {
	run  string
	ack  int64 // highest acknowledged step; -1 for none
	done bool
}

func parseChild(out []byte) childOutput {
	c := childOutput{ack: -1}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "run":
			c.run = f[1]
		case len(f) == 2 && f[0] == "ack":
			if n, err := strconv.ParseInt(f[1], 10, 64); err == nil {
				c.ack = max(c.ack, n)
			}
		case len(f) == 1 && f[0] == "done":
			c.done = true
		}
	}
	return c
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

func TestFaultInjection(t *testing.T) { dialects(t, testFaultInjection) }

func testFaultInjection(t *testing.T, at place) {
	// 30 kills keep the suite quick; soak with THAW_FAULT_KILLS.
	kills := envInt(t, "THAW_FAULT_KILLS", 30)
	seed := uint64(envInt(t, "THAW_FAULT_SEED", 1))
	rng := rand.New(rand.NewPCG(seed, 0))
	ctx := context.Background()

	// The reference: the same spec, uninterrupted, in this process.
	s, err := at.open()
	if err != nil {
		t.Fatal(err)
	}
	ref := createRun(t, s, "reference")
	start := time.Now()
	if _, err := s.Train(ctx, ref.ID, faultSpec(t), nil); err != nil {
		t.Fatal(err)
	}
	// Kill moments spread over a third of an uninterrupted run's time plus
	// the child's start-up, so that a run takes several children to
	// complete and some kills land while a child opens the store or
	// rewinds the run.
	span := time.Since(start)/3 + 100*time.Millisecond
	t.Logf("reference run: %v; kills within %v of a start", time.Since(start), span)
	s.Close()

	compare := func(s *Store, id string) {
		t.Helper()
		// Every row, not only the curves: what a run stores is the
		// seed's own, however often its reports fell due.
		if err := sameRows(t, s, ref.ID, id); err != nil {
			t.Errorf("run %s: %v", id, err)
		}
		_, w1 := lastWeights(t, s, ref.ID)
		_, w2 := lastWeights(t, s, id)
		if err := sameTensors(w1, w2); err != nil {
			t.Errorf("run %s: final weights: %v", id, err)
		}
	}

	run := ""
	completed, killed := 0, 0
	for killed < kills && !t.Failed() {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFaultChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), envFaultDir+"=1", envFaultRun+"="+run)
		cmd.Env = append(cmd.Env, at.env()...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		delay := time.Duration(rng.Int64N(int64(span)))
		var werr error
		wasKilled := false
		select {
		case werr = <-exited:
		case <-time.After(delay):
			cmd.Process.Signal(syscall.SIGKILL)
			werr = <-exited
			wasKilled = true
		}
		out := parseChild(stdout.Bytes())
		if out.run != "" {
			run = out.run
		}
		if !wasKilled {
			if werr != nil || !out.done {
				t.Fatalf("child failed: %v\nstdout:\n%s\nstderr:\n%s", werr, stdout.Bytes(), stderr.Bytes())
			}
		}
		if wasKilled {
			killed++
		}

		// Reopen as the next process would: the dead child's heartbeat is
		// stale at once.
		time.Sleep(5 * time.Millisecond)
		s, err := at.open(WithGrace(time.Millisecond))
		if err != nil {
			t.Fatalf("kill %d: reopen: %v", killed, err)
		}
		rec := s.Recovery()
		if run == "" && len(rec.Interrupted) == 1 {
			run = rec.Interrupted[0] // killed after creating the run, before printing it
		}
		// SQLite's file is checked page by page; a PostgreSQL server
		// outlives the killed client and has no such check to ask for.
		var integrity string
		if at.dialect == "sqlite" {
			if err := s.db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
				t.Errorf("kill %d: integrity_check: %q, %v", killed, integrity, err)
			}
		}
		if len(rec.BadCheckpoints) > 0 {
			t.Errorf("kill %d: checkpoints found bad on reopen: %v", killed, rec.BadCheckpoints)
		}
		if run != "" {
			checkSurvivors(t, s, run, out.ack, killed)
			r, err := s.Run(ctx, run)
			switch {
			case err != nil:
				t.Errorf("kill %d: %v", killed, err)
			case r.Status == trainer.StatusDone:
				compare(s, run)
				completed++
				run = ""
			case r.Status != trainer.StatusInterrupted:
				t.Errorf("kill %d: run %s is %s, want interrupted", killed, run, r.Status)
			}
		}
		s.Close()
	}

	// Finish the last run here and compare it with the reference.
	s, err = at.open(WithGrace(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if run != "" {
		build := func(ResumePoint) (trainer.Spec, error) { return faultSpec(t), nil }
		if _, err := s.Resume(ctx, run, build, nil); err != nil {
			t.Fatalf("final resume: %v", err)
		}
		compare(s, run)
		completed++
	}
	t.Logf("%d kills, %d runs completed and compared with the reference", killed, completed)
}

// checkSurvivors checks, after a kill, that every acknowledged training
// loss of run is stored and every checkpoint not marked bad loads.
func checkSurvivors(t *testing.T, s *Store, run string, ack int64, kill int) {
	t.Helper()
	ctx := context.Background()
	if ack > 0 {
		var n int64
		if err := s.db.QueryRow(`SELECT COUNT(*) FROM metrics WHERE run_id = ? AND name = ? AND step BETWEEN 1 AND ?`,
			run, trainer.MetricTrainLoss, ack).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != ack {
			t.Errorf("kill %d: %d training losses stored up to the acknowledged step %d", kill, n, ack)
		}
	}
	cs, err := s.Checkpoints(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.Bad {
			t.Errorf("kill %d: checkpoint %s at step %d is bad: %s", kill, c.Kind, c.Step, c.Problem)
			continue
		}
		if _, err := s.LoadCheckpoint(ctx, c.ID); err != nil {
			t.Errorf("kill %d: %v", kill, err)
		}
	}
}
