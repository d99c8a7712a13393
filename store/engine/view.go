package engine

// This file is the one read model of a run: every front-end reads a stored
// run through Read, List and ReadSeries, so that no two views compute its
// status, stage, best or forgetting figures their own way.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"thaw/store"
	"thaw/trainer"
)

// RunView is a stored run as every front-end shows it: the one answer to
// "what is its status", "which stage of how many", "where is its best" and
// "what did it forget", computed when read from the stored record, metrics,
// stages and checkpoints. Reading writes nothing.
type RunView struct {
	// Run is the record as stored; its Status is what was last written,
	// which for a run whose process died is still running. Show Status.
	Run store.Run
	// Status is the status judged now (see [store.Judge]): a running or
	// paused run whose heartbeat is stale is interrupted. Live says how
	// old the heartbeat is, and Live.Doubtful marks a run shown as
	// "interrupted?" with Live.Left to go (Live.String says it).
	Status trainer.Status
	Live   store.Liveness

	// Plan is the plan's name, empty for a run without a job record.
	Plan string
	// Config is what the run was started with, as its job record says:
	// the columns a table of runs compares them by; for a run
	// without a job record: nil.
	Config *Config
	// Step is the last step trained, the step of the newest training
	// loss; for a branch that has trained nothing yet, its branch point.
	// TotalSteps is the planned length: every stage's planned steps,
	// floors applied, skips and early stops not subtracted (steps keep
	// their planned numbers after a skip). Without a job record it is the
	// furthest step the run reached.
	Step, TotalSteps int64
	// Stages are the plan's stages as planned and as run, and Stage the
	// index into them of the stage that Step belongs to (-1 when no stage
	// has started): a run stopped in the second of four stages has Stage 1
	// and four Stages.
	Stages []StageView
	Stage  int

	// Best is the evaluation with the lowest validation loss: the weights
	// --save writes and the figure every view shows.
	Best Best
	// MaxValAcc is the highest validation accuracy of any evaluation; NaN
	// when there is none.
	MaxValAcc float64

	// Parent is where a branch started; zero for a run from a base model.
	Parent Parent
	// Actions say who stopped or resumed the run, oldest first.
	Actions []store.Action

	// SourceAccBefore is the forgetting gauge before training (of the base
	// model, for a branch too), SourceAccBest its figure at Best.Step (the
	// model --save writes) and SourceAccEnd its last figure. NaN when
	// there is no gauge or it was not measured.
	SourceAccBefore, SourceAccBest, SourceAccEnd float64
}

// Config is a run's configuration as a table of runs compares it.
type Config struct {
	// Shots is the samples per class trained on, 0 for all of them.
	Shots int
	// Seed drives the run's random choices.
	Seed uint64
	// FreezePoint is the lowest block the first stage trains (the blocks
	// below it stay frozen), "all" when it trains every block, empty when
	// the plan has no stage.
	FreezePoint string
	// PeakLR is the first stage's peak learning rate, of its top
	// trainable block; 0 when the plan has no stage.
	PeakLR float64
}

// configOf reads the configuration out of a run's job record.
func configOf(rec store.JobRecord) *Config {
	c := &Config{Shots: rec.Job.Shots, Seed: rec.Job.Seed}
	if len(rec.Plan.Stages) == 0 {
		return c
	}
	first := rec.Plan.Stages[0]
	c.PeakLR = first.LR
	switch {
	case len(first.Trainable) == 0:
	case strings.HasSuffix(first.Label, ": all"),
		len(rec.Job.Plan.Stages) > 0 && slices.Contains(rec.Job.Plan.Stages[0].Train, "all"):
		// Resolving labels a first stage that trains every block so, and
		// a plan may say it: the summary keeps no list of the model's
		// blocks to compare with.
		c.FreezePoint = "all"
	default:
		c.FreezePoint = first.Trainable[0] // input to output
	}
	return c
}

