package recipes

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"thaw/assets"
	"thaw/trainer"
)

// zooKernelPath is the float32 kernel path (trainer.KernelPath) the shipped
// zoo was built on. The byte-for-byte check below holds on that path only:
// the portable kernel and OpenBLAS sum in other orders or without fused
// multiply-adds, so their bytes differ by design.
const zooKernelPath = "avx2-fma"

// TestRebuildMatchesZoo rebuilds the smallest base model from its recipe
// and checks that the files that must be reproducible are the shipped
// bytes, on the kernel path the zoo was built on (zooKernelPath).
// meta.json and card.md also record the training time, which varies, so
// they are not compared.
func TestRebuildMatchesZoo(t *testing.T) {
	if p := trainer.KernelPath(); p != zooKernelPath {
		t.Skipf("the zoo is built on the %s kernel path, this binary uses %s", zooKernelPath, p)
	}
	const name = "letters-mlp" // the fastest recipe: about 2 s
	dir := t.TempDir()
	if err := Build(context.Background(), name, dir, nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{assets.ConfigFile, assets.WeightsFile} {
		got, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		want, err := fs.ReadFile(assets.Zoo(), name+"/"+f)
		if err != nil {
			t.Fatal(err)
		}
		if g, w := sha256.Sum256(got), sha256.Sum256(want); g != w {
			t.Errorf("%s/%s: rebuilt sha256 %x, shipped %x", name, f, g, w)
		}
	}
}

// TestZooModels loads every zoo model and checks it against its recipe,
// its meta.json and its card: the source test accuracy must reproduce the
// card's within 0.5 points (it is deterministic, so any drift means the
// weights, the data or the evaluation changed).
func TestZooModels(t *testing.T) {
	models, err := assets.Models()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mi := range models {
		got = append(got, mi.Name)
	}
	if want := slices.Sorted(slices.Values(Names())); !slices.Equal(got, want) {
		t.Fatalf("zoo has models %v, recipes %v", got, want)
	}
	for _, mi := range models {
		t.Run(mi.Name, func(t *testing.T) {
			m, err := trainer.LoadModelFS[float32](assets.Zoo(), mi.Name)
			if err != nil {
				t.Fatal(err)
			}
			meta := mi.Meta
			if got, want := meta.SourceTask, SourceTask(mi.Name); got != want {
				t.Errorf("source task %q, recipe says %q", got, want)
			}
			if got, want := meta.TargetTask, TargetTask(mi.Name); got != want {
				t.Errorf("target task %q, recipe says %q", got, want)
			}
			if total, _ := m.Count(); total != meta.Params {
				t.Errorf("model has %d parameters, meta.json says %d", total, meta.Params)
			}
			if got := m.Config.BlockNames(); !slices.Equal(got, meta.Blocks) {
				t.Errorf("blocks %v, meta.json says %v", got, meta.Blocks)
			}
			_, test, err := assets.LoadTask(meta.SourceTask)
			if err != nil {
				t.Fatal(err)
			}
			if err := test.CheckConfig(&m.Config); err != nil {
				t.Fatal(err)
			}
			acc := Accuracy(m, test)
			// 0.5 points is the tolerance.
			if d := 100 * math.Abs(acc-meta.SourceTestAccuracy); d > 0.5 {
				t.Errorf("source test accuracy %.2f%%, meta.json says %.2f%%", 100*acc, 100*meta.SourceTestAccuracy)
			}
			if test.Len() != meta.SourceTestCount {
				t.Errorf("source test split has %d samples, meta.json says %d", test.Len(), meta.SourceTestCount)
			}
			card, err := fs.ReadFile(assets.FS, mi.Card)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{
				fmt.Sprintf("%.2f%%", 100*meta.SourceTestAccuracy),
				"Licence", meta.Licence, "seed", thousands(meta.Params),
			} {
				if !bytes.Contains(card, []byte(want)) {
					t.Errorf("card %s does not say %q", mi.Card, want)
				}
			}
		})
	}
}
