package main

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestTrainFreezeBelow checks that --freeze-below B makes the plan's first
// stage train B and every block above it, leaves the later stages alone,
// and that an unknown block is bad input naming the blocks.
func TestTrainFreezeBelow(t *testing.T) {
	fx := newFixture(t)
	ctx := context.Background()
	out, code := trainJSON(t, ctx, "--model", fx.model, "--data", fx.data, "--epochs", "1", "--freeze-below", "fc2")
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	stages := out["plan"].(map[string]any)["stages"].([]any)
	var got [][]string
	for _, s := range stages {
		var names []string
		for _, b := range s.(map[string]any)["trainable"].([]any) {
			names = append(names, b.(string))
		}
		got = append(got, names)
	}
	want := [][]string{{"fc2", "head"}, {"fc2", "head"}, {"fc1", "fc2", "head"}}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("stages train %v, want %v", got, want)
	}

	_, stderr, code := runMain(t, ctx, &Main{}, "train", "--model", fx.model, "--data", fx.data, "--epochs", "1", "--freeze-below", "conv9")
	if code != exitUsage || !strings.Contains(stderr, `no block named "conv9" (blocks: fc1, fc2, head)`) {
		t.Errorf("an unknown block: exit %d, stderr %s", code, stderr)
	}
}
