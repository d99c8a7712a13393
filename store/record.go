package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"thaw/trainer"
)

// DefaultHeartbeatEvery is how often a [Recorder] refreshes its run's
// heartbeat: far inside [DefaultGrace], so that a few slow writes in a row
// (the database busy with another process, a slow disk) never make a live
// run look interrupted. A store opened with a shorter grace needs a
// recorder with a shorter interval; see [HeartbeatEvery].
const DefaultHeartbeatEvery = 2 * time.Second

// maxBatch bounds the metrics a Recorder merges into one transaction when
// it has fallen behind.
const maxBatch = 4096

// Recorder connects one run of the trainer to the store: plug [Recorder.Report]
// into trainer.Run's report, [Recorder.Checkpoint] into Spec.Checkpoint, and
// end with [Recorder.Finish]. While it is open a goroutine writes what
// Report hands it and another refreshes the run's heartbeat.
//
// Report never waits for the database: it turns the Progress into rows and
// queues them, and the writer stores each report in one transaction (a
// writer that has fallen behind merges queued reports into one). The queue
// is not bounded; a report is a few dozen numbers and reports come a few
// times a second, so even a database locked for minutes costs little
// memory. Nothing queued is dropped: Checkpoint, Flush, Finish and Close
// wait for the queue to drain.
//
// A failed write does not panic: the first error is kept and returned by
// [Recorder.Err] and by Finish, and the next Checkpoint fails with it (a
// checkpoint promises that everything reported before it is stored, and
// resuming from it would otherwise leave a hole in the curves). A run
// trained through [Recorder.Train] stops at its next step and ends failed
// with that error, resumable when it is an I/O failure (a full disk): a
// run that went on would only lose more.
//
// What the store keeps of a run is the same bits for every run of the same
// seed and plan, resumed or not: the training loss of every step, every
// evaluation, and the per-step numbers (learning rate, epoch, block
// diagnostics, throughput) at the steps of evaluations and stage starts.
// Reports made because time passed reach viewers only (their steps depend
// on the machine's speed), and so does the final report of a stopped run.
type Recorder struct {
	s     *Store
	ctx   context.Context // without cancellation: the last writes must land
	run   string
	every time.Duration
	ack   func(step int64)
	ctl   *trainer.Control   // stopped when a stop is requested; nil: not watched
	why   func(error) string // the stop reason of a stopped run; nil: none

	// Owned by the goroutine that calls Report and Checkpoint.
	stageStart []int64 // start step of every stage seen
	scalarStep int64   // step of the last per-report metrics written
	status     trainer.Status

	mu      sync.Mutex
	queue   []op
	wake    chan struct{} // capacity 1: the writer has work
	failure error         // first write or heartbeat error
	other   error         // first error that does not endanger resuming
	closed  bool
	onFail  func(error) // called once with failure; set by Train

	stop chan struct{} // closed by close
	done sync.WaitGroup
}

// op is one queued write.
type op struct {
	metrics []Metric
	step    int64 // the report's step, for the ack
	stage   *Stage
	status  trainer.Status
	flushed chan struct{} // closed when everything before it is written
}

// RecordOption changes a Recorder.
type RecordOption func(*Recorder)

// HeartbeatEvery sets how often the recorder refreshes the run's heartbeat;
// zero or negative means [DefaultHeartbeatEvery]. Keep it well under the
// grace period of every process that opens the store.
func HeartbeatEvery(d time.Duration) RecordOption {
	return func(r *Recorder) {
		if d > 0 {
			r.every = d
		}
	}
}

// OnAck sets a function that the writer calls, from its own goroutine,
// after each committed batch of metrics, with the step of the newest
// report in it: every training loss up to that step is then stored.
func OnAck(f func(step int64)) RecordOption {
	return func(r *Recorder) { r.ack = f }
}

