package ui

import (
	"image/color"

	"charm.land/lipgloss/v2"
)

// Styles holds every style of one session. In Lip Gloss v2 a style is a
// plain value, so each session (a local terminal or one SSH connection)
// builds its own from its terminal's background, and Bubble Tea downsamples
// the colours to that terminal's profile.
type Styles struct {
	// NoColor is set when the user asked for no colour (NO_COLOR): every
	// style below then carries attributes only (bold, reverse, faint).
	NoColor bool
	Dark    bool

	App       lipgloss.Style
	Title     lipgloss.Style // the product name in the header
	Tab       lipgloss.Style // a screen name in the header
	ActiveTab lipgloss.Style // the current screen's name
	Status    lipgloss.Style // the model → data and run status in the header
	Help      lipgloss.Style // the help bar
	Faint     lipgloss.Style
	Bold      lipgloss.Style
	Heading   lipgloss.Style // a section title inside a screen
	Selected  lipgloss.Style // the cursor row
	Frozen    lipgloss.Style // a frozen block
	Trainable lipgloss.Style // a trainable block
	Marker    lipgloss.Style // the freeze-point marker, the best sweep row
	Error     lipgloss.Style // an error message
	Notice    lipgloss.Style // a transient message
	Border    lipgloss.Style // panels
	Overlay   lipgloss.Style // confirmations and the LR finder
	Bar       lipgloss.Style // parameter bars
	Field     lipgloss.Style // a form field's label
	FieldOn   lipgloss.Style // the focused field's label

	// Series colours the chart lines, one per block.
	Series []color.Color
}

// The workbench's one colour system: every colour it draws, each for a
// light and a dark background. Styles (the frame and the screens' text)
// and palette (the charts and the confusion matrix) both pick from it.

// tone is one colour for a light and for a dark background.
type tone struct{ light, dark string }

var (
	toneAccent = tone{"#5A3FC0", "#B4A0FF"}
	toneIce    = tone{"#1F6FB2", "#7FC8F8"}
	toneWarm   = tone{"#A3521B", "#F5A65B"}
	toneRed    = tone{"#B00020", "#FF6B6B"}
	toneRose   = tone{"#B00020", "#FF8080"}
	toneGreen  = tone{"#1B7F3B", "#7BD88F"}
	toneViolet = tone{"#8E3BA8", "#D99BFF"}
	toneGold   = tone{"#B8860B", "#F5C542"}
	toneDim    = tone{"#7A7A7A", "#8A8A8A"}
)

// shadeTones are the confusion matrix's cell backgrounds by the cell's
// share of its row, from a little to all.
var shadeTones = []tone{
	{"#E0ECF8", "#2A3A4A"}, {"#C0D8F0", "#2F5A7A"}, {"#90C0E8", "#3A7AAA"},
	{"#60A0D8", "#4A9ADA"}, {"#3080C8", "#6ABAFA"},
}

// palette picks colours for one session's terminal: its background and
// NO_COLOR.
type palette struct {
	dark, noColor bool
}

// c is tone t on this terminal, nil without colours.
func (p palette) c(t tone) color.Color {
	if p.noColor {
		return nil
	}
	return lipgloss.LightDark(p.dark)(lipgloss.Color(t.light), lipgloss.Color(t.dark))
}

// The charts' series.
func (p palette) smooth() color.Color { return p.c(toneWarm) }
func (p palette) val() color.Color    { return p.c(toneIce) }
func (p palette) acc() color.Color    { return p.c(toneGreen) }
func (p palette) src() color.Color    { return p.c(toneViolet) }
func (p palette) best() color.Color   { return p.c(toneRed) }
func (p palette) dim() color.Color    { return p.c(toneDim) }
func (p palette) frozen() color.Color { return p.c(toneIce) }

func (p palette) fg(c color.Color) lipgloss.Style {
	if c == nil {
		return lipgloss.NewStyle()
	}
	return lipgloss.NewStyle().Foreground(c)
}

// NewStyles builds the styles for a terminal with a dark or light
// background; noColor drops every colour (https://no-color.org).
func NewStyles(dark, noColor bool) Styles {
	c := palette{dark: dark, noColor: noColor}.c
	fg := func(s lipgloss.Style, col color.Color) lipgloss.Style {
		if col == nil {
			return s
		}
		return s.Foreground(col)
	}
	accent, ice, warm := c(toneAccent), c(toneIce), c(toneWarm)
	red, green, dim := c(toneRed), c(toneGreen), c(toneDim)

	s := Styles{NoColor: noColor, Dark: dark}
	s.App = lipgloss.NewStyle()
	s.Title = fg(lipgloss.NewStyle().Bold(true), accent)
	s.Tab = fg(lipgloss.NewStyle(), dim)
	s.ActiveTab = fg(lipgloss.NewStyle().Bold(true).Underline(true), accent)
	s.Status = fg(lipgloss.NewStyle(), dim)
	s.Help = fg(lipgloss.NewStyle(), dim)
	s.Faint = fg(lipgloss.NewStyle(), dim)
	if noColor {
		s.Faint = s.Faint.Faint(true)
		s.Help = s.Help.Faint(true)
		s.Tab = s.Tab.Faint(true)
	}
	s.Bold = lipgloss.NewStyle().Bold(true)
	s.Heading = fg(lipgloss.NewStyle().Bold(true), accent)
	s.Selected = lipgloss.NewStyle().Reverse(true)
	s.Frozen = fg(lipgloss.NewStyle(), ice)
	s.Trainable = fg(lipgloss.NewStyle().Bold(true), warm)
	s.Marker = fg(lipgloss.NewStyle().Bold(true), green)
	s.Error = fg(lipgloss.NewStyle().Bold(true), red)
	s.Notice = fg(lipgloss.NewStyle(), green)
	s.Border = lipgloss.NewStyle().Border(lipgloss.RoundedBorder())
	if !noColor {
		s.Border = s.Border.BorderForeground(dim)
	}
	s.Overlay = lipgloss.NewStyle().Border(lipgloss.DoubleBorder()).Padding(0, 1)
	if !noColor {
		s.Overlay = s.Overlay.BorderForeground(accent)
	}
	s.Bar = fg(lipgloss.NewStyle(), accent)
	s.Field = fg(lipgloss.NewStyle(), dim)
	s.FieldOn = fg(lipgloss.NewStyle().Bold(true), accent)
	if !noColor {
		s.Series = []color.Color{c(toneGold), c(toneIce), c(toneGreen), c(toneWarm), c(toneViolet), c(toneRose)}
	}
	return s
}

// seriesColor is the colour of chart series i, nil without colours.
func (s Styles) seriesColor(i int) color.Color {
	if len(s.Series) == 0 {
		return nil
	}
	return s.Series[i%len(s.Series)]
}

// seriesStyle is the style of text naming chart series i.
func (s Styles) seriesStyle(i int) lipgloss.Style {
	if c := s.seriesColor(i); c != nil {
		return lipgloss.NewStyle().Foreground(c)
	}
	return lipgloss.NewStyle()
}
