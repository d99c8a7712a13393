package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"thaw/store"
)

// binDir holds the built binary; TestMain removes it.
var binDir string

// buildThaw builds this command into a temporary folder once per test
// binary and returns the executable's path.
var buildThaw = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "thaw-bin-")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "thaw")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &exec.Error{Name: "go build: " + string(out), Err: err}
	}
	return bin, nil
})

func thawBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the thaw binary")
	}
	bin, err := buildThaw()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// SIGTERM (kill, timeout, systemd, a container stop) ends the real binary's
// run as Ctrl-C does: stopped, with a checkpoint, and thaw resume takes it
// on to the weights an uninterrupted run with the seed ends at.
func TestSIGTERMStopsResumably(t *testing.T) {
	bin := thawBinary(t)
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	args := []string{"--store", dir, "--model", fx.model, "--data", fx.data, "--epochs", "40", "--seed", "9", "--json"}

	cmd := exec.Command(bin, append([]string{"train"}, args...)...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Not on a terminal, progress is one line per evaluation: the third
	// one is well inside the run (40 epochs a stage, 3 stages).
	sc := bufio.NewScanner(stderr)
	evals := 0
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "val acc") {
			if evals++; evals == 3 {
				if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				break
			}
		}
	}
	go func() {
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
		}
	}()
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit code %d after SIGTERM, want 1 (interrupted): %v\n%s", code, err, log.String())
	}
	var out struct {
		Run        string `json:"run"`
		Status     string `json:"status"`
		Steps      int    `json:"steps"`
		TotalSteps int    `json:"total_steps"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("stdout is not the JSON result (%v):\n%s", err, stdout.String())
	}
	if out.Status != "stopped" || out.Steps == 0 || out.Steps >= out.TotalSteps {
		t.Fatalf("after SIGTERM: status %s at step %d of %d, want stopped inside the run", out.Status, out.Steps, out.TotalSteps)
	}
	st, err := store.OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := st.Run(context.Background(), out.Run)
	cs, _ := st.Checkpoints(context.Background(), out.Run)
	st.Close()
	if err != nil || r.Status != "stopped" {
		t.Fatalf("stored run: %v, %v; want stopped", r.Status, err)
	}
	last := false
	for _, c := range cs {
		last = last || (c.Kind == store.KindLast && c.Step == int64(out.Steps))
	}
	if !last {
		t.Errorf("no last checkpoint at step %d: %+v", out.Steps, cs)
	}

	if b, err := exec.Command(bin, "resume", "--store", dir, out.Run).CombinedOutput(); err != nil {
		t.Fatalf("resume: %v\n%s", err, b)
	}
	ref, _, code := storeRun(t, context.Background(), dir, args[2:]...)
	if code != 0 {
		t.Fatalf("reference run: exit %d", code)
	}
	st, err = store.OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !sameWeights(finalWeights(t, st, out.Run), finalWeights(t, st, ref)) {
		t.Error("the resumed run's final weights differ from an uninterrupted run's with the same seed")
	}
}