// StopWith makes the recorder watch for [Store.RequestStop]: at every
// heartbeat it reads the run's stop request and, when there is one, stops
// the run through c (see trainer.Control.Stop).
func StopWith(c *trainer.Control) RecordOption {
	return func(r *Recorder) { r.ctl = c }
}

// WhyStopped sets a function that [Recorder.Finish] calls when the run
// ends stopped, with the run's error (the context's error when its context
// was cancelled, nil when its control stopped it): what it returns is
// recorded with the run as its [Run.StopReason], in the same write as the
// status. A run whose stop was asked for ([Store.RequestStop]) records no
// reason: it stopped for whoever asked, even when something else reached
// it first.
func WhyStopped(f func(err error) string) RecordOption {
	return func(r *Recorder) { r.why = f }
}

// ResumeFrom tells a recorder that the run continues from a checkpoint:
// the stages it has begun and the step whose metrics are already stored.
// A branch records from its parent's checkpoint with it.
func ResumeFrom(loop trainer.LoopState, step int64) RecordOption {
	return func(r *Recorder) {
		for _, st := range loop.Stages {
			r.stageStart = append(r.stageStart, int64(st.StartStep))
		}
		r.scalarStep = step
	}
}

// Record starts recording the run id, which must be running or paused. It
// starts the writer and the heartbeat; call [Recorder.Finish] (or
// [Recorder.Close]) to stop them. ctx is used for its values only: the
// recorder's writes are not cancelled with it, so that a run cancelled by
// its caller still gets its last checkpoint and its status stored.
//
// Record returns an error wrapping [ErrNotFound] when the run does not
// exist and [ErrNotLive] when it is not running or paused.
func (s *Store) Record(ctx context.Context, id string, opts ...RecordOption) (*Recorder, error) {
	ctx = context.WithoutCancel(ctx)
	run, err := s.runByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", id, err)
	}
	if !run.Status.Live() {
		return nil, fmt.Errorf("record %s: %w: it is %s", id, ErrNotLive, run.Status)
	}
	r := &Recorder{
		s: s, ctx: ctx, run: id, every: DefaultHeartbeatEvery,
		scalarStep: -1, status: run.Status,
		wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	r.done.Add(2)
	go r.write()
	go r.heartbeat()
	return r, nil
}

// Run returns the id of the recorded run.
func (r *Recorder) Run() string { return r.run }

// Report queues what p says for the store: the training loss of every step
// in p.Losses (at step FirstStep+i+1, the count of completed steps), the
// validation loss and accuracy and the source accuracy when measured, and,
// for an evaluation or a stage start, once per step the learning rate, the
// epoch, the throughput and the block diagnostics (drift of every block;
// gradient norm, update ratio and learning rate of the blocks that were
// updated). A stage start is stored as a stage, a change between running
// and paused as the run's status.
// Report is safe to call from one goroutine at a time, the trainer's.
func (r *Recorder) Report(p trainer.Progress) {
	stage := max(p.Stage, 0)
	ms := make([]Metric, 0, len(p.Losses)+8+4*len(p.Blocks))
	for i, v := range p.Losses {
		ms = append(ms, Metric{Step: int64(p.FirstStep + i + 1), Stage: stage, Name: trainer.MetricTrainLoss, Value: v})
	}
	step := int64(p.Step)
	add := func(name string, v float64) {
		ms = append(ms, Metric{Step: step, Stage: stage, Name: name, Value: v})
	}
	measured := func(name string, v float64) {
		if !math.IsNaN(v) {
			add(name, v)
		}
	}
	measured(trainer.MetricValLoss, p.ValLoss)
	measured(trainer.MetricValAcc, p.ValAcc)
	measured(trainer.MetricSourceAcc, p.SourceAcc)
	// Several reports can share a step (an evaluation, then the next
	// stage); their diagnostics are the same, so the first one is kept
	// rather than rewritten. The report at step 0 gives every curve of
	// drift its starting point, 0. Reports due to the clock, and a stopped
	// run's last one, are left out: an uninterrupted run of the same seed
	// makes them at other steps (see Recorder).
	if (p.Event == trainer.EventEval || p.Event == trainer.EventStage) && step != r.scalarStep {
		r.scalarStep = step
		add(trainer.MetricEpoch, p.Epoch)
		if p.SamplesPerSec > 0 {
			add(trainer.MetricSamplesPerSec, p.SamplesPerSec)
		}
		top := -1
		for i, b := range p.Blocks {
			add(trainer.BlockMetric(b.Name, trainer.BlockDrift), b.Drift)
			if !b.Trainable || (b.LR == 0 && b.GradNorm == 0) {
				continue // frozen, or not updated by the last step
			}
			top = i
			add(trainer.BlockMetric(b.Name, trainer.BlockLR), b.LR)
			add(trainer.BlockMetric(b.Name, trainer.BlockGradNorm), b.GradNorm)
			add(trainer.BlockMetric(b.Name, trainer.BlockUpdateRatio), b.UpdateRatio)
		}
		if top >= 0 {
			add(trainer.MetricLR, p.Blocks[top].LR)
		}
	}
	var ops []op
	if len(ms) > 0 {
		ops = append(ops, op{metrics: ms, step: step})
	}
	if p.Event == trainer.EventStage && p.Stage >= 0 {
		ops = append(ops, op{stage: r.stageStarted(p)})
	}
	if (p.Status == trainer.StatusRunning || p.Status == trainer.StatusPaused) && p.Status != r.status {
		r.status = p.Status
		ops = append(ops, op{status: p.Status})
	}
	r.enqueue(ops...)
}

