package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"thaw/trainer"
)

// trainJSON runs thaw train --json and decodes its output.
func trainJSON(t *testing.T, ctx context.Context, args ...string) (map[string]any, int) {
	t.Helper()
	stdout, stderr, code := runMain(t, ctx, &Main{}, append([]string{"train", "--json"}, args...)...)
	var out map[string]any
	dec := json.NewDecoder(strings.NewReader(stdout))
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("stdout is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON value:\n%s", stdout)
	}
	return out, code
}

func TestTrainJSON(t *testing.T) {
	fx := newFixture(t)
	out, code := trainJSON(t, context.Background(), "--model", fx.model, "--data", fx.data, "--epochs", "1")
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	for _, key := range []string{"model", "dataset", "plan", "stages", "final_val_acc", "best_val_acc",
		"source_acc_before", "source_acc_after", "audit", "samples_per_sec", "wall_seconds", "status", "steps"} {
		if _, ok := out[key]; !ok {
			t.Errorf("no %q in the JSON output", key)
		}
	}
	if got := out["status"]; got != "done" {
		t.Errorf("status = %v, want done", got)
	}
	// No forgetting gauge for a model from a folder: null, not NaN.
	if out["source_acc_before"] != nil || out["source_acc_after"] != nil {
		t.Errorf("source accuracies = %v, %v, want null", out["source_acc_before"], out["source_acc_after"])
	}
	plan := out["plan"].(map[string]any)
	stages := plan["stages"].([]any)
	if plan["name"] != "gradual" || len(stages) != 3 {
		t.Fatalf("plan %v with %d stages, want gradual with 3 (one per block)", plan["name"], len(stages))
	}
	for _, key := range []string{"label", "trainable", "lr", "schedule", "steps"} {
		if _, ok := stages[0].(map[string]any)[key]; !ok {
			t.Errorf("no %q in the plan's first stage", key)
		}
	}
	// 144 training samples in batches of 32: 5 steps per epoch, one epoch
	// per stage.
	if got := out["steps"]; got != 15.0 {
		t.Errorf("steps = %v, want 15", got)
	}
}

func TestTrainGradualRises(t *testing.T) {
	fx := newFixture(t)
	// lr 0.03 and 3 epochs a stage: a few dozen steps from a random base
	// reach about 90% on this problem, starting from a chance-level head.
	out, code := trainJSON(t, context.Background(), "--model", fx.model, "--data", fx.data,
		"--plan", "gradual", "--lr", "0.03", "--epochs", "3")
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	var accs []float64
	for _, s := range out["stages"].([]any) {
		accs = append(accs, s.(map[string]any)["best_val_acc"].(float64))
	}
	if len(accs) != 3 {
		t.Fatalf("%d stages, want 3", len(accs))
	}
	for i := 1; i < len(accs); i++ {
		if accs[i] <= accs[i-1] {
			t.Errorf("stage %d's best val acc %.3f is not above stage %d's %.3f (all: %v)", i+1, accs[i], i, accs[i-1], accs)
		}
	}
	if accs[2] < 0.8 {
		t.Errorf("final stage reaches %.3f, want at least 0.8", accs[2])
	}
}

func TestTrainHeadAudit(t *testing.T) {
	fx := newFixture(t)
	out, code := trainJSON(t, context.Background(), "--model", fx.model, "--data", fx.data, "--plan", "head", "--lr", "0.01")
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	audit := out["audit"].(map[string]any)
	var checked []string
	for _, b := range audit["checked"].([]any) {
		checked = append(checked, b.(string))
	}
	if want := []string{"fc1", "fc2"}; !slices.Equal(checked, want) {
		t.Errorf("audit checked %q, want every block below the head %q", checked, want)
	}
	if audit["passed"] != true || len(audit["changed"].([]any)) != 0 {
		t.Errorf("audit = %v, want passed with nothing changed", audit)
	}
}

func TestTrainInterrupted(t *testing.T) {
	fx := newFixture(t)
	// Ctrl-C as soon as the run is recorded, before its first step.
	ctx, cancel := context.WithCancel(context.Background())
	var stdout strings.Builder
	m := &Main{Stdout: &stdout, Stderr: cancelOn{"(thaw show", cancel}}
	err := m.Run(ctx, []string{"train", "--json", "--model", fx.model, "--data", fx.data})
	var out map[string]any
	if jerr := json.Unmarshal([]byte(stdout.String()), &out); jerr != nil {
		t.Fatalf("stdout is not JSON (%v): %s; error %v", jerr, stdout.String(), err)
	}
	if code := exitCode(err); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if out["status"] != "stopped" {
		t.Errorf("status = %v, want stopped", out["status"])
	}
}

