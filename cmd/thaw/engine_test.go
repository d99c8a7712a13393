package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"thaw/assets"
	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// series returns every point of a run's series as (step, value bits).
func series(t *testing.T, st *store.Store, run, name string) [][2]uint64 {
	t.Helper()
	bs, err := st.Series(context.Background(), run, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := make([][2]uint64, len(bs))
	for i, b := range bs {
		out[i] = [2]uint64{uint64(b.From), math.Float64bits(b.Mean)}
	}
	return out
}

// after keeps the points after step.
func after(points [][2]uint64, step int64) [][2]uint64 {
	return slices.DeleteFunc(slices.Clone(points), func(p [2]uint64) bool { return int64(p[0]) <= step })
}

// finalWeights returns the weights of a run's newest checkpoint.
func finalWeights(t *testing.T, st *store.Store, run string) []trainer.SafeTensor {
	t.Helper()
	c, err := st.LastGoodCheckpoint(context.Background(), run)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := st.LoadCheckpoint(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ck.Weights
}

func sameWeights(a, b []trainer.SafeTensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Data) != string(b[i].Data) {
			return false
		}
	}
	return true
}

// curves are the series that do not depend on when reports fell due.
var curves = []string{trainer.MetricTrainLoss, trainer.MetricValLoss, trainer.MetricValAcc}

// TestLibraryAndCommandAgree starts one job through the engine, as the
// workbench and the server do, and through thaw train: the stored metrics
// and final weights are bit-identical.
func TestLibraryAndCommandAgree(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	id, _, code := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--plan", "gradual",
		"--epochs", "2", "--lr", "0.02", "--shots", "30", "--seed", "9", "--eval-every", "2")
	if code != 0 {
		t.Fatalf("thaw train: exit %d", code)
	}

	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := engine.New(st, &assets.Catalog{})
	job := trainer.Job{
		Model: fx.model, Data: trainer.DataRef{Path: fx.data},
		Preset: &trainer.PresetRef{Name: "gradual", LR: 0.02, Epochs: 2},
		Shots:  30, ValSplit: 0.2, BatchSize: 32, Seed: 9, EvalEvery: 2,
	}
	live, err := eng.Start(ctx, job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := live.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, name := range curves {
		a, b := series(t, st, id, name), series(t, st, live.ID, name)
		if len(a) == 0 || !slices.Equal(a, b) {
			t.Errorf("%s: the library's run has %d points, thaw train's %d; want the same bits", name, len(b), len(a))
		}
	}
	if !sameWeights(finalWeights(t, st, id), finalWeights(t, st, live.ID)) {
		t.Error("final weights differ")
	}
	r1, _ := st.Run(ctx, id)
	r2, _ := st.Run(ctx, live.ID)
	if r1.ModelHash != r2.ModelHash || r1.DatasetHash != r2.DatasetHash || string(r1.Plan) != string(r2.Plan) {
		t.Errorf("records differ:\n%s\n%s", r1.Plan, r2.Plan)
	}
}

// TestBranchCommand is the acceptance of thaw branch: from the end of
// stage 2 of a gradual run, without --plan, the branch reproduces the
// parent's remaining curve and final weights bit for bit; with another
// continuation it diverges from that step on. thaw runs and thaw show
// name the parent and the step.
func TestBranchCommand(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	parent, out, code := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--plan", "gradual",
		"--epochs", "2", "--lr", "0.02", "--eval-every", "3")
	if code != 0 {
		t.Fatalf("train: exit %d", code)
	}
	// 144 training samples, batches of 32: 5 steps an epoch, 10 a stage.
	stages := out["stages"].([]any)
	at := int64(stages[1].(map[string]any)["end_step"].(float64))
	if at != 20 {
		t.Fatalf("stage 2 ends at step %d, want 20", at)
	}

	branch := func(args ...string) string {
		t.Helper()
		stdout, stderr, code := runMain(t, ctx, &Main{}, append([]string{"branch", "--json", "--store", dir, store.Short(parent)}, args...)...)
		if code != 0 {
			t.Fatalf("branch %v: exit %d:\n%s", args, code, stderr)
		}
		if !strings.Contains(stderr, "branched from run "+store.Short(parent)+" at step 20") {
			t.Errorf("stderr does not say where it branched:\n%s", stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		return got["run"].(string)
	}
	same := branch("--from", "2")
	other := branch("--from", "2", "--plan", "full", "--lr", "0.05", "--epochs", "1")

	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range curves {
		want, got := after(series(t, st, parent, name), at), series(t, st, same, name)
		if len(want) == 0 || !slices.Equal(want, got) {
			t.Errorf("%s: the branch has %d points after step %d, the parent %d; want the same bits", name, len(got), at, len(want))
		}
	}
	if !sameWeights(finalWeights(t, st, parent), finalWeights(t, st, same)) {
		t.Error("the branch without --plan ends with other weights than its parent")
	}
	p, o := series(t, st, parent, trainer.MetricTrainLoss), series(t, st, other, trainer.MetricTrainLoss)
	// Step 21's loss is measured on the weights of step 20, which both
	// share; every update after it is the continuation's.
	if len(o) != 5 || o[0] != p[at] || o[1] == p[at+1] {
		t.Errorf("other continuation: %d losses, first two %v; the parent's %v", len(o), o[:min(2, len(o))], p[at:at+2])
	}
	if sameWeights(finalWeights(t, st, parent), finalWeights(t, st, other)) {
		t.Error("another continuation ends with the parent's weights")
	}
	st.Close()

	stdout, _, _ := runMain(t, ctx, &Main{}, "runs", "--store", dir)
	if want := store.Short(parent) + "@20"; strings.Count(stdout, want) != 2 {
		t.Errorf("thaw runs shows %q %d times, want twice:\n%s", want, strings.Count(stdout, want), stdout)
	}
	stdout, _, _ = runMain(t, ctx, &Main{}, "show", "--store", dir, other)
	if !strings.Contains(stdout, "branched from run "+store.Short(parent)+" at step 20") || !strings.Contains(stdout, "20–25") {
		t.Errorf("thaw show of a branch:\n%s", stdout)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "9"}, "no usable checkpoint at the end of stage 9"},
		{[]string{"--from", "step:x"}, "want step:N"},
		{[]string{"--from", "2", "--plan", "thaw-harder"}, `unknown plan "thaw-harder"`},
		{[]string{"--from", "2", "--lr", "0.1"}, "give one with --plan"},
	} {
		_, stderr, code := runMain(t, ctx, &Main{}, append([]string{"branch", "--store", dir, parent}, tc.args...)...)
		if code != exitUsage || !strings.Contains(stderr, tc.want) {
			t.Errorf("branch %v: exit %d, stderr %s; want %d with %q", tc.args, code, stderr, exitUsage, tc.want)
		}
	}
}

