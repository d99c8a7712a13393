package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"time"

	"thaw/trainer"
	"thaw/trainer/atomicfile"
)

// Kind says why a checkpoint was saved: the trainer's kinds
// (trainer.CheckpointStageEnd and so on), as [Status] is the trainer's.
type Kind = trainer.CheckpointKind

// The kinds of checkpoint, under the store's names.
const (
	KindStageEnd = trainer.CheckpointStageEnd // at the end of a stage: where branches start
	KindBest     = trainer.CheckpointBest     // best validation score so far
	KindLast     = trainer.CheckpointLast     // the newest state, for resuming
)

// Checkpoint is a stored model state: a safetensors file in the run's folder.
type Checkpoint struct {
	ID      string
	Run     string
	Step    int64 // steps completed when it was saved
	Stage   int   // index of the stage that was running
	Kind    Kind
	Path    string // relative to the store root, with forward slashes; see [Store.Path]
	SHA256  string // hex digest of the file
	Size    int64  // bytes
	Created time.Time
	Bad     bool   // the file was found missing or damaged
	Problem string // what was wrong when Bad
}

// CheckpointMeta describes a checkpoint about to be saved.
type CheckpointMeta struct {
	Step  int64
	Stage int
	Kind  Kind
}

const checkpointColumns = `id, run_id, step, stage, kind, path, sha256, size, created_ms, bad, problem`

func scanCheckpoint(row interface{ Scan(...any) error }) (Checkpoint, error) {
	var c Checkpoint
	var created int64
	err := row.Scan(&c.ID, &c.Run, &c.Step, &c.Stage, &c.Kind, &c.Path, &c.SHA256, &c.Size,
		&created, &c.Bad, &c.Problem)
	c.Created = time.UnixMilli(created)
	return c, err
}

// Temporary checkpoint files are named as atomicfile.Write names
// them (see atomicfile.IsTemp) inside a run's folder; Open removes those of
// runs that are not live.

// checkpointName returns the file name of a checkpoint.
func checkpointName(m CheckpointMeta) string {
	return fmt.Sprintf("ckpt-%d-%s.safetensors", m.Step, m.Kind)
}

// SaveCheckpoint stores a checkpoint of run. write is called once with a
// writer for the file's contents; it must not keep the writer. The file is
// written to a temporary name in the run's folder while its SHA-256 and size
// are computed, synced, renamed to runs/<run>/ckpt-<step>-<kind>.safetensors
// and the folder synced; only then is the checkpoint recorded. A checkpoint
// with the same step and kind as a stored one replaces it.
//
// SaveCheckpoint returns an error wrapping [ErrNotFound] when the run does
// not exist and [ErrInvalid] for an unknown kind or a negative step; an error
// from write is returned wrapped, and no checkpoint is recorded.
func (s *Store) SaveCheckpoint(ctx context.Context, run string, meta CheckpointMeta,
	write func(io.Writer) error) (Checkpoint, error) {
	fail := func(err error) (Checkpoint, error) {
		return Checkpoint{}, fmt.Errorf("save checkpoint of %s at step %d: %w", run, meta.Step, err)
	}
	if s.readOnly {
		return fail(ErrReadOnly)
	}
	if !meta.Kind.Valid() {
		return fail(fmt.Errorf("%w: kind %q", ErrInvalid, meta.Kind))
	}
	if meta.Step < 0 {
		return fail(fmt.Errorf("%w: negative step", ErrInvalid))
	}
	if _, err := s.runByID(ctx, run); err != nil {
		return fail(err)
	}
	dir := s.runDir(run)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	name := checkpointName(meta)
	sum, size, err := writeAtomic(filepath.Join(dir, name), write)
	if err != nil {
		return fail(err)
	}
	c := Checkpoint{
		ID: newID(s.now()), Run: run, Step: meta.Step, Stage: meta.Stage, Kind: meta.Kind,
		Path: path.Join("runs", run, name), SHA256: sum, Size: size,
		Created: time.UnixMilli(ms(s.now())),
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		// Keep the id of a replaced checkpoint: branches may point at it.
		var old string
		err := tx.QueryRowContext(ctx, `SELECT id FROM checkpoints WHERE run_id = ? AND step = ? AND kind = ?`,
			run, meta.Step, meta.Kind).Scan(&old)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, `INSERT INTO checkpoints (`+checkpointColumns+`)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, '')`,
				c.ID, c.Run, c.Step, c.Stage, c.Kind, c.Path, c.SHA256, c.Size, ms(c.Created))
			return err
		case err != nil:
			return err
		}
		c.ID = old
		_, err = tx.ExecContext(ctx, `UPDATE checkpoints SET stage = ?, path = ?, sha256 = ?, size = ?,
			created_ms = ?, bad = FALSE, problem = '' WHERE id = ?`,
			c.Stage, c.Path, c.SHA256, c.Size, ms(c.Created), c.ID)
		return err
	})
	if err != nil {
		// The file is complete but unrecorded; Open would quarantine it.
		os.Remove(filepath.Join(dir, name))
		return fail(err)
	}
	return c, nil
}

