package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// copyTables are the tables that hold a run, each with the column that
// names the run, in the order a run's rows are inserted: a row's
// references come first. A migration that adds a table of a run's rows
// adds it here (or, as sweep_tasks, to what copySweeps copies);
// TestCopyTablesComplete fails until it does.
var copyTables = []struct{ name, key string }{
	{"runs", "id"},
	{"stages", "run_id"},
	{"checkpoints", "run_id"},
	{"metrics", "run_id"},
	{"metric_rollups", "run_id"},
	{"run_tags", "run_id"},
	{"run_actions", "run_id"},
}

// CopyResult says what [Copy] did, by run id.
type CopyResult struct {
	Copied  []string // copied with their files
	Present []string // already in the destination, left as they are
	Live    []string // running or paused (or a branch of such a run): not copied
	Files   int      // files copied
	Bytes   int64    // their bytes
}

// Copy copies every run of src that dst does not hold into dst: its rows
// (record, stages, metrics and their summaries, checkpoints, tags, who
// stopped or resumed it) as they
// are, ids and times included, so that the run reads the same in both
// stores, and the files of its folder under src's checkpoint root to the
// same place under dst's, each written atomically. A run is copied in one
// transaction of dst, after its files, so that dst never has a run
// without its files; running Copy again after a failure copies what is
// missing. A run that is live in src (its process is running it) is left
// out, with its branches: stop it, or wait until it ends, and copy again.
// src may be read-only. Copy returns an error wrapping [ErrReadOnly] when
// dst is read-only.
func Copy(ctx context.Context, dst, src *Store) (CopyResult, error) {
	var res CopyResult
	if dst.readOnly {
		return res, fmt.Errorf("copy: %w", ErrReadOnly)
	}
	runs, err := src.ListRuns(ctx, RunFilter{})
	if err != nil {
		return res, fmt.Errorf("copy: %w", err)
	}
	slices.Reverse(runs) // oldest first: a branch after its parent
	live := make(map[string]bool)
	for _, r := range runs {
		l, err := src.Liveness(ctx, r)
		if err != nil {
			return res, fmt.Errorf("copy: %w", err)
		}
		if l.Status.Live() || live[r.ParentRun] {
			live[r.ID] = true
			res.Live = append(res.Live, r.ID)
			continue
		}
		switch _, err := dst.runByID(ctx, r.ID); {
		case err == nil:
			res.Present = append(res.Present, r.ID)
			continue
		case !errors.Is(err, ErrNotFound):
			return res, fmt.Errorf("copy run %s: %w", r.ID, err)
		}
		n, b, err := copyFiles(dst.runDir(r.ID), src.runDir(r.ID))
		res.Files, res.Bytes = res.Files+n, res.Bytes+b
		if err != nil {
			return res, fmt.Errorf("copy run %s: %w", r.ID, err)
		}
		err = dst.tx(ctx, func(tx *sql.Tx) error {
			for _, t := range copyTables {
				if err := copyRows(ctx, tx, src.db, t.name, t.key, r.ID); err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("copy run %s: %w", r.ID, err)
		}
		res.Copied = append(res.Copied, r.ID)
	}
	if err := copySweeps(ctx, dst, src); err != nil {
		return res, fmt.Errorf("copy: %w", err)
	}
	return res, nil
}

// copySweeps copies every sweep of src that dst does not hold, after the
// runs: its record and all its tasks. A task keeps its run when that run
// is in dst; a task whose run stayed behind (live in src) is left
// unclaimed, for a process to claim it again in dst.
func copySweeps(ctx context.Context, dst, src *Store) error {
	var ids []string
	rows, err := src.db.QueryContext(ctx, `SELECT id FROM sweeps ORDER BY created_ms`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		var n int
		if err := dst.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sweeps WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		type task struct {
			idx, shots    int64
			point, preset string
			seed, cpu     int64
			run           sql.NullString
		}
		var tasks []task
		tr, err := src.db.QueryContext(ctx, `SELECT idx, point, seed, preset, shots, run_id, cpu_ms FROM sweep_tasks WHERE sweep_id = ?`, id)
		if err != nil {
			return err
		}
		for tr.Next() {
			var t task
			if err := tr.Scan(&t.idx, &t.point, &t.seed, &t.preset, &t.shots, &t.run, &t.cpu); err != nil {
				tr.Close()
				return err
			}
			tasks = append(tasks, t)
		}
		tr.Close()
		if err := tr.Err(); err != nil {
			return err
		}
		err = dst.tx(ctx, func(tx *sql.Tx) error {
			if err := copyRows(ctx, tx, src.db, "sweeps", "id", id); err != nil {
				return err
			}
			for _, t := range tasks {
				run := t.run
				if run.Valid {
					var have int
					if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM runs WHERE id = ?`, run.String).Scan(&have); err != nil {
						return err
					}
					run.Valid = have > 0
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO sweep_tasks (sweep_id, idx, point, seed, preset, shots, run_id, cpu_ms)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, t.idx, t.point, t.seed, t.preset, t.shots, run, t.cpu); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sweep %s: %w", Short(id), err)
		}
	}
	return nil
}

// copyRows inserts into tx the rows of table whose key column is id, read
// from src, naming the columns as src has them. Rows go in batches of a
// few hundred values, the most a statement takes in every database.
func copyRows(ctx context.Context, tx *sql.Tx, src *sql.DB, table, key, id string) error {
	rows, err := src.QueryContext(ctx, `SELECT * FROM `+table+` WHERE `+key+` = ?`, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	types, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	perRow := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	batch := max(1, 900/len(cols))
	var args []any
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		q := `INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(perRow+", ", n), ", ")
		_, err := tx.ExecContext(ctx, q, args...)
		args, n = args[:0], 0
		return err
	}
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			// SQLite keeps a BOOLEAN as an integer; PostgreSQL takes no
			// integer for one.
			if x, ok := v.(int64); ok && strings.EqualFold(types[i].DatabaseTypeName(), "BOOLEAN") {
				vals[i] = x != 0
			}
		}
		args = append(args, vals...)
		if n++; n == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}

// copyFiles copies the files of the run folder src into dst, each written
// atomically, and returns how many files and bytes it copied. Temporary
// files of a write that never finished are left behind; a missing src is
// a run without files.
func copyFiles(dst, src string) (files int, size int64, err error) {
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == src {
			return fs.SkipDir
		}
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || isTemp(d.Name()) {
			return nil
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, n, err := writeAtomic(to, func(w io.Writer) error {
			_, err := io.Copy(w, f)
			return err
		})
		if err != nil {
			return fmt.Errorf("copy %s: %w", rel, err)
		}
		files, size = files+1, size+n
		return nil
	})
	return files, size, err
}
