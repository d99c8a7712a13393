package export

import (
	"fmt"
	"math"

	"gonum.org/v1/plot/vg"
)

// XAxis selects what the horizontal axis counts.
type XAxis int

const (
	XStep  XAxis = iota // optimizer steps (the zero value)
	XEpoch              // fractional epochs, from Point.Epoch
)

// Options controls how a figure is drawn. The zero value is usable: it
// draws a 1600×1000 px figure at 160 DPI, step on x, linear y, no smoothing.
// DefaultOptions returns the settings a figure should normally use.
type Options struct {
	// Width and Height are the figure's size in pixels at DPI; the physical
	// size is Width/DPI × Height/DPI inches, which is what SVG and PDF use.
	// Zero means 1600 × 1000.
	Width, Height int
	// DPI is the resolution of raster output and the scale of the pixel
	// size above. Zero means 160.
	DPI int
	// Title is drawn above the figure; empty draws none.
	Title string
	// X selects steps or epochs on the horizontal axis.
	X XAxis
	// LogY draws the loss panel, and the drift panels, on a log scale.
	// Values ≤ 0 cannot be drawn there; they are dropped and noted.
	LogY bool
	// Smoothing is the weight in [0, 1) of TensorBoard's debiased
	// exponential moving average applied to the training loss. Zero draws
	// the raw loss only; otherwise the raw loss is drawn faintly behind.
	Smoothing float64
	// HideRaw omits the faint raw training loss behind the smoothed one.
	HideRaw bool
	// Metric names the series WriteFile draws as its OneMetric figure;
	// the other figures ignore it.
	Metric string
}

// DefaultOptions returns the options a paper figure should start from.
func DefaultOptions() Options {
	return Options{
		Width:     1600, // 10 in at 160 DPI: a full text width
		Height:    1000, // 6.25 in, a 16:10 aspect
		DPI:       160,  // sharp on a 2× screen, small enough to mail
		Smoothing: 0.6,  // TensorBoard's default slider position
	}
}

// normalize fills zero fields with defaults and checks the rest.
func (o Options) normalize() (Options, error) {
	if o.Width == 0 && o.Height == 0 {
		o.Width, o.Height = 1600, 1000
	}
	if o.DPI == 0 {
		o.DPI = 160
	}
	switch {
	case o.Width <= 0 || o.Height <= 0:
		return o, fmt.Errorf("figure size %d×%d px: both must be positive", o.Width, o.Height)
	case o.DPI < 0:
		return o, fmt.Errorf("dpi %d: must be positive", o.DPI)
	case o.Width > 20000 || o.Height > 20000:
		return o, fmt.Errorf("figure size %d×%d px: at most 20000 px a side", o.Width, o.Height)
	case !(o.Smoothing >= 0 && o.Smoothing < 1) || math.IsNaN(o.Smoothing):
		return o, fmt.Errorf("smoothing %g: must be in [0, 1)", o.Smoothing)
	case o.X != XStep && o.X != XEpoch:
		return o, fmt.Errorf("x axis %d: unknown", o.X)
	}
	return o, nil
}

// size returns the physical size of the figure.
func (o Options) size() (w, h vg.Length) {
	return vg.Length(o.Width) / vg.Length(o.DPI) * vg.Inch,
		vg.Length(o.Height) / vg.Length(o.DPI) * vg.Inch
}
