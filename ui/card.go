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
	// cache keeps cards rendered before: moving the cursor back and
	// forth costs a lookup, not a render.
	cache map[cardKey]string
	// lines is the card's rendered lines; view the last drawn card and
	// viewFor what it was drawn for.
	lines   []string
	view    string
	viewFor cardViewKey
	// box is where the card sits in the body: beside the list (framed)
	// or below it, x0/y0 its top-left content cell.
	beside bool
	x0, y0 int
}

type cardViewKey struct {
	k        cardKey
	y, w, h  int
	beside   bool
	rendered bool
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
		out, ok := m.card.cache[k]
		if !ok {
			if len(m.card.cache) >= 64 || m.card.cache == nil {
				m.card.cache = map[cardKey]string{} // sizes changed: start over
			}
			out = renderCard(e, cw, st)
			m.card.cache[k] = out
		}
		m.card.vp.SetContent(out)
		m.card.lines = strings.Split(out, "\n")
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

// cardView draws the lines of the card the viewport scrolls to, framed
// when beside the list, and a scroll note on its last line when it does
// not fit. The viewport keeps the scroll state; the drawing is done here,
// once per scroll or selection, because wrapping the card again through
// Lip Gloss on every frame costs more than the rest of the screen.
func (m *modelsScreen) cardView(w, h int) string {
	c := &m.card
	vk := cardViewKey{k: c.for_, y: c.vp.YOffset(), w: w, h: h, beside: c.beside, rendered: c.rendered}
	if vk == c.viewFor {
		return c.view
	}
	c.viewFor = vk
	if !c.rendered {
		c.view = ""
		return ""
	}
	cw, ch := c.vp.Width(), c.vp.Height()
	top := min(c.vp.YOffset(), max(len(c.lines)-ch, 0))
	out := make([]string, ch)
	for i := range out {
		l := ""
		if top+i < len(c.lines) {
			l = c.lines[top+i]
		}
		lw := ansi.StringWidth(l)
		if lw > cw {
			l, lw = ansi.Truncate(l, cw, ""), cw
		}
		out[i] = l + strings.Repeat(" ", cw-lw)
	}
	if len(c.lines) > ch {
		// Say that it scrolls, and how far down it is.
		pct := fmt.Sprintf(" %d%% · J/K or wheel scrolls ", int(100*c.vp.ScrollPercent()))
		last := ansi.Truncate(out[ch-1], max(cw-ansi.StringWidth(pct), 0), "")
		out[ch-1] = last + strings.Repeat(" ", max(cw-ansi.StringWidth(last)-ansi.StringWidth(pct), 0)) + m.s.Styles.Faint.Render(pct)
	}
	if !c.beside {
		c.view = strings.Join(out, "\n")
		return c.view
	}
	pal := palette{dark: m.s.Styles.Dark, noColor: m.s.Styles.NoColor}
	edge := pal.fg(pal.dim())
	bar := edge.Render("│")
	var b strings.Builder
	b.WriteString(edge.Render("╭" + strings.Repeat("─", cw) + "╮"))
	for _, l := range out {
		b.WriteString("\n" + bar + l + bar)
	}
	b.WriteString("\n" + edge.Render("╰"+strings.Repeat("─", cw)+"╯"))
	c.view = b.String()
	return c.view
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
