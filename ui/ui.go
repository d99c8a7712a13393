// Package ui is thaw's workbench: a Bubble Tea program with five screens —
// Models, Blocks, Plan, Train and Runs — over one session's state.
//
// The root model (this file) owns the frame: the header with the screens
// and the run's status, the help bar, the quit confirmation, global keys and
// the window size. Each screen is a small model behind [ScreenModel]; the
// root delegates keys to the active one and every other message to all of
// them, so a screen hears about data it asked for even when the user has
// moved on.
package ui

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
)

// Screen names one of the workbench's screens; number keys 1-5 jump to
// them in this order.
type Screen int

const (
	ScreenModels Screen = iota
	ScreenBlocks
	ScreenPlan
	ScreenTrain
	ScreenRuns
	numScreens
)

func (s Screen) String() string {
	switch s {
	case ScreenModels:
		return "Models"
	case ScreenBlocks:
		return "Blocks"
	case ScreenPlan:
		return "Plan"
	case ScreenTrain:
		return "Train"
	case ScreenRuns:
		return "Runs"
	}
	return fmt.Sprintf("Screen(%d)", int(s))
}

// ScreenModel is the contract of one screen. The root calls Update with
// every key while the screen is active and with every other message always;
// View with the body's size (the frame draws the header and help bar
// around it). A screen keeps a pointer to the [Session] it shares with the
// others.
type ScreenModel interface {
	// Update handles a message. Long work goes in the returned command,
	// never in Update.
	Update(msg tea.Msg) (ScreenModel, tea.Cmd)
	// View draws the screen's body in exactly w columns and at most h rows.
	View(w, h int) string
	// Keys lists the screen's own bindings, most useful first; the help
	// bar shows those that fit and `?` shows them all. Keys must not reuse
	// a key of KeyMap.global or of another binding in the list.
	Keys() []key.Binding
	// Capturing reports that a text field has focus or an overlay is open:
	// the screen then receives every key but tab, shift+tab and ctrl+c,
	// including esc and enter (to close or confirm it).
	Capturing() bool
}

// Options configure a workbench.
type Options struct {
	// ModelDirs are model folders to list beside the zoo (--model).
	ModelDirs []string
	// Backend is what the workbench trains, prepares and reads through:
	// the engine for the local workbench, a user's view of it for an SSH
	// session. Nil means a workbench without a store: it lists the
	// embedded zoo and previews and probes jobs, and says that it cannot
	// train when asked to.
	Backend Backend
	// NoProbes turns off the per-block probes, which otherwise train in
	// the background whenever the data changes.
	NoProbes bool
	// NoColor drops every colour. New sets it from $NO_COLOR when
	// FromEnv is set.
	NoColor bool
	// FromEnv reads NO_COLOR from the environment.
	FromEnv bool
	// ExportDir, when set, returns the folder where figures of run id are
	// written, and the name the user knows it by, shown in place of the
	// folder's path (the SSH server puts figures under the user's own runs
	// and shows the path scp fetches them by; "" shows dir). Nil means the
	// working directory.
	ExportDir func(ctx context.Context, id string) (dir, shown string, err error)
	// PlanDir, when set, is the only folder plan files are saved to and
	// loaded from: a name typed on the Plan screen is taken inside it, and
	// nothing outside it can be read or written (the SSH server gives each
	// user their own). Empty means any path.
	PlanDir string
	// PlanRoot, when set, opens the plan folder for each save and load in
	// place of os.OpenRoot(PlanDir): the SSH server checks there that the
	// folder is still its own, not a link planted since.
	PlanRoot func() (*os.Root, error)
	// NoMouse starts the workbench with the mouse off, leaving the
	// terminal its own text selection (--no-mouse); `M` toggles it.
	NoMouse bool
	// RunsOutlive says the engine's runs go on when the workbench quits
	// (the SSH server's do); quitting then says so instead of offering to
	// stop the run.
	RunsOutlive bool
}

