package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/chart"
)

// Optimizer choices of the Plan screen: the preset's own, or one set for
// every stage.
var optimizerChoices = []string{"preset's", trainer.OptimizerAdamW, trainer.OptimizerSGD}

// planDraft is the job being edited: data and settings, and the plan's
// stages as edited. The Blocks screen's freeze choice is the first stage.
type planDraft struct {
	data      string
	shots     int
	valSplit  float64
	seed      uint64
	batch     int
	optimizer int // index into optimizerChoices
	preset    string

	// plan holds the stages as edited. byHand is set once a stage was
	// added, removed, moved or edited: a new freeze choice then only
	// changes the first stage instead of rebuilding from the preset.
	plan   trainer.Plan
	byHand bool
	// from names the plan file the stages were loaded from, "" when they
	// came from the preset; edited says they were changed by hand since.
	// The preset row names what the stages really are.
	from   string
	edited bool
	// file names the plan file saved or loaded last: the prompts offer it.
	file string
	// queued says enter was pressed while the data loaded: the run starts
	// when it is ready.
	queued bool

	// The data, loaded in the background when it changes.
	dataID  int
	loading bool
	prep    *trainer.Prepared
	dataErr error
	// blocks are the base model's blocks with the head the loaded data
	// trains (see Session.blockInfos), for prep.
	blocks     []blockInfo
	blocksPrep *trainer.Prepared
	// recent lists data names loaded before, newest first, for the data
	// picker: files this session used and those of stored runs.
	recent []string
}

func newPlanDraft() *planDraft {
	return &planDraft{valSplit: 0.2, seed: 1, batch: trainer.DefaultBatchSize, preset: "gradual"}
}

// reset starts a fresh draft for a newly chosen model: the card's target
// task and the gradual preset.
func (p *planDraft) reset(e *modelEntry) {
	recent := p.recent
	*p = *newPlanDraft()
	p.recent = recent
	p.data = e.meta.TargetTask
	if p.data == "" {
		p.data = e.meta.SourceTask
	}
}

// openSweepJob makes e, the model of the sweep spec, the base model and
// the Plan the sweep's job, as far as the draft holds one: its data,
// shots, split, batch and plan, and its first seed; the freeze choice is
// the plan's first stage. A preset without arguments stays the preset;
// otherwise the stages are the plan's, expanded, as edited by hand. The
// data loads in the background, as when a model is chosen.
func (s *Session) openSweepJob(e *modelEntry, spec engine.SweepSpec) tea.Cmd {
	job := spec.Job
	s.base = e
	blocks := e.model.Config.BlockNames()
	s.frozen = make([]bool, len(blocks))
	d := s.plan
	d.reset(e)
	d.data, d.shots = job.Data.Path, job.Shots
	if job.ValSplit > 0 {
		d.valSplit = job.ValSplit
	}
	if job.BatchSize > 0 {
		d.batch = job.BatchSize
	}
	if len(spec.Seeds) > 0 {
		d.seed = spec.Seeds[0]
	}
	isPreset := func(name string) bool {
		_, err := trainer.Preset(name, blocks, 0, 0)
		return name != "" && err == nil
	}
	if pr := job.Preset; len(job.Plan.Stages) == 0 && pr != nil && isPreset(pr.Name) &&
		pr.LR == 0 && pr.Epochs == 0 && pr.Steps == 0 && !pr.Legacy {
		d.preset = pr.Name
	} else {
		job.FreezeBelow = ""
		plan, _, err := job.ResolvePlan(blocks)
		if err != nil {
			s.flashErr(fmt.Errorf("the sweep's plan: %w — the Plan keeps the %s preset", err, d.preset))
		} else {
			plan.Stages = slices.Clone(plan.Stages) // edited here, not in the sweep's spec
			d.plan, d.byHand = plan, true
			switch ref := spec.PlanRef; {
			case isPreset(ref):
				d.preset = ref
				d.edited = spec.PlanLR != 0 || spec.PlanEpochs != 0 || spec.PlanSteps != 0
			case ref != "":
				d.from = ref
			default:
				d.edited = true
			}
		}
	}
	d.syncFreeze(s)
	return d.reload(s)
}

func (p *planDraft) dataName() string {
	if p.data == "" {
		return "no data"
	}
	return p.data
}

// took applies a reply of the data's load to the draft and reports
// whether it is the current load's. Every screen that hears the reply may
// call it, in any order: it is applied once.
func (p *planDraft) took(msg dataLoadedMsg) bool {
	if msg.id != p.dataID {
		return false // an older load, superseded
	}
	if p.loading {
		p.loading, p.prep, p.dataErr = false, msg.prep, msg.err
		if msg.err == nil {
			p.used(p.data)
		}
	}
	return true
}

// used puts data first among the recently used names.
func (p *planDraft) used(data string) {
	if data == "" {
		return
	}
	p.recent = slices.DeleteFunc(p.recent, func(r string) bool { return r == data })
	p.recent = slices.Insert(p.recent, 0, data)
	if len(p.recent) > maxRecent {
		p.recent = p.recent[:maxRecent]
	}
}

// maxRecent is how many recently used data names the picker offers.
const maxRecent = 8

// editByHand marks the stages as changed by hand.
func (p *planDraft) editByHand() { p.byHand, p.edited = true, true }

// presetLabel names what the stages are: the preset, or the plan file
// they were loaded from, and whether they were edited since.
func (p *planDraft) presetLabel() string {
	label := p.preset
	if p.from != "" {
		label = filepath.Base(p.from) + " (plan file)"
	}
	if p.edited {
		label += " (edited)"
	}
	if p.file != "" && p.file != p.from {
		label += " · saved as " + filepath.Base(p.file)
	}
	return label
}

// reload loads the data in the background and rebuilds the stages.
func (p *planDraft) reload(s *Session) tea.Cmd {
	p.rebuild(s)
	if s.base == nil || s.base.model == nil {
		return nil
	}
	p.dataID = s.nextID()
	p.loading, p.prep, p.dataErr = true, nil, nil
	return loadDataCmd(p.dataID, s.backend, p.job(s))
}

// rebuild sets the stages from the preset and the freeze choice, unless
// they were edited by hand (then only the first stage follows the choice).
func (p *planDraft) rebuild(s *Session) {
	if s.base == nil || s.base.model == nil {
		return
	}
	blocks := s.base.model.Config.BlockNames()
	if !p.byHand {
		plan, err := trainer.Preset(p.preset, blocks, 0, 0)
		if err != nil {
			s.flashErr(err)
			return
		}
		p.plan = plan
	}
	p.applyOptimizer()
	p.applyFreeze(s, blocks)
}

