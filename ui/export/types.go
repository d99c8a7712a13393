package export

import (
	"encoding/json"
	"fmt"
	"strings"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
)

// Metric names the learning-curve figure knows how to draw: the trainer's.
const (
	TrainLoss = trainer.MetricTrainLoss
	ValLoss   = trainer.MetricValLoss
	ValAcc    = trainer.MetricValAcc
	// SourceAcc is accuracy on the pretraining (source) task: it falls as
	// fine-tuning forgets, which is why the figure shows it next to ValAcc.
	SourceAcc = trainer.MetricSourceAcc
)

// DriftSeries returns the name of the series holding the drift of block
// from its pretrained weights, "block/<block>/drift".
func DriftSeries(block string) string { return trainer.BlockMetric(block, trainer.BlockDrift) }

// driftBlock returns the block name of a drift series and whether name is one.
func driftBlock(name string) (string, bool) {
	block, what, ok := trainer.ParseBlockMetric(name)
	return block, ok && what == trainer.BlockDrift
}

// Point is one recorded value of a metric.
type Point struct {
	Step  int
	Epoch float64 // fractional epoch at Step; used when the x axis is XEpoch
	Value float64 // may be NaN or ±Inf: such points are skipped and noted
}

// Series is one metric of one run, in step order, named like the constants
// above ("train/loss") or by DriftSeries.
type Series struct {
	Name   string
	Points []Point
	// Means is set when Points summarises buckets of recorded values (by
	// each bucket's extremes, as Load reads a long series): one point per
	// bucket at its mean. Smoothing averages these rather than Points,
	// whose alternating extremes would bias an average by their order.
	// Nil means Points holds every recorded value.
	Means []Point
}

// Stage is one stage of a run's plan as it was executed.
type Stage struct {
	Index int    // 1-based position in the plan
	Label string // shown on the figure, e.g. "stage 2: +conv2"
	// StartStep and EndStep count the steps completed when the stage began
	// and when it ended, as the store records them; EndStep is ≤ StartStep
	// while the stage is still running. A point at step k (recorded after k
	// steps) belongs to the stage with StartStep < k ≤ EndStep: the loss
	// of the stage's first step is recorded at StartStep+1, and the
	// evaluation at its end at EndStep.
	StartStep, EndStep int
	// Trainable lists the blocks trained during the stage. Nil means unknown,
	// and the diagnostics figure then shades nothing as frozen; an empty
	// non-nil slice means every block was frozen.
	Trainable []string
}

// contains reports whether a point recorded at step belongs to the stage.
func (s Stage) contains(step int) bool {
	return step > s.StartStep && (s.EndStep <= s.StartStep || step <= s.EndStep)
}

// Run is what the figures need of one run.
type Run struct {
	ID, Name string // Name labels the run in legends; ID if Name is empty
	Series   []Series
	Stages   []Stage // in order
	// BestStep is the step of the best checkpoint (lowest validation loss),
	// marked on the figure; −1 means none.
	BestStep int
	// BranchStep is the step of the parent's checkpoint this run started
	// from; 0 means the run is not a branch. A branch counts steps on from
	// its parent's, so its own curves begin at BranchStep: points and stages
	// before it (inherited from the parent) are not drawn for the branch.
	BranchStep int
	Parent     string // name of the parent run, for the legend; may be empty
	// View is the read model the run was loaded from (see Load): its
	// status, stages as planned, best figures and totals. Zero for a run
	// built by hand.
	View engine.RunView
	// Model, Data and Plan say what the run trained and how: the base
	// model's, the data's and the plan's names, for the figure's title
	// (FigureTitle). Empty when unknown.
	Model, Data, Plan string
}

// FigureTitle is the title line a figure of runs gets when Options.Title
// is empty: "name · model → data · plan" for one run; for several, their
// names (the first three, then how many more), with the model, data and
// plan they share. It is "" when no run knows its model, data or plan, so
// a figure of bare series keeps no title.
func FigureTitle(runs []Run) string {
	known := false
	for _, r := range runs {
		known = known || r.Model != "" || r.Data != "" || r.Plan != ""
	}
	if !known {
		return ""
	}
	var names []string
	for i, r := range runs {
		if i == 3 {
			names = append(names, fmt.Sprintf("+%d more", len(runs)-3))
			break
		}
		names = append(names, r.label())
	}
	shared := func(f func(Run) string) string {
		v := f(runs[0])
		for _, r := range runs[1:] {
			if f(r) != v {
				return ""
			}
		}
		return v
	}
	model, data, plan := shared(func(r Run) string { return r.Model }), shared(func(r Run) string { return r.Data }), shared(func(r Run) string { return r.Plan })
	parts := []string{strings.Join(names, ", ")}
	switch {
	case model != "" && data != "":
		parts = append(parts, model+" → "+data)
	case model != "":
		parts = append(parts, model)
	case data != "":
		parts = append(parts, data)
	}
	if plan != "" {
		parts = append(parts, plan)
	}
	return strings.Join(parts, " · ")
}

// label returns the run's name for legends and CSV.
func (r Run) label() string {
	if r.Name != "" {
		return r.Name
	}
	return r.ID
}

// series returns the series with the given name, or nil.
func (r Run) series(name string) *Series {
	for i := range r.Series {
		if r.Series[i].Name == name {
			return &r.Series[i]
		}
	}
	return nil
}

// stageAt returns the stage that holds a point recorded at step, or nil.
// A point at the first stage's start (an evaluation before any training)
// belongs to that stage.
func (r Run) stageAt(step int) *Stage {
	for i := len(r.Stages) - 1; i >= 0; i-- {
		if r.Stages[i].contains(step) {
			return &r.Stages[i]
		}
	}
	if len(r.Stages) > 0 && step == r.Stages[0].StartStep {
		return &r.Stages[0]
	}
	return nil
}

// PlanName finds the plan's name in a stored job record, whichever of
// its versions: "plan":{"name":…} or "Plan":{"Name":…}.
func PlanName(raw json.RawMessage) string {
	var rec map[string]json.RawMessage
	if json.Unmarshal(raw, &rec) != nil {
		return ""
	}
	for _, k := range []string{"plan", "Plan", "job", "Job"} {
		sub, ok := rec[k]
		if !ok {
			continue
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(sub, &m) != nil {
			continue
		}
		for _, nk := range []string{"name", "Name", "preset", "Preset"} {
			var s string
			if json.Unmarshal(m[nk], &s) == nil && s != "" {
				return termtext.Sanitize(s)
			}
		}
		if p, ok := m["plan"]; ok {
			if n := PlanName(json.RawMessage(`{"plan":` + string(p) + `}`)); n != "" {
				return n
			}
		}
	}
	return ""
}
