package ui

import (
	"fmt"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
)

// modelEntry is one base model the Models screen offers.
type modelEntry struct {
	// name is the zoo name, or the folder as given.
	name string
	zoo  bool
	// model is loaded with its weights; nil when err is set.
	model *trainer.Model[float32]
	meta  engine.ModelMeta
	card  string // the card's text, sanitised
	// blocks describes each block, input to output.
	blocks []blockInfo
	err    error
}

// blockInfo is what the Blocks screen shows of one block.
type blockInfo struct {
	name   string
	layers string // "conv5×5 1→8, relu, maxpool2"
	out    []int  // per-sample output shape
	params int
	// flops is the forward pass's multiply-adds per sample, ×2.
	flops int64
}

// listModels loads the zoo's models and the folders given; a model that
// fails to load is listed with its error.
func listModels(b Backend, dirs []string) []*modelEntry {
	var out []*modelEntry
	for _, name := range b.Models() {
		out = append(out, loadModel(b, name))
	}
	for _, d := range dirs {
		out = append(out, loadModel(b, d))
	}
	return out
}

// loadModel resolves and loads a zoo model by name or a model folder.
func loadModel(b Backend, name string) *modelEntry {
	base, err := b.Model(name)
	if err != nil {
		return &modelEntry{name: name, err: fmt.Errorf("model %s: %w — give a zoo model or a folder holding config.json and model.safetensors", name, err)}
	}
	return modelEntryOf(base)
}

// modelEntryOf describes a loaded base model.
func modelEntryOf(base *engine.BaseModel) *modelEntry {
	e := &modelEntry{name: base.Name, zoo: base.Zoo, model: base.Model}
	if base.Meta != nil {
		e.meta = *base.Meta
	}
	e.card = sanitizeText(base.Card)
	e.describe()
	return e
}

// describe fills blocks from the loaded model.
func (e *modelEntry) describe() {
	if e.model == nil {
		return
	}
	cfg := &e.model.Config
	shape := append([]int(nil), cfg.InputShape...)
	e.blocks = nil
	for bi, b := range e.model.Blocks {
		info := blockInfo{name: b.Name, params: trainer.BlockCount(b)}
		var parts []string
		for li, l := range b.Layers {
			lc := cfg.Blocks[bi].Layers[li]
			out, err := l.OutShape(shape)
			if err != nil {
				break
			}
			parts = append(parts, layerLabel(lc))
			info.flops += layerFlops(lc, out)
			shape = out
		}
		info.layers = strings.Join(parts, ", ")
		info.out = append([]int(nil), shape...)
		e.blocks = append(e.blocks, info)
	}
}

// layerLabel describes a layer in a few characters.
func layerLabel(lc trainer.LayerConfig) string {
	switch lc.Type {
	case "linear":
		return fmt.Sprintf("linear %d→%d", lc.InFeatures, lc.OutFeatures)
	case "conv2d":
		return fmt.Sprintf("conv%d×%d %d→%d", lc.KernelSize, lc.KernelSize, lc.InChannels, lc.OutChannels)
	case "maxpool2d":
		return fmt.Sprintf("maxpool%d", lc.KernelSize)
	case "dropout":
		return fmt.Sprintf("dropout %.2g", lc.P)
	case "batchnorm1d", "batchnorm2d":
		return "batchnorm"
	}
	return lc.Type
}

// layerFlops counts a layer's forward floating-point operations per sample
// (a multiply-add is two), given its output shape. Layers without weights
// count their outputs once.
func layerFlops(lc trainer.LayerConfig, out []int) int64 {
	switch lc.Type {
	case "linear":
		return 2 * int64(lc.InFeatures) * int64(lc.OutFeatures)
	case "conv2d":
		return 2 * int64(lc.InChannels*lc.KernelSize*lc.KernelSize) * int64(numel(out))
	}
	return int64(numel(out))
}

// archLine is the model's architecture in one line.
func (e *modelEntry) archLine() string {
	if e.model == nil {
		return ""
	}
	var parts []string
	for _, b := range e.model.Config.Blocks {
		for _, l := range b.Layers {
			switch l.Type {
			case "conv2d":
				parts = append(parts, fmt.Sprintf("conv%d", l.OutChannels))
			case "linear":
				parts = append(parts, fmt.Sprintf("fc%d", l.OutFeatures))
			}
		}
	}
	arch := e.model.Config.Architecture
	if arch == "" {
		arch = "net"
	}
	return arch + " " + strings.Join(parts, "-")
}

func (e *modelEntry) params() int {
	n := 0
	for _, b := range e.blocks {
		n += b.params
	}
	return n
}

