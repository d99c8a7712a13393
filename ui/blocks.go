package ui

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/trainer/termtext"
)

// blocksScreen is the freeze editor: every block from input to output with
// its layers, output shape, parameters and state, the freeze point, live
// totals, and the evidence to choose with (the sweep and the probes).
type blocksScreen struct {
	s      *Session
	cursor int
	sweep  *sweepState
	// sweeps are the stored sweeps run here, by spec (see sweepState.key).
	sweeps map[string]string
	probes *probeState
	hits   listHits
	// sweepQueued says w was pressed while the data loaded: the sweep
	// starts when it is ready.
	sweepQueued bool
}

func newBlocksScreen(s *Session) *blocksScreen { return &blocksScreen{s: s} }

func (b *blocksScreen) Keys() []key.Binding {
	k := b.s.Keys
	sweep := k.Blocks.Sweep
	if sw := b.sweep; sw != nil && sw.follow != nil && sw.follow.on {
		sweep.SetHelp(sweep.Help().Key, "stop following the sweep")
	}
	if b.alone() {
		return []key.Binding{sweep, k.Blocks.TakeDepth, k.Blocks.ExportSweep}
	}
	// The most used first: the help bar keeps those at 80 columns.
	return []key.Binding{k.Blocks.Toggle, k.Blocks.FreezeBelow, sweep, k.Blocks.HeadOnly, k.Blocks.ThawAll, k.Blocks.TakeDepth, k.Blocks.ExportSweep}
}

func (b *blocksScreen) Capturing() bool { return false }

func (b *blocksScreen) Update(msg tea.Msg) (ScreenModel, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return b.handleKey(msg)
	case tea.MouseWheelMsg:
		if b.s.base != nil {
			b.cursor, _ = wheelCursor(msg, b.cursor, len(b.s.frozen))
		}
		return b, nil
	case tea.MouseClickMsg:
		// A click selects the block; a second click on the selected one
		// freezes or thaws it, as space does.
		if i, ok := b.hits.at(msg.Y); ok && b.s.base != nil && msg.Button == tea.MouseLeft && msg.X < b.hits.w {
			if i == b.cursor {
				return b.handleKey(tea.KeyPressMsg{Code: tea.KeySpace, Text: " "})
			}
			b.cursor = i
		}
		return b, nil
	case sweepTableMsg, sweepDoneMsg, exportedMsg:
		return b, b.handleSweep(msg)
	case followSweepMsg, sweepFeedMsg, sweepReadMsg, sweepModelMsg:
		return b, b.handleFollow(msg)
	case probeMsg:
		return b, b.handleProbe(msg)
	case dataLoadedMsg:
		if !b.s.plan.took(msg) {
			return b, nil
		}
		// New data makes the sweep stale, unless it is the followed
		// sweep's own, or the followed sweep's job is still to replace
		// it; the probes are computed for it (or found in the cache).
		if !b.sweep.ownsData(msg.id) {
			b.dropSweep()
		}
		queued := b.sweepQueued
		b.sweepQueued = false
		if msg.err != nil {
			return b, nil
		}
		if queued {
			return b, tea.Batch(b.startProbes(), b.toggleSweep())
		}
		return b, b.startProbes()
	}
	return b, nil
}

func (b *blocksScreen) handleKey(msg tea.KeyPressMsg) (ScreenModel, tea.Cmd) {
	s, k := b.s, b.s.Keys
	if b.alone() {
		// The panel of a followed sweep without the block table.
		switch {
		case key.Matches(msg, k.Blocks.Sweep):
			return b, b.toggleSweep()
		case key.Matches(msg, k.Blocks.TakeDepth):
			b.takeDepth()
		case key.Matches(msg, k.Blocks.ExportSweep):
			return b, b.exportSweep()
		}
		return b, nil
	}
	if s.base == nil {
		if key.Matches(msg, k.Forward) {
			s.flashErr(errors.New("no model chosen: pick one on the Models screen (1) with enter"))
		}
		return b, nil
	}
	n := len(s.frozen)
	switch {
	case key.Matches(msg, k.listKeys()...):
		b.cursor, _ = moveCursor(k, msg, b.cursor, n)
	case key.Matches(msg, k.Blocks.Toggle):
		s.frozen[b.cursor] = !s.frozen[b.cursor]
		if s.trainableBlocks() == 0 {
			s.frozen[b.cursor] = false
			s.flashErr(errors.New("at least one block must train: thaw another block first"))
		}
		s.plan.freezeChanged(s)
	case key.Matches(msg, k.Blocks.FreezeBelow):
		for i := range n {
			s.frozen[i] = i < b.cursor
		}
		s.plan.freezeChanged(s)
	case key.Matches(msg, k.Blocks.ThawAll):
		for i := range n {
			s.frozen[i] = false
		}
		s.plan.freezeChanged(s)
	case key.Matches(msg, k.Blocks.HeadOnly):
		for i := range n {
			s.frozen[i] = i < n-1
		}
		s.plan.freezeChanged(s)
	case key.Matches(msg, k.Blocks.Sweep):
		switch {
		case b.sweepQueued:
			b.sweepQueued = false
			s.flash("the sweep will not start")
		case s.plan.loading && (b.sweep == nil || b.sweep.done) && s.hasStore():
			// Queued, not dropped: it starts when the data is ready.
			b.sweepQueued = true
			s.noteWhile("sweeping when the data is loaded… (w or esc cancels)", func() bool { return b.sweepQueued })
		default:
			return b, b.toggleSweep()
		}
	case key.Matches(msg, k.Blocks.TakeDepth):
		b.takeDepth()
	case key.Matches(msg, k.Blocks.ExportSweep):
		return b, b.exportSweep()
	case key.Matches(msg, k.Forward):
		b.s.show(ScreenPlan)
	}
	return b, nil
}