// applyFreeze makes the freeze choice the first stage: its trainable
// blocks are the ones the choice thaws, and the preset's later stages that
// train no more than that are dropped as already covered.
func (p *planDraft) applyFreeze(s *Session, blocks []string) {
	if len(p.plan.Stages) == 0 || len(s.frozen) != len(blocks) {
		return
	}
	var train []string
	for i, f := range s.frozen {
		if !f {
			train = append(train, blocks[i])
		}
	}
	if len(train) == 0 {
		return
	}
	p.plan.Stages[0].Train = train
	if p.byHand {
		return
	}
	rp, err := p.plan.Resolve(blocks)
	if err != nil {
		return
	}
	kept := p.plan.Stages[:1]
	for i := 1; i < len(p.plan.Stages); i++ {
		if !subsetOf(rp.Stages[i].Trainable, train) {
			kept = append(kept, p.plan.Stages[i])
		}
	}
	p.plan.Stages = kept
}

func subsetOf(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func (p *planDraft) applyOptimizer() {
	switch optimizerChoices[p.optimizer] {
	case trainer.OptimizerAdamW:
		o := trainer.DefaultOptimizer()
		p.plan.Optimizer = &o
	case trainer.OptimizerSGD:
		p.plan.Optimizer = &trainer.OptimizerConfig{Kind: trainer.OptimizerSGD, Momentum: 0.9}
	}
}

// syncFreeze sets the Blocks screen's freeze choice from the plan's first
// stage, built from the preset alone.
func (p *planDraft) syncFreeze(s *Session) {
	blocks := s.base.model.Config.BlockNames()
	plan := p.plan
	if !p.byHand {
		var err error
		if plan, err = trainer.Preset(p.preset, blocks, 0, 0); err != nil {
			return
		}
	}
	rp, err := plan.Resolve(blocks)
	if err != nil {
		return
	}
	for i, m := range rp.Stages[0].LRMult {
		s.frozen[i] = m == 0
	}
	p.rebuild(s)
}

// freezeChanged follows a new freeze choice on the Blocks screen.
func (p *planDraft) freezeChanged(s *Session) { p.rebuild(s) }

// resolved is the plan resolved against the model's blocks, as the run
// will train it: with the loaded data, a run that keeps the base model's
// trained head trains on the plain loss (Prepared.KeptHeadLoss).
func (p *planDraft) resolved(s *Session) (*trainer.ResolvedPlan, error) {
	if s.base == nil || s.base.model == nil {
		return nil, errors.New("no model chosen")
	}
	rp, err := p.plan.Resolve(s.base.model.Config.BlockNames())
	if err == nil && p.prep != nil {
		p.prep.KeptHeadLoss(rp)
	}
	return rp, err
}

// dataBad reports that the plan's data failed to load: an error about it
// lasts as long as this.
func (s *Session) dataBad() bool { return s.plan.dataErr != nil }

// planBad reports that the plan's stages do not resolve over the model.
func (s *Session) planBad() bool {
	_, err := s.plan.resolved(s)
	return err != nil
}

// factor is the first stage's discriminative factor.
func (p *planDraft) factor() float64 {
	f := 1.0
	if len(p.plan.Stages) > 0 {
		f = cmpOr(p.plan.Stages[0].LRFactor, p.plan.LRFactor)
	}
	return max(f, 1)
}

func cmpOr(a, b float64) float64 {
	if a != 0 {
		return a
	}
	return b
}

// stepsPerEpoch is the batches per epoch of the loaded data, or 0.
func (p *planDraft) stepsPerEpoch() int {
	if p.prep == nil {
		return 0
	}
	return trainer.StepsPerEpoch(p.prep.Train.Len(), p.batch)
}

// job is the draft as the engine takes it.
func (p *planDraft) job(s *Session) trainer.Job {
	return trainer.Job{
		Model: s.base.name, Data: trainer.DataRef{Path: p.data}, Plan: p.plan, Shots: p.shots,
		ValSplit: p.valSplit, BatchSize: p.batch, Seed: p.seed,
	}
}

// ---- the screen ----

// Rows of the Plan screen's form, before the stages.
const (
	rowData = iota
	rowShots
	rowVal
	rowSeed
	rowBatch
	rowOptimizer
	rowPreset
	numFieldRows
)

// planScreen edits the job: data and settings, stages, and previews every
// block's learning rate across the stages.
type planScreen struct {
	s      *Session
	cursor int // a field row, or numFieldRows+i for stage i
	// editing is the row whose text field has focus, -1 for none.
	editing int
	input   textinput.Model
	// fileOp is "save" or "load" while a plan file's path is typed.
	fileOp string
	chart  lrChart
	// lrf is the LR finder's overlay, nil when closed.
	lrf *lrFind
	// pick is the data picker, open while the data field is edited.
	pick *dataPicker
	// tasks are the catalogue's built-in tasks, once asked for.
	tasks []engine.DataTask
}

func newPlanScreen(s *Session) *planScreen {
	return &planScreen{s: s, editing: -1, input: textInput("", "")}
}

func (p *planScreen) Keys() []key.Binding {
	k := p.s.Keys
	if p.lrf != nil {
		return []key.Binding{k.Plan.Left, k.Plan.Right}
	}
	if p.pick != nil {
		return []key.Binding{k.pickHelp()}
	}
	// The most used first: the help bar keeps those at 80 columns.
	return []key.Binding{k.Plan.Edit, k.Plan.LRFind, k.Plan.Preset, k.Plan.AddStage, k.Plan.RemoveStage,
		k.Plan.SavePlan, k.Plan.LoadPlan, k.Plan.StageUp, k.Plan.StageDown, k.Plan.Left, k.Plan.Right}
}

func (p *planScreen) Capturing() bool { return p.editing >= 0 || p.fileOp != "" || p.lrf != nil }

func (p *planScreen) Update(msg tea.Msg) (ScreenModel, tea.Cmd) {
	d := p.s.plan
	switch msg := msg.(type) {
	case dataLoadedMsg:
		if !d.took(msg) {
			return p, nil
		}
		queued := d.queued
		d.queued = false
		if msg.err != nil {
			if queued {
				p.s.flashErrWhile(fmt.Errorf("not started: %w", msg.err), p.s.dataBad)
			} else {
				p.s.flashErrWhile(msg.err, p.s.dataBad)
			}
			return p, nil
		}
		if queued {
			return p, p.start()
		}
		return p, nil
	case dataChoicesMsg:
		p.tasks = msg.tasks
		for _, r := range msg.stored {
			if len(d.recent) < maxRecent && !slices.Contains(d.recent, r) {
				d.recent = append(d.recent, r)
			}
		}
		if p.pick != nil {
			p.pick.loaded = true
			p.fillPicker()
		}
		return p, nil
	case lrFindMsg:
		p.handleLRFind(msg)
		return p, nil
	case tea.KeyPressMsg:
		if p.lrf != nil {
			p.handleOverlayKey(msg)
			return p, nil
		}
		return p.handleKey(msg)
	}
	return p, nil
}

// undo cancels a start queued while the data loads (esc).
func (p *planScreen) undo() bool {
	if d := p.s.plan; d.queued {
		d.queued = false
		p.s.flash("the run will not start")
		return true
	}
	return false
}

func (p *planScreen) rows() int { return numFieldRows + len(p.s.plan.plan.Stages) }

func (p *planScreen) handleKey(msg tea.KeyPressMsg) (ScreenModel, tea.Cmd) {
	s, k, d := p.s, p.s.Keys, p.s.plan
	if p.editing >= 0 || p.fileOp != "" {
		return p.handleInput(msg)
	}
	if s.base == nil {
		if key.Matches(msg, k.Forward) {
			s.flashErr(errors.New("no model chosen: pick one on the Models screen (1) with enter"))
		}
		return p, nil
	}
	stage := p.cursor - numFieldRows
	switch {
	case key.Matches(msg, k.listKeys()...):
		p.cursor, _ = moveCursor(k, msg, p.cursor, p.rows())
	case key.Matches(msg, k.Plan.Edit):
		return p, p.startEdit()
	case key.Matches(msg, k.Plan.Left), key.Matches(msg, k.Plan.Right):
		dir := 1
		if key.Matches(msg, k.Plan.Left) {
			dir = -1
		}
		switch p.cursor {
		case rowOptimizer:
			d.optimizer = (d.optimizer + dir + len(optimizerChoices)) % len(optimizerChoices)
			d.rebuild(s)
		case rowPreset:
			p.cyclePreset(dir)
		}
	case key.Matches(msg, k.Plan.Preset):
		p.cyclePreset(1)
	case key.Matches(msg, k.Plan.AddStage):
		at := len(d.plan.Stages)
		if stage >= 0 {
			at = stage + 1
		}
		d.plan.Stages = slices.Insert(d.plan.Stages, at, trainer.Stage{Train: []string{"all"}})
		d.editByHand()
		p.cursor = numFieldRows + at
	case key.Matches(msg, k.Plan.RemoveStage):
		if stage < 0 {
			break
		}
		if len(d.plan.Stages) == 1 {
			s.flashErr(errors.New("a plan needs at least one stage: edit this one with e instead"))
			break
		}
		d.plan.Stages = slices.Delete(d.plan.Stages, stage, stage+1)
		d.editByHand()
		p.cursor = min(p.cursor, p.rows()-1)
	case key.Matches(msg, k.Plan.StageUp):
		if stage > 0 {
			st := d.plan.Stages
			st[stage-1], st[stage] = st[stage], st[stage-1]
			d.editByHand()
			p.cursor--
		}
	case key.Matches(msg, k.Plan.StageDown):
		if stage >= 0 && stage < len(d.plan.Stages)-1 {
			st := d.plan.Stages
			st[stage+1], st[stage] = st[stage], st[stage+1]
			d.editByHand()
			p.cursor++
		}
	case key.Matches(msg, k.Plan.SavePlan):
		p.fileOp = "save"
		p.input.Prompt = "save plan to: "
		p.input.SetValue(cmpOrString(d.file, "plan.json"))
		// The cursor at the end, wherever the last prompt left it: ctrl+u
		// then clears the whole path.
		p.input.CursorEnd()
		return p, p.input.Focus()
	case key.Matches(msg, k.Plan.LoadPlan):
		p.fileOp = "load"
		p.input.Prompt = "load plan from: "
		p.input.SetValue(d.file)
		p.input.CursorEnd()
		return p, p.input.Focus()
	case key.Matches(msg, k.Plan.LRFind):
		return p, p.startLRFind()
	case key.Matches(msg, k.Forward):
		return p, p.start()
	}
	return p, nil
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (p *planScreen) cyclePreset(dir int) {
	var names []string
	for _, pi := range trainer.Presets() {
		names = append(names, pi.Name)
	}
	d := p.s.plan
	i := slices.Index(names, d.preset)
	d.preset = names[(i+dir+len(names))%len(names)]
	d.byHand, d.edited, d.from = false, false, ""
	d.file = ""
	d.rebuild(p.s)
	// The preset chosen last decides the first stage: the Blocks screen
	// follows it (a freeze choice made there afterwards wins in turn).
	d.syncFreeze(p.s)
	p.cursor = min(p.cursor, p.rows()-1)
}

// start checks the draft and asks the engine to run it.
func (p *planScreen) start() tea.Cmd {
	s, d := p.s, p.s.plan
	switch {
	case d.loading:
		// Queued, not dropped: enter enter enter from the first screen
		// starts a run.
		d.queued = true
		s.noteWhile("starting when the data is loaded… (esc cancels)", func() bool { return d.queued })
		return nil
	case d.dataErr != nil:
		s.flashErrWhile(fmt.Errorf("%w — fix the data field (e on data)", d.dataErr), s.dataBad)
		return nil
	case s.training():
		s.flashErr(errors.New("a run is already training: watch it on Train (4), or stop it there first"))
		return nil
	}
	if _, err := d.resolved(s); err != nil {
		s.flashErrWhile(fmt.Errorf("plan: %w — edit the stage with e", err), s.planBad)
		return nil
	}
	s.flash("starting…")
	return startRunCmd(s.ctx, s.opts.Backend, d.job(s))
}

// startEdit focuses the text field of the row under the cursor.
func (p *planScreen) startEdit() tea.Cmd {
	d := p.s.plan
	var val string
	switch p.cursor {
	case rowData:
		val = d.data
	case rowShots:
		val = "all"
		if d.shots > 0 {
			val = strconv.Itoa(d.shots)
		}
	case rowVal:
		val = strconv.FormatFloat(d.valSplit, 'g', -1, 64)
	case rowSeed:
		val = strconv.FormatUint(d.seed, 10)
	case rowBatch:
		val = strconv.Itoa(d.batch)
	case rowOptimizer, rowPreset:
		p.s.flash("← and → choose")
		return nil
	default:
		val = formatStage(d.plan.Stages[p.cursor-numFieldRows])
	}
	p.editing = p.cursor
	p.input.Prompt = "› "
	p.input.SetValue(val)
	p.input.CursorEnd()
	if p.cursor == rowData {
		return tea.Batch(p.input.Focus(), p.openPicker())
	}
	return p.input.Focus()
}

// handleInput feeds the focused field: enter applies, esc cancels.
func (p *planScreen) handleInput(msg tea.KeyPressMsg) (ScreenModel, tea.Cmd) {
	k := p.s.Keys
	switch {
	case key.Matches(msg, k.Back):
		p.editing, p.fileOp, p.pick = -1, "", nil
		p.input.Blur()
		return p, nil
	case key.Matches(msg, k.Forward):
		var cmd tea.Cmd
		var err error
		if p.fileOp != "" {
			err = p.fileDone(strings.TrimSpace(p.input.Value()))
		} else {
			cmd, err = p.apply(p.editing, p.pickValue())
		}
		if err != nil {
			p.s.flashErr(err) // the field stays open to fix it
			return p, nil
		}
		p.editing, p.fileOp, p.pick = -1, "", nil
		p.input.Blur()
		return p, cmd
	}
	if p.pick != nil {
		_, cmd := p.pickKey(msg)
		return p, cmd
	}
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	return p, cmd
}

// apply sets a field from its text; a change to the data or its split
// reloads the data.
func (p *planScreen) apply(row int, v string) (tea.Cmd, error) {
	s, d := p.s, p.s.plan
	switch row {
	case rowData:
		d.data = v
		return d.reload(s), nil
	case rowShots:
		// The field shows "all" and "N per class": it takes them back.
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(v, "per class")))
		if strings.EqualFold(v, "all") {
			n, err = 0, nil
		}
		if err != nil {
			return nil, fmt.Errorf("shots %q: want a whole number of samples per class, or all", v)
		}
		if err := (trainer.Job{Shots: n}).CheckSettings(); err != nil {
			return nil, err
		}
		d.shots = n
		return d.reload(s), nil
	case rowVal:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("validation split %q: want a fraction between 0 and 1, such as 0.2", v)
		}
		if err := (trainer.Job{ValSplit: f}).CheckSettings(); err != nil {
			return nil, err
		}
		d.valSplit = f
		return d.reload(s), nil
	case rowSeed:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("seed %q: want a whole number", v)
		}
		d.seed = n
		return d.reload(s), nil
	case rowBatch:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("batch %q: want a whole number, at least 1", v)
		}
		d.batch = n
		return nil, nil
	}
	i := row - numFieldRows
	st, err := parseStage(v, d.plan.Stages[i])
	if err != nil {
		return nil, fmt.Errorf("stage %d: %w", i+1, err)
	}
	old := d.plan.Stages[i]
	d.plan.Stages[i] = st
	if _, err := d.resolved(s); err != nil {
		d.plan.Stages[i] = old
		return nil, fmt.Errorf("stage %d: %w", i+1, err)
	}
	d.editByHand()
	return nil, nil
}

