package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
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
	// checkpoint it started from, and ParentStep the step of that
	// checkpoint, where the branch's curves begin. Empty (and ParentStep
	// zero) for a run started from the base model. ParentRun becomes empty
	// when the parent is deleted, ParentCheckpoint when the checkpoint is;
	// ParentStep stays.
	ParentRun        string
	ParentCheckpoint string
	ParentStep       int64

	// Owner is who started the run: empty for the local operator, the
	// user's id (their SSH key's fingerprint, see engine.User) for a run
	// started over SSH.
	Owner string
	// Tags group runs, such as the runs of one sweep; sorted, no
	// duplicates.
	Tags []string

	Model       string // base model name
	ModelHash   string // hash of the base model's weights
	Dataset     string
	DatasetHash string

	// Plan is the run's job record, of either version (see JobRecord and
	// DecodeJob): the job as edited and the plan as resolved, from which
	// resume and branch rebuild the run. A run created without a job has
	// none.
	Plan    json.RawMessage
	Seed    int64
	Version string // version of thaw that ran it

	Status    Status
	Created   time.Time
	Heartbeat time.Time // last sign of life from the owning process
	Finished  time.Time // zero while live
	Error     string    // why it failed or diverged; empty otherwise

	// StopRequested is set by [Store.RequestStop]: the process running
	// the run stops it at its next heartbeat.
	StopRequested bool
	// StopReason says why a stopped run stopped, as its recorder was told
	// (see [WhyStopped]): [StopShutdown] when the shutdown of the process
	// that ran it stopped it, empty otherwise and for every other status.
	StopReason string
	// RanOn is where the run last started training: the host, and the
	// scheduler's job when there is one (see [Store.SetRanOn]); empty
	// before it first starts.
	RanOn string

	// Process is the process that last owned the run live: the one that
	// created, resumed or records it. Zero for a run no process has owned
	// since the schema recorded it.
	Process Process
}

// StopShutdown is the [Run.StopReason] of a run that the shutdown of the
// process training it stopped, not its owner: thaw serve resumes such runs
// when it starts again.
const StopShutdown = "shutdown"

const runColumns = `id, name, parent_run_id, parent_checkpoint_id, model, model_hash,
	dataset, dataset_hash, plan, seed, version, status, created_ms, heartbeat_ms,
	finished_ms, error, owner, parent_step, stop_requested, stop_reason, ran_on,
	owner_host, owner_boot, owner_pid, owner_start`

// scanRun reads a row of runColumns; the tags are read apart, by withTags.
func scanRun(row interface{ Scan(...any) error }) (Run, error) {
	var r Run
	var parent, parentCk sql.NullString
	var parentStep sql.NullInt64
	var plan string
	var created, heartbeat int64
	var finished sql.NullInt64
	err := row.Scan(&r.ID, &r.Name, &parent, &parentCk, &r.Model, &r.ModelHash,
		&r.Dataset, &r.DatasetHash, &plan, &r.Seed, &r.Version, &r.Status,
		&created, &heartbeat, &finished, &r.Error, &r.Owner, &parentStep, &r.StopRequested, &r.StopReason, &r.RanOn,
		&r.Process.Host, &r.Process.Boot, &r.Process.PID, &r.Process.Start)
	if err != nil {
		return Run{}, err
	}
	r.ParentRun, r.ParentCheckpoint, r.ParentStep = parent.String, parentCk.String, parentStep.Int64
	r.Plan = json.RawMessage(plan)
	r.Created = time.UnixMilli(created)
	r.Heartbeat = time.UnixMilli(heartbeat)
	r.Finished = fromMS(finished)
	return r, nil
}

func nullString(s string) sql.NullString { return sql.NullString{String: s, Valid: s != ""} }