// StageView is one stage of a run, as planned and as run.
type StageView struct {
	Index     int // from 0
	Label     string
	Trainable []string
	// Planned is the stage's length in the plan, floors (min_steps)
	// applied, and PlannedStart its first step in the plan; a stage that
	// a branch inherited from its parent is planned as it ran there.
	Planned, PlannedStart int64
	// Start and End are its first step and the step after its last as
	// run: Start is -1 for a stage not reached, End -1 for one that has
	// not ended.
	Start, End int64
	// Skipped says the stage was ended early by hand (n, next stage),
	// StoppedEarly that its patience ran out; Inherited that a branch took
	// it from its parent, ended at or before the branch point.
	Skipped, StoppedEarly, Inherited bool
	// BestStep, BestValLoss and BestValAcc are the stage's evaluation with
	// the lowest validation loss (BestStep -1 when it has none), and
	// SourceAccStart and SourceAccEnd the first and last gauge readings in
	// it.
	BestStep                     int64
	BestValLoss, BestValAcc      float64
	SourceAccStart, SourceAccEnd float64
}

// Ran returns how many steps the stage trained: to End, or to step for a
// stage that has not ended (pass the run's Step). It is 0 for a stage not
// reached.
func (s StageView) Ran(step int64) int64 {
	switch {
	case s.Start < 0:
		return 0
	case s.End >= 0:
		return s.End - s.Start
	}
	return max(step-s.Start, 0)
}

// Gaps returns the step ranges [from, to) that no stage trained: the
// rest of a stage that was skipped or ran out of patience, since the next
// stage starts at its planned step. A chart's axis leaves them out or
// marks them; the steps either side keep their numbers.
func (v RunView) Gaps() [][2]int64 {
	var out [][2]int64
	for i := 1; i < len(v.Stages); i++ {
		prev, s := v.Stages[i-1], v.Stages[i]
		if prev.End >= 0 && s.Start > prev.End {
			out = append(out, [2]int64{prev.End, s.Start})
		}
	}
	return out
}

// Best is a run's best evaluation: the lowest validation loss of its
// history (a branch's history includes its ancestors' up to the branch
// point), the first of equal ones, as the trainer picks it, among the
// evaluations whose weights are stored (up to the newest checkpoint; a
// killed process may have stored an evaluation but not its weights).
type Best struct {
	Step             int64 // -1 when nothing was evaluated
	ValLoss, ValAcc  float64
	SourceAcc        float64 // NaN without a gauge reading at Step
	Run              string  // the run that evaluated it: this one, or an ancestor for a branch that has not beaten it
	Checkpoint       string  // id of the stored best checkpoint of Run at Step; empty when there is none
	CheckpointIsBest bool    // Checkpoint is of kind best; otherwise the run's newest checkpoint carries these weights
}

// Parent is where a branch started.
type Parent struct {
	Run        string // the parent's id; empty when it was deleted or for a run that is not a branch
	Name       string // the parent's name, or its short id
	Checkpoint string // the checkpoint branched from; empty when deleted
	Step       int64  // the branch point: the branch's own steps come after it
}

// IsBranch reports whether the run started from another run's checkpoint.
func (p Parent) IsBranch() bool { return p.Run != "" || p.Checkpoint != "" || p.Step > 0 }

// Read returns the read model of the run id (a full id, a unique prefix
// or store.Latest). It judges liveness by the database's clock and writes
// nothing, so a store opened read-only reads the same. It returns the
// store's errors, among them store.ErrNotFound and store.ErrAmbiguous.
func Read(ctx context.Context, st *store.Store, id string) (RunView, error) {
	r, err := st.Run(ctx, id)
	if err != nil {
		return RunView{}, err
	}
	live, err := st.Liveness(ctx, r)
	if err != nil {
		return RunView{}, err
	}
	return view(ctx, st, r, live)
}

// List returns the read model of every run that f selects, newest first,
// all judged at the same moment. f.Status selects by the judged status:
// a running run whose heartbeat is stale is listed as interrupted, not as
// running. It returns the store's errors.
func List(ctx context.Context, st *store.Store, f store.RunFilter) ([]RunView, error) {
	want := f.Status
	limit := f.Limit
	if len(want) > 0 {
		// A stored running or paused run may be judged interrupted: read
		// those too, and select after judging.
		f.Status = slices.Clone(want)
		if slices.Contains(want, trainer.StatusInterrupted) {
			f.Status = append(f.Status, trainer.StatusRunning, trainer.StatusPaused)
		}
		f.Limit = 0
	}
	runs, err := st.ListRuns(ctx, f)
	if err != nil {
		return nil, err
	}
	now, err := st.Now(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RunView, 0, len(runs))
	for _, r := range runs {
		live := store.Judge(r, now, st.Grace())
		if len(want) > 0 && !slices.Contains(want, live.Status) {
			continue
		}
		v, err := view(ctx, st, r, live)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted while the list was read
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if limit > 0 && len(out) == limit {
			break
		}
	}
	return out, nil
}

