package trainer

import "time"

// Event says why a Progress was reported.
type Event int

// The events a run reports.
const (
	EventStep  Event = iota // a training step (rate-limited)
	EventEval               // an evaluation
	EventStage              // a stage started
	EventDone               // the run ended
)

// Progress is what a run reports while it trains.
type Progress struct {
	Event Event
	// Step counts optimizer steps across the plan; TotalSteps is the plan's
	// length.
	Step, TotalSteps int
	// Epoch is the fractional epoch across the plan.
	Epoch float64
	// Stage indexes Plan.Stages; StageLabel is its label.
	Stage      int
	StageLabel string
	// TrainLoss is the mean training loss since the previous report.
	TrainLoss float64
	// ValLoss, ValAcc and SourceAcc are set on evaluations and NaN
	// otherwise; SourceAcc is NaN too when there is no forgetting gauge.
	ValLoss, ValAcc, SourceAcc float64
	// SamplesPerSec is the training throughput since the previous report,
	// over the time spent in training steps; ETA is the time left at the
	// wall-clock pace since the previous report, evaluations included.
	SamplesPerSec float64
	ETA           time.Duration
	// Blocks has one entry per block, input to output.
	Blocks []BlockProgress
	// Status is the run's status as of this report.
	Status Status
	// Losses holds the training loss of every step since the previous
	// report, the first of them at step FirstStep (counting from 0), so a
	// viewer or the store sees every step although reports are
	// rate-limited.
	FirstStep int
	Losses    []float64
	// StoppedEarly marks the evaluation after which the stage stops early,
	// its patience run out: Step is the step it stopped at, which its
	// StageResult keeps as EndStep.
	StoppedEarly bool
}

// BlockProgress is the state of one block in a report.
type BlockProgress struct {
	Name      string
	Trainable bool
	// LR is the block's learning rate at the last step (0 when frozen).
	LR float64
	// GradNorm and UpdateRatio (‖Δw‖/‖w‖) are from the last step.
	GradNorm, UpdateRatio float64
	// Drift is ‖w−w₀‖/‖w₀‖ over the block's parameters, w₀ being the
	// weights the run started from.
	Drift float64
}

// StageResult sums up one stage. EndStep is the step after its last one:
// for a stage that StoppedEarly (its patience run out), the step it
// stopped at, before the end the plan gave it.
type StageResult struct {
	Label        string
	Trainable    []string
	StartStep    int
	EndStep      int
	BestValLoss  float64
	BestValAcc   float64
	StoppedEarly bool
	Skipped      bool
}

// Audit is the freeze audit: every block that was never trainable during
// the run is checked to be bit-identical to the weights it started with.
type Audit struct {
	Checked []string // blocks that were never trainable
	Changed []string // those among them whose weights differ (should be none)
}

// Passed reports whether no checked block changed.
func (a Audit) Passed() bool { return len(a.Changed) == 0 }

// Result sums up a run.
type Result struct {
	Status          Status
	Steps           int
	Stages          []StageResult
	BestStep        int
	BestValLoss     float64
	BestValAcc      float64
	FinalValLoss    float64
	FinalValAcc     float64
	SourceAccBefore float64
	SourceAccAfter  float64
	// FinalSkipped reports that the run was stopped and the final
	// evaluation skipped, so that it ends at once: FinalValLoss,
	// FinalValAcc and SourceAccAfter are then NaN.
	FinalSkipped bool
	Audit        Audit
	// SamplesPerSec is the training throughput over the time spent in
	// training steps; Wall is the whole run, evaluations and the last
	// checkpoint included.
	SamplesPerSec float64
	Wall          time.Duration
	// Best is the state dict of the best weights by validation loss, nil
	// when nothing was evaluated.
	Best []SafeTensor
}

// Checkpoint is the state of a run at one step: enough to export the model
// and to resume the run bit for bit.
type Checkpoint struct {
	// Kind says why the checkpoint was taken.
	Kind  CheckpointKind
	Step  int
	Stage int
	// Weights is the model's state dict at Step; Best the state dict of the
	// best weights so far (nil before the first evaluation).
	Weights, Best []SafeTensor
	// Optimizer is the optimizer state (see Optimizer.State).
	Optimizer map[string]*Tensor[float32]
	// Loop is the rest of the loop's state.
	Loop LoopState
}

// CheckpointKind says why a checkpoint was taken. The store records it
// as is.
type CheckpointKind string

// The kinds of checkpoint.
const (
	CheckpointStageEnd CheckpointKind = "stage-end" // at the end of a stage: where branches start
	CheckpointBest     CheckpointKind = "best"      // best validation loss so far
	CheckpointLast     CheckpointKind = "last"      // the newest state, for resuming
)

// Valid reports whether k is one of the kinds above.
func (k CheckpointKind) Valid() bool {
	return k == CheckpointStageEnd || k == CheckpointBest || k == CheckpointLast
}

// LoopState is what the run loop needs, beyond weights and optimizer
// state, to resume exactly. It is plain data, saved as JSON beside the
// weights (see its MarshalJSON).
type LoopState struct {
	Step            int
	BestStep        int
	BestValLoss     float64
	BestValAcc      float64
	StageBestLoss   float64
	SinceBest       int
	Stages          []StageResult
	EverTrainable   []string
	SourceAccBefore float64
}
