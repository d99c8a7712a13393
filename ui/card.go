package ui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/glamour/v2"
	gansi "charm.land/glamour/v2/ansi"
	"charm.land/glamour/v2/styles"
	"github.com/charmbracelet/x/ansi"

	"thaw/trainer/termtext"
)

// The model card: Markdown rendered by Glamour into a scrollable
// viewport. Rendering is the costly part of the Models screen, so it
// happens when the selection, the size or the background changes (in
// Update), and View only shows the viewport.

// bodySizeMsg tells the screens the size of the body the frame gives them.
type bodySizeMsg struct{ w, h int }

// cardState is the Models screen's card: what it was rendered for, and
// the viewport showing it.
type cardState struct {
	vp       viewport.Model
	for_     cardKey
	rendered bool
	// box is where the card sits in the body: beside the list (framed)
	// or below it, x0/y0 its top-left content cell.
	beside bool
	x0, y0 int
}

type cardKey struct {
	e    *modelEntry
	w    int
	dark bool
	bw   bool
}

// cardLayout is where the card goes in a body of w×h: its content's
// width and height, whether it sits beside the list, and the list's
// width. ok is false when there is no room for it.
func (m *modelsScreen) cardLayout(w, h int) (cw, ch, listW int, beside, ok bool) {
	if w >= 110 {
		listW = w * 55 / 100
		return w - listW - 3, h - 2, listW, true, h >= 4
	}
	lines := 2 + max(len(m.visible()), 1) // title, column header, rows
	if m.filter.Focused() || m.filter.Value() != "" {
		lines++
	}
	if m.opening {
		lines++
	}
	rest := h - lines - 1 // a rule above the card
	return w, rest, w, false, rest >= 2
}

// refreshCard renders the selected model's card for the body's size,
// when either changed since the last render.
func (m *modelsScreen) refreshCard() {
	if !m.loaded || m.w == 0 {
		return
	}
	vis := m.visible()
	cw, ch, listW, beside, ok := m.cardLayout(m.w, m.h)
	if !ok || len(vis) == 0 {
		m.card.rendered = false
		return
	}
	e := vis[min(m.cursor, len(vis)-1)]
	st := m.s.Styles
	k := cardKey{e: e, w: cw, dark: st.Dark, bw: st.NoColor}
	if !m.card.rendered || m.card.for_ != k {
		if m.card.vp.Width() == 0 {
			m.card.vp = viewport.New()
		}
		m.card.vp.SetContent(renderCard(e, cw, st))
		m.card.vp.GotoTop()
		m.card.for_, m.card.rendered = k, true
	}
	m.card.vp.SetWidth(cw)
	m.card.vp.SetHeight(ch)
	m.card.beside = beside
	if beside {
		m.card.x0, m.card.y0 = listW+2, 1
	} else {
		m.card.x0, m.card.y0 = 0, m.h-ch
	}
}

// cardView draws the card's viewport, framed when beside the list.
func (m *modelsScreen) cardView(w, h int) string {
	if !m.card.rendered {
		return ""
	}
	body := m.card.vp.View()
	if !m.card.vp.AtBottom() || !m.card.vp.AtTop() {
		// Say that it scrolls, and how far down it is.
		pct := fmt.Sprintf(" %d%% · J/K or wheel scrolls ", int(100*m.card.vp.ScrollPercent()))
		lines := strings.Split(body, "\n")
		last := len(lines) - 1
		lines[last] = ansi.Truncate(lines[last], max(m.card.vp.Width()-ansi.StringWidth(pct), 0), "")
		lines[last] += strings.Repeat(" ", max(m.card.vp.Width()-ansi.StringWidth(lines[last])-ansi.StringWidth(pct), 0)) + m.s.Styles.Faint.Render(pct)
		body = strings.Join(lines, "\n")
	}
	if m.card.beside {
		return m.s.Styles.Border.Width(w).Height(h).Render(body)
	}
	return body
}

// scrollCard scrolls the card by n lines, down when n > 0.
func (m *modelsScreen) scrollCard(n int) {
	if n > 0 {
		m.card.vp.ScrollDown(n)
	} else {
		m.card.vp.ScrollUp(-n)
	}
}

// inCard reports whether body cell (x, y) is on the card.
func (m *modelsScreen) inCard(x, y int) bool {
	if !m.card.rendered {
		return false
	}
	return x >= m.card.x0 && y >= m.card.y0 && y < m.card.y0+m.card.vp.Height()+1
}

// renderCard renders e's card (or what is known of the model without one)
// as w columns of styled text.
func renderCard(e *modelEntry, w int, st Styles) string {
	if e.err != nil {
		return ansi.Wrap(termtext.Sanitize(e.err.Error()), w, " ")
	}
	md := e.card
	if md == "" {
		cfg := &e.model.Config
		md = fmt.Sprintf("# %s\n\nNo card.md in this folder.\n\n- blocks: %s\n- input: %s\n- classes: %s\n",
			e.name, strings.Join(cfg.BlockNames(), ", "), shapeString(cfg.InputShape), strings.Join(cfg.Classes, ", "))
	}
	r, err := glamour.NewTermRenderer(glamour.WithStyles(cardStyle(st)), glamour.WithWordWrap(w))
	if err == nil {
		var out string
		if out, err = r.Render(md); err == nil {
			return strings.Trim(out, "\n")
		}
	}
	return ansi.Wrap(md, w, " ") // the source itself beats nothing
}

// cardStyle is Glamour's style for the session's terminal, without the
// margins (the card is narrow) and without Markdown's marks: headings
// without their hashes, bold without asterisks, code without backticks.
func cardStyle(st Styles) gansi.StyleConfig {
	var c gansi.StyleConfig
	switch {
	case st.NoColor:
		c = styles.ASCIIStyleConfig
		t := true
		c.Strong = gansi.StylePrimitive{Bold: &t}
		c.Emph = gansi.StylePrimitive{Italic: &t}
		c.Strikethrough = gansi.StylePrimitive{CrossedOut: &t}
		c.Code = gansi.StyleBlock{}
		sep, cross, rule := "│", "┼", "─"
		c.Table.ColumnSeparator, c.Table.CenterSeparator, c.Table.RowSeparator = &sep, &cross, &rule
	case st.Dark:
		c = styles.DarkStyleConfig
	default:
		c = styles.LightStyleConfig
	}
	var zero uint
	c.Document.Margin = &zero
	c.Document.BlockPrefix, c.Document.BlockSuffix = "", ""
	c.CodeBlock.Margin = &zero
	for _, h := range []*gansi.StyleBlock{&c.H1, &c.H2, &c.H3, &c.H4, &c.H5, &c.H6} {
		h.Prefix = ""
		if h == &c.H1 && !st.NoColor {
			h.Prefix, h.Suffix = " ", " "
		}
	}
	return c
}

// handleCardMouse scrolls the card with the wheel over it.
func (m *modelsScreen) handleCardMouse(msg tea.MouseWheelMsg) bool {
	if !m.inCard(msg.X, msg.Y) {
		return false
	}
	switch msg.Button {
	case tea.MouseWheelUp:
		m.scrollCard(-3)
	case tea.MouseWheelDown:
		m.scrollCard(3)
	}
	return true
}