// Model is the workbench's root model: one per session.
type Model struct {
	s       *Session
	screens [numScreens]ScreenModel
	active  Screen
	width   int
	height  int
	crash   *Crash // the panic that ended the program

	showHelp    bool
	showLog     bool
	logOff      int // lines scrolled up from the log's end
	confirmQuit bool
	// stopping is the run the user quit while it trained (see Stopping).
	stopping string
	help     help.Model
	mouse    bool
	// armed is the seq of the message an expiry timer waits for.
	armed int
}

// expireMsg ends the notice numbered seq, if it is still shown.
type expireMsg struct{ seq int }

// New returns a workbench for one session. ctx bounds the session's
// background work (data loading, sweeps, probes); runs started from the
// workbench are bound to it too, so cancelling it stops them.
func New(ctx context.Context, opts Options) *Model {
	noColor := opts.NoColor
	if opts.FromEnv && os.Getenv("NO_COLOR") != "" {
		noColor = true
	}
	s := newSession(ctx, opts, noColor)
	m := &Model{s: s, width: 80, height: 24, help: help.New(), mouse: !opts.NoMouse}
	m.screens[ScreenModels] = newModelsScreen(s)
	m.screens[ScreenBlocks] = newBlocksScreen(s)
	m.screens[ScreenPlan] = newPlanScreen(s)
	m.screens[ScreenTrain] = newTrainScreen(s)
	m.screens[ScreenRuns] = newRunsScreen(s)
	m.applyStyles()
	return m
}

// Session exposes the session's state, for tests and the SSH server.
func (m *Model) Session() *Session { return m.s }

// Wait waits until the runs this session started have stopped and been
// recorded: after the program ends (which cancels them), before the store
// closes.
func (m *Model) Wait() {
	m.s.bg.Wait()
	if m.s.run != nil {
		<-m.s.run.Done()
	}
}

// Stopping returns the id of the run the quit stops, once the program
// has returned: the session's run if it trained when the user confirmed
// the quit, or, when the program was cancelled or killed (a signal), if
// it trained when the program ended. Wait waits for its last checkpoint.
// It returns "" when there is no such run. The run is named even when it
// has ended by the time the program returns: a run that stops at once was
// still stopped, and resumes.
func (m *Model) Stopping() string {
	if m.stopping != "" {
		return m.stopping
	}
	if m.s.training() {
		return m.s.run.ID
	}
	return ""
}

// Active returns the screen shown.
func (m *Model) Active() Screen { return m.active }

func (m *Model) Init() tea.Cmd {
	return guard(tea.Batch(tea.RequestBackgroundColor, loadModelsCmd(m.s.backend, m.s.opts.ModelDirs)))
}

func (m *Model) applyStyles() {
	st := m.s.Styles
	hs := help.DefaultStyles(st.Dark)
	if st.NoColor {
		hs = help.Styles{
			ShortKey: lipgloss.NewStyle().Bold(true), FullKey: lipgloss.NewStyle().Bold(true),
			ShortDesc: st.Faint, FullDesc: st.Faint, ShortSeparator: st.Faint, FullSeparator: st.Faint, Ellipsis: st.Faint,
		}
	}
	m.help.Styles = hs
}

// Update handles the frame's messages and keys and delegates the rest
// (see handle). A panic in it, or in a command it returns, quits the
// program with the panic kept for Crash: the terminal is restored, and
// the caller says where the stack went.
func (m *Model) Update(msg tea.Msg) (_ tea.Model, cmd tea.Cmd) {
	if c, ok := msg.(crashMsg); ok {
		m.crashed(c.crash)
		return m, tea.Quit
	}
	if m.crash != nil {
		return m, tea.Quit
	}
	defer func() {
		if r := recover(); r != nil {
			m.crashed(&Crash{Value: r, Stack: debug.Stack()})
			cmd = tea.Quit
		}
	}()
	_, cmd = m.handle(msg)
	return m, guard(cmd)
}