// fileDone saves the plan to path or loads it from path.
func (p *planScreen) fileDone(path string) error {
	s, d := p.s, p.s.plan
	if path == "" {
		return errors.New("no file name: type one, or esc")
	}
	// With a plan folder, files are opened through an os.Root: no name,
	// "..", absolute path or link leads out of it.
	write, read := os.WriteFile, os.ReadFile
	if dir := s.opts.PlanDir; dir != "" || s.opts.PlanRoot != nil {
		open := func() (*os.Root, error) { return os.OpenRoot(dir) }
		if s.opts.PlanRoot != nil {
			open = s.opts.PlanRoot
		}
		root, err := open()
		if err != nil {
			return fmt.Errorf("plan folder: %w", err)
		}
		defer root.Close()
		write, read = root.WriteFile, root.ReadFile
	}
	if p.fileOp == "save" {
		b, err := json.MarshalIndent(d.plan, "", "  ")
		if err != nil {
			return err
		}
		if err := write(path, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("save plan: %w", err)
		}
		d.file = path
		s.flash("saved the plan to " + path)
		return nil
	}
	b, err := read(path)
	if err != nil {
		return fmt.Errorf("load plan: %w", err)
	}
	plan, err := trainer.ParsePlan(b)
	if err != nil {
		return fmt.Errorf("load plan %s: %w", path, err)
	}
	if _, err := plan.Resolve(s.base.model.Config.BlockNames()); err != nil {
		return fmt.Errorf("load plan %s: %w", path, err)
	}
	d.plan, d.byHand, d.file = plan, true, path
	d.from, d.edited = path, false
	d.syncFreeze(s)
	s.flash("loaded the plan from " + path)
	p.cursor = min(p.cursor, p.rows()-1)
	return nil
}

