package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

// jsonOf runs a command that writes JSON and decodes it into v.
func jsonOf(t *testing.T, v any, args ...string) {
	t.Helper()
	stdout, stderr, code := runMain(t, context.Background(), &Main{}, args...)
	if code != 0 {
		t.Fatalf("%v: exit %d:\n%s", args, code, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), v); err != nil {
		t.Fatalf("%v: stdout is not JSON (%v):\n%s", args, err, stdout)
	}
}

// An interrupted run's summary gives the stage it was in the steps it
// reached, not 0–0.
func TestStageRangesOfUnfinishedRun(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	for _, asJSON := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		var stdout strings.Builder
		m := &Main{Stdout: &stdout, Stderr: cancelOnEval(cancel)}
		// 5 steps an epoch, 3 epochs a stage: the first evaluation, at
		// step 5, is inside stage 1.
		args := []string{"train", "--store", dir, "--model", fx.model, "--data", fx.data, "--epochs", "3"}
		if asJSON {
			args = append(args, "--json")
		}
		err := m.Run(ctx, args)
		cancel()
		if code := exitCode(err); code != 1 {
			t.Fatalf("exit code %d, want 1 (interrupted): %v", code, err)
		}
		if !asJSON {
			if strings.Contains(stdout.String(), "0–0") {
				t.Errorf("summary gives a stage 0–0:\n%s", stdout.String())
			}
			if !strings.Contains(stdout.String(), "(stopped here)") {
				t.Errorf("summary does not say where the run stopped:\n%s", stdout.String())
			}
			continue
		}
		var out struct {
			Steps  int `json:"steps"`
			Stages []struct {
				Start      int  `json:"start_step"`
				End        int  `json:"end_step"`
				Unfinished bool `json:"unfinished"`
			} `json:"stages"`
		}
		if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Stages) == 0 || out.Steps < 5 || out.Steps >= 15 {
			t.Fatalf("stopped after %d steps with %d stages, want inside stage 1 (steps 5 to 14)", out.Steps, len(out.Stages))
		}
		last := out.Stages[len(out.Stages)-1]
		if last.End != out.Steps || !last.Unfinished || last.Start > last.End {
			t.Errorf("last stage %+v after %d steps, want it to end unfinished at step %d", last, out.Steps, out.Steps)
		}
	}
}

// "Best val acc" is the accuracy at the lowest validation loss in every
// output; the highest accuracy is called max val acc.
func TestBestValAccOneDefinition(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.CreateRun(ctx, store.Run{Name: "evals", Model: "m", Dataset: "d", Plan: json.RawMessage(`{}`)})
	if err != nil {
		t.Fatal(err)
	}
	// The lowest loss (0.40, step 20) is not the highest accuracy (0.80,
	// step 30).
	var ms []store.Metric
	for i, e := range []struct{ loss, acc float64 }{{0.5, 0.7}, {0.4, 0.6}, {0.45, 0.8}} {
		step := int64(10 * (i + 1))
		ms = append(ms, store.Metric{Step: step, Name: trainer.MetricTrainLoss, Value: 1},
			store.Metric{Step: step, Name: trainer.MetricValLoss, Value: e.loss},
			store.Metric{Step: step, Name: trainer.MetricValAcc, Value: e.acc})
	}
	if err := st.AddMetrics(ctx, run.ID, ms); err != nil {
		t.Fatal(err)
	}
	if err := st.SetStatus(ctx, run.ID, trainer.StatusDone, ""); err != nil {
		t.Fatal(err)
	}
	st.Close()

	var runs []map[string]any
	jsonOf(t, &runs, "runs", "--json", "--store", dir)
	var show map[string]any
	jsonOf(t, &show, "show", "--json", "--store", dir, run.ID)
	for name, got := range map[string]map[string]any{"runs": runs[0], "show": show} {
		if got["best_val_acc"] != 0.6 || got["best_step"] != 20.0 || got["max_val_acc"] != 0.8 {
			t.Errorf("%s: best_val_acc %v at step %v, max_val_acc %v; want 0.6 at step 20, max 0.8",
				name, got["best_val_acc"], got["best_step"], got["max_val_acc"])
		}
	}
	stdout, _, _ := runMain(t, ctx, &Main{}, "show", "--store", dir, run.ID)
	if !strings.Contains(stdout, "best val acc 60.0% (the lowest val loss, at step 20), max val acc 80.0%") {
		t.Errorf("show does not name best and max:\n%s", stdout)
	}

	// A real run: train's summary, its stage table, runs and show agree.
	fx := newFixture(t)
	sdir := filepath.Join(fx.dir, "store")
	id, out, code := storeRun(t, ctx, sdir, "--model", fx.model, "--data", fx.data, "--epochs", "3", "--eval-every", "2", "--lr", "0.05")
	if code != 0 {
		t.Fatalf("train: exit %d", code)
	}
	best := out["best_val_acc"].(float64)
	holders := 0
	for _, s := range out["stages"].([]any) {
		s := s.(map[string]any)
		if s["holds_best"] == true {
			holders++
			if s["best_val_acc"] != best {
				t.Errorf("stage holding the best has val acc %v, the summary %v", s["best_val_acc"], best)
			}
		}
	}
	if holders != 1 {
		t.Errorf("%d stages hold the best, want 1", holders)
	}
	jsonOf(t, &runs, "runs", "--json", "--store", sdir)
	jsonOf(t, &show, "show", "--json", "--store", sdir, id)
	if runs[0]["best_val_acc"] != best || show["best_val_acc"] != best || runs[0]["best_step"] != out["best_step"] {
		t.Errorf("best val acc: train %v (step %v), runs %v (step %v), show %v", best, out["best_step"],
			runs[0]["best_val_acc"], runs[0]["best_step"], show["best_val_acc"])
	}
}