// handle runs a message through update, then ends a message whose cause
// has gone and arms the timer of a new notice.
func (m *Model) handle(msg tea.Msg) (tea.Model, tea.Cmd) {
	if e, ok := msg.(expireMsg); ok {
		if e.seq == m.s.msg.seq {
			m.s.clearMessage()
		}
		return m, nil
	}
	mm, cmd := m.update(msg)
	if _, progress := msg.(runProgressMsg); !progress {
		m.s.recheckMessage()
	}
	if mg := m.s.msg; !mg.until.IsZero() && mg.seq != m.armed {
		m.armed = mg.seq
		seq := mg.seq
		cmd = tea.Batch(cmd, tea.Tick(time.Until(mg.until), func(time.Time) tea.Msg { return expireMsg{seq: seq} }))
	}
	return mm, cmd
}

func (m *Model) update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.MouseWheelMsg:
		return m, m.mouseToScreen(msg, msg.Y)
	case tea.MouseClickMsg:
		return m, m.mouseToScreen(msg, msg.Y)
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.help.SetWidth(msg.Width)
		return m, m.broadcast(m.bodySize())
	case tea.BackgroundColorMsg:
		m.s.Styles = NewStyles(msg.IsDark(), m.s.Styles.NoColor)
		m.applyStyles()
		return m, m.broadcast(m.bodySize())
	case tea.KeyPressMsg:
		return m.handleKey(msg)
	case gotoMsg:
		return m, m.switchTo(Screen(msg))
	case quitMsg:
		m.s.stopAll()
		return m, tea.Quit
	case errMsg:
		m.s.flashErr(msg.err)
		return m, nil
	case noticeMsg:
		m.s.flash(string(msg))
		return m, nil
	case AttachMsg:
		// A run already training: its past comes from the store, then
		// the feed goes on from there (see runHistoryMsg).
		run := msg.Run
		m.startRun(run)
		shown := m.switchTo(ScreenTrain)
		m.s.noteWhile("run "+engine.Short(run.ID)+" is training: watching it", m.s.training)
		next := waitProgress(m.s.feed)
		if m.s.hasStore() {
			next = loadHistoryCmd(m.s.ctx, m.s.backend, run)
		}
		return m, tea.Batch(shown, m.broadcast(runStartedMsg{run: run}), next)
	case runHistoryMsg:
		if m.s.run == nil || msg.id != m.s.run.ID {
			return m, nil
		}
		if msg.err != nil {
			m.s.flashErr(fmt.Errorf("run %s: its stored curves: %w", engine.Short(msg.id), msg.err))
		}
		return m, tea.Batch(waitProgress(m.s.feed), m.broadcast(msg))
	case runStartedMsg:
		m.startRun(msg.run)
		shown := m.switchTo(ScreenTrain)
		next := waitProgress(m.s.feed)
		resumed := msg.run.Resumed.Run.ID != ""
		switch {
		case msg.run.Warning != "":
			m.s.flashErr(fmt.Errorf("run %s: %s", engine.Short(msg.run.ID), msg.run.Warning))
		case resumed:
			m.s.noteWhile(fmt.Sprintf("run %s resumed from step %d", engine.Short(msg.run.ID), msg.run.From), m.s.training)
		default:
			m.s.noteWhile("run "+engine.Short(msg.run.ID)+" started", m.s.training)
		}
		if resumed && m.s.hasStore() {
			// Its past comes from the store, as for AttachMsg: the
			// curves and best so far, then the feed goes on.
			next = loadHistoryCmd(m.s.ctx, m.s.backend, msg.run)
		}
		return m, tea.Batch(shown, next, m.broadcast(msg))
	case runProgressMsg:
		if m.s.run == nil || msg.id != m.s.run.ID {
			return m, nil // a message of a run no longer shown
		}
		m.s.last = msg.p
		m.s.hasLast = true
		return m, tea.Batch(waitProgress(m.s.feed), m.broadcast(msg))
	case runDoneMsg:
		if m.s.run != nil && msg.id == m.s.run.ID {
			m.s.unwatch()
			m.s.runDone = true
			m.s.runErr = msg.err
			if msg.err != nil {
				m.s.flashErr(fmt.Errorf("run %s: %w", engine.Short(msg.id), msg.err))
			}
		}
		return m, m.broadcast(msg)
	}
	return m, m.broadcast(msg)
}

