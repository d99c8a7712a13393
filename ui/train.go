package ui

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/export"
)

// runs returns the backend when it records runs, else nil: the Train and
// Runs screens' stored runs, resume, branch and export need one.
func (s *Session) runs() Backend {
	if s.hasStore() {
		return s.backend
	}
	return nil
}

// exportDir returns where figures of run id go, and how to show that
// folder: see Options.ExportDir.
func (s *Session) exportDir(ctx context.Context, id string) (dir, shown string, err error) {
	if s.opts.ExportDir != nil {
		dir, shown, err = s.opts.ExportDir(ctx, id)
	} else {
		dir, err = os.Getwd()
	}
	if shown == "" {
		shown = dir
	}
	return dir, shown, err
}

// Messages of the Train and Runs screens.
type (
	// exportedMsg: a figure was written to path (or err says why not).
	exportedMsg struct {
		from Screen // the screen that asked
		path string
		err  error
	}
	// branchPointsMsg lists the stage boundaries run id can branch from.
	branchPointsMsg struct {
		id     string
		points []branchPoint
		err    error
	}
	// confusionMsg is the confusion matrix of run id's best weights.
	confusionMsg struct {
		id      string
		classes []string
		counts  [][]int
		err     error
	}
)

// branchPoint is a stored stage boundary.
type branchPoint struct {
	stage int // 1-based: the end of this stage
	step  int
	label string
}

// continuations are what a branch can go on with: the Plan screen's
// stages, or a preset over the model's blocks.
var continuations = []string{"plan", "full", "head", "fine-tune", "gradual", "chain-thaw", "lp-ft"}

// trainScreen is the live dashboard of the session's run.
type trainScreen struct {
	s    *Session
	d    *dashboard
	keys TrainKeys
	pal  palette
	// askedBefore is the evaluation step at which the store was last
	// asked for the source accuracy before training (see beforeCmd).
	askedBefore int

	run    *engine.Live
	paused bool
	done   bool

	confirmStop bool
	// The branch picker: the stored stage boundaries, the one chosen and
	// the continuation.
	picking  bool
	points   []branchPoint
	pointIdx int
	contIdx  int

	confusion *confusionView
	exported  string

	// A branch just started: its id and stage count, until the frame
	// hands it back as the session's run.
	pendingID     string
	pendingStages int

	// tickSeq identifies the live tick of the run shown; a tick of an
	// earlier run is dropped.
	tickSeq int
}

// liveEvery is how often the Train screen reads how far the run's
// evaluation pass has got: twice a second, so that every second of a pass
// that makes no report shows it moving.
const liveEvery = time.Second / 2

// liveTickMsg is the Train screen's clock while a run trains.
type liveTickMsg struct{ seq int }

func liveTick(seq int) tea.Cmd {
	return tea.Tick(liveEvery, func(time.Time) tea.Msg { return liveTickMsg{seq: seq} })
}

// onTick reads the run's evaluation progress into the status line: a few
// atomic loads, no wait on the trainer.
func (t *trainScreen) onTick(msg liveTickMsg) tea.Cmd {
	if msg.seq != t.tickSeq || !t.live() {
		return nil
	}
	t.d.setEval(t.run.Evaluation())
	return liveTick(msg.seq)
}

func newTrainScreen(s *Session) ScreenModel {
	pal := palette{dark: s.Styles.Dark, noColor: s.Styles.NoColor}
	return &trainScreen{s: s, d: newDashboard(pal), keys: s.Keys.Train, pal: pal}
}

func (t *trainScreen) Keys() []key.Binding {
	if t.confirmStop {
		return []key.Binding{t.s.Keys.Yes, t.s.Keys.No}
	}
	if t.picking {
		return []key.Binding{
			t.s.Keys.Branch.Point, t.s.Keys.Branch.Continuation, t.s.Keys.Branch.Start, t.s.Keys.Branch.Cancel,
		}
	}
	k := t.keys
	return append([]key.Binding{k.Pause, k.Next, k.Stop, k.Export, k.Branch, k.Confusion, k.Metrics}, t.d.keys.list()...)
}

func (t *trainScreen) Capturing() bool { return t.confirmStop || t.picking }