// CreateRun records a new run and returns it with its ID, Status, Created
// and Heartbeat set; whatever r has in ID, Created, Heartbeat, Finished,
// Error, StopRequested, StopReason and RanOn is ignored. Status is running unless r asks for
// queued: a queued run waits for [Store.Resume] (or the engine) to start
// it. A nil Plan is stored as JSON null; Tags are stored sorted, without
// duplicates.
//
// For a branch, set ParentCheckpoint; ParentRun and ParentStep are then
// taken from the checkpoint. CreateRun returns an error wrapping
// [ErrNotFound] when the parent checkpoint does not exist, and [ErrInvalid]
// when Plan is not valid JSON, Status is neither empty, running nor
// queued, a tag is empty, or ParentRun names a different run than the
// checkpoint's.
func (s *Store) CreateRun(ctx context.Context, r Run) (Run, error) {
	if r.Plan == nil {
		r.Plan = json.RawMessage("null")
	}
	if !json.Valid(r.Plan) {
		return Run{}, fmt.Errorf("create run: plan: %w: not valid JSON", ErrInvalid)
	}
	switch r.Status {
	case "":
		r.Status = trainer.StatusRunning
	case trainer.StatusRunning, trainer.StatusQueued:
	default:
		return Run{}, fmt.Errorf("create run: status %q: %w: a new run is running or queued", r.Status, ErrInvalid)
	}
	tags, err := cleanTags(r.Tags)
	if err != nil {
		return Run{}, fmt.Errorf("create run: %w", err)
	}
	r.Tags = tags
	now := s.stamp(ctx)
	r.ID = newID(now)
	r.Created, r.Heartbeat = time.UnixMilli(ms(now)), time.UnixMilli(ms(now))
	r.Finished, r.Error, r.StopRequested, r.StopReason, r.RanOn = time.Time{}, "", false, "", ""
	r.Process = Process{}
	if r.Status == trainer.StatusRunning {
		r.Process = self()
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if r.ParentCheckpoint != "" {
			var parent string
			err := tx.QueryRowContext(ctx, `SELECT run_id, step FROM checkpoints WHERE id = ?`,
				r.ParentCheckpoint).Scan(&parent, &r.ParentStep)
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
		parentStep := sql.NullInt64{Int64: r.ParentStep, Valid: r.ParentRun != ""}
		if !parentStep.Valid {
			r.ParentStep = 0
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO runs (`+runColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', ?, ?, FALSE, '', '', ?, ?, ?, ?)`,
			r.ID, r.Name, nullString(r.ParentRun), nullString(r.ParentCheckpoint),
			r.Model, r.ModelHash, r.Dataset, r.DatasetHash, string(r.Plan), r.Seed,
			r.Version, r.Status, ms(now), ms(now), r.Owner, parentStep,
			r.Process.Host, r.Process.Boot, r.Process.PID, r.Process.Start)
		if err != nil {
			return err
		}
		for _, tag := range r.Tags {
			if _, err := tx.ExecContext(ctx, `INSERT INTO run_tags (run_id, tag) VALUES (?, ?)`, r.ID, tag); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Run{}, fmt.Errorf("create run: %w", err)
	}
	return r, nil
}

// Run returns the run whose id is id or starts with it, ignoring case, or
// for [Latest] the newest run. It returns an error wrapping [ErrNotFound] when no run matches and
// [ErrAmbiguous] when several do.
func (s *Store) Run(ctx context.Context, id string) (Run, error) {
	full, err := s.resolve(ctx, id)
	if err != nil {
		return Run{}, err
	}
	r, err := s.runByID(ctx, full)
	if errors.Is(err, ErrNotFound) {
		return Run{}, fmt.Errorf("run %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Run{}, fmt.Errorf("run %s: %w", id, err)
	}
	return r, nil
}

// Latest is the run reference that names the newest run; no id or prefix
// can be spelled so (ids have no l or u).
const Latest = "latest"

// resolve turns a full id, a unique prefix or [Latest] into the full id of
// a run.
func (s *Store) resolve(ctx context.Context, prefix string) (string, error) {
	if prefix == Latest {
		var id string
		err := s.db.QueryRowContext(ctx, `SELECT id FROM runs ORDER BY created_ms DESC, id DESC LIMIT 1`).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return "", fmt.Errorf("run %s: %w: the store has no runs", prefix, ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("run %s: %w", prefix, err)
		}
		return id, nil
	}
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
	Tag     string   // runs with this tag; empty matches all
	Owners  []string // runs of any of these owners ("" is the local operator); empty means any
	Parent  string   // branches of this run (full id); empty matches all
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
	if f.Tag != "" {
		where = append(where, "id IN (SELECT run_id FROM run_tags WHERE tag = ?)")
		args = append(args, f.Tag)
	}
	if len(f.Owners) > 0 {
		marks := make([]string, len(f.Owners))
		for i, o := range f.Owners {
			marks[i] = "?"
			args = append(args, o)
		}
		where = append(where, "owner IN ("+strings.Join(marks, ", ")+")")
	}
	if f.Parent != "" {
		where = append(where, "parent_run_id = ?")
		args = append(args, f.Parent)
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
	var runs []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		runs = append(runs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range runs {
		if runs[i].Tags, err = s.tags(ctx, runs[i].ID); err != nil {
			return nil, err
		}
	}
	return runs, nil
}

// tags returns the tags of run, sorted.
func (s *Store) tags(ctx context.Context, run string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tag FROM run_tags WHERE run_id = ? ORDER BY tag`, run)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var tags []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		tags = append(tags, t)
	}
	return tags, rows.Err()
}

// cleanTags sorts tags and drops duplicates; an empty tag is [ErrInvalid].
func cleanTags(tags []string) ([]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	out = slices.Compact(out)
	if out[0] == "" {
		return nil, fmt.Errorf("tag: %w: empty", ErrInvalid)
	}
	return out, nil
}

// SetTags replaces the tags of the run id. It returns an error wrapping
// [ErrNotFound] when the run does not exist and [ErrInvalid] for an empty
// tag.
func (s *Store) SetTags(ctx context.Context, id string, tags []string) error {
	tags, err := cleanTags(tags)
	if err != nil {
		return fmt.Errorf("set tags of %s: %w", id, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if err := runExists(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM run_tags WHERE run_id = ?`, id); err != nil {
			return err
		}
		for _, tag := range tags {
			if _, err := tx.ExecContext(ctx, `INSERT INTO run_tags (run_id, tag) VALUES (?, ?)`, id, tag); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set tags of %s: %w", id, err)
	}
	return nil
}

// SetRanOn records where the run id starts training now, its
// [Run.RanOn]: a host name and the scheduler's job, as the engine
// describes them.
func (s *Store) SetRanOn(ctx context.Context, id, where string) error {
	if _, err := s.exec(ctx, `UPDATE runs SET ran_on = ? WHERE id = ?`, where, id); err != nil {
		return fmt.Errorf("run %s: ran on: %w", Short(id), err)
	}
	return nil
}

// Rename sets the name of the run id. It returns an error wrapping
// [ErrNotFound] when the run does not exist and [ErrInvalid] for an empty
// name.
func (s *Store) Rename(ctx context.Context, id, name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("rename %s: %w: empty name", id, ErrInvalid)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := runExists(ctx, tx, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE runs SET name = ? WHERE id = ?`, name, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("rename %s: %w", id, err)
	}
	return nil
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
			WHERE id = ? AND status IN ('running', 'paused')`, ms(s.stamp(ctx)), id)
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
	return s.setStatus(ctx, id, st, errText, "")
}

// setStatus is SetStatus that records why a run stopped, when st is
// stopped; the reason is cleared otherwise.
func (s *Store) setStatus(ctx context.Context, id string, st Status, errText, stopReason string) error {
	if !st.Valid() {
		return fmt.Errorf("set status of %s: %q: %w", id, st, ErrInvalid)
	}
	if st != trainer.StatusStopped {
		stopReason = ""
	}
	now := ms(s.stamp(ctx))
	var res sql.Result
	var err error
	if st.Live() {
		// Whoever makes a run live owns it.
		p := self()
		res, err = s.exec(ctx, `UPDATE runs SET status = ?, error = ?, heartbeat_ms = ?,
			finished_ms = NULL, owner_host = ?, owner_boot = ?, owner_pid = ?, owner_start = ?
			WHERE id = ?`, st, errText, now, p.Host, p.Boot, p.PID, p.Start, id)
	} else if !st.Final() {
		res, err = s.exec(ctx, `UPDATE runs SET status = ?, error = ?, heartbeat_ms = ?,
			finished_ms = NULL, stop_reason = '' WHERE id = ?`, st, errText, now, id)
	} else {
		res, err = s.exec(ctx, `UPDATE runs SET status = ?, error = ?, finished_ms = ?,
			stop_reason = ? WHERE id = ?`, st, errText, now, stopReason, id)
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
	live, err := s.Liveness(ctx, r)
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	if live.Status.Live() {
		return fmt.Errorf("delete %s: %w: it is %s, its heartbeat %s old; stop it first, or, if its process is gone, wait %d s until its heartbeat is stale",
			id, ErrLive, r.Status, live.Age.Round(time.Second), int(math.Ceil(live.Left.Seconds())))
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
	if err != nil {
		return Run{}, err
	}
	r.Tags, err = s.tags(ctx, id)
	return r, err
}

// RequestStop asks the process running the run id to stop it: the
// recorder's heartbeat sees the request within [DefaultHeartbeatEvery] and
// stops the run through its control, and the run ends as stopped (and
// resumable). A queued run, which no process runs, becomes stopped at once.
// It returns an error wrapping [ErrNotFound] when the run does not exist
// and [ErrNotLive] when it has already ended.
func (s *Store) RequestStop(ctx context.Context, id string) error {
	now := ms(s.now())
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE runs SET stop_requested = TRUE
			WHERE id = ? AND status IN ('running', 'paused')`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE runs SET status = 'stopped', finished_ms = ?, stop_reason = ''
			WHERE id = ? AND status = 'queued'`, now, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		return runState(ctx, tx, id)
	})
	if err != nil {
		return fmt.Errorf("request stop of %s: %w", id, err)
	}
	return nil
}

// Requeue turns the run id, stopped for reason (its [Run.StopReason]), into
// a queued run again, to be resumed ([Store.Resume]) from its last
// checkpoint when its turn comes: thaw serve requeues the runs its own
// shutdown stopped when it starts again. Only one of several processes
// requeuing a run at once succeeds. It returns an error wrapping
// [ErrNotFound] when the run does not exist and [ErrInvalid] when it is
// not stopped for that reason (any more).
func (s *Store) Requeue(ctx context.Context, id, reason string) error {
	res, err := s.exec(ctx, `UPDATE runs SET status = 'queued', finished_ms = NULL, stop_reason = '',
		stop_requested = FALSE WHERE id = ? AND status = 'stopped' AND stop_reason = ?`, id, reason)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			var r Run
			if r, err = s.runByID(ctx, id); err == nil {
				err = fmt.Errorf("%w: it is %s (stop reason %q), not stopped for %q", ErrInvalid, r.Status, r.StopReason, reason)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("requeue %s: %w", id, err)
	}
	return nil
}

// StopRequested reports whether [Store.RequestStop] asked for the run id
// to stop. It returns an error wrapping [ErrNotFound] when the run does not
// exist.
func (s *Store) StopRequested(ctx context.Context, id string) (bool, error) {
	var stop bool
	err := s.db.QueryRowContext(ctx, `SELECT stop_requested FROM runs WHERE id = ?`, id).Scan(&stop)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return false, fmt.Errorf("stop requested of %s: %w", id, err)
	}
	return stop, nil
}

// trashPrefix marks a run folder that Delete is removing.
const trashPrefix = ".trash-"

// runDir returns the absolute path of the folder of run id.
func (s *Store) runDir(id string) string { return filepath.Join(s.dir, "runs", id) }

// RunSize returns the bytes that run id's files take on disk: its
// checkpoints and whatever else its folder holds. A run without a folder
// takes none. It may be called while the run writes: a file removed during
// the walk is not counted and is no error.
func (s *Store) RunSize(id string) (int64, error) {
	var n int64
	err := filepath.WalkDir(s.runDir(id), func(_ string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if errors.Is(err, fs.ErrNotExist) {
				// A live run replaces its best checkpoint: the file
				// listed a moment ago may be gone, and takes no room.
				return nil
			}
			if err != nil {
				return err
			}
			n += info.Size()
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("size of run %s: %w", id, err)
	}
	return n, nil
}