// undoer is a screen with something for esc to undo before it leaves the
// screen: undo undoes it and reports true, or reports false when there is
// nothing.
type undoer interface{ undo() bool }

// undo clears the Runs screen's applied filter. (It lives here, beside
// the frame's esc, while the Runs screen is reworked elsewhere.)
func (r *runsScreen) undo() bool {
	if r.filter.Value() == "" {
		return false
	}
	r.filter.SetValue("")
	r.refilter()
	r.s.flash("filter cleared")
	return true
}

// bodySize is the size of the screens' body: the frame less its header,
// message line and help bar.
func (m *Model) bodySize() bodySizeMsg {
	return bodySizeMsg{w: max(m.width, 20), h: max(m.height, 6) - 3}
}

// startRun makes run the session's, watched from its feed.
func (m *Model) startRun(run *engine.Live) {
	m.s.run = run
	// A second run of the session starts afresh, not as the first ended.
	m.s.last, m.s.hasLast, m.s.runDone, m.s.runErr = trainer.Progress{}, false, false, nil
	m.s.watch(run)
}

// broadcast gives a message to every screen.
func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for i, sc := range m.screens {
		var cmd tea.Cmd
		m.screens[i], cmd = sc.Update(msg)
		cmds = append(cmds, cmd)
	}
	cmds = append(cmds, m.followShow())
	return tea.Batch(cmds...)
}

func (m *Model) handleKey(msg tea.KeyPressMsg) (tea.Model, tea.Cmd) {
	k := m.s.Keys
	if m.confirmQuit {
		switch {
		case key.Matches(msg, k.Yes), key.Matches(msg, k.ForceQuit), key.Matches(msg, k.Quit):
			// q again quits too: the help bar goes on saying so.
			if m.s.training() {
				m.stopping = m.s.run.ID
			}
			m.s.stopAll()
			return m, tea.Quit
		case key.Matches(msg, k.No), key.Matches(msg, k.Back):
			m.confirmQuit = false
		case key.Matches(msg, k.Help):
			m.confirmQuit, m.showHelp = false, true
		}
		return m, nil
	}
	if key.Matches(msg, k.ForceQuit) {
		return m.quit()
	}
	if m.showHelp {
		// Any key closes the full help; the frame's keys also act.
		m.showHelp = false
		if key.Matches(msg, k.Help, k.Back) {
			return m, nil
		}
	}
	if m.showLog {
		return m, m.handleLogKey(msg)
	}
	sc := m.screens[m.active]
	if key.Matches(msg, k.Cycle) {
		return m, m.switchTo((m.active + 1) % numScreens)
	}
	if key.Matches(msg, k.CycleBack) {
		return m, m.switchTo((m.active + numScreens - 1) % numScreens)
	}
	if sc.Capturing() {
		return m, m.updateActive(msg)
	}
	switch {
	case key.Matches(msg, k.Quit):
		return m.quit()
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return m, nil
	case key.Matches(msg, k.Log):
		m.showLog, m.logOff = true, 0
		return m, nil
	case key.Matches(msg, k.Mouse):
		m.mouse = !m.mouse
		if m.mouse {
			m.s.flash("mouse on: wheel scrolls, click selects (M gives the terminal its selection back)")
		} else {
			m.s.flash("mouse off: the terminal selects text again (M turns it back on)")
		}
		return m, nil
	case key.Matches(msg, k.Back):
		// esc undoes the innermost thing first: an open prompt (the
		// screen captures esc then), an applied filter or a queued start,
		// and only then the screen.
		if u, ok := m.screens[m.active].(undoer); ok && u.undo() {
			return m, nil
		}
		if m.active > ScreenModels && m.active <= ScreenTrain {
			return m, m.switchTo(m.active - 1)
		} else if m.active == ScreenRuns {
			return m, m.switchTo(ScreenTrain)
		}
		return m, nil
	}
	for i, b := range k.Jump {
		if key.Matches(msg, b) {
			return m, m.switchTo(Screen(i))
		}
	}
	return m, m.updateActive(msg)
}

