package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"thaw/trainer"
)

// thaw predict labels data without labels (a features-only CSV, a flat
// folder of images, with a file column), and scores data with labels on
// stderr.
func TestPredictUnlabelled(t *testing.T) {
	ctx := context.Background()
	fx := newFixture(t)

	// Labelled: accuracy on stderr, equal to the rows predicted right.
	labelled := writeBlobs(t, filepath.Join(fx.dir, "abc.csv"), 20, 0.7, "a", "b", "c")
	stdout, stderr, code := runMain(t, ctx, &Main{}, "predict", "--model", fx.model, "--data", labelled)
	if code != 0 {
		t.Fatalf("labelled: exit %d:\n%s", code, stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	right := 0
	for i, row := range rows[1:] {
		if row[1] == []string{"a", "b", "c"}[i%3] {
			right++
		}
	}
	if want := fmt.Sprintf("(%d of 60)", right); !strings.Contains(stderr, "accuracy ") || !strings.Contains(stderr, want) {
		t.Errorf("labelled: stderr does not give the accuracy %s:\n%s", want, stderr)
	}

	// Features only: the same predictions, no accuracy.
	data, _ := os.ReadFile(labelled)
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		b.WriteString(line[:strings.LastIndexByte(line, ',')] + "\n")
	}
	features := filepath.Join(fx.dir, "features.csv")
	mustWrite(t, features, b.String())
	stdout2, stderr, code := runMain(t, ctx, &Main{}, "predict", "--model", fx.model, "--data", features)
	if code != 0 {
		t.Fatalf("features only: exit %d:\n%s", code, stderr)
	}
	if stdout2 != stdout || strings.Contains(stderr, "accuracy") {
		t.Errorf("features only: predictions differ from the labelled file's, or an accuracy:\n%s\n%s", stdout2, stderr)
	}

	// Images: a flat folder, and a class folder; a file column names each.
	img := imageModel(t, filepath.Join(fx.dir, "img-model"))
	flat := filepath.Join(fx.dir, "flat")
	classed := filepath.Join(fx.dir, "classed")
	for i := range 4 {
		writePNG(t, filepath.Join(flat, fmt.Sprintf("%03d.png", i)), uint8(60*i))
		writePNG(t, filepath.Join(classed, []string{"a", "b"}[i%2], fmt.Sprintf("%03d.png", i)), uint8(60*i))
	}
	mustWrite(t, filepath.Join(flat, "README"), "not an image")
	for _, tt := range []struct {
		dir   string
		files []string
		acc   bool
	}{
		{flat, []string{"000.png", "001.png", "002.png", "003.png"}, false},
		{classed, []string{"a/000.png", "a/002.png", "b/001.png", "b/003.png"}, true},
	} {
		stdout, stderr, code := runMain(t, ctx, &Main{}, "predict", "--model", img, "--data", tt.dir)
		if code != 0 {
			t.Fatalf("%s: exit %d:\n%s", tt.dir, code, stderr)
		}
		rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"index", "file", "predicted", "a", "b"}; !slices.Equal(rows[0], want) {
			t.Errorf("%s: header %q, want %q", tt.dir, rows[0], want)
		}
		var files []string
		for _, r := range rows[1:] {
			files = append(files, r[1])
		}
		if !slices.Equal(files, tt.files) {
			t.Errorf("%s: files %q, want %q", tt.dir, files, tt.files)
		}
		if got := strings.Contains(stderr, "accuracy"); got != tt.acc {
			t.Errorf("%s: accuracy printed %v, want %v:\n%s", tt.dir, got, tt.acc, stderr)
		}
	}
}

// imageModel saves a tiny model of 1×2×2 images and two classes to dir.
func imageModel(t *testing.T, dir string) string {
	t.Helper()
	cfg := &trainer.Config{Name: "img", Architecture: "mlp", InputShape: []int{1, 2, 2}, Classes: []string{"a", "b"},
		Blocks: []trainer.BlockConfig{{Name: "head", Layers: []trainer.LayerConfig{
			{Type: "flatten"}, {Type: "linear", Name: "classifier", InFeatures: 4, OutFeatures: 2}}}}}
	m, err := trainer.New[float32](cfg, rand.New(rand.NewPCG(3, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if err := trainer.SaveModel(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writePNG(t *testing.T, path string, v uint8) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 2, 2))
	img.SetGray(0, 0, color.Gray{Y: v})
	img.SetGray(1, 1, color.Gray{Y: 255 - v})
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
