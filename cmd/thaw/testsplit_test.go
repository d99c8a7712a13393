package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"thaw/assets"
)

// A task with a test split gets the saved model's accuracy on it at the
// end of thaw train: the accuracy thaw predict measures with that model
// on that split.
func TestTrainReportsTestAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("loads a built-in task")
	}
	ctx := context.Background()
	dir := t.TempDir()
	saved := filepath.Join(dir, "tuned")
	m := &Main{Zoo: assets.Zoo()}
	stdout, stderr, code := runMain(t, ctx, m, "train", "--json", "--store", filepath.Join(dir, "store"), "--model", "letters-mlp",
		"--data", "letters-n-z", "--plan", "head", "--shots", "2", "--epochs", "1", "--save", saved)
	if code != 0 {
		t.Fatalf("train: exit %d:\n%s", code, stderr)
	}
	var out struct {
		TestAcc     *float64 `json:"test_acc"`
		TestSamples int      `json:"test_samples"`
		BestValAcc  float64  `json:"best_val_acc"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.TestAcc == nil || out.TestSamples != 2019 {
		t.Fatalf("test_acc %v on %d samples, want a score on letters-n-z's 2,019 test samples", out.TestAcc, out.TestSamples)
	}
	_, perr, code := runMain(t, ctx, m, "predict", "--model", saved, "--data", "letters-n-z")
	if code != 0 {
		t.Fatalf("predict: exit %d:\n%s", code, perr)
	}
	if want := fmt.Sprintf("(%d of 2019)", int(*out.TestAcc*2019+0.5)); !strings.Contains(perr, want) {
		t.Errorf("train's test acc %v is not predict's on the saved model:\n%s", *out.TestAcc, perr)
	}
	// Text output names it beside the validation figures.
	stdout, _, _ = runMain(t, ctx, m, "train", "--store", filepath.Join(dir, "store"), "--model", "letters-mlp",
		"--data", "letters-n-z", "--plan", "head", "--shots", "2", "--epochs", "1")
	if !strings.Contains(stdout, "test acc ") || !strings.Contains(stdout, "2019 samples of the test split") {
		t.Errorf("text summary has no test acc:\n%s", stdout)
	}

	// Data without a test split: null.
	fx := newFixture(t)
	res, _ := trainJSON(t, ctx, "--model", fx.model, "--data", fx.data, "--epochs", "1")
	if v, ok := res["test_acc"]; !ok || v != nil {
		t.Errorf("a CSV's test_acc = %v (present %v), want null", v, ok)
	}
}