func (m *Model) updateActive(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	m.screens[m.active], cmd = m.screens[m.active].Update(msg)
	return tea.Batch(cmd, m.followShow())
}

// followShow switches to the screen a screen asked for with show, and
// returns that screen's command.
func (m *Model) followShow() tea.Cmd {
	if next := m.s.showNext; next != nil {
		m.s.showNext = nil
		return m.switchTo(*next)
	}
	return nil
}

// switchTo shows screen s and tells it so; the screen's command (the Runs
// screen starts reading the store) is returned.
func (m *Model) switchTo(s Screen) tea.Cmd {
	if s < 0 || s >= numScreens {
		return nil
	}
	m.active = s
	// A message tied to a cause stays until the cause goes; others
	// belong to the screen they were said on.
	if m.s.msg.holds == nil {
		m.s.clearMessage()
	}
	var cmd tea.Cmd
	m.screens[s], cmd = m.screens[s].Update(shownMsg{})
	return cmd
}

// quit asks first when a run is training; otherwise it quits.
func (m *Model) quit() (tea.Model, tea.Cmd) {
	if m.s.training() || m.s.sweeping {
		m.confirmQuit = true
		return m, nil
	}
	m.s.stopAll()
	return m, tea.Quit
}

// View draws the frame around the active screen. A panic in it is kept
// for Crash and goes on to Bubble Tea, which restores the terminal and
// ends the program.
func (m *Model) View() tea.View {
	defer func() {
		if r := recover(); r != nil {
			if m.crash == nil {
				m.crash = &Crash{Value: r, Stack: debug.Stack()}
			}
			panic(r)
		}
	}()
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "thaw"
	if m.mouse {
		v.MouseMode = tea.MouseModeCellMotion
	}
	return v
}

// render composes the frame: header, body, message line, help bar.
func (m *Model) render() string {
	w, h := max(m.width, 20), max(m.height, 6)
	bodyH := h - 3
	var body string
	switch {
	case m.confirmQuit:
		body = m.confirmView(w, bodyH, m.screens[m.active].View(w, bodyH))
	case m.showHelp:
		body = m.fullHelpView(w, bodyH)
	case m.showLog:
		body = m.logView(w, bodyH)
	default:
		body = m.screens[m.active].View(w, bodyH)
	}
	body = fitBlock(body, w, bodyH)
	return m.header(w) + "\n" + body + "\n" + m.messageLine(w) + "\n" + m.helpBar(w)
}

// messageLine draws the message area: the message in its severity's
// style, and when it is longer than the line, where to read it whole.
func (m *Model) messageLine(w int) string {
	st, mg := m.s.Styles, m.s.msg
	if mg.text == "" {
		return ""
	}
	style := st.Notice
	if mg.sev == sevError {
		style = st.Error
	}
	text := strings.ReplaceAll(mg.text, "\n", " ")
	if ansi.StringWidth(text) <= w {
		return style.Render(text)
	}
	more := " … ! whole"
	return style.Render(ansi.Truncate(text, max(w-ansi.StringWidth(more), 1), "")) + st.Faint.Render(more)
}