// writeAtomic writes the file at dst with atomicfile.Write (mode
// 0600), so that dst is either absent, the old file, or the whole new one,
// and returns the hex SHA-256 and the size of what was written.
func writeAtomic(dst string, write func(io.Writer) error) (sum string, size int64, err error) {
	h := sha256.New()
	var n int64
	err = atomicfile.Write(dst, 0o600, func(w io.Writer) error {
		cw := &countWriter{w: io.MultiWriter(w, h)}
		err := write(cw)
		n = cw.n
		if err != nil {
			return fmt.Errorf("write: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Checkpoint returns the checkpoint id. It returns an error wrapping
// [ErrNotFound] when there is none.
func (s *Store) Checkpoint(ctx context.Context, id string) (Checkpoint, error) {
	c, err := scanCheckpoint(s.db.QueryRowContext(ctx,
		`SELECT `+checkpointColumns+` FROM checkpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint %s: %w", id, err)
	}
	return c, nil
}

// Checkpoints returns the checkpoints of run by step, bad ones included. It
// returns an empty list when there are none or the run does not exist.
func (s *Store) Checkpoints(ctx context.Context, run string) ([]Checkpoint, error) {
	cs, err := s.queryCheckpoints(ctx, `SELECT `+checkpointColumns+` FROM checkpoints
		WHERE run_id = ? ORDER BY step, kind`, run)
	if err != nil {
		return nil, fmt.Errorf("checkpoints of %s: %w", run, err)
	}
	return cs, nil
}

func (s *Store) queryCheckpoints(ctx context.Context, q string, args ...any) ([]Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cs []Checkpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, err
		}
		cs = append(cs, c)
	}
	return cs, rows.Err()
}

// LastGoodCheckpoint returns the checkpoint of run with the highest step
// that is not marked bad, the one to resume from; of several at one step,
// the last, then the stage-end one, whose loop state is the more complete
// (the trainer saves a best checkpoint before the stage-end one). Its hash is verified only
// when it is opened; if [Store.OpenCheckpoint] then fails, call
// LastGoodCheckpoint again to get the next one down. It returns an error
// wrapping [ErrNotFound] when the run has no good checkpoint.
func (s *Store) LastGoodCheckpoint(ctx context.Context, run string) (Checkpoint, error) {
	c, err := scanCheckpoint(s.db.QueryRowContext(ctx, `SELECT `+checkpointColumns+` FROM checkpoints
		WHERE run_id = ? AND bad = FALSE ORDER BY step DESC,
		CASE kind WHEN 'last' THEN 2 WHEN 'stage-end' THEN 1 ELSE 0 END DESC, created_ms DESC LIMIT 1`, run))
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, fmt.Errorf("last good checkpoint of %s: %w", run, ErrNotFound)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("last good checkpoint of %s: %w", run, err)
	}
	return c, nil
}

// OpenCheckpoint opens the file of checkpoint id after checking its size and
// SHA-256 against the record, and returns it positioned at the start, with
// the record. The caller closes the file.
//
// When the file is missing or does not match, the checkpoint is marked bad
// and the error, which names the file, wraps [ErrCorrupt]; other checkpoints
// are unaffected. It returns an error wrapping [ErrNotFound] when there is no
// checkpoint id.
func (s *Store) OpenCheckpoint(ctx context.Context, id string) (*os.File, Checkpoint, error) {
	c, err := s.Checkpoint(ctx, id)
	if err != nil {
		return nil, Checkpoint{}, err
	}
	p := s.Path(c.Path)
	bad := func(problem string) (*os.File, Checkpoint, error) {
		c.Bad, c.Problem = true, problem
		if err := s.markBad(ctx, c.ID, problem); err != nil {
			return nil, c, fmt.Errorf("checkpoint %s: %w: %s (and recording it failed: %v)", p, ErrCorrupt, problem, err)
		}
		return nil, c, fmt.Errorf("checkpoint %s: %w: %s", p, ErrCorrupt, problem)
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return bad("file is missing")
	}
	if err != nil {
		return nil, c, fmt.Errorf("checkpoint %s: %w", p, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, c, fmt.Errorf("checkpoint %s: %w", p, err)
	}
	if n != c.Size {
		f.Close()
		return bad(fmt.Sprintf("size is %d bytes, want %d", n, c.Size))
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != c.SHA256 {
		f.Close()
		return bad(fmt.Sprintf("sha256 is %s, want %s", sum, c.SHA256))
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, c, fmt.Errorf("checkpoint %s: %w", p, err)
	}
	return f, c, nil
}

func (s *Store) markBad(ctx context.Context, id, problem string) error {
	if s.readOnly {
		return nil // reported to the caller; a writer marks it when it finds it
	}
	_, err := s.exec(ctx, `UPDATE checkpoints SET bad = TRUE, problem = ? WHERE id = ?`, problem, id)
	return err
}

// DeleteCheckpoint removes checkpoint id and its file. Runs branched from it
// keep their parent run but lose the parent checkpoint. It returns an error
// wrapping [ErrNotFound] when there is no checkpoint id.
func (s *Store) DeleteCheckpoint(ctx context.Context, id string) error {
	c, err := s.Checkpoint(ctx, id)
	if err != nil {
		return fmt.Errorf("delete %w", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE runs SET parent_checkpoint_id = NULL
			WHERE parent_checkpoint_id = ?`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM checkpoints WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete checkpoint %s: %w", id, err)
	}
	if err := os.Remove(s.Path(c.Path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete checkpoint %s: row deleted, file remains: %w", id, err)
	}
	return nil
}

// isTemp reports whether a file name is a temporary file that an atomic
// write left behind.
func isTemp(name string) bool { return atomicfile.IsTemp(name) }