// Series is one stored series of a run at its real steps: bucket i covers
// steps Buckets[i].From to Buckets[i].To (see store.Series).
type Series struct {
	Name    string
	Buckets []store.Bucket
}

// ReadSeries returns the series names of the run id (nil: every metric it
// has) at their real step numbers, each in at most maxPoints buckets
// (zero or negative: every point). A resumed run's series are its whole
// stored history, one point per step; a branch's begin after its branch
// point (its parent's are the parent's). Series with no points are left
// out. It returns the store's errors.
func ReadSeries(ctx context.Context, st *store.Store, id string, names []string, maxPoints int) ([]Series, error) {
	r, err := st.Run(ctx, id)
	if err != nil {
		return nil, err
	}
	if names == nil {
		if names, err = st.MetricNames(ctx, r.ID); err != nil {
			return nil, err
		}
	}
	var out []Series
	for _, name := range names {
		bs, err := st.Series(ctx, r.ID, name, maxPoints)
		if err != nil {
			return nil, err
		}
		if len(bs) > 0 {
			out = append(out, Series{Name: name, Buckets: bs})
		}
	}
	return out, nil
}

// point is one stored value of an evaluation series.
type point struct {
	step  int64
	value float64
	run   string
}

// maxAncestry bounds how far a branch's history is followed up its
// parents; a store cannot hold a cycle, but a reader should not trust that.
const maxAncestry = 64