// stageStarted returns the stage that p reports as started. A resumed run
// reports its current stage again; it keeps the step where it began.
func (r *Recorder) stageStarted(p trainer.Progress) *Stage {
	for len(r.stageStart) <= p.Stage {
		r.stageStart = append(r.stageStart, int64(p.Step))
	}
	st := &Stage{Index: p.Stage, Name: p.StageLabel, Trainable: []string{}, Start: r.stageStart[p.Stage], End: -1}
	for _, b := range p.Blocks {
		if b.Trainable {
			st.Trainable = append(st.Trainable, b.Name)
		}
	}
	return st
}

// Checkpoint stores c, for Spec.Checkpoint. It first waits until every
// report before it is stored, then saves the file (see
// [Store.SaveCheckpoint]) and records a stage-end's stage boundary. Stage-end
// checkpoints are all kept; of the best and the last ones only the newest:
// the older one is deleted once the new one is recorded. It returns the
// recorder's first write error, if there was one, instead of saving.
func (r *Recorder) Checkpoint(c trainer.Checkpoint) error {
	if c.Kind == trainer.CheckpointStageEnd && c.Stage >= 0 && c.Stage < len(c.Loop.Stages) {
		st := stageOf(c.Stage, c.Loop.Stages[c.Stage])
		r.enqueue(op{stage: &st})
	}
	if err := r.Flush(); err != nil {
		return err
	}
	meta := CheckpointMeta{Step: int64(c.Step), Stage: c.Stage, Kind: c.Kind}
	saved, err := r.s.SaveCheckpoint(r.ctx, r.run, meta, func(w io.Writer) error {
		return EncodeCheckpoint(w, c)
	})
	if err != nil {
		return err
	}
	if meta.Kind == KindStageEnd {
		return nil
	}
	// Retention: the new one is recorded, so the older ones of its kind go.
	cs, err := r.s.Checkpoints(r.ctx, r.run)
	if err == nil {
		for _, old := range cs {
			if old.Kind == meta.Kind && old.ID != saved.ID {
				if err = r.s.DeleteCheckpoint(r.ctx, old.ID); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		r.fail(fmt.Errorf("record %s: retention: %w", r.run, err), false)
	}
	return nil
}

// stageOf converts the trainer's account of stage i.
func stageOf(i int, sr trainer.StageResult) Stage {
	end := int64(sr.EndStep)
	if sr.EndStep <= sr.StartStep {
		end = -1 // not ended
	}
	trainable := sr.Trainable
	if trainable == nil {
		trainable = []string{}
	}
	return Stage{Index: i, Name: sr.Label, Trainable: trainable, Start: int64(sr.StartStep), End: end}
}

// Flush waits until everything reported so far is stored and returns the
// recorder's first write error, if any.
func (r *Recorder) Flush() error {
	ch := make(chan struct{})
	if !r.enqueue(op{flushed: ch}) {
		return r.fatal()
	}
	<-ch
	return r.fatal()
}

// Err returns the first error the recorder met, or nil.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failure != nil {
		return r.failure
	}
	return r.other
}

