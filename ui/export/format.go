package export

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Format is an output file format.
type Format int

const (
	FormatPNG Format = iota + 1
	FormatSVG
	FormatPDF
	FormatCSV
)

func (f Format) String() string {
	switch f {
	case FormatPNG:
		return "png"
	case FormatSVG:
		return "svg"
	case FormatPDF:
		return "pdf"
	case FormatCSV:
		return "csv"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// FormatOf returns the format named by path's extension, in any case:
// .png, .svg, .pdf or .csv. Any other extension is an error that names it.
func FormatOf(path string) (Format, error) {
	ext := filepath.Ext(path)
	switch strings.ToLower(ext) {
	case ".png":
		return FormatPNG, nil
	case ".svg":
		return FormatSVG, nil
	case ".pdf":
		return FormatPDF, nil
	case ".csv":
		return FormatCSV, nil
	case "":
		return 0, fmt.Errorf("%s: no file extension; use .png, .svg, .pdf or .csv", path)
	}
	return 0, fmt.Errorf("%s: unknown extension %q; use .png, .svg, .pdf or .csv", path, ext)
}

// newCanvas returns an empty canvas of the figure's size in format f,
// which must be an image format.
func newCanvas(f Format, o Options) (vg.CanvasWriterTo, error) {
	w, h := o.size()
	switch f {
	case FormatPNG:
		return vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(o.DPI))}, nil
	case FormatSVG:
		// Embedding a face costs over 500 KB of base64 (nine tenths of a
		// run's figure), so the text names its font with fallbacks instead.
		return svgCanvas{vgsvg.NewWith(vgsvg.UseWH(w, h), vgsvg.EmbedFonts(false))}, nil
	case FormatPDF:
		return vgpdf.New(w, h), nil
	}
	return nil, fmt.Errorf("format %v is not an image format", f)
}

// svgCanvas writes an SVG whose text falls back, where the Liberation
// fonts the figure was laid out with are not installed, to the fonts they
// were designed to match metric for metric (Times New Roman, Arial,
// Courier New), so every label keeps its width and place.
type svgCanvas struct{ *vgsvg.Canvas }

// svgFallbacks maps the font-family vgsvg writes to one with fallbacks.
var svgFallbacks = strings.NewReplacer(
	"font-family:Liberation Serif;", "font-family:'Liberation Serif','Times New Roman',Times,serif;",
	"font-family:Liberation Sans;", "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;",
	"font-family:Liberation Mono;", "font-family:'Liberation Mono','Courier New',Courier,monospace;",
)

func (c svgCanvas) WriteTo(w io.Writer) (int64, error) {
	var buf bytes.Buffer
	if _, err := c.Canvas.WriteTo(&buf); err != nil {
		return 0, err
	}
	n, err := svgFallbacks.WriteString(w, buf.String())
	return int64(n), err
}

// Figure selects what WriteFile draws.
type Figure int

const (
	// LearningCurves is the figure drawn by Curves.
	LearningCurves Figure = iota
	// BlockDrift is the figure drawn by Diagnostics; it takes one run.
	BlockDrift
	// OneMetric is the figure drawn by Metric, of the series named by
	// Options.Metric.
	OneMetric
)

// WriteFile draws fig for runs into the file at path, in the format its
// extension names (see FormatOf), titled Options.Title or, when that is
// empty, FigureTitle(runs); a .csv file gets the runs' data as
// written by CSV (for OneMetric, only the series Options.Metric names). The file is written to a temporary file in the same
// directory and renamed into place, so a reader never sees half a figure
// and a failed export leaves any earlier file intact. It returns the notes
// of the rendering function, and an error if the extension is unknown, the
// data cannot be drawn, or the file cannot be written.
func WriteFile(path string, fig Figure, runs []Run, opts Options) (notes []string, err error) {
	if opts.Title == "" {
		opts.Title = FigureTitle(runs)
	}
	f, err := FormatOf(path)
	if err != nil {
		return nil, err
	}
	render := func(w io.Writer) error {
		var err error
		switch {
		case fig == OneMetric:
			notes, err = Metric(w, f, runs, opts.Metric, opts)
		case f == FormatCSV:
			err = CSV(w, runs)
		case fig == LearningCurves:
			notes, err = Curves(w, f, runs, opts)
		case fig == BlockDrift:
			if len(runs) != 1 {
				return fmt.Errorf("block drift figure: got %d runs, want 1", len(runs))
			}
			notes, err = Diagnostics(w, f, runs[0], opts)
		default:
			return fmt.Errorf("figure %d: unknown", fig)
		}
		return err
	}
	return notes, writeAtomic(path, render)
}

// writeAtomic writes what render produces to path via a temporary file
// in the same directory, renamed into place once complete.
func writeAtomic(path string, render func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = render(tmp); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	// CreateTemp makes the file private; a figure is meant to be shared.
	if err = tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("export %s: %w", path, err)
	}
	return nil
}