// stageKeys are the keys a stage's line takes.
const stageKeys = "train, epochs, steps, min_steps, lr, schedule, factor, evals, patience, smoothing, name"

// formatStage writes a stage as the one-line form parseStage reads.
func formatStage(st trainer.Stage) string {
	parts := []string{"train=" + strings.Join(st.Train, ",")}
	if st.Steps > 0 {
		parts = append(parts, fmt.Sprintf("steps=%d", st.Steps))
	}
	if st.Epochs > 0 {
		parts = append(parts, fmt.Sprintf("epochs=%d", st.Epochs))
	}
	if st.MinSteps > 0 {
		parts = append(parts, fmt.Sprintf("min_steps=%d", st.MinSteps))
	}
	if st.LR > 0 {
		parts = append(parts, "lr="+strconv.FormatFloat(st.LR, 'g', -1, 64))
	}
	if st.Schedule != nil {
		parts = append(parts, "schedule="+st.Schedule.Kind)
	}
	if st.LRFactor > 0 {
		parts = append(parts, "factor="+strconv.FormatFloat(st.LRFactor, 'g', -1, 64))
	}
	if st.Evals > 0 {
		parts = append(parts, fmt.Sprintf("evals=%d", st.Evals))
	}
	if st.Patience > 0 {
		parts = append(parts, fmt.Sprintf("patience=%d", st.Patience))
	}
	if st.LabelSmoothing > 0 {
		parts = append(parts, "smoothing="+strconv.FormatFloat(st.LabelSmoothing, 'g', -1, 64))
	}
	if st.Name != "" {
		parts = append(parts, "name="+st.Name)
	}
	return strings.Join(parts, " ")
}