func (r *Recorder) fatal() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failure
}

// fail keeps the first error; fatal ones make the next Checkpoint fail and
// stop the run that Train trains.
func (r *Recorder) fail(err error, fatal bool) {
	r.mu.Lock()
	var stop func(error)
	switch {
	case fatal && r.failure == nil:
		r.failure = err
		stop = r.onFail
	case !fatal && r.other == nil:
		r.other = err
	}
	r.mu.Unlock()
	if stop != nil {
		stop(err)
	}
}

// Finish records how the run ended and stops the recorder: it stores what
// is queued and res's stage boundaries, stops the heartbeat and sets the
// run's status to res.Status (failed when it is empty and err is not nil,
// done when both are), with err's text for a failed or diverged run,
// marked as an I/O failure when [IOFailure] says so. It
// returns the recorder's first error, if any, joined with an error from
// setting the status. Calling Finish or Close again does nothing.
func (r *Recorder) Finish(res trainer.Result, err error) error {
	st := res.Status
	if !st.Valid() {
		st = trainer.StatusDone
		if err != nil {
			st = trainer.StatusFailed
		}
	}
	text := ""
	if err != nil && (st == trainer.StatusFailed || st == trainer.StatusDiverged) {
		text = err.Error()
		if st == trainer.StatusFailed && IOFailure(err) {
			text = ioFailurePrefix + text // resumable: see Store.Resume
		}
	}
	reason := ""
	if st == trainer.StatusStopped && r.why != nil {
		reason = r.why(err)
	}
	if reason != "" {
		// A stop was asked for: the run stopped for its asker, whatever
		// reached it first.
		if asked, err := r.s.StopRequested(r.ctx, r.run); err != nil || asked {
			reason = ""
		}
	}
	for i, sr := range res.Stages {
		s := stageOf(i, sr)
		r.enqueue(op{stage: &s})
	}
	return r.end(st, text, reason)
}

// Close stops the recorder without a result: what is queued is stored and
// the run, if Finish has not ended it, is marked interrupted, since nothing
// will record it any more. Calling Close or Finish again does nothing.
func (r *Recorder) Close() error {
	return r.end(trainer.StatusInterrupted, "the recording process stopped before the run ended", "")
}

func (r *Recorder) end(st trainer.Status, text, reason string) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	r.done.Wait() // the writer drains the queue before it returns
	if err := r.s.setStatus(r.ctx, r.run, st, text, reason); err != nil {
		r.fail(fmt.Errorf("record %s: %w", r.run, err), false)
	}
	return r.Err()
}

// enqueue hands ops to the writer; it reports false when the recorder is
// closed, and then drops them.
func (r *Recorder) enqueue(ops ...op) bool {
	if len(ops) == 0 {
		return true
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return false
	}
	r.queue = append(r.queue, ops...)
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	return true
}

// write is the writer goroutine: it stores queued ops in order until the
// recorder stops, then stores what is left.
func (r *Recorder) write() {
	defer r.done.Done()
	for {
		select {
		case <-r.wake:
			r.drain()
		case <-r.stop:
			r.drain()
			return
		}
	}
}