func (t *trainScreen) Update(msg tea.Msg) (ScreenModel, tea.Cmd) {
	t.syncPalette()
	switch msg := msg.(type) {
	case branchStartedMsg:
		t.pendingID, t.pendingStages = msg.run.ID, msg.stages
		run := msg.run
		return t, func() tea.Msg { return runStartedMsg{run: run} }
	case runStartedMsg:
		t.start(msg.run)
		t.tickSeq++
		return t, liveTick(t.tickSeq)
	case liveTickMsg:
		return t, t.onTick(msg)
	case runHistoryMsg:
		if t.run == nil || msg.id != t.run.ID || msg.err != nil {
			return t, nil
		}
		t.d.resume(msg.run, msg.total, msg.stages)
		t.d.applyMetric()
		t.d.rasterise()
	case runProgressMsg:
		if t.run == nil || msg.id != t.run.ID {
			return t, nil // a report of a run no longer shown
		}
		t.d.progress(msg.p)
		t.paused = msg.p.Status == trainer.StatusPaused
		if msg.p.Event == trainer.EventEval {
			return t, t.beforeCmd(msg.p.Step)
		}
	case sourceBeforeMsg:
		if t.run != nil && msg.id == t.run.ID && !math.IsNaN(msg.acc) {
			t.d.srcBefore = msg.acc
			t.d.rasterise()
		}
	case runDoneMsg:
		if t.run == nil || msg.id != t.run.ID {
			return t, nil
		}
		t.done, t.paused = true, false
		t.d.setEval(trainer.EvalNone, 0, 0)
		st := msg.res.Status
		if msg.err != nil && st == "" {
			st = trainer.StatusFailed
		}
		if st != "" {
			t.d.status = st
			t.d.last.Status = st
		}
	case exportedMsg:
		if msg.from != ScreenTrain {
			return t, nil
		}
		if msg.err != nil {
			t.s.flashErr(msg.err)
		} else {
			t.exported = msg.path
			t.s.flash("curves written to " + msg.path)
		}
	case branchPointsMsg:
		if t.run == nil || msg.id != t.run.ID {
			return t, nil
		}
		if msg.err != nil {
			t.s.flashErr(msg.err)
			return t, nil
		}
		if len(msg.points) == 0 {
			t.s.flash("no stage has ended yet: a branch starts from a stored stage boundary")
			return t, nil
		}
		t.points, t.pointIdx, t.picking = msg.points, len(msg.points)-1, true
	case confusionMsg:
		if t.run == nil || msg.id != t.run.ID {
			return t, nil
		}
		if msg.err != nil {
			t.s.flashErr(msg.err)
			t.confusion = nil
			return t, nil
		}
		t.confusion = &confusionView{classes: msg.classes, counts: msg.counts}
	case tea.KeyPressMsg:
		return t, t.handleKey(msg)
	case tea.MouseWheelMsg:
		if !t.Capturing() && t.confusion == nil {
			t.d.handleWheel(msg)
		}
	}
	return t, nil
}

// syncPalette follows the session's styles (the terminal's background
// arrives after the first frame).
func (t *trainScreen) syncPalette() {
	pal := palette{dark: t.s.Styles.Dark, noColor: t.s.Styles.NoColor}
	if pal != t.pal {
		t.pal = pal
		t.d.setPalette(pal)
	}
}

// sourceBeforeMsg: the source accuracy of run id before training, as
// stored with its first checkpoint; NaN when not stored yet.
type sourceBeforeMsg struct {
	id  string
	acc float64
}

// beforeCmd asks the read model for the source accuracy before training,
// which the run stores with its first checkpoint, once per evaluation
// until it is known: the forgetting gauge compares with it.
func (t *trainScreen) beforeCmd(step int) tea.Cmd {
	src := t.s.runs()
	if src == nil || !math.IsNaN(t.d.srcBefore) || step <= t.askedBefore {
		return nil
	}
	t.askedBefore = step
	id, ctx := t.run.ID, t.s.ctx
	return func() tea.Msg {
		v, err := src.Read(ctx, id)
		if err != nil {
			return nil
		}
		return sourceBeforeMsg{id: id, acc: v.SourceAccBefore}
	}
}

// start shows a newly started run.
func (t *trainScreen) start(run *engine.Live) {
	t.run, t.paused, t.done, t.askedBefore = run, false, false, -1
	t.confirmStop, t.picking, t.confusion, t.exported = false, false, nil, ""
	t.d.reset()
	t.d.name = ""
	if t.s.plan != nil {
		t.d.planStages = len(t.s.plan.plan.Stages)
	}
	if t.pendingID == run.ID {
		t.d.planStages = t.pendingStages
	}
}

func (t *trainScreen) live() bool { return t.run != nil && !t.done }