// parseStage reads "train=fc1,head epochs=3 lr=0.001 schedule=cosine
// factor=2.6 min_steps=100 evals=20 patience=3 smoothing=0.1" (smoothing:
// the label smoothing of its training loss): the keys given replace the
// stage's fields, and a zero value (epochs=0, lr=0, factor=0, schedule=,
// min_steps=0, evals=0, patience=0, smoothing=0) falls back to the plan's.
// A length in steps drops the stage's floor, which only a length in
// epochs has.
func parseStage(v string, st trainer.Stage) (trainer.Stage, error) {
	for _, f := range strings.Fields(v) {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return st, fmt.Errorf("%q: want key=value (%s)", f, stageKeys)
		}
		num := func() (float64, error) {
			x, err := strconv.ParseFloat(val, 64)
			if err != nil || x < 0 || math.IsInf(x, 0) {
				return 0, fmt.Errorf("%s=%q: want a number, 0 or more", k, val)
			}
			return x, nil
		}
		switch k {
		case "train":
			st.Train = strings.Split(val, ",")
		case "epochs", "steps":
			x, err := num()
			if err != nil || x != math.Trunc(x) {
				return st, fmt.Errorf("%s=%q: want a whole number", k, val)
			}
			st.Epochs, st.Steps = 0, 0
			if k == "epochs" {
				st.Epochs = int(x)
			} else {
				st.Steps, st.MinSteps = int(x), 0
			}
		case "min_steps", "evals", "patience":
			x, err := num()
			if err != nil || x != math.Trunc(x) {
				return st, fmt.Errorf("%s=%q: want a whole number", k, val)
			}
			switch k {
			case "min_steps":
				st.MinSteps = int(x)
			case "evals":
				st.Evals = int(x)
			default:
				st.Patience = int(x)
			}
		case "lr":
			x, err := num()
			if err != nil {
				return st, err
			}
			st.LR = x
		case "factor":
			x, err := num()
			if err != nil {
				return st, err
			}
			st.LRFactor = x
		case "smoothing":
			x, err := num()
			if err != nil {
				return st, err
			}
			if x >= 1 {
				return st, fmt.Errorf("smoothing=%q: want a number from 0 to below 1", val)
			}
			st.LabelSmoothing = x
		case "schedule":
			if val == "" {
				st.Schedule = nil
				break
			}
			if !slices.Contains(trainer.ScheduleKinds(), val) {
				return st, fmt.Errorf("schedule %q: want one of %s", val, strings.Join(trainer.ScheduleKinds(), ", "))
			}
			st.Schedule = &trainer.Schedule{Kind: val}
		case "name":
			st.Name = val
		default:
			return st, fmt.Errorf("unknown key %q (%s)", k, stageKeys)
		}
	}
	return st, nil
}

// View draws the form, the stages and the LR preview.
func (p *planScreen) View(w, h int) string {
	s, st := p.s, p.s.Styles
	if s.base == nil {
		return st.Faint.Render("No model chosen. Press 1 for Models, pick one with enter.")
	}
	if p.lrf != nil {
		return p.overlayView(w, h)
	}
	d := s.plan
	formW := w
	wide := w >= 120
	if wide {
		formW = w / 2
	}
	var lines []string
	lines = append(lines, st.Heading.Render("Plan")+st.Faint.Render("  "+termtext.Sanitize(s.base.name)+" → "+termtext.Sanitize(d.dataName())))
	fieldWidth(&p.input, formW, 13)
	if p.pick != nil {
		// The picker takes the body: the data field, then the choices.
		p.input.Prompt = "› "
		lines = append(lines, st.FieldOn.Render("▸ "+fmt.Sprintf("%-10s", "data"))+" "+p.input.View())
		return strings.Join(append(lines, p.pickerView(w, h-len(lines))...), "\n")
	}
	field := func(row int, label, value string) {
		l := fmt.Sprintf("%-10s", label)
		if row == p.cursor {
			l = st.FieldOn.Render("▸ " + l)
		} else {
			l = st.Field.Render("  " + l)
		}
		if row == p.editing {
			value = p.input.View()
		}
		lines = append(lines, l+" "+value)
	}
	// A long path gives way to what is known of the data: its end stays.
	note := p.dataNote()
	field(rowData, "data", cutLeft(termtext.Sanitize(d.data), max(formW-14-ansi.StringWidth(note), 12))+" "+note)
	shots := "all"
	if d.shots > 0 {
		shots = fmt.Sprintf("%d per class", d.shots)
	}
	field(rowShots, "shots", shots)
	field(rowVal, "val split", strconv.FormatFloat(d.valSplit, 'g', -1, 64))
	field(rowSeed, "seed", strconv.FormatUint(d.seed, 10))
	field(rowBatch, "batch", strconv.Itoa(d.batch))
	field(rowOptimizer, "optimizer", "‹ "+optimizerChoices[d.optimizer]+" ›")
	field(rowPreset, "preset", "‹ "+termtext.Sanitize(d.presetLabel())+" ›")
	if p.fileOp != "" {
		lines = append(lines, "  "+p.input.View())
	}

	lines = append(lines, st.Heading.Render("Stages"))
	rp, rerr := d.resolved(s)
	spe := d.stepsPerEpoch()
	for i, stg := range d.plan.Stages {
		row := numFieldRows + i
		var desc string
		if rerr == nil {
			rs := rp.Stages[i]
			desc = fmt.Sprintf("%-20s %-21s lr %-7.2g %-6s ×%.3g",
				ansi.Truncate(rs.Label, 20, "…"), stageLength(&rs, spe), rs.LR, scheduleShort(rs.Schedule.Kind), rs.LRFactor)
			desc = termtext.Sanitize(desc)
		} else {
			desc = termtext.Sanitize(formatStage(stg))
		}
		if row == p.editing {
			desc = p.input.View()
		}
		if row == p.cursor {
			lines = append(lines, st.Selected.Render(fmt.Sprintf("▸%d", i+1))+" "+desc)
		} else {
			lines = append(lines, fmt.Sprintf(" %d", i+1)+" "+desc)
		}
	}
	if rerr != nil {
		lines = append(lines, st.Error.Render(termtext.Sanitize("plan: "+rerr.Error())))
	} else if i := p.cursor - numFieldRows; i >= 0 && i < len(rp.Stages) && p.editing < 0 {
		// Two lines: the length and why, the cadence.
		for _, l := range strings.Split(stageDetail(i, &rp.Stages[i], spe), "\n") {
			lines = append(lines, st.Faint.Render(ansi.Truncate(termtext.Sanitize(l), formW, "…")))
		}
	}
	form := strings.Join(lines, "\n")
	formLines := len(lines)

	chartW, chartH := w, h-formLines-1
	if wide {
		chartW, chartH = w-formW-2, min(h, max(16, h/2))
	}
	var chart string
	if rerr == nil && chartH >= 5 && chartW >= 30 {
		chart = p.chart.view(s, rp, spe, chartW, chartH)
	}
	if wide {
		return joinColumns(form, formW, 2, chart)
	}
	if chart == "" {
		return form
	}
	return form + "\n" + chart
}