func TestSaveThenPredict(t *testing.T) {
	fx := newFixture(t)
	saved := filepath.Join(fx.dir, "tuned")
	_, stderr, code := runMain(t, context.Background(), &Main{}, "train", "--model", fx.model, "--data", fx.data,
		"--plan", "full", "--lr", "0.01", "--epochs", "2", "--save", saved)
	if code != 0 {
		t.Fatalf("train: exit code %d, want 0:\n%s", code, stderr)
	}
	stdout, stderr, code := runMain(t, context.Background(), &Main{}, "predict", "--model", saved, "--data", fx.data)
	if code != 0 {
		t.Fatalf("predict: exit code %d, want 0:\n%s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"index", "predicted", "x", "y", "z"}; !slices.Equal(rows[0], want) {
		t.Errorf("header %q, want %q", rows[0], want)
	}
	if got, want := len(rows)-1, 180; got != want {
		t.Errorf("%d rows, want one per sample, %d", got, want)
	}
	correct := 0
	for i, row := range rows[1:] {
		if row[0] != strconv.Itoa(i) {
			t.Errorf("row %d has index %s", i, row[0])
		}
		sum, best := 0.0, 0
		probs := make([]float64, len(row)-2)
		for c, s := range row[2:] {
			p, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			probs[c] = p
			sum += p
			if p > probs[best] {
				best = c
			}
		}
		if row[1] != rows[0][2+best] {
			t.Errorf("row %d predicts %s, but the most probable class is %s", i, row[1], rows[0][2+best])
		}
		// Probabilities are printed with 6 significant digits.
		if math.Abs(sum-1) > 1e-5 {
			t.Errorf("row %d: probabilities sum to %v, want 1", i, sum)
		}
		if row[1] == []string{"x", "y", "z"}[i%3] {
			correct++
		}
	}
	// The saved model is the fine-tuned one, not the random base.
	if acc := float64(correct) / 180; acc < 0.6 {
		t.Errorf("the saved model predicts %.2f of the training data right, want at least 0.6", acc)
	}
}

// zooOf returns a zoo holding the saved model folder dir as name.
func zooOf(t *testing.T, name, dir string) fstest.MapFS {
	t.Helper()
	zoo := fstest.MapFS{"README.md": {Data: []byte("# zoo\n")}}
	for _, f := range []string{trainer.ConfigFile, trainer.WeightsFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		zoo[name+"/"+f] = &fstest.MapFile{Data: b}
	}
	return zoo
}

func TestZooModel(t *testing.T) {
	fx := newFixture(t)
	zoo := zooOf(t, "tiny-mlp", fx.model)

	stdout, stderr, code := runMain(t, context.Background(), &Main{Zoo: zoo}, "models")
	if code != 0 {
		t.Fatalf("models: exit code %d:\n%s", code, stderr)
	}
	// 4·16+16 + 16·16+16 + 16·3+3 = 403 parameters.
	for _, want := range []string{"tiny-mlp", "mlp", "403", "4", "3 (a,b,c)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("models output lacks %q:\n%s", want, stdout)
		}
	}
	_, stderr, code = runMain(t, context.Background(), &Main{Zoo: zoo}, "train", "--model", "tiny-mlp", "--data", fx.data, "--plan", "head")
	if code != 0 {
		t.Errorf("train on a zoo model: exit code %d:\n%s", code, stderr)
	}
	_, stderr, code = runMain(t, context.Background(), &Main{Zoo: zoo}, "train", "--model", "tiny-cnn", "--data", fx.data)
	if code != 2 || !strings.Contains(stderr, "zoo models: tiny-mlp") {
		t.Errorf("unknown zoo model: exit code %d, want 2 with the zoo listed:\n%s", code, stderr)
	}
	stdout, _, _ = runMain(t, context.Background(), &Main{}, "models")
	if !strings.Contains(stdout, "no models yet") {
		t.Errorf("models with an empty zoo says %q", stdout)
	}
}

func TestLRFindCommand(t *testing.T) {
	fx := newFixture(t)
	stdout, stderr, code := runMain(t, context.Background(), &Main{}, "lr-find", "--model", fx.model, "--data", fx.data, "--plan", "full")
	if code != 0 {
		t.Fatalf("exit code %d:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "suggested lr:") || !strings.Contains(stdout, "<- suggested") {
		t.Errorf("no suggestion in the output:\n%s", stdout)
	}
}
