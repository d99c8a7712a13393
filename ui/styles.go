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

// NewStyles builds the styles for a terminal with a dark or light
// background; noColor drops every colour (https://no-color.org).
func NewStyles(dark, noColor bool) Styles {
	ld := lipgloss.LightDark(dark)
	c := func(light, darkC string) color.Color {
		if noColor {
			return nil
		}
		return ld(lipgloss.Color(light), lipgloss.Color(darkC))
	}
	fg := func(s lipgloss.Style, col color.Color) lipgloss.Style {
		if col == nil {
			return s
		}
		return s.Foreground(col)
	}
	accent := c("#5A3FC0", "#B4A0FF")
	ice := c("#1F6FB2", "#7FC8F8")
	warm := c("#A3521B", "#F5A65B")
	red := c("#B00020", "#FF6B6B")
	green := c("#1B7F3B", "#7BD88F")
	dim := c("#7A7A7A", "#8A8A8A")

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
		s.Series = []color.Color{
			c("#B8860B", "#F5C542"), c("#1F6FB2", "#7FC8F8"), c("#1B7F3B", "#7BD88F"),
			c("#A3521B", "#F5A65B"), c("#8E3BA8", "#D99BFF"), c("#B00020", "#FF8080"),
		}
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
