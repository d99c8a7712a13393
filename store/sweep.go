package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Sweep is a freeze-depth sweep's record: what it asks for (Spec, the
// engine's JSON) and, once measured, its result. Its tasks ([SweepTask])
// map each task index to what it trains and to the run that trains it.
type Sweep struct {
	ID    string // time-sortable unique id, as a run's; see [Short]
	Name  string
	Owner string // who made it: empty for the local operator
	// Spec is the sweep as the engine describes it (JSON).
	Spec json.RawMessage
	// Result is what the engine measured once every task was done, such
	// as the pick's test accuracy (JSON); empty until then.
	Result  json.RawMessage
	Created time.Time
}

// SweepTask is one task of a sweep: index Index trains freeze point Point
// on seed Seed (with Preset and Shots when the sweep crosses them), as
// run Run once a process has claimed it.
type SweepTask struct {
	Sweep  string
	Index  int
	Point  string
	Seed   uint64
	Preset string // empty: the sweep's plan
	Shots  int    // zero: the sweep's shots
	// Run is the run that trains the task; empty until it is claimed, and
	// again when that run is deleted.
	Run string
	// CPU is the processor time spent on the task's run, all its
	// attempts, as the processes that ran it measured it.
	CPU time.Duration
}

const sweepColumns = `id, name, owner, spec, result, created_ms`

func scanSweep(row interface{ Scan(...any) error }) (Sweep, error) {
	var sw Sweep
	var spec, result string
	var created int64
	if err := row.Scan(&sw.ID, &sw.Name, &sw.Owner, &spec, &result, &created); err != nil {
		return Sweep{}, err
	}
	sw.Spec = json.RawMessage(spec)
	if result != "" {
		sw.Result = json.RawMessage(result)
	}
	sw.Created = time.UnixMilli(created)
	return sw, nil
}

// CreateSweep records a new sweep and its tasks, in one transaction, and
// returns the sweep with its ID and Created set (what sw has there is
// ignored); the tasks are recorded unclaimed under their own Index. It
// returns an error wrapping [ErrInvalid] when Spec is not valid JSON, the
// sweep has no task or two tasks share an index.
func (s *Store) CreateSweep(ctx context.Context, sw Sweep, tasks []SweepTask) (Sweep, error) {
	if !json.Valid(sw.Spec) {
		return Sweep{}, fmt.Errorf("create sweep: spec: %w: not valid JSON", ErrInvalid)
	}
	if len(tasks) == 0 {
		return Sweep{}, fmt.Errorf("create sweep: %w: no tasks", ErrInvalid)
	}
	seen := map[int]bool{}
	for _, t := range tasks {
		if seen[t.Index] || t.Index < 0 {
			return Sweep{}, fmt.Errorf("create sweep: task %d: %w: indices are distinct and from 0", t.Index, ErrInvalid)
		}
		seen[t.Index] = true
	}
	now := s.now()
	sw.ID = newID(now)
	sw.Created = time.UnixMilli(ms(now))
	sw.Result = nil
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO sweeps (`+sweepColumns+`) VALUES (?, ?, ?, ?, '', ?)`,
			sw.ID, sw.Name, sw.Owner, string(sw.Spec), ms(now)); err != nil {
			return err
		}
		for _, t := range tasks {
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO sweep_tasks (sweep_id, idx, point, seed, preset, shots) VALUES (?, ?, ?, ?, ?, ?)`,
				sw.ID, t.Index, t.Point, int64(t.Seed), t.Preset, t.Shots); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Sweep{}, fmt.Errorf("create sweep: %w", err)
	}
	return sw, nil
}

// Sweep returns the sweep whose id is id or starts with it, ignoring
// case. It returns an error wrapping [ErrNotFound] when no sweep matches
// and [ErrAmbiguous] when several do.
func (s *Store) Sweep(ctx context.Context, id string) (Sweep, error) {
	p, ok := normalizeID(id)
	if !ok {
		return Sweep{}, fmt.Errorf("sweep %q: %w", id, ErrNotFound)
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+sweepColumns+` FROM sweeps WHERE id >= ? AND id < ? ORDER BY id LIMIT 2`, p, p+"~")
	if err != nil {
		return Sweep{}, fmt.Errorf("sweep %s: %w", id, err)
	}
	defer rows.Close()
	var found []Sweep
	for rows.Next() {
		sw, err := scanSweep(rows)
		if err != nil {
			return Sweep{}, fmt.Errorf("sweep %s: %w", id, err)
		}
		found = append(found, sw)
	}
	if err := rows.Err(); err != nil {
		return Sweep{}, fmt.Errorf("sweep %s: %w", id, err)
	}
	switch {
	case len(found) == 0:
		return Sweep{}, fmt.Errorf("sweep %s: %w", id, ErrNotFound)
	case len(found) > 1 && found[0].ID != p:
		return Sweep{}, fmt.Errorf("sweep %s: %w: matches %s and %s", id, ErrAmbiguous, found[0].ID, found[1].ID)
	}
	return found[0], nil
}

// ListSweeps returns the sweeps of any of owners (every sweep when owners
// is empty), newest first.
func (s *Store) ListSweeps(ctx context.Context, owners []string) ([]Sweep, error) {
	q := `SELECT ` + sweepColumns + ` FROM sweeps`
	var args []any
	if len(owners) > 0 {
		q += ` WHERE owner IN (?` + repeatPlaceholder(len(owners)-1) + `)`
		for _, o := range owners {
			args = append(args, o)
		}
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created_ms DESC, id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("list sweeps: %w", err)
	}
	defer rows.Close()
	var out []Sweep
	for rows.Next() {
		sw, err := scanSweep(rows)
		if err != nil {
			return nil, fmt.Errorf("list sweeps: %w", err)
		}
		out = append(out, sw)
	}
	return out, rows.Err()
}

