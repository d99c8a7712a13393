package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

// TestMain keeps every test's runs out of the user's store.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "thaw-cmd-test-")
	if err != nil {
		panic(err)
	}
	os.Setenv("THAW_STORE", dir)
	code := m.Run()
	os.RemoveAll(dir)
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// storeRun trains with --store dir and returns the run id from the JSON.
func storeRun(t *testing.T, ctx context.Context, dir string, args ...string) (string, map[string]any, int) {
	t.Helper()
	out, code := trainJSON(t, ctx, append([]string{"--store", dir}, args...)...)
	id, _ := out["run"].(string)
	return id, out, code
}

func TestTrainStoresRun(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	stdout, stderr, code := runMain(t, context.Background(), &Main{}, "train", "--store", dir,
		"--model", fx.model, "--data", fx.data, "--epochs", "1", "--name", "first\x1b[31m try")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "run ") || !strings.Contains(stderr, "(thaw show ") {
		t.Errorf("stderr does not name the run:\n%s", stderr)
	}
	if !strings.Contains(stdout, "status done") {
		t.Errorf("stdout:\n%s", stdout)
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	runs, err := st.ListRuns(context.Background(), store.RunFilter{})
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v; want one", runs, err)
	}
	r := runs[0]
	if r.Status != trainer.StatusDone || r.ModelHash == "" || r.DatasetHash == "" {
		t.Errorf("run %+v", r)
	}
	rec, err := store.DecodeJob(r)
	if err != nil {
		t.Fatal(err)
	}
	j := rec.Job
	if rec.Version != store.JobVersion || !filepath.IsAbs(j.Model) || !filepath.IsAbs(j.Data.Path) ||
		j.Preset == nil || j.Preset.Epochs != 1 || len(j.Plan.Stages) != 3 || rec.Plan.Name != "gradual" {
		t.Errorf("stored job %+v", rec)
	}
	cs, _ := st.Checkpoints(context.Background(), r.ID)
	if len(cs) == 0 {
		t.Error("no checkpoints stored")
	}
}

func TestRunsShowRm(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	id1, out, code := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--epochs", "1", "--name", "alpha\x1b]0;pwned\x07")
	if code != 0 || id1 == "" {
		t.Fatalf("train: exit %d, run %q", code, id1)
	}
	id2, _, _ := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--epochs", "1", "--plan", "head", "--name", "beta")

	// thaw runs: a table, untrusted text sanitised.
	stdout, stderr, code := runMain(t, ctx, &Main{}, "runs", "--store", dir)
	if code != 0 {
		t.Fatalf("runs: exit %d: %s", code, stderr)
	}
	if strings.ContainsRune(stdout, 0x1b) || strings.ContainsRune(stdout, 0x07) {
		t.Errorf("runs printed control characters:\n%q", stdout)
	}
	// Where each ran: this host (a cluster's task adds its job).
	host, _ := os.Hostname()
	for _, want := range []string{"ID", "BEST VAL ACC", "RAN ON", host, store.Short(id1), store.Short(id2), "alpha", "beta", "done"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("runs output lacks %q:\n%s", want, stdout)
		}
	}
	// --json and filters.
	stdout, _, _ = runMain(t, ctx, &Main{}, "runs", "--store", dir, "--json", "--name", "BETA")
	var list []map[string]any
	if err := json.Unmarshal([]byte(stdout), &list); err != nil || len(list) != 1 || list[0]["id"] != id2 {
		t.Fatalf("runs --json --name BETA: %v %s", err, stdout)
	}
	if ran, _ := list[0]["ran_on"].(string); !strings.HasPrefix(ran, host) {
		t.Errorf("ran_on %q, want this host %q", ran, host)
	}
	if steps := list[0]["steps"].(float64); steps <= 0 {
		t.Errorf("steps %v", steps)
	}
	stdout, _, _ = runMain(t, ctx, &Main{}, "runs", "--store", dir, "--json", "--status", "interrupted")
	if strings.TrimSpace(stdout) != "[]" {
		t.Errorf("runs --status interrupted: %s", stdout)
	}
	if _, _, code := runMain(t, ctx, &Main{}, "runs", "--store", dir, "--status", "sleeping"); code != exitUsage {
		t.Errorf("unknown status: exit %d, want %d", code, exitUsage)
	}

	// thaw show, by prefix, flags after the run.
	stdout, stderr, code = runMain(t, ctx, &Main{}, "show", store.Short(id1), "--store", dir)
	if code != 0 {
		t.Fatalf("show: exit %d: %s", code, stderr)
	}
	for _, want := range []string{id1, "plan gradual", "stages as run", "checkpoints:", "stage-end", "train/loss", "LOWEST VAL LOSS"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show output lacks %q:\n%s", want, stdout)
		}
	}
	stdout, _, _ = runMain(t, ctx, &Main{}, "show", "--store", dir, "--json", id1)
	var shown map[string]any
	if err := json.Unmarshal([]byte(stdout), &shown); err != nil {
		t.Fatal(err)
	}
	stages := shown["stages"].([]any)
	if len(stages) != len(out["stages"].([]any)) || stages[0].(map[string]any)["best_val_loss"] == nil {
		t.Errorf("show --json stages: %v", stages)
	}
	if _, stderr, code := runMain(t, ctx, &Main{}, "show", "--store", dir, "zzzz"); code != exitUsage || !strings.Contains(stderr, "not found") {
		t.Errorf("show of no run: exit %d, %s", code, stderr)
	}
	if _, _, code := runMain(t, ctx, &Main{}, "show", "--store", dir); code != exitUsage {
		t.Errorf("show without a run: exit %d", code)
	}

	// thaw rm removes the rows and the files.
	if _, stderr, code := runMain(t, ctx, &Main{}, "rm", "--store", dir, id1); code != 0 {
		t.Fatalf("rm: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "runs", id1)); !os.IsNotExist(err) {
		t.Errorf("the run's folder remains: %v", err)
	}
	stdout, _, _ = runMain(t, ctx, &Main{}, "runs", "--store", dir)
	if strings.Contains(stdout, store.Short(id1)) || !strings.Contains(stdout, store.Short(id2)) {
		t.Errorf("after rm:\n%s", stdout)
	}
}

