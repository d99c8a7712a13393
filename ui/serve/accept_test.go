package serve

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"thaw/store/engine"
	"thaw/trainer"
)

// TestSessionsKeepThroughput is issue 12's acceptance check: with as many
// runs as GOMAXPROCS and 8 SSH sessions watching them, every session's
// screen keeps updating, and the runs' total training samples/s is at
// least 0.8 of the same runs trained with nobody watching. Headless and
// watched rounds alternate (A B A B). It takes minutes: set
// THAW_LONG_TESTS=1.
func TestSessionsKeepThroughput(t *testing.T) {
	if os.Getenv("THAW_LONG_TESTS") != "1" {
		t.Skip("set THAW_LONG_TESTS=1: trains four rounds of runs")
	}
	if raceEnabled {
		t.Skip("throughput under the race detector means nothing")
	}
	n := runtime.GOMAXPROCS(0)
	keys := make([]testKey, n)
	for i := range keys {
		keys[i] = newKey(t, "user")
	}
	rs := startRunsServer(t, keys, nil)
	job := longJob(t, 200)
	round := func(watched bool) float64 {
		t.Helper()
		var runs []*engine.UserRun
		for i := range n {
			r, err := rs.runs.For(userOf(keys[i])).Submit(job, engine.StartOptions{})
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, r)
		}
		var clients []*gossh.Client
		if watched {
			// Each user's sessions are shown their run (engine.UserView.Attach).
			var terms []*terminal
			for i := range 8 {
				c := rs.mustDial(t, keys[i%n])
				clients = append(clients, c)
				terms = append(terms, openTerminal(t, c, 120, 40))
			}
			// Every screen shows its run's step move on.
			first := make([]int, len(terms))
			moved := 0
			deadline := time.Now().Add(time.Minute)
			for moved < len(terms) {
				moved = 0
				for i, tm := range terms {
					short, status, step, ok := runStatus(tm.screen())
					if !ok || !strings.HasPrefix(runs[i%n].ID, short) || status != string(trainer.StatusRunning) || step <= 0 {
						continue
					}
					if first[i] == 0 {
						first[i] = step
					}
					if step > first[i] {
						moved++
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d of %d screens showed their run move on; the first:\n%s", moved, len(terms), terms[0].screen())
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		var total float64
		for _, r := range runs {
			res, err := r.Wait()
			if err != nil {
				t.Fatal(err)
			}
			total += res.SamplesPerSec
		}
		for _, c := range clients {
			c.Close()
		}
		return total
	}
	var head, watched float64
	for range 2 {
		head += round(false)
		watched += round(true)
	}
	ratio := watched / head
	t.Logf("%d runs: %.0f samples/s headless, %.0f with 8 sessions watching: ratio %.3f", n, head/2, watched/2, ratio)
	if ratio < 0.8 {
		t.Errorf("watched runs train at %.3f of headless, want at least 0.8", ratio)
	}
}
