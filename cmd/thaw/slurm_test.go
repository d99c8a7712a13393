package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"thaw/store/storetest"
)

// slurmEnv is set by .ci/run once .ci/slurm.sh has started a single-node
// Slurm (and exported SLURM_CONF); without it the Slurm tests skip.
const slurmEnv = "THAW_TEST_SLURM"

// slurmSweep is the sweep the Slurm tests submit: mnist8-mlp on
// uci-digits, two freeze points crossed with two numbers of shots (four
// tasks), one seed, one stage of a fixed length with no early stop, so
// that a task lasts long enough to be cancelled in the middle.
func slurmSweep(t *testing.T, dir string) []string {
	plan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(plan, []byte(`{"name": "ci", "lr": 0.02, "stages": [{"train": ["all"], "steps": 12000}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"--model", "mnist8-mlp", "--data", "uci-digits", "--plan", plan,
		"--points", "fc1,head", "--shots-list", "10,20", "--seed-list", "3001"}
}

// slurmStore is the store the cluster's tasks share: a schema of the
// throwaway PostgreSQL when the tests have one, else an SQLite folder;
// the checkpoint root is a folder every task reaches.
func slurmStore(t *testing.T, dir string) []string {
	if os.Getenv(storetest.Env) != "" {
		if err := os.Mkdir(filepath.Join(dir, "checkpoints"), 0o755); err != nil {
			t.Fatal(err)
		}
		return []string{"--store", storetest.Postgres(t), "--checkpoints", filepath.Join(dir, "checkpoints")}
	}
	t.Logf("no PostgreSQL (%s): the tasks share an SQLite store", storetest.Env)
	return []string{"--store", filepath.Join(dir, "shared")}
}

// thawOut runs the thaw binary in dir and returns its stdout, failing the
// test when it fails.
func thawOut(t *testing.T, bin, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("thaw %s: %v\n%s", args[0], err, stderr.String())
	}
	return out
}

// sweepBits is what a sweep's table must agree on, point for point: the
// JSON of each row's losses and accuracies (written with the fewest
// digits that read back as the same float64, so equal text is equal
// bits), the pick and the test accuracy.
type sweepBits struct {
	Total, Done int
	Groups      []struct {
		Shots int
		Rows  []struct {
			Point   string
			ValLoss json.RawMessage `json:"val_loss"`
			ValAcc  json.RawMessage `json:"val_acc"`
			Runs    []string
		}
		Pick string
		Test json.RawMessage
	}
}

func decodeSweep(t *testing.T, b []byte) sweepBits {
	t.Helper()
	var s sweepBits
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return s
}

func sameSweepBits(t *testing.T, what string, local, cluster sweepBits) {
	t.Helper()
	if cluster.Done != cluster.Total || cluster.Total != local.Total || len(cluster.Groups) != len(local.Groups) {
		t.Fatalf("%s: %d of %d done in %d groups; local %d of %d in %d", what, cluster.Done, cluster.Total, len(cluster.Groups),
			local.Done, local.Total, len(local.Groups))
	}
	for g := range local.Groups {
		lg, cg := local.Groups[g], cluster.Groups[g]
		if len(lg.Rows) != len(cg.Rows) || lg.Pick != cg.Pick || !bytes.Equal(lg.Test, cg.Test) {
			t.Errorf("%s, %d shots: pick %s, test %s; local %s, %s", what, lg.Shots, cg.Pick, cg.Test, lg.Pick, lg.Test)
			continue
		}
		for i := range lg.Rows {
			l, c := lg.Rows[i], cg.Rows[i]
			if l.Point != c.Point || !bytes.Equal(l.ValLoss, c.ValLoss) || !bytes.Equal(l.ValAcc, c.ValAcc) {
				t.Errorf("%s, %d shots, %s: val loss %s, acc %s; local %s %s, %s", what, lg.Shots, c.Point, c.ValLoss, c.ValAcc,
					l.Point, l.ValLoss, l.ValAcc)
			}
		}
	}
}

// sweepRunIDs are the runs of a sweep's tasks, by index, as thaw runs
// --sweep shows them, with their status and steps.
type taskRun struct {
	Index int
	Run   *struct {
		ID     string
		Status string
		Steps  int64
	}
}

func sweepTaskRuns(t *testing.T, bin, dir string, storeArgs []string, id string) []taskRun {
	t.Helper()
	var runs []taskRun
	b := thawOut(t, bin, dir, append([]string{"runs", "--json", "--sweep", id}, storeArgs...)...)
	if err := json.Unmarshal(b, &runs); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return runs
}

// waitSlurmJob polls squeue until the job (or array task) has left it.
func waitSlurmJob(t *testing.T, job string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		out, err := exec.Command("squeue", "-h", "-j", job, "-o", "%i %T").CombinedOutput()
		if err == nil && strings.TrimSpace(string(out)) == "" {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("Slurm job %s still queued after 10 minutes", job)
}

type submitted struct {
	Sweep    string
	Tasks    int
	Pending  []int
	Artefact string
	Job      string
}

// submit runs thaw sweep --submit slurm with args and checks that the
// script it wrote and sbatch'ed holds no password.
func submitSlurm(t *testing.T, bin, dir string, storeArgs []string, args ...string) submitted {
	t.Helper()
	addrFile := filepath.Join(dir, "store-address")
	if err := os.WriteFile(addrFile, []byte(storeArgs[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	all := append([]string{"sweep", "--json", "--submit", "slurm", "--workers", "2", "--store-file", addrFile}, storeArgs...)
	var s submitted
	if err := json.Unmarshal(thawOut(t, bin, dir, append(all, args...)...), &s); err != nil {
		t.Fatal(err)
	}
	if s.Job == "" || s.Artefact == "" {
		t.Fatalf("submitted %+v: no job or script", s)
	}
	script, err := os.ReadFile(s.Artefact)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(script), storeArgs[1]) && strings.Contains(storeArgs[1], "@") {
		t.Errorf("the sbatch script holds the store's address:\n%s", script)
	}
	if strings.Contains(string(script), os.Getenv(storetest.Env)) && os.Getenv(storetest.Env) != "" {
		t.Errorf("the sbatch script holds the database's address")
	}
	t.Logf("sbatch script %s, job %s, tasks %v:\n%s", s.Artefact, s.Job, s.Pending, script)
	return s
}

// TestSlurmSweepMatchesLocal: a sweep submitted to a real single-node
// Slurm as an sbatch array (every task a thaw train --sweep ID --index
// $SLURM_ARRAY_TASK_ID sharing the store) ends with every run done and
// the table of the same sweep run here on SQLite, bit for bit; each task
// trained the queued run the submission recorded for it. A task
// cancelled with scancel in the middle stops resumably, and submitted
// again it resumes its run and ends with the same bits too.
func TestSlurmSweepMatchesLocal(t *testing.T) {
	if os.Getenv(slurmEnv) == "" {
		t.Skipf("no Slurm: %s is unset (.ci/run sets it after .ci/slurm.sh starts a single-node Slurm; or, as root, source .ci/slurm.sh and set %s=1)", slurmEnv, slurmEnv)
	}
	bin := thawBinary(t)
	dir := t.TempDir()
	sweep := slurmSweep(t, dir)
	start := time.Now()
	local := decodeSweep(t, thawOut(t, bin, dir, append([]string{"sweep", "--json", "--workers", "2", "--store", filepath.Join(dir, "local")}, sweep...)...))
	t.Logf("local sweep: %s", time.Since(start).Round(time.Second))
	storeArgs := slurmStore(t, dir)

	// The whole sweep through Slurm.
	start = time.Now()
	s := submitSlurm(t, bin, dir, storeArgs, sweep...)
	if s.Tasks != 4 || !slices.Equal(s.Pending, []int{0, 1, 2, 3}) {
		t.Fatalf("submitted %d tasks, pending %v; want 4, all", s.Tasks, s.Pending)
	}
	queued := map[int]string{}
	for _, r := range sweepTaskRuns(t, bin, dir, storeArgs, s.Sweep) {
		if r.Run == nil {
			t.Fatalf("task %d has no run after the submission", r.Index)
		}
		queued[r.Index] = r.Run.ID
	}
	waitSlurmJob(t, s.Job)
	t.Logf("Slurm sweep: %s", time.Since(start).Round(time.Second))
	for _, r := range sweepTaskRuns(t, bin, dir, storeArgs, s.Sweep) {
		if r.Run == nil || r.Run.Status != "done" || r.Run.ID != queued[r.Index] {
			t.Errorf("task %d: run %+v, want done, the queued run %s", r.Index, r.Run, queued[r.Index])
		}
	}
	got := decodeSweep(t, thawOut(t, bin, dir, append([]string{"sweep", "--json", "--resume", s.Sweep}, storeArgs...)...))
	sameSweepBits(t, "Slurm", local, got)

	// A task cancelled in the middle, then submitted again.
	start = time.Now()
	s = submitSlurm(t, bin, dir, storeArgs, sweep...)
	var victim string
	deadline := time.Now().Add(5 * time.Minute)
	for victim == "" && time.Now().Before(deadline) {
		for _, r := range sweepTaskRuns(t, bin, dir, storeArgs, s.Sweep) {
			if r.Index == 0 && r.Run != nil && r.Run.Status == "running" && r.Run.Steps >= 2000 {
				victim = r.Run.ID
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if victim == "" {
		t.Fatal("task 0 never ran 2000 steps")
	}
	if out, err := exec.Command("scancel", s.Job+"_0").CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v\n%s", err, out)
	}
	waitSlurmJob(t, s.Job)
	var stopped taskRun
	for _, r := range sweepTaskRuns(t, bin, dir, storeArgs, s.Sweep) {
		if r.Index == 0 {
			stopped = r
		}
	}
	if stopped.Run == nil || stopped.Run.ID != victim || stopped.Run.Status != "stopped" || stopped.Run.Steps >= 12000 {
		t.Fatalf("task 0 after scancel: %+v, want run %s stopped before its end", stopped.Run, victim)
	}
	t.Logf("task 0 stopped by scancel at step %d", stopped.Run.Steps)
	again := submitSlurm(t, bin, dir, storeArgs, "--resume", s.Sweep)
	if !slices.Equal(again.Pending, []int{0}) {
		t.Fatalf("resubmitted tasks %v, want [0]", again.Pending)
	}
	waitSlurmJob(t, again.Job)
	log, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("thaw-sweep-%s-%s_0.out", strings.ToLower(s.Sweep[len(s.Sweep)-8:]), again.Job)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "resuming from the") {
		t.Errorf("the resubmitted task did not resume from a checkpoint:\n%s", log)
	}
	t.Logf("Slurm sweep with a task cancelled and resubmitted: %s", time.Since(start).Round(time.Second))
	for _, r := range sweepTaskRuns(t, bin, dir, storeArgs, s.Sweep) {
		if r.Index == 0 && (r.Run == nil || r.Run.ID != victim || r.Run.Status != "done") {
			t.Errorf("task 0 after the resubmission: %+v, want its run %s done", r.Run, victim)
		}
	}
	got = decodeSweep(t, thawOut(t, bin, dir, append([]string{"sweep", "--json", "--resume", s.Sweep}, storeArgs...)...))
	sameSweepBits(t, "Slurm, task 0 cancelled and resubmitted", local, got)
}
