package export

import (
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// palette is Okabe and Ito's colour-blind-safe set ("Color Universal
// Design", 2008), reordered so the first colours differ most in lightness
// as well as in hue.
var palette = []color.NRGBA{
	{0x00, 0x72, 0xB2, 0xff}, // blue
	{0xD5, 0x5E, 0x00, 0xff}, // vermillion
	{0x00, 0x9E, 0x73, 0xff}, // bluish green
	{0xCC, 0x79, 0xA7, 0xff}, // reddish purple
	{0xE6, 0x9F, 0x00, 0xff}, // orange
	{0x56, 0xB4, 0xE9, 0xff}, // sky blue
	{0x00, 0x00, 0x00, 0xff}, // black
}

// dashes tell runs apart where colour does not survive (greyscale print).
var dashes = [][]vg.Length{
	nil,                            // solid
	{vg.Points(6), vg.Points(3)},   // dashed
	{vg.Points(1.5), vg.Points(2)}, // dotted
	{vg.Points(7), vg.Points(2.5), vg.Points(1.5), vg.Points(2.5)}, // dash-dot
}

// glyphs mark the sparse validation points, a third cue after colour and dash.
var glyphs = []draw.GlyphDrawer{
	draw.CircleGlyph{},
	draw.TriangleGlyph{},
	draw.SquareGlyph{},
	draw.PyramidGlyph{},
	draw.CrossGlyph{},
	draw.PlusGlyph{},
	draw.RingGlyph{},
}

func runColor(i int) color.NRGBA      { return palette[i%len(palette)] }
func runDash(i int) []vg.Length       { return dashes[i%len(dashes)] }
func runGlyph(i int) draw.GlyphDrawer { return glyphs[i%len(glyphs)] }

// Opacities of the raw curve behind a smoothed one. A long noisy series is
// drawn as a dense band, which at higher opacities outweighs the smoothed
// line it is only the backdrop of.
const (
	rawAlpha        = 55 // one run
	rawAlphaOverlay = 35 // several runs, whose bands overlap
)

// faint returns c at the given opacity.
func faint(c color.NRGBA, alpha uint8) color.NRGBA { c.A = alpha; return c }

var (
	grey       = color.NRGBA{0x55, 0x55, 0x55, 0xff}
	bandGrey   = color.NRGBA{0xee, 0xee, 0xee, 0xff}
	frozenFill = color.NRGBA{0xd8, 0xe1, 0xea, 0xff}
)

// Font sizes in points; at the default 10 in width these read like a
// paper's caption text when the figure is scaled to the text width.
const (
	titleSize  = 13
	labelSize  = 11
	tickSize   = 9.5
	legendSize = 9.5
	stageSize  = 8.5
)

func textStyle(size vg.Length, c color.Color) text.Style {
	return text.Style{
		Color:   c,
		Font:    font.From(plot.DefaultFont, size),
		Handler: plot.DefaultTextHandler,
	}
}

// newPlot returns a plot with the figure's fonts and no title.
func newPlot() *plot.Plot {
	p := plot.New()
	p.BackgroundColor = nil // the figure paints one background
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = labelSize
		a.Tick.Label.Font.Size = tickSize
		a.Padding = vg.Points(3)
	}
	p.X.Tick.Marker = niceTicks{}
	p.Y.Tick.Marker = niceTicks{}
	return p
}

// niceTicks label an axis at round numbers, 1, 2 or 5 times a power of
// ten apart, about five of them, with unlabelled ticks between; large ones
// are written as "20k" and "1.5M", as step counts are in papers, small
// ones in full (0.00003, not 3e-05). An axis spanning five or more is
// labelled at whole numbers only: steps are counted, and "12.5" on a step
// axis reads as a mistake. (gonum's default ticks can label 2.5, 12.5 and
// 22.5 on an axis from 1 to 24.)
type niceTicks struct{}

func (niceTicks) Ticks(min, max float64) []plot.Tick {
	span := max - min
	if !(span > 0) || math.IsInf(span, 0) {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	major := niceStep(span / 5)
	if span >= 5 {
		major = math.Max(major, 1)
	}
	var minor float64
	// One unlabelled tick between labels, or four between whole steps 5
	// apart; more make the axis read like a ruler.
	for _, div := range []float64{2, 5} {
		m := major / div
		if span < 5 || m >= 1 && m == math.Trunc(m) {
			minor = m
			break
		}
	}
	// Round to the spacing's decimals, so that 3 × 0.1 is labelled 0.3,
	// not 0.30000000000000004.
	fine := major
	if minor > 0 {
		fine = minor
	}
	// Spacings are 1, 2 or 5 times a power of ten; the 1e-9 keeps
	// log10(0.1) from rounding down to −2.
	places := func(x float64) int { return int(math.Max(0, -math.Floor(math.Log10(x)+1e-9))) }
	scale := math.Pow10(places(fine))
	// Adding 0 turns the −0 that rounding leaves near zero into 0.
	round := func(v float64) float64 { return math.Round(v*scale)/scale + 0 }
	// Every label gets the decimals of the spacing: 0.90, 0.92, not 0.9, 0.92.
	decimals := places(major)
	var ticks []plot.Tick
	if minor > 0 {
		for k := math.Ceil(min / minor); k*minor <= max; k++ {
			if v := round(k * minor); math.Abs(math.Remainder(v, major)) > 1e-9*major {
				ticks = append(ticks, plot.Tick{Value: v})
			}
		}
	}
	for k := math.Ceil(min / major); k*major <= max; k++ {
		v := round(k * major)
		label := shortNumber(v, span)
		if decimals > 0 && v != 0 {
			label = strconv.FormatFloat(v, 'f', decimals, 64)
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: label})
	}
	return ticks
}

// niceStep returns the one of 1, 2 and 5 times a power of ten nearest to
// x > 0 in ratio.
func niceStep(x float64) float64 {
	e := math.Pow(10, math.Floor(math.Log10(x)))
	best := e
	for _, m := range []float64{2, 5, 10} {
		if math.Abs(math.Log(m*e/x)) < math.Abs(math.Log(best/x)) {
			best = m * e
		}
	}
	return best
}

// shortNumber formats a tick value v on an axis spanning span.
func shortNumber(v, span float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		// Beyond the thousands of millions a suffix no longer reads.
		return strconv.FormatFloat(v, 'g', 3, 64)
	case span >= 5e6 && a >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case span >= 5e3 && a >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// unlabelled keeps another ticker's tick marks but drops their labels, for
// an x axis whose labels the panel below already shows.
type unlabelled struct{ plot.Ticker }

func (u unlabelled) Ticks(min, max float64) []plot.Tick {
	ticks := u.Ticker.Ticks(min, max)
	for i := range ticks {
		ticks[i].Label = ""
	}
	return ticks
}

// logTicks labels a log axis at powers of ten and, when the axis spans
// less than two decades (a loss from 2.3 to 0.1, say), also at 2× and 5×,
// so a short axis is never left with one label or none; gonum's LogTicks
// labels powers of ten only. It requires 0 < min < max.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	if !(min > 0 && max > min) {
		return nil
	}
	dense := math.Log10(max/min) < 2
	var ticks []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		base := math.Pow(10, e)
		for m := 1; m < 10; m++ {
			v := base * float64(m)
			if v < min*(1-1e-9) || v > max*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || dense && (m == 2 || m == 5) {
				t.Label = strconv.FormatFloat(v, 'g', 3, 64)
			}
			ticks = append(ticks, t)
		}
	}
	return ticks
}
