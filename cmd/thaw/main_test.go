package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"thaw/trainer/termtext"

	"thaw/trainer"
)

// tinyConfig is a three-block MLP: 4 features → 16 → 16 → 3 classes.
func tinyConfig(name string, classes ...string) *trainer.Config {
	return &trainer.Config{
		Name:         name,
		Architecture: "mlp",
		InputShape:   []int{4},
		Classes:      classes,
		Blocks: []trainer.BlockConfig{
			{Name: "fc1", Layers: []trainer.LayerConfig{
				{Type: "linear", Name: "features.0", InFeatures: 4, OutFeatures: 16}, {Type: "relu"}}},
			{Name: "fc2", Layers: []trainer.LayerConfig{
				{Type: "linear", Name: "features.2", InFeatures: 16, OutFeatures: 16}, {Type: "relu"}}},
			{Name: "head", Layers: []trainer.LayerConfig{
				{Type: "linear", Name: "classifier", InFeatures: 16, OutFeatures: len(classes)}}},
		},
	}
}

// writeModel saves a freshly initialised tiny model to dir.
func writeModel(t *testing.T, dir string, classes ...string) string {
	t.Helper()
	m, err := trainer.New[float32](tinyConfig("tiny", classes...), rand.New(rand.NewPCG(7, 7)))
	if err != nil {
		t.Fatal(err)
	}
	if err := trainer.SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeBlobs writes an easy CSV problem to path: n samples per class, 4
// features, class c centred at +1 on feature c%4 and -1 elsewhere, with
// Gaussian noise of σ noise.
func writeBlobs(t *testing.T, path string, n int, noise float64, classes ...string) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 3))
	var b strings.Builder
	b.WriteString("f0,f1,f2,f3,label\n")
	for i := range n * len(classes) {
		c := i % len(classes)
		for f := range 4 {
			v := -1.0
			if f == c%4 {
				v = 1
			}
			fmt.Fprintf(&b, "%.4f,", v+noise*rng.NormFloat64())
		}
		b.WriteString(classes[c] + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runMain runs a command line and returns its outputs and exit code.
func runMain(t *testing.T, ctx context.Context, m *Main, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	m.Stdout, m.Stderr = &out, &errb
	err := m.Run(ctx, args)
	if err != nil {
		code = exitCode(err)
		fmt.Fprintln(&errb, "thaw:", termtext.Sanitize(err.Error()))
	}
	return out.String(), errb.String(), code
}

// fixture is a tiny model and data in a temporary folder.
type fixture struct {
	dir, model, data string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	dir := t.TempDir()
	return fixture{
		dir:   dir,
		model: writeModel(t, filepath.Join(dir, "base"), "a", "b", "c"),
		data:  writeBlobs(t, filepath.Join(dir, "blobs.csv"), 60, 0.7, "x", "y", "z"),
	}
}

func TestExitCodes(t *testing.T) {
	fx := newFixture(t)
	badBlock := filepath.Join(fx.dir, "bad-block.json")
	mustWrite(t, badBlock, `{"lr": 0.01, "epochs": 1, "stages": [{"train": ["head"]}, {"train": ["conv9"]}]}`)
	badCSV := filepath.Join(fx.dir, "bad.csv")
	mustWrite(t, badCSV, "f0,f1,f2,f3,label\n1,2,3,4,x\n1,2,oops,4,y\n")
	train := []string{"train", "--model", fx.model, "--data", fx.data, "--epochs", "1"}

	tests := []struct {
		name    string
		args    []string
		want    int
		wantErr string // in stderr
	}{
		{"normal run", train, 0, ""},
		{"unknown preset", append(train, "--plan", "thaw-harder"), 2, `unknown plan "thaw-harder"`},
		{"unknown block in plan file", append(train, "--plan", badBlock), 2, `stage 2: no block named "conv9"`},
		{"malformed CSV", []string{"train", "--model", fx.model, "--data", badCSV}, 2, badCSV + ":3:5:"},
		{"diverged", append(train, "--lr", "1e6"), 3, "diverged"},
		{"unknown model", []string{"train", "--model", "no-such-model", "--data", fx.data}, 2, `unknown model "no-such-model"`},
		{"unknown data", []string{"train", "--model", fx.model, "--data", "no-such-task"}, 2, `unknown data "no-such-task"`},
		{"bad flag", []string{"train", "--shots", "many"}, 2, "invalid value"},
		{"bad val split", append(train, "--val-split", "1.5"), 2, "validation split 1.5"},
		{"unknown command", []string{"thaw"}, 2, `unknown command "thaw"`},
		{"workbench without a terminal", []string{"--model", fx.model}, 2, "needs a terminal"},
		{"help", []string{"train", "-h"}, 0, "-model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runMain(t, context.Background(), &Main{}, tt.args...)
			if code != tt.want {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, tt.want, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("stderr does not contain %q:\n%s", tt.wantErr, stderr)
			}
		})
	}
}
