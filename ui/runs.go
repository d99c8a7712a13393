package ui

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/chart"
	"thaw/ui/export"
)

// The Runs screen follows the backend's change feed while shown, so that
// runs started elsewhere appear and move: it reads the store again when
// the feed says the runs changed, and sends nothing while they do not.
// Every feedIdle without a change it wakes, without a query, to see
// whether it is still drawn; not drawn for 3 feedIdle, it leaves the feed
// until shown again. Two reads are at least feedGap apart, so that a
// sweep streaming metrics on many nodes costs a read every feedGap.
const (
	feedIdle = time.Second
	feedGap  = 250 * time.Millisecond
)

// runRow is one stored run as the table shows it: its read model, with
// the status judged when it was read.
type runRow struct {
	view   engine.RunView
	run    engine.Run // view.Run, as stored; show view.Status, not run.Status
	name   string     // sanitised
	tags   []string   // sanitised
	plan   string
	parent string // the parent's name, for a branch

	// task is the sweep task the run trains, nil for none: the table
	// groups a sweep's runs (see groupSweeps).
	task *engine.SweepTask
}

// status is the run's status judged when it was read: a run whose
// heartbeat went stale is interrupted.
func (row runRow) status() trainer.Status { return row.view.Status }

// Messages of the Runs screen.
type (
	runsPollMsg struct {
		seq             int
		changed, closed bool
	}
	runsListedMsg struct {
		seq  int
		rows []runRow
		err  error
	}
	runLoadedMsg struct {
		id  string
		run export.Run
		err error
	}
	overlayLoadedMsg struct {
		seq  int
		runs []export.Run
		err  error
	}
	runsDeletedMsg struct {
		ids []string
		err error
	}
	// runEditedMsg says a run's name or tags were saved (what says
	// which), or why not.
	runEditedMsg struct {
		id, what string
		err      error
	}
)

// promptKind is what the Runs screen's text prompt edits.
type promptKind int

const (
	promptNone promptKind = iota
	promptTags
	promptRename
)

// sortKeys are the orders `s` cycles through.
var sortKeys = []string{"started", "best val acc", "name", "status"}

// runsScreen lists the stored runs, opens one, overlays several.
type runsScreen struct {
	s    *Session
	keys RunsKeys
	pal  palette

	rows     []runRow
	shown    []int // indexes into rows after filter and sort
	cursor   int
	marked   map[string]bool
	sortBy   int
	filter   textinput.Model
	filterOn bool
	err      error

	pollSeq  int
	polling  bool
	viewedAt time.Time
	feed     <-chan struct{} // the backend's change feed, while polling
	feedStop context.CancelFunc
	listing  bool      // a read is under way
	dirty    bool      // the feed fired during it: read again
	listedAt time.Time // when the last read started

	// detail is an opened run.
	detail     *dashboard
	detailID   string
	detailRun  export.Run
	detailLive bool

	// overlay compares the marked runs.
	overlayOn   bool
	overlaySeq  int
	overlayRuns []export.Run
	byStage     bool
	ovLoss      *chart.Chart
	ovAcc       *chart.Chart
	ovW, ovH    int

	// prompt edits the tags or the name of run promptID.
	prompt     textinput.Model
	promptKind promptKind
	promptID   string

	// confirmDelete are the runs the open dialog would delete.
	confirmDelete []string
	hits          listHits
}

func newRunsScreen(s *Session) ScreenModel {
	return &runsScreen{
		s: s, keys: s.Keys.Runs, marked: map[string]bool{},
		filter: textInput("/", "name, model, data, status or tag"),
		prompt: textInput("", ""),
		pal:    palette{dark: s.Styles.Dark, noColor: s.Styles.NoColor},
	}
}

func (r *runsScreen) Capturing() bool {
	return r.filterOn || r.detail != nil || r.overlayOn || len(r.confirmDelete) > 0 || r.promptKind != promptNone
}

func (r *runsScreen) Keys() []key.Binding {
	k := r.keys
	switch {
	case len(r.confirmDelete) > 0:
		return []key.Binding{r.s.Keys.Yes, r.s.Keys.No}
	case r.promptKind != promptNone, r.filterOn:
		return []key.Binding{k.Apply, k.BackToList}
	case r.detail != nil:
		// esc goes back to the list: the frame's help already says "back".
		return r.detail.keys.list()
	case r.overlayOn:
		return []key.Binding{k.Align, k.Export}
	}
	// enter opens a run: the frame's "next" key, so not listed again.
	return []key.Binding{k.Mark, k.Overlay, k.Resume, k.Sweep, k.Delete, k.Tags, k.Rename, k.Export, k.Filter, k.Sort}
}

func (r *runsScreen) backend() Backend { return r.s.runs() }