// history returns every value of the evaluation series name in r's
// history, by step: r's own, and for a branch its ancestors' up to the
// branch point.
func history(ctx context.Context, st *store.Store, r store.Run, name string) ([]point, error) {
	var out []point
	upTo := int64(math.MaxInt64)
	for depth := 0; depth < maxAncestry; depth++ {
		bs, err := st.Series(ctx, r.ID, name, 0)
		if err != nil {
			return nil, err
		}
		var own []point
		for _, b := range bs {
			if b.From <= upTo {
				own = append(own, point{b.From, b.Mean, r.ID})
			}
		}
		out = append(own, out...)
		if r.ParentRun == "" {
			break
		}
		upTo = r.ParentStep
		p, err := st.Run(ctx, r.ParentRun)
		if errors.Is(err, store.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		r = p
	}
	return out, nil
}

// at returns the value at step, NaN when there is none.
func at(ps []point, step int64) float64 {
	i, ok := slices.BinarySearchFunc(ps, step, func(p point, s int64) int { return cmp.Compare(p.step, s) })
	if !ok {
		return math.NaN()
	}
	return ps[i].value
}

// view builds the read model of r, judged live.
func view(ctx context.Context, st *store.Store, r store.Run, live store.Liveness) (RunView, error) {
	v := RunView{Run: r, Status: live.Status, Live: live, Stage: -1, MaxValAcc: math.NaN(),
		SourceAccBefore: math.NaN(), SourceAccBest: math.NaN(), SourceAccEnd: math.NaN(),
		Best: Best{Step: -1, ValLoss: math.NaN(), ValAcc: math.NaN(), SourceAcc: math.NaN()}}
	fail := func(err error) (RunView, error) {
		return RunView{}, fmt.Errorf("read run %s: %w", store.Short(r.ID), err)
	}
	if r.ParentRun != "" || r.ParentCheckpoint != "" {
		v.Parent = Parent{Run: r.ParentRun, Checkpoint: r.ParentCheckpoint, Step: r.ParentStep}
		if r.ParentRun != "" {
			p, err := st.Run(ctx, r.ParentRun)
			switch {
			case err == nil:
				v.Parent.Name = cmp.Or(p.Name, store.Short(p.ID))
			case !errors.Is(err, store.ErrNotFound):
				return fail(err)
			}
		}
	}

	acts, err := st.Actions(ctx, r.ID)
	if err != nil {
		return fail(err)
	}
	v.Actions = acts

	// The step reached.
	loss, err := st.Series(ctx, r.ID, trainer.MetricTrainLoss, 1)
	if err != nil {
		return fail(err)
	}
	v.Step = r.ParentStep
	if len(loss) > 0 {
		v.Step = max(v.Step, loss[len(loss)-1].To)
	}

	// The evaluations, over the whole history.
	vloss, err := history(ctx, st, r, trainer.MetricValLoss)
	if err != nil {
		return fail(err)
	}
	vacc, err := history(ctx, st, r, trainer.MetricValAcc)
	if err != nil {
		return fail(err)
	}
	src, err := history(ctx, st, r, trainer.MetricSourceAcc)
	if err != nil {
		return fail(err)
	}
	// The checkpoints: where the best weights are, and the newest loop
	// state, which knows the stages' skips and early stops and the gauge
	// before training.
	cks, err := st.Checkpoints(ctx, r.ID)
	if err != nil {
		return fail(err)
	}
	loop, haveLoop := newestLoop(st, cks)
	if haveLoop {
		v.SourceAccBefore = loop.SourceAccBefore
	}
	// The best is among the evaluations whose weights are stored: every
	// new best is saved at once, so only a process that died between
	// storing an evaluation and saving its weights leaves one after the
	// newest checkpoint, and resuming drops it.
	saved := savedUpTo(r, cks)
	for _, p := range vloss {
		// Strictly lower, as the trainer keeps its best: the first of
		// equal ones wins, and NaN never does.
		if p.step <= saved && (p.value < v.Best.ValLoss || (v.Best.Step < 0 && !math.IsNaN(p.value))) {
			v.Best.Step, v.Best.ValLoss, v.Best.Run = p.step, p.value, p.run
		}
	}
	for _, p := range vacc {
		if !math.IsNaN(p.value) && !(p.value <= v.MaxValAcc) {
			v.MaxValAcc = p.value
		}
	}
	if len(src) > 0 {
		v.SourceAccEnd = src[len(src)-1].value
	}
	if v.Best.Step >= 0 {
		v.Best.ValAcc = at(vacc, v.Best.Step)
		v.Best.SourceAcc = at(src, v.Best.Step)
		v.SourceAccBest = v.Best.SourceAcc
		v.Best.Checkpoint, v.Best.CheckpointIsBest = bestCheckpoint(cks, v.Best.Step, v.Best.Run == r.ID)
		if v.Best.Checkpoint == "" && v.Best.Run != r.ID {
			// A branch that has saved nothing yet: the checkpoint it
			// started from carries its parent's best weights.
			v.Best.Checkpoint = r.ParentCheckpoint
		}
	}

	// The stages.
	var planned []trainer.StageSummary
	if rec, err := store.DecodeJob(r); err == nil {
		v.Plan = rec.Plan.Name
		v.Config = configOf(rec)
		planned = rec.Plan.Stages
	}
	rows, err := st.Stages(ctx, r.ID)
	if err != nil {
		return fail(err)
	}
	v.Stages = stages(r, planned, rows, loop.Stages)
	var next int64
	for i := range v.Stages {
		s := &v.Stages[i]
		s.PlannedStart = next
		next += s.Planned
		s.BestStep, s.BestValLoss, s.BestValAcc = -1, math.NaN(), math.NaN()
		s.SourceAccStart, s.SourceAccEnd = math.NaN(), math.NaN()
		if s.Start < 0 {
			continue
		}
		// An evaluation at a stage's end step belongs to that stage.
		in := func(step int64) bool { return step > s.Start && (s.End < 0 || step <= s.End) }
		for _, p := range vloss {
			if in(p.step) && (p.value < s.BestValLoss || (s.BestStep < 0 && !math.IsNaN(p.value))) {
				s.BestStep, s.BestValLoss = p.step, p.value
			}
		}
		if s.BestStep >= 0 {
			s.BestValAcc = at(vacc, s.BestStep)
		}
		for _, p := range src {
			if in(p.step) && !math.IsNaN(p.value) {
				if math.IsNaN(s.SourceAccStart) {
					s.SourceAccStart = p.value
				}
				s.SourceAccEnd = p.value
			}
		}
		if s.Start <= v.Step {
			v.Stage = i
		}
	}
	v.TotalSteps = next
	if len(planned) == 0 {
		v.TotalSteps = v.Step
		for _, s := range v.Stages {
			v.TotalSteps = max(v.TotalSteps, s.End)
		}
	}
	return v, nil
}

// savedUpTo returns the last step whose weights r has stored: its newest
// good checkpoint's step; for a branch without one, its branch point. A
// run with no checkpoint has saved nothing, and its evaluations all count
// (the best then has no checkpoint).
func savedUpTo(r store.Run, cks []store.Checkpoint) int64 {
	step := int64(-1)
	for _, c := range cks {
		if !c.Bad {
			step = max(step, c.Step)
		}
	}
	switch {
	case step >= 0:
		return step
	case r.ParentRun != "" || r.ParentCheckpoint != "":
		return r.ParentStep
	}
	return math.MaxInt64
}

// kindRank orders checkpoints of one step by how complete their loop state
// is: a best checkpoint is saved inside an evaluation, a stage-end one
// after it, the last one at the end.
func kindRank(k store.Kind) int {
	switch k {
	case store.KindLast:
		return 2
	case store.KindStageEnd:
		return 1
	}
	return 0
}

// newestLoop reads the loop state of the newest good checkpoint in cks
// that can be read; ok is false when there is none.
func newestLoop(st *store.Store, cks []store.Checkpoint) (loop trainer.LoopState, ok bool) {
	cks = slices.Clone(cks)
	slices.SortStableFunc(cks, func(a, b store.Checkpoint) int {
		return cmp.Or(cmp.Compare(b.Step, a.Step), kindRank(b.Kind)-kindRank(a.Kind))
	})
	for _, c := range cks {
		if c.Bad {
			continue
		}
		if l, err := st.CheckpointLoop(c); err == nil {
			return l, true
		}
	}
	return trainer.LoopState{}, false
}

// bestCheckpoint finds the stored checkpoint with the weights of the best
// evaluation at step: the run's good best checkpoint at that step, or else
// (the best is its ancestor's, or its best checkpoint is gone) its newest
// good checkpoint, which carries the best weights so far.
func bestCheckpoint(cks []store.Checkpoint, step int64, own bool) (id string, isBest bool) {
	for _, c := range cks {
		if own && !c.Bad && c.Kind == store.KindBest && c.Step == step {
			return c.ID, true
		}
	}
	var newest *store.Checkpoint
	for i := range cks {
		c := &cks[i]
		if !c.Bad && c.Step >= step && (newest == nil || c.Step > newest.Step ||
			(c.Step == newest.Step && kindRank(c.Kind) > kindRank(newest.Kind))) {
			newest = c
		}
	}
	if newest == nil {
		return "", false
	}
	return newest.ID, false
}

// stages joins the plan's stages (planned, from the job record), the
// stored stage rows and the trainer's account in the newest checkpoint
// (loop) into one table, by index.
func stages(r store.Run, planned []trainer.StageSummary, rows []store.Stage, loop []trainer.StageResult) []StageView {
	n := max(len(planned), len(loop))
	for _, row := range rows {
		n = max(n, row.Index+1)
	}
	out := make([]StageView, n)
	for i := range out {
		s := &out[i]
		s.Index, s.Start, s.End = i, -1, -1
		if i < len(planned) {
			s.Label, s.Trainable, s.Planned = planned[i].Label, planned[i].Trainable, int64(planned[i].Steps)
		}
		if i < len(loop) {
			l := loop[i]
			s.Label = cmp.Or(s.Label, l.Label)
			if s.Trainable == nil {
				s.Trainable = l.Trainable
			}
			s.Start = int64(l.StartStep)
			if l.EndStep > l.StartStep {
				s.End = int64(l.EndStep)
			}
			s.Skipped, s.StoppedEarly = l.Skipped, l.StoppedEarly
		}
	}
	// The rows are written as the run goes and are newer than any
	// checkpoint: they say where a stage started and ended.
	for _, row := range rows {
		s := &out[row.Index]
		s.Label = cmp.Or(s.Label, row.Name)
		if s.Trainable == nil {
			s.Trainable = row.Trainable
		}
		s.Start = row.Start
		if row.End >= 0 {
			s.End = row.End
		}
	}
	for i := range out {
		s := &out[i]
		if (r.ParentRun != "" || r.ParentCheckpoint != "") && s.Start >= 0 && s.End >= 0 && s.End <= r.ParentStep {
			// History: the parent ran it, and so long.
			s.Inherited = true
			s.Planned = s.End - s.Start
		}
		if s.Trainable == nil {
			s.Trainable = []string{}
		}
	}
	return out
}
