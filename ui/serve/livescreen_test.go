package serve

import (
	"strings"
	"testing"
	"time"

	"thaw/store/engine"
	"thaw/trainer"
)

// TestTrainScreenMovesEverySecond watches the live Train screen at
// 120×40 over SSH, sampling it once a second for ten seconds, during a
// run that spends most of its time in evaluations long enough to span a
// sampling window (the CNN over nine tenths of digits-5to9 as its
// validation set, every few steps, and the forgetting gauge). Every
// one-second window must change the screen, evaluations included, at no
// more than 20 KB/s to the client.
func TestTrainScreenMovesEverySecond(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector slows the CNN's passes past what the test samples")
	}
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	job := trainer.Job{Model: "digits-cnn", Data: trainer.DataRef{Path: "digits-5to9"}, Shots: 10, ValSplit: 0.9, Seed: 1, EvalEvery: 4}
	if err := job.SetPlan("full", 0, 1000, 0); err != nil {
		t.Fatal(err)
	}
	// No early stop (as longJob): the run lasts the whole test.
	job.Preset.Legacy = true
	run, err := rs.runs.For(userOf(alice)).Submit(job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tm := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	waitStep(t, tm, engine.Short(run.ID), 0)

	const windows = 10
	start, bytes0 := time.Now(), tm.bytes.Load()
	prev := tm.screen()
	var still []int
	evaluating := 0 // windows whose both ends show a pass under way
	wasEval := strings.Contains(prev, "validating") || strings.Contains(prev, "gauging source")
	passes := map[string]bool{}
	var lines []string // the status line at each sample, for a failure
	for i := 1; i <= windows; i++ {
		// Sample at whole seconds from the start, and look between
		// samples for which passes showed up.
		for time.Since(start) < time.Duration(i)*time.Second {
			s := tm.screen()
			for _, p := range []string{"validating", "gauging source"} {
				if strings.Contains(s, p) {
					passes[p] = true
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		s := tm.screen()
		if _, status, _, ok := runStatus(s); !ok || status != "running" {
			t.Fatalf("the run is no longer running on the screen:\n%s", s)
		}
		lines = append(lines, statusLine(s))
		isEval := strings.Contains(s, "validating") || strings.Contains(s, "gauging source")
		if wasEval && isEval {
			evaluating++
		}
		if s == prev {
			still = append(still, i)
		}
		prev, wasEval = s, isEval
	}
	elapsed := time.Since(start)
	rate := float64(tm.bytes.Load()-bytes0) / elapsed.Seconds()
	t.Logf("Train screen at 120x40 for %v: %.0f bytes/s to the client (%.1f KB/s); the screen changed in %d of %d one-second windows, %d of them evaluating at both ends; passes seen: %v",
		elapsed.Round(time.Millisecond), rate, rate/1000, windows-len(still), windows, evaluating, passes)
	if rate > 20_000 {
		t.Errorf("%.0f bytes/s sent to the client, want at most 20,000", rate)
	}
	if len(still) > 0 {
		t.Errorf("the screen stood still in windows %v of %d; the status line at each second:\n%s", still, windows, strings.Join(lines, "\n"))
	}
	if !passes["validating"] {
		t.Errorf("no validation pass showed in %v; last screen:\n%s", elapsed, prev)
	}
}

// statusLine is the Train screen's status line: its second row, trimmed.
func statusLine(screen string) string {
	rows := strings.Split(screen, "\n")
	if len(rows) < 2 {
		return ""
	}
	return strings.TrimSpace(rows[1])
}