func (r *runsScreen) Update(msg tea.Msg) (ScreenModel, tea.Cmd) {
	switch msg := msg.(type) {
	case shownMsg:
		r.viewedAt = time.Now()
		return r, r.startPolling()
	case runsPollMsg:
		if msg.seq != r.pollSeq || !r.polling {
			return r, nil
		}
		// Follow only while the screen is on view; shownMsg starts again.
		if msg.closed || !msg.changed && time.Since(r.viewedAt) > 3*feedIdle {
			r.stopPolling()
			return r, nil
		}
		if !msg.changed {
			return r, r.waitCmd()
		}
		if r.listing {
			r.dirty = true
			return r, r.waitCmd()
		}
		return r, tea.Batch(r.listCmd(), r.waitCmd())
	case runsListedMsg:
		if msg.seq != r.pollSeq {
			return r, nil
		}
		r.listing = false
		r.err = msg.err
		if msg.err == nil {
			// The rows may be fewer than before (a run deleted here or
			// elsewhere): keep the cursor's run by id, not by index.
			cur := r.currentID()
			r.rows = msg.rows
			r.refilterAt(cur)
			if r.detail != nil && !r.has(r.detailID) {
				r.detail, r.detailID = nil, ""
				r.s.flash("the run shown was deleted")
			}
		}
		var cmds []tea.Cmd
		if r.dirty && r.polling {
			r.dirty = false
			cmds = append(cmds, r.listCmd())
		}
		if r.detail != nil && r.detailLive {
			cmds = append(cmds, r.loadCmd(r.detailID))
		}
		return r, tea.Batch(cmds...)
	case runLoadedMsg:
		if msg.id != r.detailID || r.detail == nil {
			return r, nil
		}
		if msg.err != nil {
			r.s.flashErr(msg.err)
			return r, nil
		}
		r.detailRun = msg.run
		status := msg.run.View.Status
		r.detailLive = status.Live()
		keep := r.detail
		r.detail = newDashboard(r.pal)
		r.detail.smoothIdx = keep.smoothIdx
		r.detail.load(msg.run, status)
		r.detail.loss.SetLogY(keep.loss.LogY())
	case overlayLoadedMsg:
		if msg.seq != r.overlaySeq || !r.overlayOn {
			return r, nil
		}
		if msg.err != nil {
			r.s.flashErr(msg.err)
			r.overlayOn = false
			return r, nil
		}
		r.overlayRuns = msg.runs
		r.ovW, r.ovH = 0, 0
	case runsDeletedMsg:
		if msg.err != nil {
			r.s.flashErr(msg.err)
		} else if len(msg.ids) == 1 {
			r.s.flash("run " + engine.Short(msg.ids[0]) + " deleted")
		} else {
			r.s.flash(fmt.Sprintf("%d runs deleted", len(msg.ids)))
		}
		done := msg.ids
		if msg.err != nil {
			done = done[:len(done)-1] // the one that failed
		}
		for _, id := range done {
			delete(r.marked, id)
		}
		return r, r.listCmd()
	case runEditedMsg:
		if msg.err != nil {
			r.s.flashErr(msg.err)
		} else {
			r.s.flash(msg.what + " of run " + engine.Short(msg.id) + " saved")
		}
		return r, r.listCmd()
	case exportedMsg:
		if msg.from != ScreenRuns {
			return r, nil
		}
		if msg.err != nil {
			r.s.flashErr(msg.err)
		} else {
			r.s.flash("overlay written to " + msg.path)
		}
	case tea.KeyPressMsg:
		return r, r.handleKey(msg)
	case tea.MouseWheelMsg:
		switch {
		case r.detail != nil:
			r.detail.handleWheel(msg)
		case !r.Capturing():
			r.cursor, _ = wheelCursor(msg, r.cursor, len(r.shown))
		}
	case tea.MouseClickMsg:
		// A click selects a run; a click on the selected one opens it.
		if i, ok := r.hits.at(msg.Y); ok && !r.Capturing() && msg.Button == tea.MouseLeft {
			if i == r.cursor {
				return r, r.handleKey(tea.KeyPressMsg{Code: tea.KeyEnter})
			}
			r.cursor = i
		}
	}
	return r, nil
}

func (r *runsScreen) startPolling() tea.Cmd {
	if r.polling || r.backend() == nil {
		return nil
	}
	r.polling = true
	r.pollSeq++
	r.listing, r.dirty = false, false
	var ctx context.Context
	ctx, r.feedStop = context.WithCancel(r.s.ctx)
	r.feed = r.backend().Subscribe(ctx)
	return tea.Batch(r.listCmd(), r.waitCmd())
}

// stopPolling leaves the change feed.
func (r *runsScreen) stopPolling() {
	r.polling = false
	if r.feedStop != nil {
		r.feedStop()
	}
	r.feed, r.feedStop = nil, nil
}

// waitCmd waits for the change feed to fire, at most feedIdle, and no
// sooner than feedGap after the last read began.
func (r *runsScreen) waitCmd() tea.Cmd {
	ch, seq, since := r.feed, r.pollSeq, r.listedAt
	return func() tea.Msg {
		if d := feedGap - time.Since(since); d > 0 {
			time.Sleep(d)
		}
		t := time.NewTimer(feedIdle)
		defer t.Stop()
		select {
		case _, ok := <-ch:
			return runsPollMsg{seq: seq, changed: ok, closed: !ok}
		case <-t.C:
			return runsPollMsg{seq: seq}
		}
	}
}

// listCmd reads the runs and their figures through the read model.
func (r *runsScreen) listCmd() tea.Cmd {
	eng := r.backend()
	if eng == nil {
		return nil
	}
	seq, ctx, src := r.pollSeq, r.s.ctx, r.s.runs()
	r.listing, r.listedAt = true, time.Now()
	return func() tea.Msg {
		rows, err := listRuns(ctx, src)
		return runsListedMsg{seq: seq, rows: rows, err: err}
	}
}