// trainableBlocks counts the blocks the first stage trains.
func (s *Session) trainableBlocks() int {
	n := 0
	for _, f := range s.frozen {
		if !f {
			n++
		}
	}
	return n
}

// lowestTrainable is the index of the lowest trainable block, or -1.
func (s *Session) lowestTrainable() int {
	for i, f := range s.frozen {
		if !f {
			return i
		}
	}
	return -1
}

// undo cancels a sweep queued while the data loads (esc).
func (b *blocksScreen) undo() bool {
	if b.sweepQueued {
		b.sweepQueued = false
		b.s.flash("the sweep will not start")
		return true
	}
	return false
}

// blockInfos are the blocks as a run of the plan trains them: the base
// model's, with the head the loaded data needs in place of the base head
// when its classes are not the model's ("linear 64→3 (new)"). Until the
// data is loaded they are the base model's.
func (s *Session) blockInfos() []blockInfo {
	d := s.plan
	if d.prep == nil || !d.prep.HeadReplaced || d.prep.Model == nil || len(s.base.blocks) == 0 {
		return s.base.blocks
	}
	if d.blocksPrep != d.prep {
		e := &modelEntry{model: d.prep.Model}
		e.describe()
		d.blocks, d.blocksPrep = s.base.blocks, d.prep
		if n := len(s.base.blocks); len(e.blocks) == n {
			head := e.blocks[n-1]
			head.layers += " (new)"
			d.blocks = append(slices.Clone(s.base.blocks[:n-1]), head)
		}
	}
	return d.blocks
}

// classesNote says how many classes the model puts out: the base head's,
// or the new head's and the base's.
func (s *Session) classesNote() string {
	base := len(s.base.model.Config.Classes)
	if d := s.plan; d.prep != nil && d.prep.HeadReplaced && d.prep.Train != nil {
		return fmt.Sprintf("output %d classes (new head; the base has %d)", len(d.prep.Train.Classes), base)
	}
	return fmt.Sprintf("output %d classes", base)
}

// counts returns the trainable and total parameters under the choice.
func (s *Session) counts() (trainable, total int) {
	for i, bi := range s.blockInfos() {
		total += bi.params
		if !s.frozen[i] {
			trainable += bi.params
		}
	}
	return trainable, total
}

// stepCost estimates a training step's floating-point operations per
// sample under the freeze choice, and the same for full fine-tuning. The
// forward pass runs through every block; the backward pass stops at the
// lowest trainable block, which needs only its weight gradient (about one
// forward's work), while every block above it needs both its input and
// weight gradients (about two).
func (s *Session) stepCost() (cost, full int64) {
	blocks := s.blockInfos()
	var fwd int64
	for _, bi := range blocks {
		fwd += bi.flops
	}
	back := func(low int) int64 {
		if low < 0 {
			return 0
		}
		n := blocks[low].flops
		for _, bi := range blocks[low+1:] {
			n += 2 * bi.flops
		}
		return n
	}
	return fwd + back(s.lowestTrainable()), fwd + back(0)
}

// lrMults are the learning-rate multipliers of the first stage: 1 for the
// top trainable block, 1/factor^k for a trainable block k below it, 0 for
// a frozen one (ULMFiT's discriminative rates).
func (s *Session) lrMults() []float64 {
	factor := s.plan.factor()
	top := -1
	for i, f := range s.frozen {
		if !f {
			top = i
		}
	}
	out := make([]float64, len(s.frozen))
	k := 0
	for i := top; i >= 0; i-- {
		if !s.frozen[i] {
			out[i] = math.Pow(factor, -float64(k))
		}
		k++
	}
	return out
}