// tabAt returns the screen whose name the header draws at column x.
func tabAt(x int) (Screen, bool) {
	at := len("thaw")
	for i := range numScreens {
		label := fmt.Sprintf("%d %s", i+1, Screen(i))
		at++ // the space before it
		if x >= at && x < at+len(label) {
			return Screen(i), true
		}
		at += len(label)
	}
	return 0, false
}

// header draws the screens, model → data and the run's status in one line.
func (m *Model) header(w int) string {
	st := m.s.Styles
	var b strings.Builder
	b.WriteString(st.Title.Render("thaw"))
	for i := range numScreens {
		label := fmt.Sprintf("%d %s", i+1, Screen(i))
		b.WriteString(" ")
		if Screen(i) == m.active {
			b.WriteString(st.ActiveTab.Render(label))
		} else {
			b.WriteString(st.Tab.Render(label))
		}
	}
	left := b.String()
	right := m.s.statusLine()
	room := w - lipgloss.Width(left) - 2
	if room < 8 {
		return ansi.Truncate(left, w, "")
	}
	right = ansi.Truncate(right, room, "…")
	pad := w - lipgloss.Width(left) - lipgloss.Width(right)
	return left + strings.Repeat(" ", max(pad, 1)) + st.Status.Render(right)
}

// helpBar shows the active screen's keys, as many as fit, and always
// ends with the way to every key and the way out: `? keys · q quit`,
// shortened on a very narrow terminal, never dropped.
func (m *Model) helpBar(w int) string {
	k := m.s.Keys
	var bs []key.Binding
	tail := []key.Binding{k.Help, k.Quit}
	switch {
	case m.confirmQuit:
		bs = []key.Binding{k.Yes, k.No}
	case m.showHelp:
		bs = nil
	case m.showLog:
		bs = []key.Binding{k.Up, k.Down, k.Top, k.Bottom, k.Back}
	default:
		bs = append(bs, m.screens[m.active].Keys()...)
		bs = append(bs, k.Forward, k.Back, k.jumpHelp(), k.Log)
	}
	return m.shortHelp(bs, tail, w)
}

// shortHelp lays out bs then tail in one line of at most w columns: tail
// whole (or its keys alone when even that does not fit), then as many of
// bs, in order, as fit before it.
func (m *Model) shortHelp(bs, tail []key.Binding, w int) string {
	hs := m.help.Styles
	sep := hs.ShortSeparator.Render(" · ")
	const sepW = 3
	item := func(b key.Binding, withDesc bool) (string, int) {
		h := b.Help()
		if !withDesc || h.Desc == "" {
			return hs.ShortKey.Render(h.Key), ansi.StringWidth(h.Key)
		}
		return hs.ShortKey.Render(h.Key) + " " + hs.ShortDesc.Render(h.Desc), ansi.StringWidth(h.Key) + 1 + ansi.StringWidth(h.Desc)
	}
	join := func(withDesc bool) ([]string, int) {
		var parts []string
		width := 0
		for _, b := range tail {
			s, n := item(b, withDesc)
			if len(parts) > 0 {
				width += sepW
			}
			parts, width = append(parts, s), width+n
		}
		return parts, width
	}
	tailParts, tailW := join(true)
	if tailW > w {
		tailParts, tailW = join(false)
	}
	var head []string
	used := tailW
	for _, b := range bs {
		if !b.Enabled() || b.Help().Key == "" {
			continue
		}
		s, n := item(b, true)
		if used+n+sepW > w {
			continue // a shorter one further on may still fit
		}
		head, used = append(head, s), used+n+sepW
	}
	return strings.Join(append(head, tailParts...), sep)
}