// listRuns reads every run the backend lists, through the read model.
func listRuns(ctx context.Context, src Backend) ([]runRow, error) {
	views, err := src.List(ctx, engine.RunFilter{})
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	rows := make([]runRow, 0, len(views))
	for _, v := range views {
		row := runRow{view: v, run: v.Run, name: termtext.Sanitize(v.Run.Name), plan: export.PlanName(v.Run.Plan)}
		for _, t := range v.Run.Tags {
			row.tags = append(row.tags, termtext.Sanitize(t))
		}
		if v.Parent.IsBranch() {
			row.parent = termtext.Sanitize(v.Parent.Name)
		}
		var err error
		if row.task, err = sweepTaskOf(ctx, src, v.Run); err != nil {
			return nil, err
		} else if row.task != nil {
			row.name = sweepRunName(row.task)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// refilter applies the filter and the sort to the rows, keeping the
// cursor on its run.
func (r *runsScreen) refilter() { r.refilterAt(r.currentID()) }

// currentID is the id of the run under the cursor, empty for none.
func (r *runsScreen) currentID() string {
	if row := r.current(); row != nil {
		return row.run.ID
	}
	return ""
}

// has reports whether the table lists run id.
func (r *runsScreen) has(id string) bool {
	return slices.ContainsFunc(r.rows, func(row runRow) bool { return row.run.ID == id })
}

// refilterAt applies the filter and the sort to the rows and puts the
// cursor on run cur, or on the first row when it is gone.
func (r *runsScreen) refilterAt(cur string) {
	q := strings.ToLower(strings.TrimSpace(r.filter.Value()))
	r.shown = r.shown[:0]
	for i, row := range r.rows {
		// A run's id matches from its start (a short id pasted); inside,
		// its random letters would match any two-letter filter by chance.
		hay := strings.ToLower(strings.Join(append([]string{row.name, row.run.Model, row.run.Dataset, row.plan, string(row.status())}, row.tags...), " "))
		if q == "" || strings.Contains(hay, q) || strings.HasPrefix(strings.ToLower(row.run.ID), q) {
			r.shown = append(r.shown, i)
		}
	}
	by := sortKeys[r.sortBy]
	slices.SortStableFunc(r.shown, func(a, b int) int {
		x, y := r.rows[a], r.rows[b]
		switch by {
		case "best val acc":
			ax, ay := x.view.Best.ValAcc, y.view.Best.ValAcc
			if math.IsNaN(ax) {
				ax = -1
			}
			if math.IsNaN(ay) {
				ay = -1
			}
			return cmpFloat(ay, ax)
		case "name":
			return strings.Compare(x.name, y.name)
		case "status":
			return strings.Compare(string(x.status()), string(y.status()))
		}
		return y.run.Created.Compare(x.run.Created)
	})
	r.shown = groupSweeps(r.rows, r.shown)
	r.cursor = 0
	for i, idx := range r.shown {
		if r.rows[idx].run.ID == cur {
			r.cursor = i
		}
	}
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (r *runsScreen) current() *runRow {
	if r.cursor < 0 || r.cursor >= len(r.shown) || r.shown[r.cursor] >= len(r.rows) {
		return nil
	}
	return &r.rows[r.shown[r.cursor]]
}

func (r *runsScreen) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	s, k := r.s, r.keys
	if len(r.confirmDelete) > 0 {
		ids := r.confirmDelete
		switch {
		case key.Matches(msg, s.Keys.Yes):
			r.confirmDelete = nil
			ctx, src := s.ctx, s.runs()
			return func() tea.Msg {
				for i, id := range ids {
					if err := src.Delete(ctx, id); err != nil {
						return runsDeletedMsg{ids: ids[:i+1], err: err}
					}
				}
				return runsDeletedMsg{ids: ids}
			}
		case key.Matches(msg, s.Keys.No), key.Matches(msg, s.Keys.Back):
			r.confirmDelete = nil
		}
		return nil
	}
	if r.promptKind != promptNone {
		return r.handlePrompt(msg)
	}
	if r.filterOn {
		switch msg.String() {
		case "esc":
			r.filterOn = false
			r.filter.SetValue("")
			r.filter.Blur()
			r.refilter()
		case "enter":
			r.filterOn = false
			r.filter.Blur()
		default:
			var cmd tea.Cmd
			r.filter, cmd = r.filter.Update(msg)
			r.refilter()
			return cmd
		}
		return nil
	}
	if r.detail != nil {
		if msg.String() == "esc" || msg.String() == "q" {
			r.detail, r.detailID = nil, ""
			return nil
		}
		r.detail.handleKey(msg)
		return nil
	}
	if r.overlayOn {
		switch {
		case msg.String() == "esc" || msg.String() == "q":
			r.overlayOn = false
		case key.Matches(msg, k.Align):
			r.byStage = !r.byStage
			r.ovW, r.ovH = 0, 0
		case key.Matches(msg, k.Export):
			return r.exportMarked()
		}
		return nil
	}
	switch {
	case key.Matches(msg, s.Keys.listKeys()...):
		r.cursor, _ = moveCursor(s.Keys, msg, r.cursor, len(r.shown))
	case key.Matches(msg, k.Filter):
		r.filterOn = true
		return r.filter.Focus()
	case key.Matches(msg, k.Sort):
		r.sortBy = (r.sortBy + 1) % len(sortKeys)
		r.refilter()
		s.flash("sorted by " + sortKeys[r.sortBy])
	case key.Matches(msg, k.Mark):
		if row := r.current(); row != nil {
			r.marked[row.run.ID] = !r.marked[row.run.ID]
			if !r.marked[row.run.ID] {
				delete(r.marked, row.run.ID)
			}
			r.cursor = min(r.cursor+1, max(len(r.shown)-1, 0))
		}
	case key.Matches(msg, k.Open), key.Matches(msg, s.Keys.Forward):
		if row := r.current(); row != nil {
			if s.run != nil && s.run.ID == row.run.ID && !s.runDone {
				// The session's own run, still training: its live
				// dashboard, not a stored view polled each second.
				return func() tea.Msg { return gotoMsg(ScreenTrain) }
			}
			r.detailID = row.run.ID
			r.detail = newDashboard(r.pal)
			r.detailLive = row.status().Live()
			return r.loadCmd(row.run.ID)
		}
	case key.Matches(msg, k.Overlay):
		return r.openOverlay()
	case key.Matches(msg, k.Delete):
		ids := r.markedIDs()
		for _, id := range ids {
			if row := r.row(id); row != nil && row.status().Live() {
				s.flashErr(fmt.Errorf("run %s is %s: stop it before deleting it", runLabel(row), row.view.Live))
				return nil
			}
		}
		r.confirmDelete = ids
	case key.Matches(msg, k.Tags):
		if row := r.current(); row != nil {
			// Sanitised as shown: the field draws what it holds.
			return r.openPrompt(promptTags, row.run.ID, "tags: ", strings.Join(row.tags, ", "))
		}
	case key.Matches(msg, k.Rename):
		if row := r.current(); row != nil {
			// The stored name, not a sweep's task name the table shows.
			return r.openPrompt(promptRename, row.run.ID, "name: ", termtext.Sanitize(row.run.Name))
		}
	case key.Matches(msg, k.Export):
		return r.exportMarked()
	case key.Matches(msg, k.Resume):
		return r.resume()
	case key.Matches(msg, k.Sweep):
		return r.followSweep()
	}
	return nil
}

// followSweep opens the sweep of the run under the cursor on the Blocks
// screen's sweep panel, which follows it (see blocksScreen.followSweep).
func (r *runsScreen) followSweep() tea.Cmd {
	row := r.current()
	switch {
	case row == nil:
		return nil
	case row.task == nil:
		r.s.flashErr(fmt.Errorf("run %s belongs to no sweep: W follows the sweep of a sweep's run (named … · sweep ID)", runLabel(row)))
		return nil
	}
	id := row.task.Sweep
	return func() tea.Msg { return followSweepMsg{sweep: id} }
}

// openPrompt opens the text prompt on value, its cursor at the end, to
// edit what kind says of run id.
func (r *runsScreen) openPrompt(kind promptKind, id, prompt, value string) tea.Cmd {
	r.promptKind, r.promptID = kind, id
	r.prompt.Prompt = prompt
	r.prompt.Placeholder = map[promptKind]string{promptTags: "comma-separated, empty for none", promptRename: "the run's name"}[kind]
	r.prompt.SetValue(value)
	r.prompt.CursorEnd()
	return r.prompt.Focus()
}

func (r *runsScreen) closePrompt() {
	r.promptKind, r.promptID = promptNone, ""
	r.prompt.Blur()
}

// handlePrompt edits the tags or name: enter saves through the backend,
// esc closes the prompt and nothing else (the innermost thing first).
func (r *runsScreen) handlePrompt(msg tea.KeyPressMsg) tea.Cmd {
	switch msg.String() {
	case "esc":
		r.closePrompt()
		return nil
	case "enter":
	default:
		var cmd tea.Cmd
		r.prompt, cmd = r.prompt.Update(msg)
		return cmd
	}
	id, kind, val := r.promptID, r.promptKind, r.prompt.Value()
	ctx, src := r.s.ctx, r.s.runs()
	if src == nil {
		r.closePrompt()
		return nil
	}
	switch kind {
	case promptRename:
		name := strings.TrimSpace(val)
		if name == "" {
			// Kept open: the name is refused, not the edit.
			r.s.flashErr(errors.New("a run needs a name: type one, or esc to keep the old"))
			return nil
		}
		r.closePrompt()
		return func() tea.Msg { return runEditedMsg{id: id, what: "name", err: src.Rename(ctx, id, name)} }
	case promptTags:
		tags := parseTags(val)
		r.closePrompt()
		return func() tea.Msg { return runEditedMsg{id: id, what: "tags", err: src.SetTags(ctx, id, tags)} }
	}
	return nil
}

// parseTags reads comma-separated tags: trimmed, empty ones dropped. The
// store checks and sorts them.
func parseTags(s string) []string {
	tags := []string{}
	for t := range strings.SplitSeq(s, ",") {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(tags, t) {
			tags = append(tags, t)
		}
	}
	return tags
}

// row returns the listed run id, nil when it is not listed.
func (r *runsScreen) row(id string) *runRow {
	for i := range r.rows {
		if r.rows[i].run.ID == id {
			return &r.rows[i]
		}
	}
	return nil
}

// runLabel names a run in a message or dialog: its sanitised name,
// quoted, then its short id, since names need not be unique.
func runLabel(row *runRow) string {
	return fmt.Sprintf("%q (%s)", row.name, engine.Short(row.run.ID))
}

// deleteQuestion is the delete dialog's question for runs ids: a run by
// name and id, several by count and their first names.
func (r *runsScreen) deleteQuestion() string {
	ids := r.confirmDelete
	label := func(id string) string {
		if row := r.row(id); row != nil {
			return runLabel(row)
		}
		return engine.Short(id)
	}
	if len(ids) == 1 {
		return "Delete run " + label(ids[0]) + " with its metrics and checkpoints?"
	}
	var names []string
	for _, id := range ids[:min(len(ids), 3)] {
		names = append(names, label(id))
	}
	more := ""
	if len(ids) > 3 {
		more = fmt.Sprintf(" and %d more", len(ids)-3)
	}
	return fmt.Sprintf("Delete %d runs, %s%s,\nwith their metrics and checkpoints?", len(ids), strings.Join(names, ", "), more)
}

func (r *runsScreen) loadCmd(id string) tea.Cmd {
	eng := r.backend()
	if eng == nil {
		return nil
	}
	ctx, src := r.s.ctx, r.s.runs()
	return func() tea.Msg {
		run, err := readRun(ctx, src, id, 4000)
		return runLoadedMsg{id: id, run: run, err: err}
	}
}

// markedIDs lists the marked runs in the table's order, or the run under
// the cursor when none is marked.
func (r *runsScreen) markedIDs() []string {
	var ids []string
	for _, row := range r.rows {
		if r.marked[row.run.ID] {
			ids = append(ids, row.run.ID)
		}
	}
	if len(ids) == 0 {
		if row := r.current(); row != nil {
			ids = []string{row.run.ID}
		}
	}
	return ids
}

func (r *runsScreen) openOverlay() tea.Cmd {
	ids := r.markedIDs()
	eng := r.backend()
	if len(ids) == 0 || eng == nil {
		r.s.flash("mark runs with space first")
		return nil
	}
	r.overlayOn, r.overlayRuns = true, nil
	r.overlaySeq++
	seq, ctx, src := r.overlaySeq, r.s.ctx, r.s.runs()
	return func() tea.Msg {
		var runs []export.Run
		for _, id := range ids {
			run, err := readRun(ctx, src, id, 2000)
			if err != nil {
				return overlayLoadedMsg{seq: seq, err: err}
			}
			runs = append(runs, run)
		}
		return overlayLoadedMsg{seq: seq, runs: runs}
	}
}

func (r *runsScreen) exportMarked() tea.Cmd {
	ids := r.markedIDs()
	eng := r.backend()
	if len(ids) == 0 || eng == nil {
		r.s.flash("mark runs with space first")
		return nil
	}
	name := "thaw-overlay-" + time.Now().Format("20060102-150405") + ".png"
	if len(ids) == 1 {
		name = "thaw-" + engine.Short(ids[0]) + ".png"
	}
	return exportCmd(r.s.ctx, ScreenRuns, r.s, ids, name, export.DefaultOptions())
}

func (r *runsScreen) resume() tea.Cmd {
	row := r.current()
	eng := r.backend()
	if row == nil || eng == nil {
		return nil
	}
	switch {
	case r.s.training():
		r.s.flashErr(errors.New("a run is training here: stop it on Train (4) before resuming another"))
		return nil
	case row.status() != trainer.StatusStopped && row.status() != trainer.StatusInterrupted:
		r.s.flashErr(fmt.Errorf("run %s is %s: only a stopped or interrupted run resumes", engine.Short(row.run.ID), row.view.Live))
		return nil
	}
	id, ctx := row.run.ID, r.s.ctx
	r.s.flash("resuming " + engine.Short(id) + "…")
	return func() tea.Msg {
		run, err := eng.Resume(ctx, id, engine.StartOptions{})
		if err != nil {
			return errMsg{fmt.Errorf("resume: %w", err)}
		}
		return runStartedMsg{run: run}
	}
}

// ---------------------------------------------------------------------
// Drawing

func (r *runsScreen) View(w, h int) string {
	r.viewedAt = time.Now()
	if pal := (palette{dark: r.s.Styles.Dark, noColor: r.s.Styles.NoColor}); pal != r.pal {
		r.pal = pal
		if r.detail != nil {
			r.detail.setPalette(pal)
		}
		r.ovW = 0
	}
	st := r.s.Styles
	if r.backend() == nil {
		return st.Heading.Render("Runs") + "\n\n" + "This workbench has no run store: start thaw with --store to list runs."
	}
	switch {
	case len(r.confirmDelete) > 0:
		return overlay(r.s, w, h, ansi.Wrap(r.deleteQuestion(), max(w-8, 20), " ")+"\n\ny delete · n keep")
	case r.detail != nil:
		return r.detailView(w, h)
	case r.overlayOn:
		return r.overlayView(w, h)
	}
	return r.tableView(w, h)
}

// runColumn is a column of the Runs table beside the name.
type runColumn struct {
	name string
	w    int
	// drop orders the columns a narrow table leaves out: the highest
	// first; 0 for the columns it always keeps.
	drop int
}

// runColumns are the table's columns after the name, in their order.
// Name, status and best always show; the others leave, least telling
// first, until the name has minNameW cells.
var runColumns = []runColumn{
	{"model", 12, 9}, {"data", 12, 10}, {"preset", 12, 3}, {"shots", 5, 4}, {"freeze", 8, 2},
	{"peak lr", 7, 5}, {"seed", 6, 6}, {"status", 16, 0}, {"best acc", 8, 0}, {"steps", 6, 7}, {"started", 11, 8},
}

// minNameW is the narrowest name column before columns leave.
const minNameW = 22

// fitColumns returns the columns that fit w cells with the name, and
// the name's width.
func fitColumns(w int) ([]runColumn, int) {
	cols := slices.Clone(runColumns)
	nameW := func() int {
		n := w - 4
		for _, c := range cols {
			n -= c.w + 1
		}
		return n
	}
	for nameW() < minNameW {
		i := -1
		for j, c := range cols {
			if c.drop > 0 && (i < 0 || c.drop > cols[i].drop) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		cols = slices.Delete(cols, i, i+1)
	}
	return cols, max(nameW(), 12)
}

// configCells are a run's configuration columns, from the read model.
func configCells(row runRow) map[string]string {
	c := row.view.Config
	cells := map[string]string{"preset": row.plan, "shots": "—", "freeze": "—", "peak lr": "—", "seed": "—"}
	if c == nil {
		return cells // no job record
	}
	cells["shots"] = "all"
	if c.Shots > 0 {
		cells["shots"] = fmt.Sprint(c.Shots)
	}
	if c.FreezePoint != "" {
		cells["freeze"] = termtext.Sanitize(c.FreezePoint)
	}
	if c.PeakLR > 0 {
		cells["peak lr"] = strings.Replace(fmt.Sprintf("%.0e", c.PeakLR), "e-0", "e-", 1)
	}
	cells["seed"] = fmt.Sprint(c.Seed)
	return cells
}

// tableView draws the runs: the name (with its tags) takes what the
// columns leave.
func (r *runsScreen) tableView(w, h int) string {
	st := r.s.Styles
	var b strings.Builder
	info := fmt.Sprintf("  %d stored", len(r.rows))
	if n := len(r.marked); n > 0 {
		info += fmt.Sprintf(" · %d marked", n)
	}
	info += fmt.Sprintf(" · sorted by %s · enter opens", sortKeys[r.sortBy])
	title := st.Heading.Render("Runs") + st.Faint.Render(info)
	if r.filterOn || r.filter.Value() != "" {
		title += "  " + r.filter.View()
	}
	b.WriteString(ansi.Truncate(title, w, "…") + "\n")
	if r.promptKind != promptNone {
		// The prompt takes the title's place below it, naming its run.
		label := engine.Short(r.promptID)
		if row := r.row(r.promptID); row != nil {
			label = runLabel(row)
		}
		fieldWidth(&r.prompt, w, 2)
		b.WriteString(ansi.Truncate(st.Faint.Render("run "+label+" · enter saves · esc keeps"), w, "…") + "\n")
		b.WriteString(ansi.Truncate("  "+r.prompt.View(), w, "") + "\n")
		h -= 2
	}
	if r.err != nil {
		b.WriteString(st.Error.Render(r.err.Error()) + "\n")
	}
	fixed, nameW := fitColumns(w)
	head := fmt.Sprintf("   %-*s", nameW, "name")
	for _, c := range fixed {
		head += " " + pad(c.name, c.w)
	}
	b.WriteString(st.Faint.Render(ansi.Truncate(head, w, "")) + "\n")
	if len(r.shown) == 0 {
		b.WriteString(st.Faint.Render("   no runs" + map[bool]string{true: " match the filter", false: " yet: start one on Plan (3), or thaw train"}[r.filter.Value() != ""]))
		return b.String()
	}
	rowsH := max(h-3, 1)
	top := max(0, min(r.cursor-rowsH/2, len(r.shown)-rowsH))
	r.hits = listHits{y0: strings.Count(b.String(), "\n"), first: top, n: min(rowsH, len(r.shown)-top), w: w}
	for i := top; i < len(r.shown) && i < top+rowsH; i++ {
		row := r.rows[r.shown[i]]
		mark := "  "
		if r.marked[row.run.ID] {
			mark = "● "
		}
		name := row.name
		if row.parent != "" {
			name = "⑂ " + name + " ← " + row.parent
		}
		for _, t := range row.tags {
			name += " #" + t
		}
		acc := "—"
		if !math.IsNaN(row.view.Best.ValAcc) {
			acc = fmt.Sprintf("%.1f%%", 100*row.view.Best.ValAcc)
		}
		vals := configCells(row)
		maps.Copy(vals, map[string]string{
			"model": row.run.Model, "data": row.run.Dataset, "status": statusCell(row.view.Live),
			"best acc": acc, "steps": compactInt(int(row.view.Step)), "started": row.run.Created.Local().Format("01-02 15:04"),
		})
		line := " " + mark + pad(name, nameW)
		if i == r.cursor {
			line = "▸" + mark + pad(name, nameW) // visible without colours too
		}
		for _, c := range fixed {
			line += " " + pad(termtext.Sanitize(vals[c.name]), c.w)
		}
		line = ansi.Truncate(line, w, "")
		if i == r.cursor {
			line = st.Selected.Render(line)
		} else if row.status().Live() {
			line = lipgloss.NewStyle().Bold(true).Render(line)
		}
		b.WriteString(line + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// statusCell is a run's judged status in the table's sixteen cells: a
// run whose heartbeat is ageing shows its countdown, "interrupted? 12s"
// (Liveness.String says it in full).
func statusCell(l engine.Liveness) string {
	if l.Doubtful {
		return fmt.Sprintf("%s? %ds", trainer.StatusInterrupted, int(math.Ceil(l.Left.Seconds())))
	}
	return string(l.Status)
}

// compactInt writes a count in at most six cells: 9999, 12.3k, 20.0M.
func compactInt(n int) string {
	switch {
	case n < 10_000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	default:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
}

// pad cuts or pads s to exactly w cells.
func pad(s string, w int) string {
	s = ansi.Truncate(s, w, "…")
	return s + strings.Repeat(" ", max(w-ansi.StringWidth(s), 0))
}

// detailView is an opened run: the dashboard's charts and its per-stage
// table.
func (r *runsScreen) detailView(w, h int) string {
	if r.detail == nil || !r.detail.hasLast {
		return "loading " + engine.Short(r.detailID) + "…"
	}
	table := stageTable([]export.Run{r.detailRun}, false, w)
	tl := strings.Count(table, "\n") + 1
	chartsH := max(h-tl-1, 12)
	return r.detail.view(w, chartsH) + "\n" + table
}

// stageStat is one stage of one run in the comparison table, as the
// read model has it.
type stageStat struct {
	run, stage        string
	ran, planned      int64
	note              string // "parent" (inherited), "skipped", "patience", "not reached"
	best              bool   // the run's best evaluation is in it
	bestAcc, bestLoss float64
	srcStart, srcEnd  float64
}

// stageStats is each stage of r as planned and as run: steps, the best
// evaluation in it, the source accuracy's change (from before training,
// for the first stage), and whether the run's best is there.
func stageStats(r export.Run) []stageStat {
	v := r.View
	var out []stageStat
	for i, st := range v.Stages {
		s := stageStat{run: termtext.Sanitize(r.Name), stage: termtext.Sanitize(st.Label), ran: st.Ran(v.Step), planned: st.Planned,
			bestAcc: st.BestValAcc, bestLoss: st.BestValLoss, srcStart: st.SourceAccStart, srcEnd: st.SourceAccEnd,
			best: v.Best.Step >= 0 && st.Start >= 0 && v.Best.Step > st.Start && (st.End < 0 || v.Best.Step <= st.End)}
		if i == 0 && !math.IsNaN(v.SourceAccBefore) {
			s.srcStart = v.SourceAccBefore
		}
		switch {
		case st.Inherited:
			s.note = "parent"
		case st.Skipped:
			s.note = "skipped"
		case st.StoppedEarly:
			s.note = "patience"
		case st.Start < 0:
			s.note = "not reached"
		}
		out = append(out, s)
	}
	return out
}

// stageTable compares runs stage by stage, in w cells.
func stageTable(runs []export.Run, withRun bool, w int) string {
	var b strings.Builder
	runW := min(24, max(w-80, 10))
	head := fmt.Sprintf("%-22s %13s %9s %9s %12s %-12s", "stage", "steps/planned", "best acc", "val loss", "forgetting", "")
	if withRun {
		head = pad("run", runW) + " " + head
	}
	b.WriteString(lipgloss.NewStyle().Bold(true).Render(strings.TrimRight(head, " ")))
	for _, r := range runs {
		for _, s := range stageStats(r) {
			b.WriteString("\n")
			if withRun {
				b.WriteString(pad(s.run, runW) + " ")
			}
			forget := "—"
			if !math.IsNaN(s.srcStart) && !math.IsNaN(s.srcEnd) {
				forget = fmt.Sprintf("%+.1f pts", 100*(s.srcEnd-s.srcStart))
			}
			acc, loss := "—", "—"
			if !math.IsNaN(s.bestAcc) {
				acc = fmt.Sprintf("%.1f%%", 100*s.bestAcc)
			}
			if !math.IsNaN(s.bestLoss) {
				loss = fmt.Sprintf("%.4f", s.bestLoss)
			}
			note := s.note
			if s.best {
				note = strings.TrimSpace("* best " + note)
			}
			steps := compactInt(int(s.ran)) + "/" + compactInt(int(s.planned))
			b.WriteString(strings.TrimRight(fmt.Sprintf("%s %13s %9s %9s %12s %s", pad(s.stage, 22), steps, acc, loss, forget, note), " "))
		}
	}
	return b.String()
}

// overlayView draws the marked runs on one loss chart and one accuracy
// chart, aligned by step or by stage start, and their per-stage table.
func (r *runsScreen) overlayView(w, h int) string {
	if r.overlayRuns == nil {
		return "loading the marked runs…"
	}
	table := stageTable(r.overlayRuns, true, w)
	tl := strings.Count(table, "\n") + 1
	tl = min(tl, h/3)
	tableLines := strings.Split(table, "\n")
	if len(tableLines) > tl {
		tableLines = tableLines[:tl]
	}
	chartsH := h - tl - 3
	if r.ovW != w || r.ovH != chartsH || r.ovLoss == nil {
		r.buildOverlay(w, chartsH)
	}
	align := "aligned by step"
	if r.byStage {
		align = "aligned by stage start"
	}
	var legend []string
	for i, run := range r.overlayRuns {
		legend = append(legend, r.pal.fg(runColor(r.pal, i)).Render("━ "+termtext.Sanitize(run.Name)))
	}
	title := lipgloss.NewStyle().Bold(true).Render("overlay") + "  " + align + " (a toggles)  " + strings.Join(legend, "  ")
	return ansi.Truncate(title, w, "…") + "\n" +
		"smoothed train loss\n" + r.ovLoss.View() + "\n" +
		"val acc\n" + r.ovAcc.View() + "\n" + strings.Join(tableLines, "\n")
}

func runColor(p palette, i int) color.Color {
	cs := []color.Color{p.smooth(), p.val(), p.acc(), p.src(), p.best(), p.c(toneGold)}
	return cs[i%len(cs)]
}

// buildOverlay rasterises the overlay charts: on data or size change, not
// per frame.
func (r *runsScreen) buildOverlay(w, h int) {
	r.ovW, r.ovH = w, h
	lossH := max(h*3/5, 5)
	r.ovLoss, r.ovAcc = chart.New(w, lossH), chart.New(w, max(h-lossH, 4))
	r.ovAcc.YPercent = true
	p := r.pal
	for _, c := range []*chart.Chart{r.ovLoss, r.ovAcc} {
		c.SetStyles(chart.Style{FG: p.dim(), Faint: true}, chart.Style{FG: p.dim()}, chart.Style{FG: p.dim()}, chart.Style{Bold: true}, chart.Style{FG: p.best(), Bold: true})
	}
	// By stage start: stage k begins at the same x for every run, the
	// longest run's stage setting the width.
	var lens []int
	for _, run := range r.overlayRuns {
		for k, st := range run.Stages {
			for len(lens) <= k {
				lens = append(lens, 0)
			}
			lens[k] = max(lens[k], stageLen(run, k))
			_ = st
		}
	}
	offsets := make([]int, len(lens)+1)
	for k, l := range lens {
		offsets[k+1] = offsets[k] + l
	}
	// By step: the steps trained, as the Train screen draws them (a stage
	// ended early leaves no empty stretch).
	skipped := make([]*dashboard, len(r.overlayRuns))
	for i, run := range r.overlayRuns {
		skipped[i] = &dashboard{}
		for _, g := range runGaps(run) {
			skipped[i].addGap(g[0], g[1])
		}
	}
	runIdx := map[string]int{}
	for i, run := range r.overlayRuns {
		runIdx[run.ID] = i
	}
	xOf := func(run export.Run, step int) float64 {
		if !r.byStage || len(run.Stages) == 0 {
			return float64(skipped[runIdx[run.ID]].disp(step))
		}
		k := 0
		for i, st := range run.Stages {
			if step > st.StartStep || (i == 0 && step >= st.StartStep) {
				k = i
			}
		}
		return float64(offsets[k] + step - run.Stages[k].StartStep)
	}
	var marks []chart.Mark
	if r.byStage {
		for k := range lens {
			marks = append(marks, chart.Mark{X: float64(offsets[k]), Label: fmt.Sprintf("stage %d", k+1)})
		}
	} else if len(r.overlayRuns) > 0 {
		for _, st := range r.overlayRuns[0].Stages {
			short := st.Label
			if _, after, ok := strings.Cut(short, ": "); ok {
				short = after
			}
			marks = append(marks, chart.Mark{X: float64(skipped[0].disp(st.StartStep)), Label: termtext.Sanitize(short)})
		}
	}
	r.ovLoss.SetMarks(marks)
	r.ovAcc.SetMarks(marks)
	for i, run := range r.overlayRuns {
		col := chart.Style{FG: runColor(p, i)}
		li := r.ovLoss.AddSeries(run.Name+" loss", chart.Line, col, true)
		ai := r.ovAcc.AddSeries(run.Name+" acc", chart.Points, col, true)
		var xs, ys []float64
		var axs, ays []float64
		for _, s := range run.Series {
			pts := s.Points
			if s.Means != nil {
				pts = s.Means
			}
			for _, pt := range pts {
				if run.BranchStep > 0 && pt.Step <= run.BranchStep && s.Name == export.TrainLoss {
					continue
				}
				switch s.Name {
				case export.TrainLoss:
					xs, ys = append(xs, xOf(run, pt.Step)), append(ys, pt.Value)
				case export.ValAcc:
					if run.BranchStep == 0 || pt.Step >= run.BranchStep {
						axs, ays = append(axs, xOf(run, pt.Step)), append(ays, pt.Value)
					}
				}
			}
		}
		ys = export.Smooth(nil, ys, smoothings[0])
		// Stage alignment can reorder nothing within a run: its stages
		// are in step order and land in increasing offsets.
		r.ovLoss.Append(li, xs, ys)
		r.ovAcc.Append(ai, axs, ays)
	}
	r.ovLoss.Render()
	r.ovAcc.Render()
}

// stageLen is how many steps stage k of run trained (so far, while it
// trains), as the read model counts them.
func stageLen(run export.Run, k int) int {
	if k >= len(run.View.Stages) {
		return 0
	}
	return int(run.View.Stages[k].Ran(run.View.Step))
}