// stageLength is a stage's length as its row shows it: in steps, or in
// epochs with the steps they make, saying so when the floor (min_steps)
// is longer: "2 ep → 100 st (floor)".
func stageLength(rs *trainer.ResolvedStage, spe int) string {
	switch {
	case rs.Steps > 0:
		return fmt.Sprintf("%d steps", rs.Steps)
	case spe < 1 && rs.MinSteps > 0:
		return fmt.Sprintf("%d ep, ≥%d st", rs.Epochs, rs.MinSteps)
	case spe < 1:
		return fmt.Sprintf("%d ep", rs.Epochs)
	case rs.MinSteps > rs.Epochs*spe:
		return fmt.Sprintf("%d ep → %d st (floor)", rs.Epochs, rs.Len(spe))
	}
	return fmt.Sprintf("%d ep (%d st)", rs.Epochs, rs.Len(spe))
}

// stageDetail says how long stage i lasts and why, then on a second line
// how often it is evaluated and when it stops early: the stage under the
// cursor.
func stageDetail(i int, rs *trainer.ResolvedStage, spe int) string {
	plural := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "stage %d: ", i+1)
	switch {
	case rs.Steps > 0:
		b.WriteString(plural(rs.Steps, "step"))
	case spe < 1:
		b.WriteString(plural(rs.Epochs, "epoch"))
		if rs.MinSteps > 0 {
			fmt.Fprintf(&b, ", at least %s (floor)", plural(rs.MinSteps, "step"))
		}
	case rs.MinSteps > rs.Epochs*spe:
		fmt.Fprintf(&b, "%s of %s, floor %s → %s", plural(rs.Epochs, "epoch"), plural(spe, "step"),
			plural(rs.MinSteps, "step"), plural(rs.Len(spe), "step"))
	default:
		fmt.Fprintf(&b, "%s of %s = %s", plural(rs.Epochs, "epoch"), plural(spe, "step"), plural(rs.Len(spe), "step"))
	}
	switch {
	case rs.Evals > 0 && spe > 0:
		// How many evaluations that makes, beside the key that sets it:
		// evals=20 on a stage of large epochs evaluates once an epoch,
		// not 20 times.
		fmt.Fprintf(&b, "\neval every %s, %s (evals=%d)", plural(rs.EvalInterval(spe), "step"),
			plural(rs.Evaluations(spe), "time"), rs.Evals)
	case rs.Evals > 0:
		fmt.Fprintf(&b, "\nevals=%d a stage", rs.Evals)
	default:
		b.WriteString("\neval every epoch")
	}
	if rs.Patience > 0 {
		fmt.Fprintf(&b, " · patience %d", rs.Patience)
	} else {
		b.WriteString(" · no early stop")
	}
	if rs.LabelSmoothing > 0 {
		fmt.Fprintf(&b, " · smoothing %g", rs.LabelSmoothing)
	}
	return b.String()
}

// cutLeft cuts s to w columns from the left, marking the cut with "…":
// the end of a path says more than its start.
func cutLeft(s string, w int) string {
	n := ansi.StringWidth(s)
	if n <= w {
		return s
	}
	return "…" + ansi.TruncateLeft(s, n-w+1, "")
}

// scheduleShort names a schedule in a few characters.
func scheduleShort(kind string) string {
	switch kind {
	case trainer.ScheduleSlantedTriangular:
		return "STLR"
	case trainer.ScheduleOneCycle:
		return "1cycle"
	}
	return kind
}

// dataNote says what is known of the data.
func (p *planScreen) dataNote() string {
	d, st := p.s.plan, p.s.Styles
	switch {
	case d.loading:
		return st.Faint.Render("loading…")
	case d.dataErr != nil:
		return st.Error.Render("✗ cannot use it (see below)")
	case d.prep != nil:
		head := "head kept"
		if d.prep.HeadReplaced {
			head = "new head"
		}
		return st.Faint.Render(fmt.Sprintf("%d classes, %d train / %d val, %s", len(d.prep.Train.Classes), d.prep.Train.Len(), d.prep.Val.Len(), head))
	}
	return ""
}

// ---- the LR finder overlay ----

// lrFind is a learning-rate range test of one stage, run from the Plan
// screen and shown in an overlay with fastai's four suggestions: ← and →
// choose one, enter writes it into the plan as the stage's peak rate, esc
// dismisses it.
type lrFind struct {
	id     int
	stage  int // the stage tested, 0-based
	cancel context.CancelFunc
	done   bool
	res    trainer.LRFindResult
	err    error
	choice int // the suggestion enter takes, an index into res.Suggestions
	chart  *chart.Chart
}

// defaultSuggestion is the suggestion the finder offers first: valley,
// fastai's default since v2.5.
const defaultSuggestion = "valley"

// lrFindMsg is the range test's result.
type lrFindMsg struct {
	id  int
	res trainer.LRFindResult
	err error
}

// startLRFind runs fastai's range test in the background on the stage
// under the cursor (the first stage when the cursor is on a field), on the
// job as prepared (the model is restored after it).
func (p *planScreen) startLRFind() tea.Cmd {
	s, d := p.s, p.s.plan
	switch {
	case d.loading:
		s.flash("the data is still loading; press l again in a moment")
		return nil
	case d.dataErr != nil:
		s.flashErrWhile(fmt.Errorf("%w — fix the data field first", d.dataErr), s.dataBad)
		return nil
	}
	if _, err := d.resolved(s); err != nil {
		s.flashErrWhile(fmt.Errorf("plan: %w — edit the stage with e", err), s.planBad)
		return nil
	}
	ctx, cancel := context.WithCancel(s.ctx)
	id := s.nextID()
	stage := max(p.cursor-numFieldRows, 0)
	p.lrf = &lrFind{id: id, cancel: cancel, stage: stage}
	job, b := d.job(s), s.backend
	return func() tea.Msg {
		res, err := b.FindLR(ctx, job, stage)
		return lrFindMsg{id: id, res: res, err: err}
	}
}

