package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"thaw/trainer"
)

// Status is where a run is in its life; the statuses are the trainer's
// (trainer.StatusRunning and so on).
type Status = trainer.Status

// Run is one execution of a plan on a base model and a dataset.
type Run struct {
	ID   string // time-sortable unique id; see [Short]
	Name string

	// ParentRun and ParentCheckpoint are set for a branch: the run and the
	// checkpoint it started from. Empty for a run started from the base
	// model. ParentRun becomes empty when the parent is deleted.
	ParentRun        string
	ParentCheckpoint string

	Model       string // base model name
	ModelHash   string // hash of the base model's weights
	Dataset     string
	DatasetHash string

	Plan    json.RawMessage // the plan, as the trainer encodes it
	Seed    int64
	Version string // version of thaw that ran it

	Status    Status
	Created   time.Time
	Heartbeat time.Time // last sign of life from the owning process
	Finished  time.Time // zero while live
	Error     string    // why it failed or diverged; empty otherwise
}

const runColumns = `id, name, parent_run_id, parent_checkpoint_id, model, model_hash,
	dataset, dataset_hash, plan, seed, version, status, created_ms, heartbeat_ms,
	finished_ms, error`

func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var parent, parentCk sql.NullString
	var plan string
	var created, heartbeat int64
	var finished sql.NullInt64
	err := row.Scan(&r.ID, &r.Name, &parent, &parentCk, &r.Model, &r.ModelHash,
		&r.Dataset, &r.DatasetHash, &plan, &r.Seed, &r.Version, &r.Status,
		&created, &heartbeat, &finished, &r.Error)
	if err != nil {
		return Run{}, err
	}
	r.ParentRun, r.ParentCheckpoint = parent.String, parentCk.String
	r.Plan = json.RawMessage(plan)
	r.Created = time.UnixMilli(created)
	r.Heartbeat = time.UnixMilli(heartbeat)
	r.Finished = fromMS(finished)
	return r, nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateRun records a new run and returns it with its ID, Status (running),