func repeatPlaceholder(n int) string {
	b := make([]byte, 0, 3*n)
	for range n {
		b = append(b, ", ?"...)
	}
	return string(b)
}

// SweepTasks returns the tasks of the sweep id (a full id), by index. It
// returns an error wrapping [ErrNotFound] when the sweep does not exist.
func (s *Store) SweepTasks(ctx context.Context, id string) ([]SweepTask, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT idx, point, seed, preset, shots, run_id, cpu_ms FROM sweep_tasks WHERE sweep_id = ? ORDER BY idx`, id)
	if err != nil {
		return nil, fmt.Errorf("sweep %s: tasks: %w", id, err)
	}
	defer rows.Close()
	var out []SweepTask
	for rows.Next() {
		t := SweepTask{Sweep: id}
		var seed, cpu int64
		var run sql.NullString
		if err := rows.Scan(&t.Index, &t.Point, &seed, &t.Preset, &t.Shots, &run, &cpu); err != nil {
			return nil, fmt.Errorf("sweep %s: tasks: %w", id, err)
		}
		t.Seed, t.Run, t.CPU = uint64(seed), run.String, time.Duration(cpu)*time.Millisecond
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sweep %s: tasks: %w", id, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("sweep %s: %w", id, ErrNotFound)
	}
	return out, nil
}

// SweepTask returns task index of the sweep id (a full id). It returns an
// error wrapping [ErrNotFound] when there is no such task.
func (s *Store) SweepTask(ctx context.Context, id string, index int) (SweepTask, error) {
	t := SweepTask{Sweep: id, Index: index}
	var seed, cpu int64
	var run sql.NullString
	err := s.db.QueryRowContext(ctx,
		`SELECT point, seed, preset, shots, run_id, cpu_ms FROM sweep_tasks WHERE sweep_id = ? AND idx = ?`, id, index).
		Scan(&t.Point, &seed, &t.Preset, &t.Shots, &run, &cpu)
	if errors.Is(err, sql.ErrNoRows) {
		return SweepTask{}, fmt.Errorf("sweep %s: task %d: %w", Short(id), index, ErrNotFound)
	}
	if err != nil {
		return SweepTask{}, fmt.Errorf("sweep %s: task %d: %w", Short(id), index, err)
	}
	t.Seed, t.Run, t.CPU = uint64(seed), run.String, time.Duration(cpu)*time.Millisecond
	return t, nil
}

// ClaimSweepTask makes run the run of task index of the sweep id unless
// the task has one already, and returns the task's run: run, or the run
// claimed before (then run is not the task's, and the caller discards
// it). With replace, run takes the task's place whatever it held (a task
// whose run failed starts again). It returns an error wrapping
// [ErrNotFound] when there is no such task.
func (s *Store) ClaimSweepTask(ctx context.Context, id string, index int, run string, replace bool) (string, error) {
	var got string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		q := `UPDATE sweep_tasks SET run_id = ? WHERE sweep_id = ? AND idx = ? AND run_id IS NULL`
		if replace {
			q = `UPDATE sweep_tasks SET run_id = ? WHERE sweep_id = ? AND idx = ?`
		}
		if _, err := tx.ExecContext(ctx, q, run, id, index); err != nil {
			return err
		}
		var have sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT run_id FROM sweep_tasks WHERE sweep_id = ? AND idx = ?`, id, index).Scan(&have)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("task %d: %w", index, ErrNotFound)
		}
		got = have.String
		return err
	})
	if err != nil {
		return "", fmt.Errorf("sweep %s: claim: %w", Short(id), err)
	}
	return got, nil
}

// AddSweepCPU adds d to the processor time of task index of the sweep id.
func (s *Store) AddSweepCPU(ctx context.Context, id string, index int, d time.Duration) error {
	_, err := s.exec(ctx, `UPDATE sweep_tasks SET cpu_ms = cpu_ms + ? WHERE sweep_id = ? AND idx = ?`,
		d.Milliseconds(), id, index)
	if err != nil {
		return fmt.Errorf("sweep %s: task %d: %w", Short(id), index, err)
	}
	return nil
}

// SetSweepResult records the result of the sweep id (JSON). It returns an
// error wrapping [ErrInvalid] when result is not valid JSON and
// [ErrNotFound] when the sweep does not exist.
func (s *Store) SetSweepResult(ctx context.Context, id string, result json.RawMessage) error {
	if !json.Valid(result) {
		return fmt.Errorf("sweep %s: result: %w: not valid JSON", Short(id), ErrInvalid)
	}
	res, err := s.exec(ctx, `UPDATE sweeps SET result = ? WHERE id = ?`, string(result), id)
	if err != nil {
		return fmt.Errorf("sweep %s: %w", Short(id), err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("sweep %s: %w", Short(id), ErrNotFound)
	}
	return nil
}

// RunSweepTask returns the sweep task that run id trains; found is false
// when the run is no sweep's.
func (s *Store) RunSweepTask(ctx context.Context, id string) (t SweepTask, found bool, err error) {
	var sweep string
	var index int
	err = s.db.QueryRowContext(ctx, `SELECT sweep_id, idx FROM sweep_tasks WHERE run_id = ?`, id).Scan(&sweep, &index)
	if errors.Is(err, sql.ErrNoRows) {
		return SweepTask{}, false, nil
	}
	if err != nil {
		return SweepTask{}, false, fmt.Errorf("run %s: sweep: %w", Short(id), err)
	}
	t, err = s.SweepTask(ctx, sweep, index)
	return t, err == nil, err
}