// source is the source task and its accuracy, when the card states them.
func (e *modelEntry) source() string {
	if e.meta.SourceTask == "" {
		return "—"
	}
	if e.meta.SourceTestAccuracy > 0 {
		return fmt.Sprintf("%s %.1f%%", e.meta.SourceTask, 100*e.meta.SourceTestAccuracy)
	}
	return e.meta.SourceTask
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "×")
}

// humanCount writes 53989 as 54.0k.
func humanCount(n int) string {
	switch {
	case n >= 1_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return commaInt(n)
}

// ---- the screen ----

// modelsScreen lists the base models and shows the selected one's card.
type modelsScreen struct {
	s       *Session
	loaded  bool
	cursor  int
	filter  textinput.Model
	open    textinput.Model
	opening bool // a folder path is being typed
	card    cardState
	hits    listHits
	w, h    int // the body's size, from the frame
}

func newModelsScreen(s *Session) *modelsScreen {
	return &modelsScreen{
		s:      s,
		filter: textInput("/ ", "filter by name, architecture or task"),
		open:   textInput("model folder: ", "a folder with config.json and model.safetensors"),
	}
}

func (m *modelsScreen) Keys() []key.Binding {
	k := m.s.Keys
	return []key.Binding{k.Models.Filter, k.Models.OpenModel, k.Models.CardDown, k.Models.CardUp}
}

func (m *modelsScreen) Capturing() bool { return m.filter.Focused() || m.opening }

// visible lists the models that pass the filter.
func (m *modelsScreen) visible() []*modelEntry {
	q := strings.ToLower(strings.TrimSpace(m.filter.Value()))
	if q == "" {
		return m.s.models
	}
	var out []*modelEntry
	for _, e := range m.s.models {
		hay := strings.ToLower(e.name + " " + e.archLine() + " " + e.meta.SourceTask)
		if strings.Contains(hay, q) {
			out = append(out, e)
		}
	}
	return out
}

// Update handles msg, then renders the card again if the selection, the
// size or the colours changed.
func (m *modelsScreen) Update(msg tea.Msg) (ScreenModel, tea.Cmd) {
	sc, cmd := m.update(msg)
	m.refreshCard()
	return sc, cmd
}

func (m *modelsScreen) update(msg tea.Msg) (ScreenModel, tea.Cmd) {
	switch msg := msg.(type) {
	case bodySizeMsg:
		m.w, m.h = msg.w, msg.h
		return m, nil
	case tea.MouseWheelMsg:
		if !m.handleCardMouse(msg) {
			m.cursor, _ = wheelCursor(msg, m.cursor, len(m.visible()))
		}
		return m, nil
	case tea.MouseClickMsg:
		if i, ok := m.hits.at(msg.Y); ok && msg.Button == tea.MouseLeft && !m.inCard(msg.X, msg.Y) {
			m.cursor = i
		}
		return m, nil
	case modelsLoadedMsg:
		m.s.models = msg.models
		m.loaded = true
		for _, e := range msg.models {
			if e.err != nil {
				m.s.flashErr(e.err)
			}
		}
		return m, nil
	case modelOpenedMsg:
		if msg.model.err != nil {
			m.s.flashErr(msg.model.err)
			return m, nil
		}
		m.s.models = append(m.s.models, msg.model)
		m.filter.SetValue("")
		m.cursor = len(m.s.models) - 1
		m.s.flash("opened " + msg.model.name)
		return m, nil
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	}
	return m, nil
}

func (m *modelsScreen) handleKey(msg tea.KeyPressMsg) (ScreenModel, tea.Cmd) {
	k := m.s.Keys
	if m.opening {
		switch {
		case key.Matches(msg, k.Back):
			m.opening = false
			m.open.Blur()
			return m, nil
		case key.Matches(msg, k.Forward):
			m.opening = false
			m.open.Blur()
			dir := strings.TrimSpace(m.open.Value())
			if dir == "" {
				return m, nil
			}
			return m, openModelCmd(m.s.backend, dir)
		}
		var cmd tea.Cmd
		m.open, cmd = m.open.Update(msg)
		return m, cmd
	}
	if m.filter.Focused() {
		switch {
		case key.Matches(msg, k.Back):
			m.filter.SetValue("")
			m.filter.Blur()
			return m, nil
		case key.Matches(msg, k.Forward):
			m.filter.Blur()
			return m, nil
		}
		var cmd tea.Cmd
		m.filter, cmd = m.filter.Update(msg)
		m.cursor = 0
		return m, cmd
	}
	vis := m.visible()
	switch {
	case key.Matches(msg, k.listKeys()...):
		m.cursor, _ = moveCursor(k, msg, m.cursor, len(vis))
	case key.Matches(msg, k.Models.CardDown):
		m.scrollCard(3)
	case key.Matches(msg, k.Models.CardUp):
		m.scrollCard(-3)
	case key.Matches(msg, k.Models.Filter):
		return m, m.filter.Focus()
	case key.Matches(msg, k.Models.OpenModel):
		m.opening = true
		m.open.SetValue("")
		return m, m.open.Focus()
	case key.Matches(msg, k.Forward):
		if m.cursor >= len(vis) {
			return m, nil
		}
		e := vis[m.cursor]
		if e.err != nil {
			m.s.flashErr(e.err)
			return m, nil
		}
		return m, m.s.choose(e)
	}
	return m, nil
}

// undo clears an applied filter (esc).
func (m *modelsScreen) undo() bool {
	if m.filter.Value() == "" {
		return false
	}
	m.filter.SetValue("")
	m.cursor = 0
	return true
}

// View draws the list with the card beside it (wide) or below it.
func (m *modelsScreen) View(w, h int) string {
	st := m.s.Styles
	if !m.loaded {
		return st.Faint.Render("loading the model zoo…")
	}
	vis := m.visible()
	m.cursor = min(m.cursor, max(len(vis)-1, 0))
	if m.w != w || m.h != h {
		// Sized by a test or before the frame said: render now rather
		// than show a stale card.
		m.w, m.h = w, h
		m.refreshCard()
	}
	_, _, listW, beside, _ := m.cardLayout(w, h)
	fieldWidth(&m.filter, listW, 0)
	fieldWidth(&m.open, listW, 0)
	var lines []string
	lines = append(lines, st.Heading.Render("Base models")+st.Faint.Render(fmt.Sprintf("  %d of %d", len(vis), len(m.s.models))))
	switch {
	case m.filter.Focused() || m.filter.Value() != "":
		lines = append(lines, m.filter.View())
	case m.opening:
		lines = append(lines, m.open.View())
	}
	if m.opening && (m.filter.Focused() || m.filter.Value() != "") {
		lines = append(lines, m.open.View())
	}
	// The narrow architecture column keeps the header whole at 80 columns:
	// 2+14+1+19+1+7+1+18+1+8+1+len("classes") = 80.
	archW := 26
	if listW < 100 {
		archW = 19
	}
	header := fmt.Sprintf("  %-14s %-*s %7s %-18s %-8s %s", "name", archW, "architecture", "params", "source task", "input", "classes")
	lines = append(lines, st.Faint.Render(ansi.Truncate(header, listW, "")))
	m.hits = listHits{y0: len(lines), first: 0, n: len(vis)}
	for i, e := range vis {
		var row string
		if e.err != nil {
			row = fmt.Sprintf("%-14s %s", ansi.Truncate(termtext.Sanitize(e.name), 14, "…"), "cannot load: select it to see why")
		} else {
			row = fmt.Sprintf("%-14s %-*s %7s %-18s %-8s %d",
				ansi.Truncate(termtext.Sanitize(e.name), 14, "…"), archW, ansi.Truncate(e.archLine(), archW, "…"),
				humanCount(e.params()), ansi.Truncate(e.source(), 18, "…"),
				shapeString(e.model.Config.InputShape), len(e.model.Config.Classes))
		}
		row = ansi.Truncate(row, listW-2, "…")
		if i == m.cursor {
			row = st.Selected.Render("▸ " + row)
		} else {
			row = "  " + row
		}
		lines = append(lines, row)
	}
	if len(vis) == 0 {
		lines = append(lines, st.Faint.Render("  no model matches; esc clears the filter"))
	}
	list := strings.Join(lines, "\n")
	card := m.cardView(w-listW-1, h)
	switch {
	case card == "":
		return list
	case beside:
		return joinColumns(list, listW, 1, card)
	}
	return list + "\n" + st.Faint.Render(strings.Repeat("─", w)) + "\n" + card
}

// sanitizeText passes each line of a multi-line text through the
// sanitiser, keeping the line breaks.
func sanitizeText(s string) string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = termtext.Sanitize(l)
	}
	return strings.Join(lines, "\n")
}

// choose makes e the session's base model: the head alone trainable, the
// Plan's data set to the card's target task, and shows the Blocks screen.
func (s *Session) choose(e *modelEntry) tea.Cmd {
	s.base = e
	n := len(e.blocks)
	s.frozen = make([]bool, n)
	for i := range n - 1 {
		s.frozen[i] = true
	}
	s.plan.reset(e)
	s.show(ScreenBlocks)
	return s.plan.reload(s)
}

func numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
