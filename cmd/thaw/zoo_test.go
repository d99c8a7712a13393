package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"thaw/assets"
	"thaw/trainer"
)

func TestZooBuildWritesTheShippedBytes(t *testing.T) {
	if b := trainer.Backend(); b != "gonum" {
		t.Skipf("the zoo is built with the gonum backend, this binary uses %s", b)
	}
	out := t.TempDir()
	_, stderr, code := runMain(t, context.Background(), NewMain(), "zoo", "build", "letters-mlp", "--out", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, f := range []string{assets.ConfigFile, assets.WeightsFile} {
		got, err := os.ReadFile(filepath.Join(out, "letters-mlp", f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := fs.ReadFile(assets.Zoo(), "letters-mlp/"+f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the shipped file", f)
		}
	}
	if _, stderr, code := runMain(t, context.Background(), NewMain(), "zoo", "build", "no-such-model"); code != exitUsage || !strings.Contains(stderr, "no recipe named") {
		t.Errorf("unknown recipe: exit %d, stderr %q; want %d naming it", code, stderr, exitUsage)
	}
}

func TestBenchTransferPrintsATable(t *testing.T) {
	stdout, stderr, code := runMain(t, context.Background(), NewMain(), "bench", "transfer", "--models", "letters-mlp", "--shots", "2", "--seeds", "1", "--max-eval", "200")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "| letters-mlp → letters-n-z | 2 |") {
		t.Errorf("no table row for letters-mlp at 2 shots in:\n%s", stdout)
	}
	// --defaults: the tuned and default columns and the gaps between them;
	// --probe: the head's defaults varied.
	small := []string{"bench", "transfer", "--models", "letters-mlp", "--shots", "2", "--seeds", "1", "--max-eval", "200"}
	for flag, want := range map[string][]string{
		"--defaults": {"| gradual (default) |", "worst default − best tuned", "The gradual default is within"},
		"--probe":    {"| head, 4× steps |", "| head, weight decay 0.5 |", "| letters-mlp → letters-n-z | 2 |"},
	} {
		stdout, stderr, code := runMain(t, context.Background(), NewMain(), append(small, flag)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", flag, code, stderr)
		}
		for _, w := range want {
			if !strings.Contains(stdout, w) {
				t.Errorf("%s: no %q in:\n%s", flag, w, stdout)
			}
		}
	}
	if _, _, code := runMain(t, context.Background(), NewMain(), "bench", "transfer", "--defaults", "--probe"); code != exitUsage {
		t.Errorf("--defaults --probe: exit %d, want %d", code, exitUsage)
	}
	if _, _, code := runMain(t, context.Background(), NewMain(), "bench", "transfer", "--shots", "two"); code != exitUsage {
		t.Errorf("--shots two: exit %d, want %d", code, exitUsage)
	}
}