func (p *planScreen) handleLRFind(msg lrFindMsg) {
	f := p.lrf
	if f == nil || msg.id != f.id {
		return
	}
	f.done, f.res, f.err = true, msg.res, msg.err
	if errors.Is(msg.err, context.Canceled) {
		p.lrf = nil
		return
	}
	f.chart = nil // drawn at the overlay's size
	for i, sg := range msg.res.Suggestions {
		if sg.Name == defaultSuggestion {
			f.choice = i
		}
	}
}

// handleOverlayKey: ← and → choose a suggestion, enter takes it, esc
// dismisses (and cancels a test still running).
func (p *planScreen) handleOverlayKey(msg tea.KeyPressMsg) {
	k := p.s.Keys
	f := p.lrf
	n := len(f.res.Suggestions)
	switch {
	case key.Matches(msg, k.Back):
		f.cancel()
		p.lrf = nil
	case key.Matches(msg, k.Plan.Left) && n > 0:
		f.choice = (f.choice + n - 1) % n
		f.chart = nil
	case key.Matches(msg, k.Plan.Right) && n > 0:
		f.choice = (f.choice + 1) % n
		f.chart = nil
	case key.Matches(msg, k.Forward):
		if !f.done || f.err != nil || n == 0 {
			return
		}
		sg := f.res.Suggestions[f.choice]
		p.acceptLR(f.stage, sg.LR, sg.Name)
		f.cancel()
		p.lrf = nil
	}
}

// acceptLR writes lr into the plan as stage's peak rate, so that a run
// started from it (or the plan saved) carries the rate itself, never
// depending on when the finder ran. For the first stage every stage's rate
// is scaled alike, keeping the plan's ratios between stages (chain-thaw's
// later stages at a tenth, say); a later stage's rate is set alone.
func (p *planScreen) acceptLR(stage int, lr float64, rule string) {
	s, d := p.s, p.s.plan
	rp, err := d.resolved(s)
	if err != nil || !(lr > 0) || stage >= len(d.plan.Stages) || !(rp.Stages[stage].LR > 0) {
		return
	}
	if stage > 0 {
		d.plan.Stages[stage].LR = lr
		d.editByHand()
		s.flash(fmt.Sprintf("peak learning rate of stage %d set to %.3g (fastai's %s)", stage+1, lr, rule))
		return
	}
	ratio := lr / rp.Stages[0].LR
	if d.plan.LR > 0 {
		d.plan.LR *= ratio
	}
	for i := range d.plan.Stages {
		if d.plan.Stages[i].LR > 0 {
			d.plan.Stages[i].LR *= ratio
		}
	}
	if d.plan.LR == 0 && d.plan.Stages[0].LR == 0 {
		d.plan.Stages[0].LR = lr
	}
	d.editByHand()
	s.flash(fmt.Sprintf("peak learning rate of stage 1 set to %.3g (fastai's %s; the other stages scaled alike)", lr, rule))
}

// overlayView draws the LR finder's overlay in a w×h body.
func (p *planScreen) overlayView(w, h int) string {
	st := p.s.Styles
	f := p.lrf
	bw, bh := min(w-4, 100), min(h-2, 24)
	var body string
	switch {
	case !f.done:
		body = st.Heading.Render("LR finder") + fmt.Sprintf("\n\nrunning the range test on stage %d's blocks…\n\n", f.stage+1) + st.Faint.Render("esc cancels")
	case f.err != nil:
		body = st.Heading.Render("LR finder") + "\n\n" + st.Error.Render(termtext.Sanitize(f.err.Error())) +
			"\n\n" + st.Faint.Render("esc closes; try a smaller batch or more data")
	default:
		cw, ch := bw-4, bh-8
		if f.chart == nil || func() bool { w0, h0 := f.chart.Size(); return w0 != cw || h0 != ch }() {
			f.chart = lrFindChart(st, f.res, f.choice, cw, ch)
		}
		var picks []string
		for i, sg := range f.res.Suggestions {
			t := fmt.Sprintf("%s %.2g", sg.Name, sg.LR)
			if i == f.choice {
				t = st.Selected.Render(t)
			}
			picks = append(picks, t)
		}
		body = st.Heading.Render(fmt.Sprintf("LR finder · stage %d", f.stage+1)) + st.Faint.Render("  smoothed loss against log10 of the learning rate") + "\n" +
			f.chart.View() + "\n" +
			"fastai's suggested peak learning rates:\n" + strings.Join(picks, "  ") + "\n" +
			st.Faint.Render(fmt.Sprintf("←/→ choose · enter takes it for stage %d · esc dismisses", f.stage+1))
	}
	// Every line inside the box's width: a wider one would widen the box
	// past the screen, and the frame would cut its right edge.
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, bw, "…")
	}
	return lipgloss.Place(w, h, lipgloss.Center, lipgloss.Center, st.Overlay.Render(strings.Join(lines, "\n")))
}

// lrFindChart draws the range test: the raw loss faint, the smoothed
// loss, every suggestion marked and the chosen one as the best point.
func lrFindChart(st Styles, res trainer.LRFindResult, choice, w, h int) *chart.Chart {
	c := chart.New(max(w, 20), max(h, 5))
	xs := make([]float64, len(res.LRs))
	for i, lr := range res.LRs {
		xs[i] = math.Log10(lr)
	}
	if len(xs) > 0 {
		c.SetDomain(xs[0], xs[len(xs)-1])
	}
	raw := c.AddSeries("batch loss", chart.Line, chart.Style{Faint: true}, false)
	smooth := c.AddSeries("smoothed loss", chart.Line, chart.Style{}, true)
	c.Append(raw, xs, res.RawLosses)
	c.Append(smooth, xs, res.Losses)
	var marks []chart.Mark
	for j, sg := range res.Suggestions {
		if i := sg.Index; i >= 0 && i < len(xs) {
			marks = append(marks, chart.Mark{X: xs[i], Label: sg.Name})
			if j == choice {
				c.SetBest(xs[i], res.Losses[i], true)
			}
		}
	}
	c.SetMarks(marks)
	c.Render()
	return c
}

// ---- the data picker ----

