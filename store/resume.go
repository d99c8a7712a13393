package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"thaw/trainer"
)

// ResumePoint is where [Store.Resume] continues a run.
type ResumePoint struct {
	Run Run
	// Checkpoint is the record of the checkpoint the run continues from,
	// and State its content; both are zero when the run has no usable
	// checkpoint and starts again from step 0.
	Checkpoint Checkpoint
	State      *trainer.Checkpoint
	// Skipped explains, newest first, the checkpoints passed over: files
	// that were damaged (now marked bad) or saved after the last stored
	// metrics.
	Skipped []error
}

// Step returns the step the run continues from.
func (p ResumePoint) Step() int64 {
	if p.State == nil {
		return 0
	}
	return int64(p.State.Step)
}

// Resume continues the run id, which must be interrupted or stopped, from
// its last good checkpoint:
//
//  1. the checkpoints are tried newest first (at one step: last, stage-end,
//     best); one whose file is damaged is marked bad and passed over, and
//     so is one whose step's training loss was never stored (the process
//     died between saving it and storing the final report), because the
//     curve would have a hole. With none left the run starts again from
//     step 0;
//  2. build turns the run's record and that point into the spec to run;
//     the store cannot know how models and data are found, so the caller
//     rebuilds them, typically from the inputs it kept in Run.Plan.
//     build's Resume and Checkpoint fields are set by Resume. Nothing has
//     changed in the store when build fails;
//  3. the run is claimed (set running, unless another process claimed it
//     first), its metrics after the checkpoint's step are deleted, and so
//     are the best and last checkpoints and stage boundaries beyond it;
//  4. the run trains as [Store.Train] does, from the checkpoint.
//
// On the same binary and machine the resumed run's metrics and weights are
// bit-identical to an uninterrupted run's.
//
// Resume returns an error wrapping [ErrNotFound] or [ErrAmbiguous] when id
// matches no run or several, [ErrLive] when the run is running or paused
// (in this or another process: wait for its heartbeat to go stale, see
// [WithGrace]; the error says how long), [ErrInvalid] when it is done,
// diverged or failed otherwise than on I/O (see [IOFailure]), an error
// from build, or the run's own error.
func (s *Store) Resume(ctx context.Context, id string, build func(ResumePoint) (trainer.Spec, error),
	report func(trainer.Progress), opts ...RecordOption) (trainer.Result, error) {
	rec, spec, _, err := s.StartResume(ctx, id, build, opts...)
	if err != nil {
		return trainer.Result{Status: trainer.StatusFailed}, err
	}
	return rec.Train(ctx, spec, report)
}

// StartResume does steps 1 to 3 of [Store.Resume] and starts recording:
// the caller trains the returned spec with the recorder ([Recorder.Train]),
// in a goroutine of its own if it likes; the engine starts resumed runs
// this way. It returns the errors of Resume, before anything changed in the
// store, and the point the run continues from.
func (s *Store) StartResume(ctx context.Context, id string, build func(ResumePoint) (trainer.Spec, error),
	opts ...RecordOption) (*Recorder, trainer.Spec, ResumePoint, error) {
	run, err := s.Run(ctx, id)
	if err != nil {
		return nil, trainer.Spec{}, ResumePoint{}, fmt.Errorf("resume: %w", err)
	}
	if run, err = s.resumable(ctx, run); err != nil {
		return nil, trainer.Spec{}, ResumePoint{}, err
	}
	pt, err := s.resumePoint(ctx, run)
	if err != nil {
		return nil, trainer.Spec{}, pt, err
	}
	spec, err := build(pt)
	if err != nil {
		return nil, trainer.Spec{}, pt, fmt.Errorf("resume %s: %w", run.ID, err)
	}
	spec.Resume = pt.State
	if err := s.claim(ctx, run.ID); err != nil {
		return nil, trainer.Spec{}, pt, err
	}
	if err := s.rewind(ctx, run.ID, pt.Step()); err != nil {
		// The run is ours but unusable; do not leave it looking live.
		s.SetStatus(context.WithoutCancel(ctx), run.ID, trainer.StatusInterrupted, "resume failed: "+err.Error())
		return nil, trainer.Spec{}, pt, err
	}
	if pt.State != nil {
		// Rewinding to step 0 forgets the metrics of step 0 too (see
		// rewind): the resumed run writes them again.
		stored := pt.Step()
		if stored == 0 {
			stored = -1
		}
		opts = append(slices.Clip(opts), ResumeFrom(pt.State.Loop, stored))
	}
	rec, err := s.Record(ctx, run.ID, opts...)
	if err != nil {
		return nil, trainer.Spec{}, pt, err
	}
	return rec, spec, pt, nil
}

// resumable says why run cannot be resumed, if it cannot. A live run whose
// heartbeat has gone stale is declared interrupted first (its process died
// after the store was opened), and the run is read again.
func (s *Store) resumable(ctx context.Context, run Run) (Run, error) {
	if run.Status.Live() {
		l, err := s.Liveness(ctx, run)
		if err != nil {
			return run, fmt.Errorf("resume %s: %w", run.ID, err)
		}
		if l.Status.Live() {
			return run, fmt.Errorf("resume %s: %w: it is %s, its heartbeat %s old; stop it first, or, if its process is gone, wait %d s until its heartbeat is stale",
				run.ID, ErrLive, run.Status, l.Age.Round(time.Second), int(math.Ceil(l.Left.Seconds())))
		}
		if _, err := s.MarkStale(ctx); err != nil {
			return run, fmt.Errorf("resume %s: %w", run.ID, err)
		}
		r, err := s.runByID(ctx, run.ID)
		if err != nil {
			return run, fmt.Errorf("resume %s: %w", run.ID, err)
		}
		run = r
	}
	switch {
	case run.Status == trainer.StatusInterrupted || run.Status == trainer.StatusStopped ||
		run.Status == trainer.StatusQueued || failedOnIO(run):
		return run, nil
	case run.Status.Live():
		return run, fmt.Errorf("resume %s: %w: it is %s; stop it first", run.ID, ErrLive, run.Status)
	}
	return run, fmt.Errorf("resume %s: %w: it is %s; only interrupted, stopped or queued runs resume, and runs that failed on I/O",
		run.ID, ErrInvalid, run.Status)
}