func (t *trainScreen) handleKey(msg tea.KeyPressMsg) tea.Cmd {
	s, k := t.s, t.keys
	if t.confirmStop {
		switch {
		case key.Matches(msg, s.Keys.Yes):
			t.confirmStop = false
			if t.live() {
				t.run.Control.Stop()
				s.flash("stopping after this batch; the run stays stored and can be resumed")
				// Asked of the backend too, which records who stopped
				// it; the control has already stopped it here.
				if src := s.runs(); src != nil {
					id, ctx := t.run.ID, s.ctx
					return func() tea.Msg { _ = src.Stop(ctx, id); return nil }
				}
			}
		case key.Matches(msg, s.Keys.No), key.Matches(msg, s.Keys.Back):
			t.confirmStop = false
		}
		return nil
	}
	if t.picking {
		return t.handlePicker(msg)
	}
	if t.d.handleKey(msg) {
		return nil
	}
	switch {
	case key.Matches(msg, k.Pause):
		if !t.live() {
			s.flash("no run is training")
			return nil
		}
		if t.paused {
			t.run.Control.Resume()
			t.paused = false
			t.d.status = trainer.StatusRunning
		} else {
			t.run.Control.Pause()
			t.paused = true
			t.d.status = trainer.StatusPaused
		}
	case key.Matches(msg, k.Next):
		if !t.live() {
			s.flash("no run is training")
			return nil
		}
		t.run.Control.Skip()
		s.flash("ending this stage after the current batch")
	case key.Matches(msg, k.Stop):
		if t.live() {
			t.confirmStop = true
		}
	case key.Matches(msg, k.Export):
		return t.export()
	case key.Matches(msg, k.Branch):
		return t.branchPoints()
	case key.Matches(msg, k.Metrics):
		t.d.cycleMetric()
	case key.Matches(msg, k.Confusion):
		if t.confusion != nil {
			t.confusion = nil
			return nil
		}
		return t.confusionCmd()
	}
	return nil
}

// export writes the run's curves, as stored, to a PNG in the working
// directory, drawn as the charts are (smoothing, log scale).
func (t *trainScreen) export() tea.Cmd {
	eng := t.s.runs()
	if t.run == nil || eng == nil {
		t.s.flash("nothing to export: no run, or no run store")
		return nil
	}
	id := t.run.ID
	opts := export.DefaultOptions()
	opts.Smoothing = smoothings[t.d.smoothIdx]
	opts.LogY = t.d.loss.LogY()
	ctx := t.s.ctx
	return exportCmd(ctx, ScreenTrain, t.s, []string{id}, "thaw-"+engine.Short(id)+".png", opts)
}

// exportCmd loads runs from the store and writes one figure of them.
func exportCmd(ctx context.Context, from Screen, s *Session, ids []string, name string, opts export.Options) tea.Cmd {
	src := s.runs()
	return func() tea.Msg {
		var runs []export.Run
		for _, id := range ids {
			// Four points per pixel column of the figure keep its look.
			r, err := readRun(ctx, src, id, 4*opts.Width)
			if err != nil {
				return exportedMsg{from: from, err: fmt.Errorf("export: %w", err)}
			}
			runs = append(runs, r)
		}
		dir, shown, err := s.exportDir(ctx, ids[0])
		if err != nil {
			return exportedMsg{from: from, err: fmt.Errorf("export: %w", err)}
		}
		path := filepath.Join(dir, name)
		if _, err := export.WriteFile(path, export.LearningCurves, runs, opts); err != nil {
			return exportedMsg{from: from, err: err}
		}
		return exportedMsg{from: from, path: filepath.Join(shown, name)}
	}
}

// branchPoints asks the store for the run's stage boundaries.
func (t *trainScreen) branchPoints() tea.Cmd {
	eng := t.s.runs()
	if t.run == nil || eng == nil {
		t.s.flash("nothing to branch from: no run, or no run store")
		return nil
	}
	id, ctx, src := t.run.ID, t.s.ctx, t.s.runs()
	return func() tea.Msg {
		pts, err := storedBoundaries(ctx, src, id)
		return branchPointsMsg{id: id, points: pts, err: err}
	}
}

// storedBoundaries lists the stage boundaries of run id a branch can
// start from: the ends of the stages it ran itself (an inherited stage's
// end is its parent's to branch from), as the read model has them.
func storedBoundaries(ctx context.Context, src Backend, id string) ([]branchPoint, error) {
	v, err := src.Read(ctx, id)
	if err != nil {
		return nil, err
	}
	var out []branchPoint
	for _, st := range v.Stages {
		if st.End < 0 || st.Inherited {
			continue
		}
		label := cmp.Or(termtext.Sanitize(st.Label), fmt.Sprintf("stage %d", st.Index+1))
		out = append(out, branchPoint{stage: st.Index + 1, step: int(st.End), label: label})
	}
	return out, nil
}

func (t *trainScreen) handlePicker(msg tea.KeyPressMsg) tea.Cmd {
	s := t.s
	switch msg.String() {
	case "up", "k":
		t.pointIdx = max(t.pointIdx-1, 0)
	case "down", "j":
		t.pointIdx = min(t.pointIdx+1, len(t.points)-1)
	case "left", "h":
		t.contIdx = (t.contIdx + len(continuations) - 1) % len(continuations)
	case "right", "l":
		t.contIdx = (t.contIdx + 1) % len(continuations)
	case "esc":
		t.picking = false
	case "enter":
		t.picking = false
		if s.training() {
			s.flashErr(errors.New("a run is training: stop it (x) before starting a branch"))
			return nil
		}
		return t.startBranch()
	}
	return nil
}

