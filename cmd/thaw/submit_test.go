package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"thaw/store"
	"thaw/store/storetest"
)

// thaw sweep --submit print records the sweep with a queued run per task
// (thaw runs --sweep shows them waiting) and writes the xargs line; a
// task's process takes its queued run over; --submit k8s writes the
// Indexed Job manifest; bad flags are bad usage and record nothing.
func TestSweepSubmit(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	args := []string{"sweep", "--store", dir, "--model", fx.model, "--data", fx.data, "--epochs", "1", "--seeds", "2", "--points", "head,fc2"}
	stdout, stderr, code := runMain(t, ctx, &Main{}, append(args, "--submit", "print", "--workers", "3", "--thaw", "thaw")...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	sweeps, err := st.ListSweeps(ctx, nil)
	st.Close()
	if err != nil || len(sweeps) != 1 {
		t.Fatalf("sweeps %v, %v; want one", sweeps, err)
	}
	id := sweeps[0].ID
	abs, _ := filepath.Abs(dir)
	for _, want := range []string{"export THAW_STORE=" + abs, "seq 0 3 | xargs -P 3 -I{} thaw train --sweep " + id + " --index {}"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	runsJSON := func() []taskRun {
		out, stderr, code := runMain(t, ctx, &Main{}, "runs", "--json", "--store", dir, "--sweep", id)
		if code != 0 {
			t.Fatalf("runs: exit %d\n%s", code, stderr)
		}
		var runs []taskRun
		if err := json.Unmarshal([]byte(out), &runs); err != nil {
			t.Fatal(err)
		}
		return runs
	}
	runs := runsJSON()
	if len(runs) != 4 {
		t.Fatalf("%d tasks, want 4", len(runs))
	}
	for _, r := range runs {
		if r.Run == nil || r.Run.Status != "queued" {
			t.Errorf("task %d: run %+v, want queued", r.Index, r.Run)
		}
	}
	if _, stderr, code := runMain(t, ctx, &Main{}, "train", "--store", dir, "--sweep", id, "--index", "2"); code != 0 {
		t.Fatalf("train --sweep --index 2: exit %d\n%s", code, stderr)
	}
	after := runsJSON()
	if after[2].Run == nil || after[2].Run.ID != runs[2].Run.ID || after[2].Run.Status != "done" {
		t.Errorf("task 2 after its process: %+v, want its queued run %s done", after[2].Run, runs[2].Run.ID)
	}

	// Submitting again submits the tasks not done, with the same runs.
	stdout, stderr, code = runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--resume", id, "--submit", "print", "--thaw", "thaw")
	if code != 0 || !strings.Contains(stdout, "printf '%s\\n' 0 1 3 | xargs") {
		t.Errorf("resubmission: exit %d\n%s%s", code, stdout, stderr)
	}
	if again := runsJSON(); again[0].Run.ID != runs[0].Run.ID {
		t.Errorf("resubmission replaced task 0's run %s with %s", runs[0].Run.ID, again[0].Run.ID)
	}

	// --show prints the table as it stands, training nothing: task 2's
	// row has its result and no queued task starts.
	out, stderr, code := runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--show", id, "--json")
	if code != 0 {
		t.Fatalf("--show: exit %d\n%s", code, stderr)
	}
	var shown struct {
		Done  int `json:"done"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &shown); err != nil || shown.Done != 1 || shown.Total != 4 {
		t.Errorf("--show: %+v, %v; want 1 of 4 done\n%s", shown, err, out)
	}
	// A plain --resume would train the tasks the scheduler was given, on
	// this machine behind its back: it says so and trains nothing.
	_, stderr, code = runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--resume", id)
	if code != exitUsage || !strings.Contains(stderr, "3 tasks wait for the scheduler") || !strings.Contains(stderr, "--here") {
		t.Errorf("--resume of a submitted sweep: exit %d, stderr %q; want %d saying 3 tasks wait, and --here", code, stderr, exitUsage)
	}
	for i, r := range runsJSON() {
		if i != 2 && r.Run.Status != "queued" {
			t.Errorf("task %d after the refused --resume: %s, want still queued", i, r.Run.Status)
		}
	}

	manifest := filepath.Join(fx.dir, "job.yaml")
	if _, stderr, code := runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--resume", id, "--submit", "k8s", "--image", "thaw:1", "--out", manifest); code != 0 {
		t.Fatalf("k8s: exit %d\n%s", code, stderr)
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"completionMode: Indexed", "completions: 4", `"$(JOB_COMPLETION_INDEX)"`, "secretKeyRef:", `mountPath: "` + abs + `"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the manifest lacks %q:\n%s", want, b)
		}
	}

	// --here trains them here after all: the same runs, done.
	ran, stderr, code := runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--resume", id, "--here", "--json")
	if code != 0 {
		t.Fatalf("--resume --here: exit %d\n%s", code, stderr)
	}
	// --show reads the table from the store; it is the table the run of
	// the sweep printed, row for row.
	shownJSON, stderr, code := runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--show", id, "--json")
	if code != 0 {
		t.Fatalf("--show after the sweep: exit %d\n%s", code, stderr)
	}
	var fromRun, fromShow sweepOutput
	if err := json.Unmarshal([]byte(ran), &fromRun); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(shownJSON), &fromShow); err != nil {
		t.Fatal(err)
	}
	// The store keeps a run's CPU time to the millisecond; the sweep's
	// own table has its process's figure: only those may differ.
	cpu := regexp.MustCompile(`"cpu_seconds":[0-9.e+-]+`)
	ga, _ := json.Marshal(fromRun.Groups)
	gb, _ := json.Marshal(fromShow.Groups)
	ga, gb = cpu.ReplaceAll(ga, nil), cpu.ReplaceAll(gb, nil)
	if fromRun.Done != 4 || fromShow.Done != fromRun.Done || string(ga) != string(gb) {
		t.Errorf("--show after the sweep: %d done, groups\n%s\nwant the sweep's own %d done, groups\n%s", fromShow.Done, gb, fromRun.Done, ga)
	}
	for i, r := range runsJSON() {
		if r.Run == nil || r.Run.ID != runs[i].Run.ID || r.Run.Status != "done" {
			t.Errorf("task %d after --resume --here: %+v, want its run %s done", i, r.Run, runs[i].Run.ID)
		}
	}

	for _, bad := range [][]string{{"--submit", "lsf"}, {"--submit", "k8s"}} {
		if _, stderr, code := runMain(t, ctx, &Main{}, append(args, bad...)...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", bad, code, exitUsage, stderr)
		}
	}
}

