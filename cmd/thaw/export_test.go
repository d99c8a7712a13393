package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"thaw/store"
)

// Colours of the figures (ui/export's palette): Okabe and Ito's blue,
// vermillion and bluish green.
var (
	blue       = color.NRGBA{0x00, 0x72, 0xB2, 0xff}
	vermillion = color.NRGBA{0xD5, 0x5E, 0x00, 0xff}
	green      = color.NRGBA{0x00, 0x9E, 0x73, 0xff}
)

// exportFixture trains two runs of the tiny model into a fresh store:
// gradual unfreezing and a linear probe, two epochs a stage with an
// evaluation every three steps.
func exportFixture(t *testing.T) (dir, gradual, head string) {
	t.Helper()
	ctx := context.Background()
	fx := newFixture(t)
	dir = filepath.Join(fx.dir, "store")
	args := []string{"--model", fx.model, "--data", fx.data, "--epochs", "2", "--eval-every", "3"}
	gradual, _, code := storeRun(t, ctx, dir, append(args, "--name", "gradual")...)
	if code != 0 {
		t.Fatalf("train gradual: exit %d", code)
	}
	head, _, code = storeRun(t, ctx, dir, append(args, "--plan", "head", "--name", "head")...)
	if code != 0 {
		t.Fatalf("train head: exit %d", code)
	}
	return dir, gradual, head
}

func TestExport(t *testing.T) {
	ctx := context.Background()
	dir, gradual, head := exportFixture(t)
	out := t.TempDir()
	export := func(t *testing.T, args ...string) string {
		t.Helper()
		_, stderr, code := runMain(t, ctx, &Main{}, append([]string{"export", "--store", dir}, args...)...)
		if code != 0 {
			t.Fatalf("export %q: exit %d:\n%s", args, code, stderr)
		}
		return stderr
	}

	t.Run("png", func(t *testing.T) {
		path := filepath.Join(out, "curves.png")
		// Flags after the run, by a prefix of its id.
		stderr := export(t, store.Short(gradual), "-o", path, "--width", "800", "--height", "500", "--dpi", "80", "--title", "gradual")
		if !strings.Contains(stderr, "wrote "+path) {
			t.Errorf("stderr does not say what it wrote:\n%s", stderr)
		}
		img := decodePNG(t, path, 800, 500)
		// The training loss in blue, the validation loss in vermillion.
		for _, c := range []color.NRGBA{blue, vermillion} {
			if n := countNear(img, c, 40); n < 200 {
				t.Errorf("%d pixels near %v, want a curve's worth (200)", n, c)
			}
		}
	})

	t.Run("overlay", func(t *testing.T) {
		path := filepath.Join(out, "overlay.png")
		export(t, gradual, head, "-o", path, "--x", "epoch")
		img := decodePNG(t, path, 1600, 1000)
		// One colour a run.
		for _, c := range []color.NRGBA{blue, vermillion} {
			if n := countNear(img, c, 40); n < 500 {
				t.Errorf("%d pixels near %v, want a run's curves' worth (500)", n, c)
			}
		}
	})

	t.Run("vector", func(t *testing.T) {
		svg, pdf := filepath.Join(out, "curves.svg"), filepath.Join(out, "curves.PDF")
		export(t, gradual, head, "-o", svg, "--log-y")
		export(t, "-o", pdf, gradual)
		if b, _ := os.ReadFile(svg); !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s is not SVG", svg)
		}
		if b, _ := os.ReadFile(pdf); !bytes.HasPrefix(b, []byte("%PDF-")) {
			t.Errorf("%s is not PDF", pdf)
		}
	})

	t.Run("csv", func(t *testing.T) {
		path := filepath.Join(out, "runs.csv")
		export(t, gradual, head, "-o", path)
		rows := readCSV(t, path)
		if got := strings.Join(rows[0], ","); got != "run,step,stage,metric,value" {
			t.Fatalf("header %q", got)
		}
		metrics := map[string]map[string]int{gradual: {}, head: {}}
		for _, r := range rows[1:] {
			if _, err := strconv.ParseFloat(r[4], 64); err != nil {
				t.Fatalf("row %q: %v", r, err)
			}
			if _, err := strconv.Atoi(r[1]); err != nil {
				t.Fatalf("row %q: %v", r, err)
			}
			if metrics[r[0]] == nil {
				t.Fatalf("row of an unknown run: %q", r)
			}
			metrics[r[0]][r[3]]++
		}
		st, err := store.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for id, got := range metrics {
			names, _ := st.MetricNames(ctx, id)
			for _, name := range names {
				// A CSV holds every point, not a figure's budget.
				all, _ := st.Series(ctx, id, name, 0)
				if got[name] != len(all) {
					t.Errorf("run %s: %d rows of %s, the store has %d", store.Short(id), got[name], name, len(all))
				}
			}
			if len(got) != len(names) {
				t.Errorf("run %s: %d metrics in the CSV, %d stored", store.Short(id), len(got), len(names))
			}
		}
		// The gradual run's three stages all have rows, the last
		// evaluation (at the last step) in stage 3, not past it.
		stages, lastStep, lastStage := map[string]bool{}, -1, ""
		for _, r := range rows[1:] {
			if r[0] != gradual {
				continue
			}
			stages[r[2]] = true
			if step, _ := strconv.Atoi(r[1]); r[3] == "val/loss" && step > lastStep {
				lastStep, lastStage = step, r[2]
			}
		}
		if len(stages) != 3 || !stages["1"] || !stages["3"] || lastStage != "3" {
			t.Errorf("gradual run's stages in the CSV %v, last evaluation's %q; want 1, 2, 3 and 3", stages, lastStage)
		}

		// --metric keeps that metric only.
		path = filepath.Join(out, "lr.csv")
		export(t, gradual, "-o", path, "--metric", "lr")
		rows = readCSV(t, path)
		if len(rows) < 2 {
			t.Fatal("no lr rows")
		}
		for _, r := range rows[1:] {
			if r[3] != "lr" {
				t.Fatalf("row %q in an lr export", r)
			}
		}
	})

	t.Run("metric", func(t *testing.T) {
		path := filepath.Join(out, "lr.png")
		export(t, gradual, head, "--metric", "lr", "-o", path)
		img := decodePNG(t, path, 1600, 1000)
		for _, c := range []color.NRGBA{blue, vermillion} {
			if n := countNear(img, c, 40); n < 200 {
				t.Errorf("%d pixels near %v, want a curve's worth (200)", n, c)
			}
		}
		export(t, gradual, "--metric", "block/head/grad_norm", "--smooth", "0.8", "-o", filepath.Join(out, "grad.png"))
	})

	t.Run("diagnostics", func(t *testing.T) {
		path := filepath.Join(out, "drift.png")
		export(t, "--diagnostics", gradual, "-o", path, "--width", "1200", "--height", "900")
		img := decodePNG(t, path, 1200, 900)
		if n := countNear(img, blue, 40); n < 500 {
			t.Errorf("%d drift pixels, want at least 500", n)
		}
	})

	t.Run("log-y notes zeros", func(t *testing.T) {
		// fc1 is frozen until the last stage: its drift is 0 until then,
		// which a log axis cannot show.
		stderr := export(t, gradual, "--metric", "block/fc1/drift", "--log-y", "-o", filepath.Join(out, "drift-log.png"))
		if !strings.Contains(stderr, "note: ") || !strings.Contains(stderr, "block/fc1/drift: skipped") || !strings.Contains(stderr, "≤ 0") {
			t.Errorf("stderr does not note the zeros:\n%s", stderr)
		}
	})
}