// Created and Heartbeat set; whatever r has in those fields, and in Finished
// and Error, is ignored. A nil Plan is stored as JSON null.
//
// For a branch, set ParentCheckpoint; ParentRun is then taken from the
// checkpoint. CreateRun returns an error wrapping [ErrNotFound] when the
// parent checkpoint does not exist, and [ErrInvalid] when Plan is not valid
// JSON or ParentRun names a different run than the checkpoint's.
func (s *Store) CreateRun(ctx context.Context, r Run) (Run, error) {
	if r.Plan == nil {
		r.Plan = json.RawMessage("null")
	}
	if !json.Valid(r.Plan) {
		return Run{}, fmt.Errorf("create run: plan: %w: not valid JSON", ErrInvalid)
	}
	now := s.now()
	r.ID = newID(now)
	r.Status = trainer.StatusRunning
	r.Created, r.Heartbeat = time.UnixMilli(ms(now)), time.UnixMilli(ms(now))
	r.Finished, r.Error = time.Time{}, ""
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if r.ParentCheckpoint != "" {
			var parent string
			err := tx.QueryRowContext(ctx, `SELECT run_id FROM checkpoints WHERE id = ?`,
				r.ParentCheckpoint).Scan(&parent)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("parent checkpoint %s: %w", r.ParentCheckpoint, ErrNotFound)
			}
			if err != nil {
				return err
			}
			if r.ParentRun != "" && r.ParentRun != parent {
				return fmt.Errorf("parent checkpoint %s belongs to run %s, not %s: %w",
					r.ParentCheckpoint, parent, r.ParentRun, ErrInvalid)
			}
			r.ParentRun = parent
		} else if r.ParentRun != "" {
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM runs WHERE id = ?`, r.ParentRun).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("parent run %s: %w", r.ParentRun, ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO runs (`+runColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '')`,
			r.ID, r.Name, nullString(r.ParentRun), nullString(r.ParentCheckpoint),
			r.Model, r.ModelHash, r.Dataset, r.DatasetHash, string(r.Plan), r.Seed,
			r.Version, r.Status, ms(now), ms(now))
		return err
	})
	if err != nil {
		return Run{}, fmt.Errorf("create run: %w", err)
	}
	return r, nil
}

// Run returns the run whose id is id or starts with it, ignoring case. It
// returns an error wrapping [ErrNotFound] when no run matches and
// [ErrAmbiguous] when several do.
func (s *Store) Run(ctx context.Context, id string) (Run, error) {
	full, err := s.resolve(ctx, id)
	if err != nil {
		return Run{}, err
	}
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, full))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("run %s: %w", id, err)
	}
	return r, nil
}

// resolve turns a full id or a unique prefix into the full id of a run.
func (s *Store) resolve(ctx context.Context, prefix string) (string, error) {
	p, ok := normalizeID(prefix)
	if !ok {
		return "", fmt.Errorf("run %q: %w", prefix, ErrNotFound)
	}
	// A range on the primary key rather than LIKE: it uses the index in
	// every database, and '~' sorts after every character of an id.
	rows, err := s.db.QueryContext(ctx,
		`SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 2`, p, p+"~")
	if err != nil {
		return "", fmt.Errorf("run %s: %w", prefix, err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return "", fmt.Errorf("run %s: %w", prefix, err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("run %s: %w", prefix, err)
	}
	switch {
	case len(ids) == 0:
		return "", fmt.Errorf("run %s: %w", prefix, ErrNotFound)
	case len(ids) > 1 && ids[0] != p:
		return "", fmt.Errorf("run %s: %w: matches %s and %s", prefix, ErrAmbiguous, ids[0], ids[1])
	}
	return ids[0], nil
}

// RunFilter selects runs for [Store.ListRuns]. The zero RunFilter selects
// every run.
type RunFilter struct {
	Status  []Status // any of these; empty means any status
	Name    string   // substring of the name, ignoring ASCII case; empty matches all
	Model   string   // exact base model name; empty matches all
	Dataset string   // exact dataset name; empty matches all
	Limit   int      // at most this many runs; zero or negative means no limit
}

// ListRuns returns the runs that match f, newest first. It returns an error
// wrapping [ErrInvalid] when f names an unknown status.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]Run, error) {
	var where []string
	var args []any
	if len(f.Status) > 0 {
		marks := make([]string, len(f.Status))
		for i, st := range f.Status {
			if !st.Valid() {
				return nil, fmt.Errorf("list runs: status %q: %w", st, ErrInvalid)
			}
			marks[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "status IN ("+strings.Join(marks, ", ")+")")
	}
	if f.Name != "" {
		// LIKE's case rules differ between databases; LOWER and an escaped
		// pattern behave the same everywhere.
		where = append(where, `LOWER(name) LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(strings.ToLower(f.Name))+"%")
	}
	if f.Model != "" {
		where = append(where, "model = ?")
		args = append(args, f.Model)
	}
	if f.Dataset != "" {
		where = append(where, "dataset = ?")
		args = append(args, f.Dataset)
	}
	q := `SELECT ` + runColumns + ` FROM runs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_ms DESC, id DESC"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	runs, err := s.queryRuns(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	return runs, nil
}

func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

func (s *Store) queryRuns(ctx context.Context, q string, args ...any) ([]Run, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, rows.Err()
}

// Branches returns the runs whose parent is the run id, oldest first. It
// returns an empty list, not an error, when there are none or run id does
// not exist.
func (s *Store) Branches(ctx context.Context, id string) ([]Run, error) {
	runs, err := s.queryRuns(ctx, `SELECT `+runColumns+` FROM runs
		WHERE parent_run_id = ? ORDER BY created_ms, id`, id)
	if err != nil {
		return nil, fmt.Errorf("branches of %s: %w", id, err)
	}
	return runs, nil
}

// Heartbeat records that the process running the run is alive. Call it every
// few seconds, well within the grace period, including while paused. It
// returns an error wrapping [ErrNotFound] when the run does not exist and
// [ErrNotLive] when the run is no longer running or paused (another process
// may have declared it interrupted after a long silence).
func (s *Store) Heartbeat(ctx context.Context, id string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET heartbeat_ms = ?
			WHERE id = ? AND status IN ('running', 'paused')`, ms(s.now()), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return runState(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", id, err)
	}
	return nil
}