func TestInitScratch(t *testing.T) {
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	ctx := context.Background()
	args := []string{"--model", fx.model, "--data", fx.data, "--epochs", "1", "--plan", "full", "--seed", "5"}
	pre, outPre, code := storeRun(t, ctx, dir, args...)
	if code != 0 {
		t.Fatalf("pretrained: exit %d", code)
	}
	s1, out1, code := storeRun(t, ctx, dir, append(args, "--init", "scratch")...)
	if code != 0 {
		t.Fatalf("scratch: exit %d", code)
	}
	_, out2, _ := storeRun(t, ctx, dir, append(args, "--init", "scratch")...)
	if out1["final_val_loss"] != out2["final_val_loss"] {
		t.Errorf("two scratch runs with one seed end at val loss %v and %v", out1["final_val_loss"], out2["final_val_loss"])
	}
	if out1["final_val_loss"] == outPre["final_val_loss"] {
		t.Errorf("scratch and pretrained end at the same val loss %v", out1["final_val_loss"])
	}
	st, err := store.OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, _ := st.Run(ctx, s1)
	rp, _ := st.Run(ctx, pre)
	rec, err := store.DecodeJob(rs)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Job.Init != trainer.InitScratch || rs.ModelHash == rp.ModelHash {
		t.Errorf("scratch run: init %q, model hash %s (pretrained %s)", rec.Job.Init, rs.ModelHash, rp.ModelHash)
	}
	if _, stderr, code := runMain(t, ctx, &Main{}, append([]string{"train", "--init", "zeros"}, args...)...); code != 2 || !strings.Contains(stderr, "--init") {
		t.Errorf("--init zeros: exit %d:\n%s", code, stderr)
	}
}

func TestSmallMessages(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	if _, _, code := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--epochs", "1"); code != 0 {
		t.Fatalf("train: exit %d", code)
	}
	tests := []struct {
		args     []string
		code     int
		out, err string // wanted in stdout, stderr
		notErr   string
	}{
		{[]string{"version"}, 0, "thaw ", "", ""},
		{[]string{"runs", "--store", dir, "--model", "nosuch"}, 0, "No runs match", "", ""},
		{[]string{"runs", "--store", t.TempDir()}, 0, "No runs stored", "", ""},
		{[]string{"show", "--store", dir}, 2, "", "thaw: show: which run?", "thaw show"},
		{[]string{"show", "--store", dir, "a", "b"}, 2, "", "thaw: show: unexpected argument", "thaw show"},
		{[]string{"train", "--model", fx.model, "--data", fx.data, "--lr", "inf"}, 2, "", "must be finite", ""},
		{[]string{"train", "--model", fx.model, "--data", fx.data, "--lr", "-Inf"}, 2, "", "must be finite", ""},
		{[]string{"branch", "--store", dir, "x", "--from", "1", "--plan", "head", "--lr", "+Inf"}, 2, "", "must be finite", ""},
		{[]string{"lr-find", "--model", fx.model, "--data", fx.data, "--end-lr", "inf"}, 2, "", "finite", ""},
		{[]string{"resume", "--store", dir, "latest"}, 2, "", "it is done", "resume: resume"},
		{[]string{"show", "--store", dir, "latest"}, 0, "status done", "", ""},
	}
	for _, tt := range tests {
		stdout, stderr, code := runMain(t, ctx, &Main{}, tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.out) || !strings.Contains(stderr, tt.err) ||
			(tt.notErr != "" && strings.Contains(stderr, tt.notErr)) {
			t.Errorf("%v: exit %d, want %d; stdout:\n%s\nstderr:\n%s", tt.args, code, tt.code, stdout, stderr)
		}
	}
	for n, want := range map[int]string{0: "0 classes", 1: "1 class", 2: "2 classes"} {
		if got := plural(n, "class"); got != want {
			t.Errorf("plural(%d, class) = %q, want %q", n, got, want)
		}
	}
	if got := plural(1, "training sample"); got != "1 training sample" {
		t.Errorf("plural(1, training sample) = %q", got)
	}
}

// A run keeps its stage-end checkpoints and only the newest best and last
// ones, however often it evaluates; thaw runs shows what they take on disk.
func TestCheckpointRetentionAndSize(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	id, _, code := storeRun(t, ctx, dir, "--model", fx.model, "--data", fx.data, "--epochs", "4", "--eval-every", "1", "--lr", "0.05")
	if code != 0 {
		t.Fatalf("train: exit %d", code)
	}
	st, err := store.OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := st.Checkpoints(ctx, id)
	st.Close()
	kinds := map[store.Kind]int{}
	var size int64
	for _, c := range cs {
		kinds[c.Kind]++
		size += c.Size
	}
	if kinds[store.KindStageEnd] != 3 || kinds[store.KindBest] != 1 || kinds[store.KindLast] != 1 {
		t.Errorf("checkpoints kept: %v; want 3 stage-end, 1 best, 1 last", kinds)
	}
	var runs []map[string]any
	jsonOf(t, &runs, "runs", "--json", "--store", dir)
	if got := runs[0]["size_bytes"]; got != float64(size) {
		t.Errorf("size_bytes %v, want %d, what its checkpoint files take", got, size)
	}
	stdout, _, _ := runMain(t, ctx, &Main{}, "runs", "--store", dir)
	if !strings.Contains(stdout, "SIZE") || !strings.Contains(stdout, fmtBytes(size)) {
		t.Errorf("thaw runs does not show the size %s:\n%s", fmtBytes(size), stdout)
	}
}