// startBranch starts the chosen branch through the backend.
func (t *trainScreen) startBranch() tea.Cmd {
	eng := t.s.runs()
	if eng == nil || t.run == nil {
		return nil
	}
	pt := t.points[t.pointIdx]
	cont, err := t.continuation()
	if err != nil {
		t.s.flashErr(err)
		return nil
	}
	parent, ctx := t.run.ID, t.s.ctx
	stages := pt.stage + len(cont.Stages)
	t.s.flash(fmt.Sprintf("branching from the end of %s…", pt.label))
	return func() tea.Msg {
		run, err := eng.Branch(ctx, parent, engine.BranchPoint{Stage: pt.stage}, &engine.Continuation{Plan: cont}, engine.StartOptions{})
		if err != nil {
			return errMsg{fmt.Errorf("branch: %w", err)}
		}
		return branchStartedMsg{run: run, stages: stages}
	}
}

// branchStartedMsg: a branch started; the Train screen records its stage
// count and hands it to the frame as a started run.
type branchStartedMsg struct {
	run    *engine.Live
	stages int
}

// continuation is the plan a branch goes on with.
func (t *trainScreen) continuation() (trainer.Plan, error) {
	name := continuations[t.contIdx]
	if name == "plan" {
		if t.s.plan == nil || len(t.s.plan.plan.Stages) == 0 {
			return trainer.Plan{}, errors.New("the Plan screen has no stages: edit them on Plan (3), or pick a preset with ←/→")
		}
		return t.s.plan.plan, nil
	}
	var blocks []string
	for _, b := range t.d.blocks {
		blocks = append(blocks, b.name)
	}
	if len(blocks) == 0 {
		return trainer.Plan{}, errors.New("the run's blocks are not known yet")
	}
	return trainer.Preset(name, blocks, 0, 0)
}

func (t *trainScreen) confusionCmd() tea.Cmd {
	eng := t.s.runs()
	if t.run == nil || eng == nil {
		t.s.flash("no run, or no run store, to evaluate")
		return nil
	}
	if !t.d.hasBest {
		t.s.flash("no evaluation yet: the confusion matrix is of the best checkpoint")
		return nil
	}
	id, ctx := t.run.ID, t.s.ctx
	t.s.flash("evaluating the best checkpoint on the validation set…")
	return func() tea.Msg {
		classes, counts, err := eng.Confusion(ctx, id)
		return confusionMsg{id: id, classes: classes, counts: counts, err: err}
	}
}

func (t *trainScreen) View(w, h int) string {
	t.syncPalette()
	if t.run == nil {
		st := t.s.Styles
		return st.Heading.Render("Train") + "\n\n" +
			"No run yet. Choose a model (1), its frozen blocks (2) and the plan (3), then press enter on Plan to start.\n" +
			st.Faint.Render("Stored runs are on Runs (5); enter there opens one here read-only.")
	}
	body := t.d.view(w, h)
	switch {
	case t.confirmStop:
		return overlay(t.s, w, h, "Stop the run?\n\nIt stays stored with its best checkpoint;\nresume it from Runs (5) with r.\n\ny stop · n keep training")
	case t.picking:
		return overlay(t.s, w, h, t.pickerView())
	case t.confusion != nil:
		return overlay(t.s, w, h, t.confusion.view(t.pal, w-6, h-4))
	}
	return body
}

func (t *trainScreen) pickerView() string {
	var b strings.Builder
	b.WriteString(lipgloss.NewStyle().Bold(true).Render("Branch from a stage boundary") + "\n\n")
	for i, p := range t.points {
		line := fmt.Sprintf("  end of %s (step %d)", p.label, p.step)
		if i == t.pointIdx {
			line = lipgloss.NewStyle().Reverse(true).Render("▸" + line[1:])
		}
		b.WriteString(line + "\n")
	}
	cont := continuations[t.contIdx]
	desc := "the stages on the Plan screen (edit them on 3)"
	if cont != "plan" {
		desc = "the " + cont + " preset over the model's blocks"
	}
	b.WriteString("\nthen: ‹ " + lipgloss.NewStyle().Bold(true).Render(cont) + " › " + desc + "\n\n")
	b.WriteString("enter start the branch as a new run · esc cancel")
	return b.String()
}

// overlay draws box in the middle of the body.
func overlay(s *Session, w, h int, box string) string {
	return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, s.Styles.Overlay.Render(box))
}
