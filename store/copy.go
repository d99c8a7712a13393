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
// adds it here; TestCopyTablesComplete fails until it does.
var copyTables = []struct{ name, key string }{
	{"runs", "id"},
	{"stages", "run_id"},
	{"checkpoints", "run_id"},
	{"metrics", "run_id"},
	{"metric_rollups", "run_id"},
	{"run_tags", "run_id"},
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
// (record, stages, metrics and their summaries, checkpoints, tags) as they
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
	return res, nil
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
