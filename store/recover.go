package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Recovery is what [Open] found and repaired after an earlier crash. Paths
// are relative to the store root, with forward slashes.
type Recovery struct {
	Interrupted    []string // runs whose heartbeat had stopped, now interrupted
	TempRemoved    []string // unfinished checkpoint files that were removed
	BadCheckpoints []string // ids of checkpoints newly marked bad
	Quarantined    []string // files moved under quarantine/, by their old path
	Trashed        []string // run folders of finished deletions that were removed
}

// Recovery returns what [Open] repaired.
func (s *Store) Recovery() Recovery { return s.recovery }

// recover runs the crash recovery described at Open.
func (s *Store) recover(ctx context.Context) error {
	if err := s.checkRoot(ctx); err != nil {
		return err
	}
	ids, err := s.MarkStale(ctx)
	if err != nil {
		return err
	}
	s.recovery.Interrupted = ids
	if err := s.verifyCheckpoints(ctx); err != nil {
		return err
	}
	return s.sweepFiles(ctx)
}

// MarkStale declares interrupted every run that is running or paused but
// whose heartbeat is stale by [Judge]'s rule (the database's clock, the
// store's grace), and returns their ids. [Open] calls it, and resume before
// it takes a run over; a viewer needs not, since [Judge] shows the same
// status without writing.
func (s *Store) MarkStale(ctx context.Context) ([]string, error) {
	now, err := s.Now(ctx)
	if err != nil {
		return nil, fmt.Errorf("mark stale runs: %w", err)
	}
	var ids []string
	err = s.tx(ctx, func(tx *sql.Tx) error {
		ids = ids[:0]
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs
			WHERE status IN ('running', 'paused')`).Scan(&live); err != nil || live == 0 {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+runColumns+` FROM runs
			WHERE status IN ('running', 'paused')`)
		if err != nil {
			return err
		}
		var why []string
		for rows.Next() {
			r, err := scanRun(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if Judge(r, now, s.grace).Status.Live() {
				continue
			}
			ids = append(ids, r.ID)
			text := "no heartbeat from its process"
			if r.Process.gone() {
				text = fmt.Sprintf("its process (pid %d on %s) is gone", r.Process.PID, r.Process.Host)
			}
			why = append(why, text)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE runs SET status = 'interrupted', finished_ms = ?,
				error = ? WHERE id = ?`, ms(now), why[i], id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mark stale runs: %w", err)
	}
	return ids, nil
}

// verifyCheckpoints marks bad every checkpoint whose file is missing or has
// the wrong size. A full hash check waits for OpenCheckpoint.
func (s *Store) verifyCheckpoints(ctx context.Context) error {
	cs, err := s.queryCheckpoints(ctx, `SELECT `+checkpointColumns+` FROM checkpoints WHERE bad = FALSE`)
	if err != nil {
		return fmt.Errorf("verify checkpoints: %w", err)
	}
	for _, c := range cs {
		problem := ""
		fi, err := os.Stat(s.Path(c.Path))
		switch {
		case errors.Is(err, os.ErrNotExist):
			problem = "file is missing"
		case err != nil:
			problem = err.Error()
		case fi.Size() != c.Size:
			problem = fmt.Sprintf("size is %d bytes, want %d", fi.Size(), c.Size)
		default:
			continue
		}
		if err := s.markBad(ctx, c.ID, problem); err != nil {
			return fmt.Errorf("verify checkpoints: %w", err)
		}
		s.recovery.BadCheckpoints = append(s.recovery.BadCheckpoints, c.ID)
	}
	return nil
}

// sweepFiles tidies runs/. The folder of a live run belongs to its process
// and is not touched. Elsewhere temporary checkpoint files are removed,
// finished deletions are completed, and whatever the store does not know is
// moved to quarantine/, except for folders that name no run of the store
// under a root given with WithCheckpoints: other stores may share it.
func (s *Store) sweepFiles(ctx context.Context) error {
	entries, err := os.ReadDir(filepath.Join(s.dir, "runs"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sweep runs: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		rel := path.Join("runs", name)
		if !e.IsDir() {
			if err := s.quarantine(rel); err != nil {
				return err
			}
			continue
		}
		if id, ok := strings.CutPrefix(name, trashPrefix); ok {
			if err := s.finishDelete(ctx, id); err != nil {
				return err
			}
			continue
		}
		r, err := s.runByID(ctx, name)
		if errors.Is(err, ErrNotFound) && s.root != "" {
			// A root given with WithCheckpoints may be shared with other
			// stores, whose runs these may be.
			continue
		}
		if errors.Is(err, ErrNotFound) {
			if err := s.quarantine(rel); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("sweep runs: %w", err)
		}
		if r.Status.Live() {
			continue
		}
		if err := s.sweepRun(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// finishDelete completes a Delete that a crash interrupted: the folder goes
// if the rows are gone, and comes back if they are not.
func (s *Store) finishDelete(ctx context.Context, id string) error {
	trash := filepath.Join(s.dir, "runs", trashPrefix+id)
	_, err := s.runByID(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		if err := os.RemoveAll(trash); err != nil {
			return fmt.Errorf("finish deleting %s: %w", id, err)
		}
		s.recovery.Trashed = append(s.recovery.Trashed, path.Join("runs", trashPrefix+id))
		return nil
	case err != nil:
		return fmt.Errorf("finish deleting %s: %w", id, err)
	}
	if _, err := os.Stat(s.runDir(id)); err == nil {
		// Both exist; keep the live folder and set the other aside.
		return s.quarantine(path.Join("runs", trashPrefix+id))
	}
	if err := os.Rename(trash, s.runDir(id)); err != nil {
		return fmt.Errorf("restore folder of %s: %w", id, err)
	}
	return nil
}

// sweepRun tidies the folder of a run that is not live.
func (s *Store) sweepRun(ctx context.Context, id string) error {
	cs, err := s.Checkpoints(ctx, id)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(cs))
	for _, c := range cs {
		known[c.Path] = true
	}
	entries, err := os.ReadDir(s.runDir(id))
	if err != nil {
		return fmt.Errorf("sweep run %s: %w", id, err)
	}
	for _, e := range entries {
		rel := path.Join("runs", id, e.Name())
		switch {
		case known[rel] && e.Type().IsRegular():
		case isTemp(e.Name()) && e.Type().IsRegular():
			if err := os.Remove(s.Path(rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove temporary file: %w", err)
			}
			s.recovery.TempRemoved = append(s.recovery.TempRemoved, rel)
		default:
			if err := s.quarantine(rel); err != nil {
				return err
			}
		}
	}
	return nil
}

// quarantine moves the file or folder rel to the same relative path under
// quarantine/, adding .1, .2 and so on if that name is taken.
func (s *Store) quarantine(rel string) error {
	dst := path.Join("quarantine", rel)
	if err := os.MkdirAll(filepath.Dir(s.Path(dst)), 0o700); err != nil {
		return fmt.Errorf("quarantine %s: %w", rel, err)
	}
	for i := 1; ; i++ {
		if _, err := os.Lstat(s.Path(dst)); errors.Is(err, fs.ErrNotExist) {
			break
		}
		dst = fmt.Sprintf("%s.%d", path.Join("quarantine", rel), i)
	}
	if err := os.Rename(s.Path(rel), s.Path(dst)); err != nil {
		return fmt.Errorf("quarantine %s: %w", rel, err)
	}
	s.recovery.Quarantined = append(s.recovery.Quarantined, rel)
	return nil
}