// runState explains why an update that needed a live run touched no row.
func runState(ctx context.Context, tx *sql.Tx, id string) error {
	var st Status
	err := tx.QueryRowContext(ctx, `SELECT status FROM runs WHERE id = ?`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("%w: it is %s", ErrNotLive, st)
}

// SetStatus sets the status of the run id, and the error text (empty unless
// the run failed or diverged). A final status also sets Finished; a live one
// clears it and refreshes the heartbeat, so that resuming a run is
// SetStatus(ctx, id, trainer.StatusRunning, ""). It returns an error wrapping
// [ErrInvalid] for an unknown status and [ErrNotFound] when the run does not
// exist.
func (s *Store) SetStatus(ctx context.Context, id string, st Status, errText string) error {
	if !st.Valid() {
		return fmt.Errorf("set status of %s: %q: %w", id, st, ErrInvalid)
	}
	now := ms(s.now())
	var res sql.Result
	var err error
	if st.Live() {
		res, err = s.exec(ctx, `UPDATE runs SET status = ?, error = ?, heartbeat_ms = ?,
			finished_ms = NULL WHERE id = ?`, st, errText, now, id)
	} else {
		res, err = s.exec(ctx, `UPDATE runs SET status = ?, error = ?, finished_ms = ?
			WHERE id = ?`, st, errText, now, id)
	}
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("set status of %s: %w", id, err)
	}
	return nil
}

// Delete removes the run id: its row, stages, metrics and checkpoints, and
// its folder with the checkpoint files. Branches of the run stay; they lose
// their parent. It returns an error wrapping [ErrNotFound] when the run does
// not exist and [ErrLive] when it is running or paused and its heartbeat is
// fresh: stop it first.
//
// The folder is first renamed to runs/.trash-<id>, then the rows are
// deleted, then the folder is removed; [Open] finishes the job if a crash
// interrupts it.
func (s *Store) Delete(ctx context.Context, id string) error {
	if s.readOnly {
		return fmt.Errorf("delete %s: %w", id, ErrReadOnly)
	}
	r, err := s.runByID(ctx, id)
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if r.Status.Live() && s.now().Sub(r.Heartbeat) < s.grace {
		return fmt.Errorf("delete %s: %w: stop it first", id, ErrLive)
	}
	folder, trash := s.runDir(id), filepath.Join(s.dir, "runs", trashPrefix+id)
	moved := true
	if err := os.Rename(folder, trash); errors.Is(err, os.ErrNotExist) {
		moved = false
	} else if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// parent_checkpoint_id has no foreign key (the runs and
		// checkpoints tables refer to each other), so clear it here.
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET parent_checkpoint_id = NULL
			WHERE parent_checkpoint_id IN (SELECT id FROM checkpoints WHERE run_id = ?)`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE id = ?`, id)
		return err
	})
	if err != nil {
		if moved {
			os.Rename(trash, folder)
		}
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if moved {
		if err := os.RemoveAll(trash); err != nil {
			return fmt.Errorf("delete %s: rows deleted, files remain: %w", id, err)
		}
	}
	return nil
}

// runByID returns the run with exactly this id, or ErrNotFound.
func (s *Store) runByID(ctx context.Context, id string) (Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, ErrNotFound
	}
	return r, err
}

// trashPrefix marks a run folder that Delete is removing.
const trashPrefix = ".trash-"

// runDir returns the absolute path of the folder of run id.
func (s *Store) runDir(id string) string { return filepath.Join(s.dir, "runs", id) }