// fullHelpView lists every key of the active screen, then the lists' and
// the frame's, each key once, in as many columns as the width holds; a
// description too long for its column is cut, never a column.
func (m *Model) fullHelpView(w, h int) string {
	k := m.s.Keys
	var all []key.Binding
	seen := map[string]bool{}
	add := func(bs ...key.Binding) {
		for _, b := range bs {
			id := strings.Join(b.Keys(), " ")
			if !b.Enabled() || b.Help().Key == "" || seen[id] {
				continue
			}
			seen[id] = true
			all = append(all, b)
		}
	}
	add(m.screens[m.active].Keys()...)
	add(k.listKeys()...)
	add(k.Forward, k.Back, k.Cycle, k.CycleBack, k.jumpHelp(), k.Log, k.Mouse, k.Help, k.Quit, k.ForceQuit)

	hs := m.help.Styles
	title := m.s.Styles.Heading.Render(m.active.String() + " — every key (any key closes)")
	rows := max(h-2, 1)
	cols := (len(all) + rows - 1) / rows
	keyW := 0
	for _, b := range all {
		keyW = max(keyW, ansi.StringWidth(b.Help().Key))
	}
	const gap = 3
	colW := max((w-gap*(cols-1))/max(cols, 1), keyW+2)
	rows = (len(all) + cols - 1) / cols
	lines := make([]string, rows)
	for i, b := range all {
		r, c := i%rows, i/rows
		hk := b.Help()
		desc := ansi.Truncate(hk.Desc, colW-keyW-1, "…")
		cell := hs.FullKey.Render(hk.Key) + strings.Repeat(" ", keyW-ansi.StringWidth(hk.Key)+1) + hs.FullDesc.Render(desc)
		if c > 0 {
			cell = strings.Repeat(" ", gap) + cell
		}
		if c < cols-1 && i+rows < len(all) {
			cell += strings.Repeat(" ", colW-keyW-1-ansi.StringWidth(desc))
		}
		lines[r] += cell
	}
	return title + "\n\n" + strings.Join(lines, "\n")
}

// logView shows the message log, newest last, each message whole and
// wrapped to the width.
func (m *Model) logView(w, h int) string {
	st := m.s.Styles
	title := st.Heading.Render("Messages") + st.Faint.Render(" — newest last; ↑/↓ scroll, esc closes")
	var lines []string
	for _, e := range m.s.log {
		style := st.Notice
		if e.sev == sevError {
			style = st.Error
		}
		stamp := e.at.Format("15:04:05") + " "
		wrapped := strings.Split(ansi.Wrap(e.text, max(w-len(stamp), 10), " "), "\n")
		for i, l := range wrapped {
			pre := strings.Repeat(" ", len(stamp))
			if i == 0 {
				pre = st.Faint.Render(stamp)
			}
			lines = append(lines, pre+style.Render(l))
		}
	}
	if len(lines) == 0 {
		lines = []string{st.Faint.Render("no messages yet")}
	}
	room := max(h-2, 1)
	m.logOff = min(m.logOff, max(len(lines)-room, 0))
	end := len(lines) - m.logOff
	start := max(end-room, 0)
	return title + "\n\n" + strings.Join(lines[start:end], "\n")
}

// handleLogKey scrolls the log; esc, ! or q closes it.
func (m *Model) handleLogKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.s.Keys
	switch {
	case key.Matches(msg, k.Up):
		m.logOff++
	case key.Matches(msg, k.Down):
		m.logOff = max(m.logOff-1, 0)
	case key.Matches(msg, k.PageUp):
		m.logOff += 10
	case key.Matches(msg, k.PageDown):
		m.logOff = max(m.logOff-10, 0)
	case key.Matches(msg, k.Top):
		m.logOff = len(m.s.log) * 100 // clamped when drawn
	case key.Matches(msg, k.Bottom):
		m.logOff = 0
	case key.Matches(msg, k.Back, k.Log, k.Quit):
		m.showLog = false
	}
	return nil
}

