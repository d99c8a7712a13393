package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"thaw/trainer"
)

// The stress test runs for THAW_STORE_STRESS (a Go duration) if set, else
// 2 s under -short and 10 s otherwise.
func stressDuration() time.Duration {
	if v := os.Getenv("THAW_STORE_STRESS"); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	if testing.Short() {
		return 2 * time.Second
	}
	return 10 * time.Second
}

// writeFor creates runs and writes metrics, stages, heartbeats and a
// checkpoint for d, as a trainer would, and returns how many metrics it
// stored per run.
func writeFor(s *Store, name string, d time.Duration) (map[string]int, error) {
	ctx := context.Background()
	counts := make(map[string]int)
	deadline := time.Now().Add(d)
	for i := 0; time.Now().Before(deadline); i++ {
		r, err := s.CreateRun(ctx, Run{Name: fmt.Sprintf("%s-%d", name, i), Model: "m", Dataset: "d"})
		if err != nil {
			return counts, err
		}
		counts[r.ID] = 0
		if err := s.PutStage(ctx, r.ID, Stage{Name: "head", Trainable: []string{"head"}, End: -1}); err != nil {
			return counts, err
		}
		for step := int64(0); step < 50; step++ {
			ms := make([]Metric, 20)
			for k := range ms {
				ms[k] = Metric{Step: step, Name: fmt.Sprintf("m%02d", k), Value: float64(step)}
			}
			if err := s.AddMetrics(ctx, r.ID, ms); err != nil {
				return counts, err
			}
			counts[r.ID] += len(ms)
			if step%10 == 0 {
				if err := s.Heartbeat(ctx, r.ID); err != nil {
					return counts, err
				}
			}
		}
		if _, err := s.SaveCheckpoint(ctx, r.ID, CheckpointMeta{Step: 50, Kind: KindLast},
			writeBytes([]byte("weights"))); err != nil {
			return counts, err
		}
		if err := s.SetStatus(ctx, r.ID, trainer.StatusDone, ""); err != nil {
			return counts, err
		}
	}
	return counts, nil
}

// TestHelperProcess is the second process of TestConcurrentWriters; it does
// nothing unless started by it.
func TestHelperProcess(t *testing.T) {
	at, ok := placeFromEnv()
	if !ok || os.Getenv("THAW_STORE_HELPER_FOR") == "" {
		t.Skip("only runs as a child of TestConcurrentWriters")
	}
	d, err := time.ParseDuration(os.Getenv("THAW_STORE_HELPER_FOR"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := at.open()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	counts, err := writeFor(s, "child", d)
	for id, n := range counts {
		fmt.Printf("run %s %d\n", id, n)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWriters(t *testing.T) { dialects(t, testConcurrentWriters) }

func testConcurrentWriters(t *testing.T, at place) {
	d := stressDuration()
	s := at.mustOpen(t)

	child := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	child.Env = append(append(os.Environ(), at.env()...), "THAW_STORE_HELPER_FOR="+d.String())
	var stderr strings.Builder
	child.Stderr = &stderr
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	want := make(map[string]int)
	var errs []error
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts, err := writeFor(s, fmt.Sprintf("g%d", g), d)
			mu.Lock()
			defer mu.Unlock()
			for id, n := range counts {
				want[id] = n
			}
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	// A viewer reads while everyone writes.
	stop := make(chan struct{})
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			runs, err := s.ListRuns(ctx, RunFilter{Limit: 5})
			if err == nil && len(runs) > 0 {
				_, err = s.Series(ctx, runs[0].ID, "m00", 100)
			}
			if err != nil {
				readErr = err
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()

	sc := bufio.NewScanner(out)
	childRuns := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "run" {
			n, _ := strconv.Atoi(f[2])
			mu.Lock()
			want[f[1]] = n
			mu.Unlock()
			childRuns++
		}
	}
	if err := child.Wait(); err != nil {
		t.Errorf("second process: %v\n%s", err, stderr.String())
	}
	close(stop)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("writer: %v", err)
	}
	if readErr != nil {
		t.Errorf("reader: %v", readErr)
	}
	if childRuns == 0 {
		t.Error("the second process wrote no runs")
	}

	ctx := context.Background()
	total := 0
	for id, n := range want {
		var got int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM metrics WHERE run_id = ?`, id).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Errorf("run %s: %d metrics, want %d", id, got, n)
		}
		total += n
	}
	runs, err := s.ListRuns(ctx, RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != len(want) {
		t.Errorf("%d runs stored, writers reported %d", len(runs), len(want))
	}
	t.Logf("%v: %d runs (%d from the second process), %d metrics", d, len(want), childRuns, total)
	if errors.Join(errs...) != nil && strings.Contains(errors.Join(errs...).Error(), "locked") {
		t.Error(`"database is locked" reached a caller`)
	}
}