// v1Root is where the version-1 fixture was written: its run records hold
// paths under it.
const v1Root = "/thaw-v1"

// v1Store copies testdata/v1, a store written by thaw train before the
// engine (run records of version 1, schema 1) with the model and data it
// names, and points its records at the copy.
func v1Store(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	err := filepath.WalkDir("testdata/v1", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/v1", p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(root, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", filepath.Join(root, "store", "thaw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE runs SET plan = REPLACE(plan, ?, ?)`, `"`+v1Root+`/`, `"`+root+`/`); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "store")
}

func TestResumeVersion1Record(t *testing.T) {
	ctx := context.Background()
	dir := v1Store(t)
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.ListRuns(ctx, store.RunFilter{})
	st.Close()
	if err != nil || len(runs) != 3 {
		t.Fatalf("%d runs in the fixture, %v; want 3", len(runs), err)
	}
	var done string
	for _, r := range runs {
		if r.Status == trainer.StatusDone {
			done = r.ID
			continue
		}
		if rec, err := store.DecodeJob(r); err != nil || rec.Version != 1 {
			t.Fatalf("%s: record version %d, %v", r.Name, rec.Version, err)
		}
		stdout, stderr, code := runMain(t, ctx, &Main{}, "resume", "--json", "--store", dir, r.ID)
		if code != 0 {
			t.Fatalf("resume %s: exit %d:\n%s", r.Name, code, stderr)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(stdout), &got); err != nil {
			t.Fatal(err)
		}
		if got["status"] != "done" || got["steps"] != got["total_steps"] || !strings.Contains(stderr, "resuming from the last checkpoint") {
			t.Errorf("%s resumed: status %v, %v of %v steps:\n%s", r.Name, got["status"], got["steps"], got["total_steps"], stderr)
		}
		// The curve has every step, the old ones and the new.
		st, _ := store.Open(dir)
		loss := series(t, st, r.ID, trainer.MetricTrainLoss)
		st.Close()
		if int(len(loss)) != int(got["steps"].(float64)) || loss[0][0] != 1 {
			t.Errorf("%s: %d training losses from step %v, want one per step", r.Name, len(loss), loss[0][0])
		}
		stdout, _, _ = runMain(t, ctx, &Main{}, "show", "--store", dir, r.ID)
		if !strings.Contains(stdout, "job: model ") || !strings.Contains(stdout, "status done") {
			t.Errorf("show %s:\n%s", r.Name, stdout)
		}
	}
	// A branch of a run recorded by version 1 records version 2.
	stdout, stderr, code := runMain(t, ctx, &Main{}, "branch", "--json", "--store", dir, done, "--from", "1")
	if code != 0 {
		t.Fatalf("branch of a version-1 run: exit %d:\n%s", code, stderr)
	}
	var got map[string]any
	json.Unmarshal([]byte(stdout), &got)
	st, _ = store.Open(dir)
	defer st.Close()
	r, _ := st.Run(ctx, got["run"].(string))
	if rec, err := store.DecodeJob(r); err != nil || rec.Version != store.JobVersion || r.ParentStep != 3 {
		t.Errorf("branch: record version %d, %v, parent step %d", rec.Version, err, r.ParentStep)
	}
}
