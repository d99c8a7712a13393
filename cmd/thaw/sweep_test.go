package main

import (
	"context"
	"encoding/json"
	"image/color"
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

// sweepJSON runs thaw sweep --json and decodes its result.
func sweepJSON(t *testing.T, ctx context.Context, args ...string) (sweepOutput, string, int) {
	t.Helper()
	stdout, stderr, code := runMain(t, ctx, &Main{}, append([]string{"sweep", "--json"}, args...)...)
	var out sweepOutput
	if code == 0 {
		if err := json.Unmarshal([]byte(stdout), &out); err != nil {
			t.Fatalf("stdout is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
		}
	}
	return out, stderr, code
}

// stageEndWeights returns the weights of run's checkpoint at the end of
// stage k.
func stageEndWeights(t *testing.T, st *store.Store, run string, k int) []trainer.SafeTensor {
	t.Helper()
	ctx := context.Background()
	cks, err := st.Checkpoints(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cks {
		if c.Kind == store.KindStageEnd && c.Stage == k {
			ck, err := st.LoadCheckpoint(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			return ck.Weights
		}
	}
	t.Fatalf("run %s has no checkpoint at the end of stage %d", run, k)
	return nil
}

// TestSweepPointIsTrainFirstStage is issue 20's acceptance: every point of
// thaw sweep trains exactly the first stage of thaw train --plan P
// --freeze-below B, the plan built by thaw train's own path: the stored
// curves up to the end of that stage and the weights there are the same
// bits.
func TestSweepPointIsTrainFirstStage(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	common := []string{"--model", fx.model, "--data", fx.data, "--plan", "gradual", "--lr", "0.02", "--shots", "30"}
	out, stderr, code := sweepJSON(t, ctx, append([]string{"--store", dir, "--seed-list", "9"}, common...)...)
	if code != 0 {
		t.Fatalf("thaw sweep: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "sweep "+store.Short(out.Sweep)) || !strings.Contains(stderr, "of 3 runs done") {
		t.Errorf("stderr has no progress line:\n%s", stderr)
	}
	g := out.Groups[0]
	if got := len(g.Rows); got != 3 {
		t.Fatalf("%d rows, want one per block", got)
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, r := range g.Rows {
		id, _, code := storeRun(t, ctx, dir, append([]string{"--seed", "9", "--freeze-below", r.Point}, common...)...)
		if code != 0 {
			t.Fatalf("thaw train --freeze-below %s: exit %d", r.Point, code)
		}
		stages, err := st.Stages(ctx, id)
		if err != nil || len(stages) == 0 || stages[0].End < 0 {
			t.Fatalf("stages of %s: %+v, %v", id, stages, err)
		}
		end := stages[0].End
		sweepRun := r.Runs[0]
		for _, name := range curves {
			a := slices.DeleteFunc(series(t, st, id, name), func(p [2]uint64) bool { return int64(p[0]) > end })
			b := series(t, st, sweepRun, name)
			if len(a) == 0 || !slices.Equal(a, b) {
				t.Errorf("point %s, %s: the sweep's run has %d points, thaw train's first stage %d; want the same bits", r.Point, name, len(b), len(a))
			}
		}
		if !sameWeights(stageEndWeights(t, st, id, 0), finalWeights(t, st, sweepRun)) {
			t.Errorf("point %s: the weights at the end of the first stage differ", r.Point)
		}
	}
}

// TestSweepSkipsOnlyTheGauge: a sweep's runs leave the forgetting gauge
// out, and that changes nothing they train: on digits-cnn, whose source
// task gauges every run of thaw train, the head point's curves and
// weights are those of thaw train --freeze-below head's first stage.
func TestSweepSkipsOnlyTheGauge(t *testing.T) {
	if testing.Short() {
		t.Skip("trains digits-cnn")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	common := []string{"--store", dir, "--model", "digits-cnn", "--data", "digits-5to9", "--shots", "5", "--plan", "gradual"}
	stdout, stderr, code := runMain(t, ctx, &Main{Zoo: assets.Zoo()}, append([]string{"sweep", "--json", "--points", "head", "--seed-list", "3001"}, common...)...)
	if code != 0 {
		t.Fatalf("thaw sweep: exit %d\n%s", code, stderr)
	}
	var out sweepOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runMain(t, ctx, &Main{Zoo: assets.Zoo()}, append([]string{"train", "--json", "--seed", "3001", "--freeze-below", "head"}, common...)...)
	if code != 0 {
		t.Fatalf("thaw train: exit %d\n%s", code, stderr)
	}
	var tr struct {
		Run             string  `json:"run"`
		SourceAccBefore float64 `json:"source_acc_before"`
	}
	if err := json.Unmarshal([]byte(stdout), &tr); err != nil {
		t.Fatal(err)
	}
	if tr.SourceAccBefore == 0 {
		t.Fatal("thaw train measured no source accuracy: the gauge did not run")
	}
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stages, err := st.Stages(ctx, tr.Run)
	if err != nil || len(stages) == 0 || stages[0].End < 0 {
		t.Fatalf("stages: %+v, %v", stages, err)
	}
	sweepRun := out.Groups[0].Rows[0].Runs[0]
	for _, name := range curves {
		a := slices.DeleteFunc(series(t, st, tr.Run, name), func(p [2]uint64) bool { return int64(p[0]) > stages[0].End })
		if b := series(t, st, sweepRun, name); len(a) == 0 || !slices.Equal(a, b) {
			t.Errorf("%s differs", name)
		}
	}
	if !sameWeights(stageEndWeights(t, st, tr.Run, 0), finalWeights(t, st, sweepRun)) {
		t.Error("the weights at the end of the first stage differ")
	}
}

// TestSweepText: the table names every point with its figures, stars the
// pick, says why, and ends with the command that reproduces it; thaw runs
// --sweep lists the sweep's runs by point and seed; bad flags are bad
// usage.
func TestSweepText(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	args := []string{"sweep", "--store", dir, "--model", fx.model, "--data", fx.data, "--epochs", "1", "--seeds", "2", "--points", "head,fc2"}
	stdout, stderr, code := runMain(t, ctx, &Main{}, args...)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"FREEZE POINT", "LOWEST VAL LOSS", "fc2", "head", "★", " ± ", "reproduce: thaw train --model " + fx.model,
		"--freeze-below", "--seed 3001", "4 of 4 runs done"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Index(stdout, "fc2") > strings.Index(stdout, "head") {
		t.Errorf("rows are not in the block table's order:\n%s", stdout)
	}
	id := strings.Fields(strings.TrimPrefix(stdout, "sweep "))[0]
	id = strings.TrimSuffix(id, ":")
	runs, _, code := runMain(t, ctx, &Main{}, "runs", "--store", dir, "--sweep", id)
	if code != 0 || !strings.Contains(runs, "INDEX") || strings.Count(runs, "done") != 4 || !strings.Contains(runs, "3002") {
		t.Errorf("thaw runs --sweep %s: exit %d\n%s", id, code, runs)
	}
	for _, bad := range [][]string{
		{"--points", "conv9"}, {"--seed-list", "1,x"}, {"--seeds", "0"}, {"--workers", "-1"},
	} {
		a := append(slices.Clone(args[:len(args)-4]), bad...)
		if _, stderr, code := runMain(t, ctx, &Main{}, a...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", bad, code, exitUsage, stderr)
		}
	}
	if _, _, code := runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--resume", id, "--seeds", "5"); code != exitUsage {
		t.Errorf("--resume with --seeds: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := runMain(t, ctx, &Main{}, "sweep", "--store", dir, "--resume", "zzzz"); code != exitUsage {
		t.Errorf("--resume of an unknown sweep: exit %d, want %d", code, exitUsage)
	}
}

// TestExportSweep draws a real sweep: the PNG decodes at the size asked
// for and shows the means (blue), the pick (vermillion) and the probes
// (bluish green) in the house palette; the SVG and the CSV hold every
// point.
func TestExportSweep(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	out, stderr, code := sweepJSON(t, ctx, "--store", dir, "--model", fx.model, "--data", fx.data, "--epochs", "1", "--seeds", "2")
	if code != 0 {
		t.Fatalf("thaw sweep: exit %d\n%s", code, stderr)
	}
	png := filepath.Join(fx.dir, "sweep.png")
	if _, stderr, code := runMain(t, ctx, &Main{}, "export", "--store", dir, "--sweep", store.Short(out.Sweep), "-o", png, "--width", "800", "--height", "500"); code != 0 {
		t.Fatalf("thaw export: exit %d\n%s", code, stderr)
	}
	img := decodePNG(t, png, 800, 500)
	for name, c := range map[string]color.NRGBA{
		"the means (blue)": {0x00, 0x72, 0xB2, 0xff}, "the pick (vermillion)": {0xD5, 0x5E, 0x00, 0xff},
		"the probes (bluish green)": {0x00, 0x9E, 0x73, 0xff},
	} {
		if countNear(img, c, 12) < 20 {
			t.Errorf("the figure does not show %s", name)
		}
	}
	for ext, want := range map[string][]string{
		".csv": {"point,trainable", "fc1,", "fc2,", "head,", ",true"},
		".svg": {"<svg", "freeze point", "lowest val loss", "linear probe"},
	} {
		path := filepath.Join(fx.dir, "sweep"+ext)
		if _, stderr, code := runMain(t, ctx, &Main{}, "export", "--store", dir, "--sweep", out.Sweep, "-o", path); code != 0 {
			t.Fatalf("thaw export %s: exit %d\n%s", ext, code, stderr)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", ext, w)
			}
		}
	}
	if _, _, code := runMain(t, ctx, &Main{}, "export", "--store", dir, "--sweep", "zzzz", "-o", png); code != exitUsage {
		t.Errorf("an unknown sweep: exit %d, want %d", code, exitUsage)
	}
}

// TestTrainSweepIndex: thaw train --sweep ID --index I trains exactly task
// I's run, which the sweep then reuses; a second try of a done index
// trains nothing; bad indices and job flags are bad usage.
func TestTrainSweepIndex(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)
	dir := filepath.Join(fx.dir, "store")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	job := trainer.Job{Model: fx.model, Data: trainer.DataRef{Path: fx.data}, Shots: 30, ValSplit: 0.2, BatchSize: 32}
	if err := job.SetPlan("gradual", 0.02, 1, 0); err != nil {
		t.Fatal(err)
	}
	sw, err := engine.New(st, &assets.Catalog{}).NewSweep(ctx, engine.SweepSpec{Job: job, Seeds: []uint64{5, 6}, PlanRef: "gradual"})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	id := store.Short(sw.ID)
	tr, code := trainJSON(t, ctx, "--store", dir, "--sweep", id, "--index", "4")
	if code != 0 {
		t.Fatalf("thaw train --sweep --index 4: exit %d", code)
	}
	out, stderr, code := sweepJSON(t, ctx, "--store", dir, "--resume", id)
	if code != 0 {
		t.Fatalf("thaw sweep --resume: exit %d\n%s", code, stderr)
	}
	// Task 4 = 1·3 + 1 is seed 6 (the second) at the second point, fc2.
	g := out.Groups[0]
	if g.Rows[1].Point != "fc2" || g.Rows[1].Runs[1] != tr["run"] {
		t.Errorf("task 4's run is %v, the sweep's fc2 on seed 6 is %s", tr["run"], g.Rows[1].Runs[1])
	}
	if out.Done != 6 || g.Rows[1].CPUSeconds <= 0 {
		t.Errorf("%d of %d done, fc2's CPU %v", out.Done, out.Total, g.Rows[1].CPUSeconds)
	}
	if _, stderr, code := runMain(t, ctx, &Main{}, "train", "--store", dir, "--sweep", id, "--index", "4"); code != 0 || !strings.Contains(stderr, "nothing to train") {
		t.Errorf("a done index again: exit %d\n%s", code, stderr)
	}
	for _, bad := range [][]string{{"--index", "6"}, {"--index", "-2"}, {"--index", "0", "--model", fx.model}, {}} {
		args := append([]string{"train", "--store", dir, "--sweep", id}, bad...)
		if _, stderr, code := runMain(t, ctx, &Main{}, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", bad, code, exitUsage, stderr)
		}
	}
}

// TestReproduceCommand: the command that reproduces a pick gives thaw
// train what the sweep was given, the plan's changes included, quoted for
// a shell.
func TestReproduceCommand(t *testing.T) {
	job := trainer.Job{Model: "my model", Data: trainer.DataRef{Path: "d.csv"}, Shots: 5, BatchSize: 16, EvalEvery: 4}
	for _, c := range []struct {
		name string
		spec engine.SweepSpec
		want string
	}{
		{"a plan file with --lr", engine.SweepSpec{Job: job, PlanRef: "plans/gentle.json", PlanLR: 0.003, Seeds: []uint64{7}},
			"thaw train --model 'my model' --data d.csv --plan plans/gentle.json --lr 0.003 --shots 5 --batch 16 --eval-every 4 --freeze-below fc1 --seed 7"},
		{"a preset made in code", engine.SweepSpec{Job: trainer.Job{Model: "m", Data: trainer.DataRef{Path: "d"}, Preset: &trainer.PresetRef{Name: "full", Epochs: 3}}, Seeds: []uint64{1}},
			"thaw train --model m --data d --plan full --epochs 3 --freeze-below fc1 --seed 1"},
	} {
		if got := reproduceCommand(c.spec, "fc1", "", 0); got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, c.want)
		}
	}
}