func TestExportUsage(t *testing.T) {
	ctx := context.Background()
	dir, gradual, head := exportFixture(t)
	out := t.TempDir()
	png := filepath.Join(out, "x.png")
	for _, tc := range []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"bad extension", []string{gradual, "-o", filepath.Join(out, "x.gif")}, `unknown extension ".gif"`},
		{"no extension", []string{gradual, "-o", filepath.Join(out, "x")}, "no file extension"},
		{"unknown run", []string{gradual, "zzzzzz", "-o", png}, "run zzzzzz: not found"},
		{"no run", []string{"-o", png}, "which runs?"},
		{"no output", []string{gradual}, "-o FILE is required"},
		{"unknown metric", []string{gradual, "--metric", "val/f1", "-o", png}, `has no metric "val/f1"`},
		{"two runs' diagnostics", []string{"--diagnostics", gradual, head, "-o", png}, "--diagnostics draws one run"},
		{"bad x", []string{gradual, "--x", "time", "-o", png}, `--x "time"`},
		{"bad smoothing", []string{gradual, "--smooth", "1", "-o", png}, "--smooth 1"},
		{"bad size", []string{gradual, "--width", "0", "-o", png}, "--width 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := runMain(t, ctx, &Main{}, append([]string{"export", "--store", dir}, tc.args...)...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, exitUsage, tc.want, stderr)
			}
		})
	}
	// Nothing was written, not even a temporary file.
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Errorf("failed exports left %v", entries)
	}
}

func TestParseRuns(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		out  string
	}{
		{[]string{"a", "b", "-o", "f.png"}, []string{"a", "b"}, "f.png"},
		{[]string{"-o", "f.png", "a", "b"}, []string{"a", "b"}, "f.png"},
		{[]string{"a", "-o", "f.png", "b"}, []string{"a", "b"}, "f.png"},
		{[]string{"-o", "f.png", "--", "-a"}, []string{"-a"}, "f.png"},
	} {
		m := &Main{Stderr: &bytes.Buffer{}}
		fs := m.newFlags("export")
		out := fs.String("o", "", "")
		got, err := parseArgs(fs, tc.args)
		if err != nil || !slices.Equal(got, tc.want) || *out != tc.out {
			t.Errorf("parseArgs(%q) = %q, -o %q, %v; want %q, -o %q", tc.args, got, *out, err, tc.want, tc.out)
		}
	}
}

// decodePNG decodes the PNG at path and checks its size.
func decodePNG(t *testing.T, path string, w, h int) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Errorf("%s: %d×%d px, want %d×%d", path, got.X, got.Y, w, h)
	}
	return img
}

// countNear counts the pixels within dist of c in every channel.
func countNear(img image.Image, c color.NRGBA, dist int) int {
	n := 0
	b := img.Bounds()
	near := func(a, b uint8) bool { return int(a)-int(b) <= dist && int(b)-int(a) <= dist }
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if near(p.R, c.R) && near(p.G, c.G) && near(p.B, c.B) {
				n++
			}
		}
	}
	return n
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}
