package serve

import (
	"os"
	"testing"
	"time"

	"thaw/store/engine"
)

// TestTrainScreenBandwidth watches the Train screen of a live run at
// 120×40 for 30 seconds and counts, in the client, the bytes the server
// sends and how often the step count on the screen changes. It takes half
// a minute, so it runs only with THAW_LONG_TESTS=1.
func TestTrainScreenBandwidth(t *testing.T) {
	if testing.Short() || os.Getenv("THAW_LONG_TESTS") == "" {
		t.Skip("a 30-second measurement: set THAW_LONG_TESTS=1 to run it")
	}
	alice := newKey(t, "alice")
	rs := startRunsServer(t, []testKey{alice}, nil)
	run, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 1000), engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tm := openTerminal(t, rs.mustDial(t, alice), 120, 40)
	waitStep(t, tm, engine.Short(run.ID), 0)

	const (
		span   = 30 * time.Second
		sample = 50 * time.Millisecond
	)
	start, bytes0 := time.Now(), tm.bytes.Load()
	seconds := int(span / time.Second)
	changed := make([]bool, seconds)
	last := -1
	for now := start; now.Sub(start) < span; now = time.Now() {
		_, status, step, ok := runStatus(tm.screen())
		if !ok || status != "running" {
			t.Fatalf("the run is no longer running on the screen:\n%s", tm.screen())
		}
		if last >= 0 && step != last {
			changed[int(now.Sub(start)/time.Second)] = true
		}
		last = step
		time.Sleep(sample)
	}
	elapsed := time.Since(start)
	rate := float64(tm.bytes.Load()-bytes0) / elapsed.Seconds()
	still := 0
	for _, c := range changed {
		if !c {
			still++
		}
	}
	t.Logf("Train screen at 120x40 for %v: %.0f bytes/s to the client (%.1f KB/s); the step count changed in %d of %d seconds",
		elapsed.Round(time.Millisecond), rate, rate/1000, seconds-still, seconds)
	if rate >= 20_000 {
		t.Errorf("%.0f bytes/s sent to the client, want under 20,000", rate)
	}
	if still > 0 {
		t.Errorf("the step count stood still in %d of %d seconds", still, seconds)
	}
}