// mouseToScreen hands a mouse message to the active screen with its row
// counted from the top of the screen's body (below the header), unless
// an overlay of the frame is open.
func (m *Model) mouseToScreen(msg tea.Msg, y int) tea.Cmd {
	if !m.mouse || m.showHelp || m.confirmQuit {
		return nil
	}
	if m.showLog {
		if w, ok := msg.(tea.MouseWheelMsg); ok {
			if w.Button == tea.MouseWheelUp {
				m.logOff += 3
			} else if w.Button == tea.MouseWheelDown {
				m.logOff = max(m.logOff-3, 0)
			}
		}
		return nil
	}
	switch msg := msg.(type) {
	case tea.MouseWheelMsg:
		msg.Y = y - 1
		return m.updateActive(msg)
	case tea.MouseClickMsg:
		if y < 1 {
			// The header: a click on a screen's name shows it.
			if sc, ok := tabAt(msg.X); ok && msg.Button == tea.MouseLeft && !m.screens[m.active].Capturing() {
				return m.switchTo(sc)
			}
			return nil
		}
		msg.Y = y - 1
		return m.updateActive(msg)
	}
	return nil
}

// confirmView asks before a quit stops a run or a sweep: a box in the
// middle of the screen, under (the active screen) faint around it.
func (m *Model) confirmView(w, h int, under string) string {
	st := m.s.Styles
	var msg string
	switch {
	case m.s.training() && m.s.opts.RunsOutlive:
		msg = "A run is training. Quit?\n\n" +
			"Run " + engine.Short(m.s.run.ID) + " goes on training on the server;\n" +
			"connect again to watch it.\n\n"
	case m.s.training():
		msg = "A run is training. Quit and stop it?\n\n" +
			"It is stored: thaw resume " + engine.Short(m.s.run.ID) + " continues it later.\n\n"
	case !m.s.sweeping:
		// What the question was asked about ended while it stood.
		msg = "What was training has ended: quitting stops nothing.\n\n"
	default:
		msg = "A freeze-depth sweep is running. Quit and stop it?\n\n" +
			"The freeze points it finished stay stored (thaw runs).\n\n"
	}
	msg += "y or q quit · n stay"
	box := st.Overlay.Render(msg)
	// The screen stays in sight under the question, faint and without its
	// own styles, as a modal dialog leaves it.
	lines := strings.Split(fitBlock(under, w, h), "\n")
	for i, l := range lines {
		lines[i] = st.Faint.Render(ansi.Strip(l))
	}
	bw, bh := lipgloss.Width(box), lipgloss.Height(box)
	return lipgloss.NewCanvas(w, h).Compose(lipgloss.NewCompositor(
		lipgloss.NewLayer(strings.Join(lines, "\n")),
		lipgloss.NewLayer(box).X(max((w-bw)/2, 0)).Y(max((h-bh)/2, 0)).Z(1),
	)).Render()
}

// joinColumns sets right beside left, left padded to leftW columns and a
// gap of gap spaces: lipgloss.JoinHorizontal without measuring the right
// side, which is already cut to its width.
func joinColumns(left string, leftW, gap int, right string) string {
	ls, rs := strings.Split(left, "\n"), strings.Split(right, "\n")
	n := max(len(ls), len(rs))
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte('\n')
		}
		l := ""
		if i < len(ls) {
			l = ls[i]
		}
		lw := len(l)
		if lw > leftW || strings.IndexByte(l, 0x1b) >= 0 || !isASCII(l) {
			lw = ansi.StringWidth(l)
		}
		if lw > leftW {
			l, lw = ansi.Truncate(l, leftW, ""), leftW
		}
		b.WriteString(l)
		if i < len(rs) {
			b.WriteString(strings.Repeat(" ", leftW-lw+gap))
			b.WriteString(rs[i])
		}
	}
	return b.String()
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// fitBlock pads or cuts s to exactly h lines of at most w columns.
func fitBlock(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		// A line of no more bytes than columns fits: measuring it (by
		// grapheme) is the costly part of a frame.
		if len(l) > w && ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}
