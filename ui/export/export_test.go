package export

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"flag"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"thaw/trainer"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenDelta is the per-pixel tolerance, as a fraction of the largest
// possible YIQ difference, in the sense of gonum/plot's cmpimg.EqualApprox;
// goldenBadFrac is the share of pixels allowed beyond it, for antialiasing
// of text and lines that differs between platforms' float rounding.
const (
	goldenDelta   = 0.1
	goldenBadFrac = 0.002
)

const testSteps = 6000

// figures are the golden figures: each renders to PNG.
var figures = []struct {
	name   string
	render func(w io.Writer, f Format) ([]string, error)
	// colours whose pixels must be present in the plot, and how many
	colours []color.NRGBA
	min     int
}{
	{"single", func(w io.Writer, f Format) ([]string, error) {
		o := DefaultOptions()
		o.Title = "gradual unfreezing"
		return Curves(w, f, []Run{synthRun(1, "gradual", testSteps, 100, gradualStages(testSteps))}, o)
	}, []color.NRGBA{trainColor, valColor, accColor, srcColor}, 500},
	{"overlay", func(w io.Writer, f Format) ([]string, error) {
		return Curves(w, f, overlayRuns(testSteps, 100), DefaultOptions())
	}, []color.NRGBA{palette[0], palette[1], palette[2]}, 500},
	{"diagnostics", func(w io.Writer, f Format) ([]string, error) {
		return Diagnostics(w, f, synthRun(1, "gradual", testSteps, 100, gradualStages(testSteps)), DefaultOptions())
	}, []color.NRGBA{palette[0]}, 2000},
	{"metric", func(w io.Writer, f Format) ([]string, error) {
		// As thaw export --metric draws it: a learning rate unsmoothed.
		o := DefaultOptions()
		o.Smoothing = 0
		return Metric(w, f, overlayRuns(testSteps, 100), trainer.MetricLR, o)
	}, []color.NRGBA{palette[0], palette[1], palette[2]}, 500},
	{"logy", func(w io.Writer, f Format) ([]string, error) {
		o := DefaultOptions()
		o.LogY = true
		return Curves(w, f, []Run{synthRun(1, "gradual", testSteps, 100, gradualStages(testSteps))}, o)
	}, []color.NRGBA{trainColor, valColor}, 500},
}

func TestGolden(t *testing.T) {
	for _, fig := range figures {
		t.Run(fig.name, func(t *testing.T) {
			var buf bytes.Buffer
			notes, err := fig.render(&buf, FormatPNG)
			if err != nil {
				t.Fatal(err)
			}
			if len(notes) != 0 {
				t.Errorf("notes on clean data: %q", notes)
			}
			got, err := png.Decode(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			// 10 in × 160 DPI by 6.25 in × 160 DPI.
			if b := got.Bounds(); b.Dx() != 1600 || b.Dy() != 1000 {
				t.Errorf("size %d×%d px, want 1600×1000", b.Dx(), b.Dy())
			}
			for _, c := range fig.colours {
				if n := countNear(got, c, 40); n < fig.min {
					t.Errorf("%d pixels near colour %v, want at least %d", n, c, fig.min)
				}
			}
			path := filepath.Join("testdata", fig.name+".png")
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			want, err := png.Decode(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if bad, total := diffPixels(got, want, goldenDelta); float64(bad) > goldenBadFrac*float64(total) {
				out := filepath.Join(t.TempDir(), fig.name+".png")
				os.WriteFile(out, buf.Bytes(), 0o644)
				t.Errorf("%d of %d pixels differ from %s beyond %g; got written to %s", bad, total, path, goldenDelta, out)
			}
		})
	}
}

// countNear counts the pixels within dist (per channel) of c.
func countNear(img image.Image, c color.NRGBA, dist int) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
			if absDiff(p.R, c.R) <= dist && absDiff(p.G, c.G) <= dist && absDiff(p.B, c.B) <= dist {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint8) int {
	if a > b {
		return int(a - b)
	}
	return int(b - a)
}

// diffPixels counts the pixels whose colours differ by more than delta
// in cmpimg's YIQ metric (Kotsarenko and Ramos, "Measuring perceived color
// difference using YIQ NTSC transmission color space in mobile
// applications"). Images of different sizes differ everywhere.
func diffPixels(a, b image.Image, delta float64) (bad, total int) {
	ba, bb := a.Bounds(), b.Bounds()
	total = ba.Dx() * ba.Dy()
	if ba.Size() != bb.Size() {
		return total, total
	}
	const maxDiff = 35215.0 // between black and white
	for y := 0; y < ba.Dy(); y++ {
		for x := 0; x < ba.Dx(); x++ {
			c1 := color.RGBAModel.Convert(a.At(ba.Min.X+x, ba.Min.Y+y)).(color.RGBA)
			c2 := color.RGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.RGBA)
			if yiq(c1, c2) > maxDiff*delta*delta {
				bad++
			}
		}
	}
	return bad, total
}

func yiq(c1, c2 color.RGBA) float64 {
	r1, g1, b1 := float64(c1.R), float64(c1.G), float64(c1.B)
	r2, g2, b2 := float64(c2.R), float64(c2.G), float64(c2.B)
	y := (r1-r2)*0.29889531 + (g1-g2)*0.58662247 + (b1-b2)*0.11448223
	i := (r1-r2)*0.59597799 - (g1-g2)*0.27417610 - (b1-b2)*0.32180189
	q := (r1-r2)*0.21147017 - (g1-g2)*0.52261711 + (b1-b2)*0.31114694
	return 0.5053*y*y + 0.299*i*i + 0.1957*q*q
}

func TestVectorFormats(t *testing.T) {
	for _, fig := range figures[:4] {
		t.Run(fig.name+"/svg", func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := fig.render(&buf, FormatSVG); err != nil {
				t.Fatal(err)
			}
			d := xml.NewDecoder(&buf)
			var root string
			for {
				tok, err := d.Token()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("svg does not parse as XML: %v", err)
				}
				if se, ok := tok.(xml.StartElement); ok && root == "" {
					root = se.Name.Local
				}
			}
			if root != "svg" {
				t.Errorf("root element %q, want svg", root)
			}
		})
		t.Run(fig.name+"/pdf", func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := fig.render(&buf, FormatPDF); err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
				t.Errorf("pdf starts %q, want %%PDF-", buf.Bytes()[:min(8, buf.Len())])
			}
		})
	}
}