// KindRank orders checkpoints of one step: the later in the run loop, the
// more complete its loop state (last, then stage-end, then best).
func KindRank(k Kind) int {
	switch k {
	case KindLast:
		return 2
	case KindStageEnd:
		return 1
	}
	return 0
}

// resumePoint finds the newest checkpoint of run that loads and whose
// metrics are stored.
func (s *Store) resumePoint(ctx context.Context, run Run) (ResumePoint, error) {
	pt := ResumePoint{Run: run}
	cs, err := s.Checkpoints(ctx, run.ID)
	if err != nil {
		return pt, fmt.Errorf("resume: %w", err)
	}
	slices.SortStableFunc(cs, func(a, b Checkpoint) int {
		if a.Step != b.Step {
			return int(b.Step - a.Step)
		}
		return KindRank(b.Kind) - KindRank(a.Kind)
	})
	for _, c := range cs {
		if c.Bad {
			continue
		}
		if c.Step > 0 {
			ok, err := s.hasMetric(ctx, run.ID, trainer.MetricTrainLoss, c.Step)
			if err != nil {
				return pt, fmt.Errorf("resume: %w", err)
			}
			if !ok {
				pt.Skipped = append(pt.Skipped, fmt.Errorf("checkpoint %s: saved after the last stored metrics", s.Path(c.Path)))
				continue
			}
		}
		state, err := s.LoadCheckpoint(ctx, c.ID)
		if errors.Is(err, ErrCorrupt) {
			pt.Skipped = append(pt.Skipped, err)
			continue
		}
		if err != nil {
			return pt, fmt.Errorf("resume: %w", err)
		}
		pt.Checkpoint, pt.State = c, &state
		return pt, nil
	}
	return pt, nil
}

// hasMetric reports whether run has a value of name at step.
func (s *Store) hasMetric(ctx context.Context, run, name string, step int64) (bool, error) {
	var one int
	err := s.db.QueryRowContext(ctx, `SELECT 1 FROM metrics WHERE run_id = ? AND name = ? AND step = ?`,
		run, name, step).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// claim sets the run running if it is still interrupted, stopped, queued
// or failed on I/O, so that of two processes resuming it at once only one goes on,
// and clears a stop request that ended it.
func (s *Store) claim(ctx context.Context, id string) error {
	p := self()
	res, err := s.exec(ctx, `UPDATE runs SET status = 'running', error = '', heartbeat_ms = ?,
		finished_ms = NULL, stop_requested = FALSE, stop_reason = '',
		owner_host = ?, owner_boot = ?, owner_pid = ?, owner_start = ?
		WHERE id = ? AND (status IN ('interrupted', 'stopped', 'queued')
			OR (status = 'failed' AND error LIKE ?))`, ms(s.stamp(ctx)), p.Host, p.Boot, p.PID, p.Start,
		id, ioFailurePrefix+"%")
	if err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("resume %s: %w", id, err)
	} else if n == 0 {
		r, err := s.runByID(ctx, id)
		if err != nil {
			return fmt.Errorf("resume %s: %w", id, err)
		}
		if _, err := s.resumable(ctx, r); err != nil {
			return err
		}
		return fmt.Errorf("resume %s: %w: another process resumed it first", id, ErrLive)
	}
	return nil
}

// rewind forgets what run recorded after step: metrics, stage boundaries,
// and best and last checkpoints (stage-end ones stay: branches may start
// from them, and the resumed run saves them again with the same id), and
// any best or last checkpoint that a newer one of its kind replaces.
func (s *Store) rewind(ctx context.Context, run string, step int64) error {
	from := step + 1
	if step == 0 {
		from = 0
	}
	if err := s.TruncateMetrics(ctx, run, from); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM stages WHERE run_id = ? AND start_step >= ?`, run, max(step, 1)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE stages SET end_step = NULL WHERE run_id = ? AND end_step > ?`, run, step)
		return err
	})
	if err != nil {
		return fmt.Errorf("resume %s: stages: %w", run, err)
	}
	cs, err := s.Checkpoints(ctx, run)
	if err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	// Of the best and last checkpoints up to step, only the newest of each
	// kind stays, as the recorder's retention keeps them: a process killed
	// between saving a new one and deleting the older one left both, and
	// the resumed run may never save another to delete it.
	newest := map[Kind]Checkpoint{}
	for _, c := range cs {
		if n, ok := newest[c.Kind]; !c.Bad && c.Step <= step && (!ok || c.Step > n.Step) {
			newest[c.Kind] = c
		}
	}
	for _, c := range cs {
		if c.Kind != KindStageEnd && (c.Step > step || (!c.Bad && c.ID != newest[c.Kind].ID)) {
			if err := s.DeleteCheckpoint(ctx, c.ID); err != nil {
				return fmt.Errorf("resume: %w", err)
			}
		}
	}
	return nil
}