func (r *Recorder) drain() {
	for {
		r.mu.Lock()
		ops := r.queue
		r.queue = nil
		r.mu.Unlock()
		if len(ops) == 0 {
			return
		}
		for i := 0; i < len(ops); i++ {
			o := ops[i]
			switch {
			case o.flushed != nil:
				close(o.flushed)
			case o.stage != nil:
				if err := r.s.PutStage(r.ctx, r.run, *o.stage); err != nil {
					r.fail(fmt.Errorf("record %s: %w", r.run, err), true)
				}
			case o.status != "":
				if err := r.s.SetStatus(r.ctx, r.run, o.status, ""); err != nil {
					r.fail(fmt.Errorf("record %s: %w", r.run, err), true)
				}
			default:
				// Merge the reports queued behind this one.
				batch, step := o.metrics, o.step
				for i+1 < len(ops) && ops[i+1].metrics != nil && len(batch)+len(ops[i+1].metrics) <= maxBatch {
					i++
					batch = append(batch[:len(batch):len(batch)], ops[i].metrics...)
					step = max(step, ops[i].step)
				}
				if err := r.s.AddMetrics(r.ctx, r.run, batch); err != nil {
					r.fail(fmt.Errorf("record %s: %w", r.run, err), true)
				} else if r.ack != nil {
					r.ack(step)
				}
			}
		}
	}
}

// heartbeat is the heartbeat goroutine.
func (r *Recorder) heartbeat() {
	defer r.done.Done()
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			if err := r.s.Heartbeat(r.ctx, r.run); err != nil {
				// ErrNotLive: another process declared the run
				// interrupted; the next checkpoint must not pretend
				// otherwise.
				r.fail(fmt.Errorf("record %s: %w", r.run, err), true)
				if errors.Is(err, ErrNotLive) {
					return
				}
			}
			if r.ctl != nil {
				if stop, err := r.s.StopRequested(r.ctx, r.run); err != nil {
					r.fail(fmt.Errorf("record %s: %w", r.run, err), false)
				} else if stop {
					r.ctl.Stop()
				}
			}
		}
	}
}

// Train runs spec as the stored run id and records it: Record, then
// trainer.Run with the recorder's Report (followed by report, when not nil)
// and Checkpoint (spec.Checkpoint is replaced), then Finish. It returns the
// run's result and its error; when the run succeeded but recording failed,
// the recording error. opts go to Record.
func (s *Store) Train(ctx context.Context, id string, spec trainer.Spec, report func(trainer.Progress),
	opts ...RecordOption) (trainer.Result, error) {
	rec, err := s.Record(ctx, id, opts...)
	if err != nil {
		return trainer.Result{Status: trainer.StatusFailed}, err
	}
	return rec.Train(ctx, spec, report)
}

// Train runs spec and records it, as [Store.Train] does, with a recorder
// already started: trainer.Run with the recorder's Report (followed by
// report, when not nil) and Checkpoint (spec.Checkpoint is replaced), then
// Finish. The first failed write stops the run before its next step; it
// then ends failed with the write's error (see [IOFailure] for when it
// resumes), whatever the trainer made of the stop. It returns the run's
// result and its error; when the run succeeded but recording failed, the
// recording error.
func (r *Recorder) Train(ctx context.Context, spec trainer.Spec, report func(trainer.Progress)) (trainer.Result, error) {
	spec.Checkpoint = r.Checkpoint
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.mu.Lock()
	if r.failure != nil {
		cancel(r.failure)
	}
	r.onFail = cancel
	r.mu.Unlock()
	res, err := trainer.Run(ctx, spec, func(p trainer.Progress) {
		r.Report(p)
		if report != nil {
			report(p)
		}
	})
	if ferr := r.fatal(); ferr != nil && res.Status != trainer.StatusDiverged && res.Status != trainer.StatusFailed {
		// Stopped (or ended) because the store could not keep up: the run
		// failed, and says why.
		res.Status, err = trainer.StatusFailed, ferr
	}
	if ferr := r.Finish(res, err); ferr != nil && err == nil {
		err = ferr
	}
	return res, err
}