func TestSize(t *testing.T) {
	r := synthRun(1, "a", 500, 50, gradualStages(500))
	for _, tc := range []struct{ w, h, dpi, wantW, wantH int }{
		{0, 0, 0, 1600, 1000},
		{800, 500, 80, 800, 500},
		{1200, 900, 300, 1200, 900},
	} {
		var buf bytes.Buffer
		o := DefaultOptions()
		o.Width, o.Height, o.DPI = tc.w, tc.h, tc.dpi
		if _, err := Curves(&buf, FormatPNG, []Run{r}, o); err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Width != tc.wantW || cfg.Height != tc.wantH {
			t.Errorf("%d×%d at %d DPI: got %d×%d px, want %d×%d", tc.w, tc.h, tc.dpi, cfg.Width, cfg.Height, tc.wantW, tc.wantH)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	runs := overlayRuns(300, 50)
	runs[0].ID = `id "quoted", with comma`
	runs[0].Series[0].Points[3].Value = math.NaN()
	runs[0].Series[0].Points[4].Value = math.Inf(-1)
	runs[0].Series[0].Points[5].Value = 0.1 + 0.2 // needs all 17 digits
	var buf bytes.Buffer
	if err := CSV(&buf, runs); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "run,step,stage,metric,value" {
		t.Errorf("header %q", got)
	}
	rows = rows[1:]
	k := 0
	for _, r := range runs {
		for _, s := range r.Series {
			for _, p := range s.Points {
				row := rows[k]
				k++
				step, _ := strconv.Atoi(row[1])
				v, err := strconv.ParseFloat(row[4], 64)
				if err != nil {
					t.Fatalf("row %d: %v", k, err)
				}
				same := v == p.Value || math.IsNaN(v) && math.IsNaN(p.Value)
				if row[0] != r.ID || step != p.Step || row[3] != s.Name || !same {
					t.Fatalf("row %d: got %q, want %s %d %s %v", k, row, r.ID, p.Step, s.Name, p.Value)
				}
				wantStage := ""
				if st := r.stageAt(p.Step); st != nil {
					wantStage = strconv.Itoa(st.Index)
				}
				if row[2] != wantStage {
					t.Fatalf("row %d: stage %q, want %q", k, row[2], wantStage)
				}
			}
		}
	}
	if k != len(rows) {
		t.Errorf("%d rows, want %d", len(rows), k)
	}
}

// TestBadValues feeds zeros, negatives, NaN and Inf to every figure on a
// log axis: nothing may panic, and the notes must count what was skipped.
func TestBadValues(t *testing.T) {
	r := synthRun(1, "bad", 2000, 100, gradualStages(2000))
	loss := r.series(TrainLoss)
	loss.Points[10].Value = 0
	loss.Points[11].Value = -1
	loss.Points[12].Value = math.NaN()
	loss.Points[13].Value = math.Inf(1)
	loss.Points[14].Value = math.Inf(-1)
	val := r.series(ValLoss)
	val.Points[2].Value = math.NaN()
	o := DefaultOptions()
	o.LogY = true
	for _, f := range []Format{FormatPNG, FormatSVG, FormatPDF} {
		notes, err := Curves(io.Discard, f, []Run{r}, o)
		if err != nil {
			t.Fatal(err)
		}
		joined := strings.Join(notes, "\n")
		for _, want := range []string{
			`run "bad": train/loss: skipped 3 non-finite points`,
			`run "bad": train/loss: skipped 2 values ≤ 0`,
			`run "bad": val/loss: skipped 1 non-finite point `,
		} {
			if !strings.Contains(joined, want) {
				t.Errorf("%v: notes %q lack %q", f, notes, want)
			}
		}
		// Drift is exactly 0 while a block is frozen: all of conv1's.
		notes, err = Diagnostics(io.Discard, f, r, o)
		if err != nil {
			t.Fatal(err)
		}
		if joined := strings.Join(notes, "\n"); !strings.Contains(joined, "block/conv1/drift: nothing to draw") {
			t.Errorf("%v: diagnostics notes %q lack conv1's", f, notes)
		}
	}

	// A run whose every value is unusable is an error, not a panic.
	empty := Run{Name: "empty", BestStep: 3, Series: []Series{{Name: TrainLoss, Points: []Point{{Step: 1, Value: -1}, {Step: 2, Value: math.NaN()}}}}}
	if _, err := Curves(io.Discard, FormatPNG, []Run{empty}, o); !errors.Is(err, ErrNoData) {
		t.Errorf("all values bad: err %v, want ErrNoData", err)
	}
	if _, err := Curves(io.Discard, FormatPNG, nil, o); !errors.Is(err, ErrNoData) {
		t.Errorf("no runs: err %v, want ErrNoData", err)
	}
	// One point, and a constant series, have a zero-width range.
	one := Run{Name: "one", BestStep: -1, Series: []Series{{Name: ValLoss, Points: []Point{{Step: 5, Value: 1}}}}}
	if _, err := Curves(io.Discard, FormatPNG, []Run{one}, o); err != nil {
		t.Errorf("one point: %v", err)
	}
}

func TestEpochAxis(t *testing.T) {
	o := DefaultOptions()
	o.X = XEpoch
	var buf bytes.Buffer
	if _, err := Curves(&buf, FormatPNG, overlayRuns(3000, 100), o); err != nil {
		t.Fatal(err)
	}
	r := synthRun(1, "a", 3000, 100, gradualStages(3000))
	ax := newStepAxis(r, o)
	// synthRun records 500 steps an epoch.
	for _, tc := range []struct {
		step int
		want float64
	}{{0, 0}, {750, 1.5}, {1500, 3}, {4000, 8}} {
		if got := ax.x(tc.step); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("epoch of step %d = %g, want %g", tc.step, got, tc.want)
		}
	}
}

func TestFormatOf(t *testing.T) {
	for _, tc := range []struct {
		path string
		want Format
		err  string
	}{
		{"a/curves.png", FormatPNG, ""},
		{"curves.SVG", FormatSVG, ""},
		{"x.pdf", FormatPDF, ""},
		{"x.csv", FormatCSV, ""},
		{"x.jpeg", 0, `unknown extension ".jpeg"`},
		{"curves", 0, "no file extension"},
	} {
		got, err := FormatOf(tc.path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("FormatOf(%q): err %v, want one containing %q", tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("FormatOf(%q) = %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	runs := overlayRuns(1000, 100)
	for _, name := range []string{"c.png", "c.svg", "c.pdf", "c.csv"} {
		if _, err := WriteFile(filepath.Join(dir, name), LearningCurves, runs, DefaultOptions()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := WriteFile(filepath.Join(dir, "d.png"), BlockDrift, runs[:1], DefaultOptions()); err != nil {
		t.Errorf("d.png: %v", err)
	}
	if _, err := WriteFile(filepath.Join(dir, "d2.png"), BlockDrift, runs, DefaultOptions()); err == nil {
		t.Error("block drift of 3 runs: no error")
	}
	// A failed render leaves the earlier file and no temporary behind.
	bad := DefaultOptions()
	bad.Smoothing = 1
	if _, err := WriteFile(filepath.Join(dir, "c.png"), LearningCurves, runs, bad); err == nil {
		t.Error("smoothing 1: no error")
	}
	if _, err := WriteFile(filepath.Join(dir, "c.gif"), LearningCurves, runs, DefaultOptions()); err == nil {
		t.Error(".gif: no error")
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "c.csv c.pdf c.png c.svg d.png" {
		t.Errorf("directory holds %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "c.png")); err != nil || fi.Size() == 0 {
		t.Errorf("c.png after failed rewrite: %v, %v", fi, err)
	}
}