// dataPicker offers the built-in tasks (those whose samples the model
// takes first) and the data used recently while the data field is edited:
// ↑ and ↓ choose one, typing filters the list or names a file, enter takes
// the choice or else the text typed.
type dataPicker struct {
	// initial is the field's value when the picker opened: until the text
	// differs, the list is not filtered.
	initial string
	items   []pickItem
	// sel indexes shown(); -1 is the text typed.
	sel int
	// loaded is set once the catalogue answered.
	loaded bool
}

// pickItem is one choice of the data picker.
type pickItem struct {
	name, note string
	group      int // pickFits, pickOther or pickRecent
}

const (
	pickFits = iota
	pickOther
	pickRecent
)

var pickGroups = [...]string{"built-in tasks", "other tasks: samples of another shape than the model's input", "recently used"}

// dataChoicesMsg: the catalogue's tasks and the data of stored runs,
// newest first, for the data picker.
type dataChoicesMsg struct {
	tasks  []engine.DataTask
	stored []string
}

// dataChoicesCmd asks the backend for the built-in tasks and, with a
// store, the data its runs trained on (newest first).
func dataChoicesCmd(ctx context.Context, b Backend, withRuns bool) tea.Cmd {
	return func() tea.Msg {
		msg := dataChoicesMsg{tasks: b.Tasks()}
		if withRuns {
			runs, _ := b.ListRuns(ctx, engine.RunFilter{})
			for _, r := range runs {
				if r.Dataset != "" && !slices.Contains(msg.stored, r.Dataset) {
					msg.stored = append(msg.stored, r.Dataset)
				}
			}
		}
		return msg
	}
}

// openPicker opens the data picker on the data field.
func (p *planScreen) openPicker() tea.Cmd {
	p.pick = &dataPicker{initial: p.input.Value(), sel: -1}
	p.fillPicker()
	return dataChoicesCmd(p.s.ctx, p.s.backend, p.s.hasStore())
}

// fillPicker lists the tasks known and the recent data.
func (p *planScreen) fillPicker() {
	pk, s := p.pick, p.s
	if pk == nil {
		return
	}
	// The choice stays on the same name when the list grows; it starts
	// on the data the field holds.
	chosen := pk.initial
	if sh := pk.shown(p.input.Value()); pk.sel >= 0 && pk.sel < len(sh) {
		chosen = sh[pk.sel].name
	}
	pk.items = nil
	var want int
	if s.base != nil && s.base.model != nil {
		want = numel(s.base.model.Config.InputShape)
	}
	var other []pickItem
	for _, t := range p.tasks {
		note := fmt.Sprintf("%d classes · %s", t.Classes, t.Description)
		if want > 0 && len(t.Shape) > 0 && numel(t.Shape) != want {
			other = append(other, pickItem{name: t.Name, note: shapeString(t.Shape) + " · " + t.Description, group: pickOther})
			continue
		}
		pk.items = append(pk.items, pickItem{name: t.Name, note: note, group: pickFits})
	}
	pk.items = append(pk.items, other...)
	for _, r := range s.plan.recent {
		if !slices.ContainsFunc(p.tasks, func(t engine.DataTask) bool { return t.Name == r }) {
			pk.items = append(pk.items, pickItem{name: r, group: pickRecent})
		}
	}
	if pk.sel >= 0 || p.input.Value() == pk.initial {
		pk.sel = slices.IndexFunc(pk.shown(p.input.Value()), func(it pickItem) bool { return it.name == chosen })
	}
}

// shown lists the items that match the text typed (all of them until it
// differs from the field's first value).
func (pk *dataPicker) shown(typed string) []pickItem {
	q := strings.ToLower(strings.TrimSpace(typed))
	if q == "" || typed == pk.initial {
		return pk.items
	}
	var out []pickItem
	for _, it := range pk.items {
		if strings.Contains(strings.ToLower(it.name+" "+it.note), q) {
			out = append(out, it)
		}
	}
	return out
}

// pickKey handles a key of the picker: ↑/↓ choose, anything else goes to
// the field (and refilters the list). It reports whether it took the key.
func (p *planScreen) pickKey(msg tea.KeyPressMsg) (bool, tea.Cmd) {
	pk := p.pick
	n := len(pk.shown(p.input.Value()))
	switch msg.String() {
	case "up":
		pk.sel = max(pk.sel-1, -1)
		return true, nil
	case "down":
		pk.sel = min(pk.sel+1, n-1)
		return true, nil
	}
	before := p.input.Value()
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	if p.input.Value() != before {
		pk.sel = -1 // the text typed, until ↓ chooses from the list
	}
	return true, cmd
}

// pickValue is what enter takes: the choice, or the text typed.
func (p *planScreen) pickValue() string {
	if pk := p.pick; pk != nil {
		if sh := pk.shown(p.input.Value()); pk.sel >= 0 && pk.sel < len(sh) {
			return sh[pk.sel].name
		}
	}
	return strings.TrimSpace(p.input.Value())
}

// pickerView draws the picker below the data field, w columns wide.
func (p *planScreen) pickerView(w, h int) []string {
	st, pk := p.s.Styles, p.pick
	lines := []string{st.Faint.Render(ansi.Truncate("  ↑/↓ choose · enter takes it · esc cancels · or type a file or folder path", w, "…"))}
	sh := pk.shown(p.input.Value())
	if !pk.loaded && len(sh) == 0 {
		return append(lines, st.Faint.Render("  listing the tasks…"))
	}
	if len(sh) == 0 {
		return append(lines, st.Faint.Render("  nothing listed matches: enter takes the text typed"))
	}
	nameW := 14
	for _, it := range sh {
		nameW = max(nameW, min(ansi.StringWidth(it.name), 40))
	}
	group := -1
	for i, it := range sh {
		if it.group != group {
			group = it.group
			lines = append(lines, "  "+st.Heading.Render(pickGroups[group]))
		}
		name := termtext.Sanitize(it.name)
		row := fmt.Sprintf("%-*s  %s", nameW, ansi.Truncate(name, nameW, "…"), termtext.Sanitize(it.note))
		row = ansi.Truncate(row, max(w-4, 10), "…")
		switch {
		case i == pk.sel:
			row = st.Selected.Render("▸ " + row)
		case it.group == pickOther:
			row = st.Faint.Render("  " + row)
		default:
			row = "  " + row
		}
		lines = append(lines, "  "+row)
	}
	if len(lines) > h {
		// Keep the choice in sight.
		at := 0
		for i, l := range lines {
			if strings.Contains(l, "▸") {
				at = i
			}
		}
		start := min(max(at-h/2, 0), len(lines)-h)
		lines = lines[start : start+h]
	}
	return lines
}