// View draws the blocks, the totals and, beside them on a wide terminal
// or below on a small one, the sweep and the probes.
func (b *blocksScreen) View(w, h int) string {
	s, st := b.s, b.s.Styles
	if b.alone() {
		return b.aloneView(w, h)
	}
	if s.base == nil {
		return st.Faint.Render("No model chosen. Press 1 for Models, pick one with enter.")
	}
	// The sweep and the probes: beside the blocks on a wide screen, under
	// them where they leave four lines; drawn once, in the room they get.
	if w >= 130 {
		if evidence := b.evidenceView(60, h); evidence != "" {
			return joinColumns(b.blocksView(w-62, h), w-62, 2, evidence)
		}
		return b.blocksView(w, h)
	}
	left := b.blocksView(w, h)
	used := strings.Count(left, "\n") + 1
	if h-used >= 4 {
		if evidence := b.evidenceView(w, h-used); evidence != "" {
			return left + "\n" + fitBlock(evidence, w, h-used)
		}
	}
	return left
}

func (b *blocksScreen) blocksView(w, h int) string {
	s, st := b.s, b.s.Styles
	e := s.base
	blocks := s.blockInfos()
	mults := s.lrMults()
	maxParams := 1
	for _, bi := range blocks {
		maxParams = max(maxParams, bi.params)
	}
	wide := w >= 100
	barW := 8
	if wide {
		barW = 16
	}
	layersW := min(max(w-(2+8+10+10+8+barW+8+8), 10), 44)

	var lines []string
	lines = append(lines, st.Heading.Render("Blocks of "+termtext.Sanitize(e.name))+
		st.Faint.Render(fmt.Sprintf("  input %s → %s", shapeString(e.model.Config.InputShape), termtext.Sanitize(s.classesNote()))))
	hdr := fmt.Sprintf("  %-8s %-9s %-*s %-9s %7s %-*s %-7s %s", "block", "state", layersW, "layers", "out", "params", barW, "", "lr", "probe")
	lines = append(lines, st.Faint.Render(ansi.Truncate(hdr, w, "")))
	low := s.lowestTrainable()
	b.hits = listHits{y0: len(lines), n: len(blocks), w: w}
	if low > 0 {
		b.hits.gapAt = low // the freeze-point marker's line
	}
	for i, bi := range blocks {
		if i == low && low > 0 {
			lines = append(lines, st.Marker.Render(ansi.Truncate(
				fmt.Sprintf("  ━━ freeze point ━━ %s and below frozen; backward stops here", blocks[low-1].name), w, "…")))
		}
		state := "▶ train "
		stStyle := st.Trainable
		lr := fmt.Sprintf("×%.3g", mults[i])
		if s.frozen[i] {
			state, stStyle, lr = "❄ frozen", st.Frozen, "—"
		}
		bar := paramBar(bi.params, maxParams, barW)
		name := ansi.Truncate(termtext.Sanitize(bi.name), 8, "…")
		row := fmt.Sprintf("%-8s %s %-*s %-9s %7s %s %-7s %s",
			name, stStyle.Render(state), layersW, ansi.Truncate(bi.layers, layersW, "…"),
			shapeString(bi.out), humanCount(bi.params), st.Bar.Render(bar), lr, b.probeCell(i))
		if i == b.cursor {
			lines = append(lines, st.Selected.Render("▸")+" "+row)
		} else {
			lines = append(lines, "  "+row)
		}
	}
	tr, total := s.counts()
	cost, full := s.stepCost()
	lines = append(lines, "")
	lines = append(lines, fmt.Sprintf("trainable %s of %s parameters (%.1f%%)",
		st.Bold.Render(commaInt(tr)), commaInt(total), 100*float64(tr)/float64(max(total, 1))))
	lines = append(lines, fmt.Sprintf("step cost ≈ %s FLOP per sample, %.2f× full fine-tuning",
		humanFlops(cost), float64(cost)/float64(max(full, 1))))
	lines = append(lines, st.Faint.Render(fmt.Sprintf("lr multipliers: discriminative factor %.3g of the plan's first stage", s.plan.factor())))
	return strings.Join(lines, "\n")
}

// paramBar is a bar of w cells proportional to n/maxN, in eighths.
func paramBar(n, maxN, w int) string {
	eighths := int(math.Round(float64(n) / float64(maxN) * float64(w*8)))
	if n > 0 && eighths == 0 {
		eighths = 1
	}
	full := eighths / 8
	var b strings.Builder
	b.WriteString(strings.Repeat("█", full))
	if r := eighths % 8; r > 0 && full < w {
		b.WriteRune([]rune("▏▎▍▌▋▊▉")[r-1])
		full++
	}
	b.WriteString(strings.Repeat(" ", max(w-full, 0)))
	return b.String()
}

// commaInt writes 53989 as 53,989 and -1234 as -1,234: the one way the
// workbench groups a whole number's digits.
func commaInt(n int) string {
	s := fmt.Sprint(n)
	sign := ""
	if n < 0 {
		sign, s = "-", s[1:]
	}
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return sign + string(out)
}

// humanFlops writes 1.2e6 as 1.2M.
func humanFlops(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fG", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
