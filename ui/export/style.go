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
	p.X.Tick.Marker = stepTicks{}
	return p
}

// stepTicks are gonum's default ticks with large round numbers written
// as "20k" and "1.5M", as step counts are in papers.
type stepTicks struct{}

func (stepTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	for i, t := range ticks {
		if t.Label == "" {
			continue
		}
		ticks[i].Label = shortNumber(t.Value, max-min)
	}
	return ticks
}

// shortNumber formats a tick value v on an axis spanning span.
func shortNumber(v, span float64) string {
	a := math.Abs(v)
	switch {
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
