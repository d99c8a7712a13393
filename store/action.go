package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Action is a change a person made to a run: who stopped, deleted or
// resumed it, and when.
type Action struct {
	Run    string
	Action string // "stop", "delete", "resume"
	// Actor is who: a user's id (an SSH key's fingerprint), or the local
	// operator's login name.
	Actor string
	At    time.Time
}

// RecordAction records that actor did action to run id. The record has
// no tie to the run's row, so that a deletion's record outlives the run.
// It returns [ErrReadOnly] on a store opened for reading.
func (s *Store) RecordAction(ctx context.Context, id, action, actor string) error {
	if s.readOnly {
		return fmt.Errorf("record %s of %s: %w", action, id, ErrReadOnly)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO run_actions (run_id, action, actor, at_ms) VALUES (?, ?, ?, ?)`,
			id, action, actor, ms(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("record %s of %s: %w", action, id, err)
	}
	return nil
}

// Actions returns what was done to run id (a full id), oldest first.
func (s *Store) Actions(ctx context.Context, id string) ([]Action, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT action, actor, at_ms FROM run_actions WHERE run_id = ? ORDER BY at_ms`, id)
	if err != nil {
		return nil, fmt.Errorf("actions of %s: %w", id, err)
	}
	defer rows.Close()
	var out []Action
	for rows.Next() {
		a := Action{Run: id}
		var at sql.NullInt64
		if err := rows.Scan(&a.Action, &a.Actor, &at); err != nil {
			return nil, fmt.Errorf("actions of %s: %w", id, err)
		}
		a.At = fromMS(at)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("actions of %s: %w", id, err)
	}
	return out, nil
}