// An address with a password appears in no artefact and no message: a
// Slurm script without a file to read it from is refused before anything
// is recorded, and the manifest and the shell line leave it out.
func TestSweepSubmitKeepsPasswordOut(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	job := []string{"--model", fx.model, "--data", fx.data, "--epochs", "1", "--seeds", "1", "--points", "head"}
	const pw = "hunter2-not-here"
	unreachable := "postgres://thaw:" + pw + "@127.0.0.1:1/thaw?connect_timeout=1"
	stdout, stderr, code := runMain(t, ctx, &Main{}, append([]string{"sweep", "--store", unreachable, "--checkpoints", fx.dir, "--submit", "slurm"}, job...)...)
	if code != exitUsage || !strings.Contains(stderr, "--store-file") || strings.Contains(stdout+stderr, pw) {
		t.Errorf("slurm without --store-file: exit %d, want %d, a word on --store-file and no password\n%s%s", code, exitUsage, stdout, stderr)
	}

	addr := storetest.Postgres(t)
	if !strings.Contains(addr, ":") || !strings.Contains(addr, "@") {
		t.Skip("the test database's address has no password")
	}
	secret := addr[strings.Index(addr, "://")+3 : strings.Index(addr, "@")]
	ck := filepath.Join(fx.dir, "checkpoints")
	if err := os.Mkdir(ck, 0o755); err != nil {
		t.Fatal(err)
	}
	base := append([]string{"sweep", "--store", addr, "--checkpoints", ck}, job...)
	manifest := filepath.Join(fx.dir, "job.yaml")
	script := filepath.Join(fx.dir, "job.sbatch")
	var all string
	for _, extra := range [][]string{
		{"--submit", "k8s", "--image", "thaw:1", "--out", manifest},
		{"--submit", "print"},
		{"--submit", "print", "--store-file", "/etc/thaw/store"},
		// sbatch may be missing: the script is written before it runs.
		{"--submit", "slurm", "--store-file", "/etc/thaw/store", "--out", script},
	} {
		stdout, stderr, code := runMain(t, ctx, &Main{}, append(base, extra...)...)
		if code != 0 && extra[1] != "slurm" {
			t.Errorf("%v: exit %d\n%s", extra, code, stderr)
		}
		all += stdout + stderr
	}
	for _, f := range []string{manifest, script} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all += string(b)
	}
	if strings.Contains(all, secret) {
		t.Errorf("the password is in an artefact or a message:\n%s", all)
	}
}