func TestResumeCommand(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	args := []string{"--model", fx.model, "--data", fx.data, "--epochs", "2", "--eval-every", "3"}
	_, full, code := storeRun(t, context.Background(), dir, args...)
	if code != 0 {
		t.Fatal("uninterrupted run failed")
	}

	// Interrupt a second run as Ctrl-C would: cancel once some steps are
	// done. The progress goes to stderr; cancel from a report.
	ctx, cancel := context.WithCancel(context.Background())
	m := &Main{Stderr: cancelOnEval(cancel)}
	var out strings.Builder
	m.Stdout = &out
	err := m.Run(ctx, append([]string{"train", "--json", "--store", dir}, args...))
	if err == nil || !strings.Contains(err.Error(), "thaw resume") {
		t.Fatalf("interrupted train: %v", err)
	}
	var stopped map[string]any
	json.Unmarshal([]byte(out.String()), &stopped)
	id := stopped["run"].(string)
	if stopped["status"] != "stopped" {
		t.Fatalf("status %v, want stopped", stopped["status"])
	}

	stdout, stderr, code := runMain(t, context.Background(), &Main{}, "resume", "--json", "--store", dir, store.Short(id))
	if code != 0 {
		t.Fatalf("resume: exit %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "resuming from the") {
		t.Errorf("stderr does not say where it resumed:\n%s", stderr)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"status", "steps", "best_val_loss", "best_step", "final_val_loss"} {
		if got[k] != full[k] {
			t.Errorf("%s = %v after resume, %v uninterrupted", k, got[k], full[k])
		}
	}
	if got["run"] != id {
		t.Errorf("run %v, want %s", got["run"], id)
	}
	// A done run does not resume.
	if _, stderr, code := runMain(t, context.Background(), &Main{}, "resume", "--store", dir, id); code != exitUsage || !strings.Contains(stderr, "it is done") {
		t.Errorf("resume of a done run: exit %d: %s", code, stderr)
	}
}

func TestResumeRefusesChangedInputs(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	ctx, cancel := context.WithCancel(context.Background())
	m := &Main{Stdout: &strings.Builder{}, Stderr: cancelOnEval(cancel)}
	m.Run(ctx, []string{"train", "--store", dir, "--model", fx.model, "--data", fx.data, "--epochs", "2"})
	// The data file changes under the stopped run.
	writeBlobs(t, fx.data, 50, 0.7, "x", "y", "z")
	st, _ := store.Open(dir)
	runs, _ := st.ListRuns(context.Background(), store.RunFilter{})
	st.Close()
	if len(runs) != 1 || runs[0].Status != trainer.StatusStopped {
		t.Fatalf("runs: %+v", runs)
	}
	_, stderr, code := runMain(t, context.Background(), &Main{}, "resume", "--store", dir, runs[0].ID)
	if code == 0 || !strings.Contains(stderr, "is not the one run") {
		t.Errorf("resume with changed data: exit %d: %s", code, stderr)
	}
}

// cancelOnEval is a progress writer that cancels the run, as Ctrl-C
// would, once the first evaluation is printed.
func cancelOnEval(cancel context.CancelFunc) cancelOn { return cancelOn{"val acc", cancel} }

// cancelOn is a writer that cancels, as Ctrl-C would, once text is
// written.
type cancelOn struct {
	text   string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.text) {
		c.cancel()
	}
	return len(p), nil
}

func TestDamagedStore(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	if _, _, code := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--epochs", "1"); code != 0 {
		t.Fatal("train failed")
	}
	db := filepath.Join(dir, "thaw.db")
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(db, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"runs"}, {"show", "0"}, {"resume", "0"}, {"rm", "0"}} {
		_, stderr, code := runMain(t, ctx, &Main{}, append(args, "--store", dir)...)
		if code == 0 || !strings.Contains(stderr, "corrupt") || !strings.Contains(stderr, db) {
			t.Errorf("%s on a truncated store: exit %d, %s", args[0], code, stderr)
		}
	}
}
