package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
)

// Stage is one stage of a run as it actually ran: which blocks were
// trainable and between which steps.
type Stage struct {
	Index     int      // 0 for the first stage
	Name      string   // label shown on charts, such as "head" or "+conv2"
	Trainable []string // names of the trainable blocks, bottom to top
	Start     int64    // first step of the stage
	End       int64    // step after the last one; negative while the stage runs
}

// PutStage records stage st of run, replacing the stage with the same index
// if there is one: call it when a stage starts (End negative) and again when
// it ends. It returns an error wrapping [ErrNotFound] when the run does not
// exist and [ErrInvalid] when the index is negative.
func (s *Store) PutStage(ctx context.Context, run string, st Stage) error {
	if st.Index < 0 {
		return fmt.Errorf("put stage %d of %s: %w: negative index", st.Index, run, ErrInvalid)
	}
	trainable := st.Trainable
	if trainable == nil {
		trainable = []string{}
	}
	blocks, err := json.Marshal(trainable)
	if err != nil {
		return fmt.Errorf("put stage %d of %s: %w", st.Index, run, err)
	}
	end := sql.NullInt64{Int64: st.End, Valid: st.End >= 0}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := runExists(ctx, tx, run); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO stages (run_id, idx, name, trainable, start_step, end_step)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, idx) DO UPDATE SET name = excluded.name,
				trainable = excluded.trainable, start_step = excluded.start_step,
				end_step = excluded.end_step`,
			run, st.Index, st.Name, string(blocks), st.Start, end)
		return err
	})
	if err != nil {
		return fmt.Errorf("put stage %d of %s: %w", st.Index, run, err)
	}
	return nil
}

// runExists returns ErrNotFound unless the run exists. Checking first gives
// callers ErrNotFound instead of a driver-specific foreign key error.
func runExists(ctx context.Context, tx *sql.Tx, run string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, run).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("run %s: %w", run, ErrNotFound)
	}
	return err
}

// Stages returns the stages of run in order. It returns an empty list when
// the run has none or does not exist.
func (s *Store) Stages(ctx context.Context, run string) ([]Stage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT idx, name, trainable, start_step, end_step
		FROM stages WHERE run_id = ? ORDER BY idx`, run)
	if err != nil {
		return nil, fmt.Errorf("stages of %s: %w", run, err)
	}
	defer rows.Close()
	var stages []Stage
	for rows.Next() {
		var st Stage
		var blocks string
		var end sql.NullInt64
		if err := rows.Scan(&st.Index, &st.Name, &blocks, &st.Start, &end); err != nil {
			return nil, fmt.Errorf("stages of %s: %w", run, err)
		}
		if err := json.Unmarshal([]byte(blocks), &st.Trainable); err != nil {
			return nil, fmt.Errorf("stages of %s: stage %d: trainable blocks: %w", run, st.Index, err)
		}
		st.End = -1
		if end.Valid {
			st.End = end.Int64
		}
		stages = append(stages, st)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stages of %s: %w", run, err)
	}
	return stages, nil
}
