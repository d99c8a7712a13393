package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// migrations are the schema changes in order; migration i+1 is migrations[i].
// Each runs in one transaction together with the row in schema_migrations
// that records it, so a store is always at a whole version. Append new
// migrations; never edit one that has been released.
//
// Times are BIGINT milliseconds since the Unix epoch (UTC), booleans are
// BOOLEAN, JSON is TEXT: all of it reads the same in SQLite and PostgreSQL.
var migrations = [][]string{
	// 1: runs, their stages, metrics and checkpoints.
	{
		`CREATE TABLE runs (
			id                   TEXT PRIMARY KEY,
			name                 TEXT NOT NULL,
			parent_run_id        TEXT REFERENCES runs(id) ON DELETE SET NULL,
			parent_checkpoint_id TEXT,
			model                TEXT NOT NULL,
			model_hash           TEXT NOT NULL,
			dataset              TEXT NOT NULL,
			dataset_hash         TEXT NOT NULL,
			plan                 TEXT NOT NULL,
			seed                 BIGINT NOT NULL,
			version              TEXT NOT NULL,
			status               TEXT NOT NULL CHECK (status IN
				('running', 'paused', 'done', 'stopped', 'diverged', 'interrupted', 'failed')),
			created_ms           BIGINT NOT NULL,
			heartbeat_ms         BIGINT NOT NULL,
			finished_ms          BIGINT,
			error                TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE INDEX runs_created ON runs (created_ms)`,
		`CREATE INDEX runs_parent ON runs (parent_run_id)`,
		`CREATE INDEX runs_status ON runs (status)`,
		`CREATE TABLE stages (
			run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			idx        INTEGER NOT NULL,
			name       TEXT NOT NULL,
			trainable  TEXT NOT NULL,
			start_step BIGINT NOT NULL,
			end_step   BIGINT,
			PRIMARY KEY (run_id, idx)
		)`,
		// The primary key (run_id, name, step) is the only access path: a
		// series is one contiguous range of it, already ordered by step.
		`CREATE TABLE metrics (
			run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			name   TEXT NOT NULL,
			step   BIGINT NOT NULL,
			stage  INTEGER NOT NULL,
			value  DOUBLE PRECISION, -- NULL stands for NaN, which SQLite cannot store
			PRIMARY KEY (run_id, name, step)
		)` + clustered,
		// Summaries of the metrics over aligned step ranges [bucket*width,
		// (bucket+1)*width), kept up to date by AddMetrics, so that Series
		// reads a few thousand rows instead of every point. The value
		// columns are NULL when every value in the range is NaN.
		`CREATE TABLE metric_rollups (
			run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			name       TEXT NOT NULL,
			width      BIGINT NOT NULL,
			bucket     BIGINT NOT NULL,
			first_step BIGINT NOT NULL,
			last_step  BIGINT NOT NULL,
			min_value  DOUBLE PRECISION,
			max_value  DOUBLE PRECISION,
			sum_value  DOUBLE PRECISION,
			n          BIGINT NOT NULL,
			n_values   BIGINT NOT NULL,
			PRIMARY KEY (run_id, name, width, bucket)
		)` + clustered,
		`CREATE TABLE checkpoints (
			id         TEXT PRIMARY KEY,
			run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			step       BIGINT NOT NULL,
			stage      INTEGER NOT NULL,
			kind       TEXT NOT NULL CHECK (kind IN ('stage-end', 'best', 'last')),
			path       TEXT NOT NULL,
			sha256     TEXT NOT NULL,
			size       BIGINT NOT NULL,
			created_ms BIGINT NOT NULL,
			bad        BOOLEAN NOT NULL DEFAULT FALSE,
			problem    TEXT NOT NULL DEFAULT '',
			UNIQUE (run_id, step, kind)
		)`,
	},
	// 2: the engine's needs: owner, the step a branch starts from, stop
	// requests, the queued status and tags. The status CHECK gains
	// 'queued' through a new column, since no database alters a CHECK in
	// place the same way: the column is added with the new CHECK, filled,
	// the old one dropped and the new one renamed (SQLite 3.35 and
	// PostgreSQL both do each of these).
	{
		`ALTER TABLE runs ADD COLUMN owner TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE runs ADD COLUMN parent_step BIGINT`,
		`ALTER TABLE runs ADD COLUMN stop_requested BOOLEAN NOT NULL DEFAULT FALSE`,
		`DROP INDEX runs_status`,
		`ALTER TABLE runs ADD COLUMN status2 TEXT NOT NULL DEFAULT 'queued' CHECK (status2 IN
			('queued', 'running', 'paused', 'done', 'stopped', 'diverged', 'interrupted', 'failed'))`,
		`UPDATE runs SET status2 = status`,
		`ALTER TABLE runs DROP COLUMN status`,
		`ALTER TABLE runs RENAME COLUMN status2 TO status`,
		`CREATE INDEX runs_status ON runs (status)`,
		`CREATE INDEX runs_owner ON runs (owner)`,
		`CREATE TABLE run_tags (
			run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
			tag    TEXT NOT NULL,
			PRIMARY KEY (run_id, tag)
		)`,
		`CREATE INDEX run_tags_tag ON run_tags (tag)`,
	},
	// 3: this release's schema changes, together in one migration.
	//
	// issue 21: the process that owns a live run (host, boot and pid
	// namespace, pid, start time), so that a reader on the same machine
	// sees at once that it is gone; see Process.
	//
	// issue 24: where a run ran (Run.RanOn: the host, and the Slurm or
	// Kubernetes job when there is one), and on PostgreSQL the NOTIFY
	// triggers that tell viewers in other processes that runs changed
	// (see watch.go); SQLite skips them.
	//
	// issue 19: who stopped, deleted or resumed a run (run_actions). No
	// foreign key: the record of a deletion outlives the run.
	//
	// issue 23: why a stopped run stopped, so that a server's restart
	// resumes the runs its own shutdown stopped (see Run.StopReason).
	//
	// issue 20: sweeps, each with its tasks: the task index a cluster
	// submits maps to its freeze point, seed and (when crossed) preset and
	// shots, and to the run that trains it once claimed (NULL before, and
	// again when that run is deleted). The spec is the engine's JSON.
	{
		`ALTER TABLE runs ADD COLUMN stop_reason TEXT NOT NULL DEFAULT ''`,
		`CREATE TABLE sweeps (
			id         TEXT PRIMARY KEY,
			name       TEXT NOT NULL,
			owner      TEXT NOT NULL DEFAULT '',
			spec       TEXT NOT NULL,
			result     TEXT NOT NULL DEFAULT '',
			created_ms BIGINT NOT NULL
		)`,
		`CREATE INDEX sweeps_owner ON sweeps (owner)`,
		`CREATE TABLE sweep_tasks (
			sweep_id TEXT NOT NULL REFERENCES sweeps(id) ON DELETE CASCADE,
			idx      INTEGER NOT NULL,
			point    TEXT NOT NULL,
			seed     BIGINT NOT NULL,
			preset   TEXT NOT NULL DEFAULT '',
			shots    INTEGER NOT NULL DEFAULT 0,
			run_id   TEXT REFERENCES runs(id) ON DELETE SET NULL,
			cpu_ms   BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (sweep_id, idx)
		)`,
		`CREATE INDEX sweep_tasks_run ON sweep_tasks (run_id)`,
		`CREATE TABLE run_actions (
			run_id TEXT NOT NULL,
			action TEXT NOT NULL,
			actor  TEXT NOT NULL,
			at_ms  BIGINT NOT NULL
		)`,
		`CREATE INDEX run_actions_run ON run_actions (run_id)`,
		`ALTER TABLE runs ADD COLUMN ran_on TEXT NOT NULL DEFAULT ''`,
		pgOnly + pgRunsNotifyFunc,
		pgOnly + pgRunsNotifyTrigger,
		pgOnly + pgMetricsNotifyFunc,
		pgOnly + pgMetricsNotifyTrigger,
		`ALTER TABLE runs ADD COLUMN owner_host TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE runs ADD COLUMN owner_boot TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE runs ADD COLUMN owner_pid BIGINT NOT NULL DEFAULT 0`,
		`ALTER TABLE runs ADD COLUMN owner_start BIGINT NOT NULL DEFAULT 0`,
	},
}

// migrate brings the schema up to the newest version this build knows. It is
// safe to run from several processes at once: each step checks the version
// inside its own write transaction.
func (s *Store) migrate(ctx context.Context) error {
	// In a transaction, so that PostgreSQL's writers take turns at it too:
	// two processes creating the table at once would otherwise collide.
	if _, err := s.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_ms BIGINT NOT NULL
	)`); err != nil {
		return err
	}
	for i, stmts := range migrations {
		version := i + 1
		err := s.tx(ctx, func(tx *sql.Tx) error {
			var have int
			if err := tx.QueryRowContext(ctx,
				`SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
				return err
			}
			if have > len(migrations) {
				return fmt.Errorf("%w: schema version %d, this build knows %d", ErrNewerSchema, have, len(migrations))
			}
			if have >= version {
				return nil
			}
			for _, q := range stmts {
				if q = s.d.migration(q); q == "" {
					continue // another database's statement
				}
				if _, err := tx.ExecContext(ctx, q); err != nil {
					return fmt.Errorf("migration %d: %w", version, err)
				}
			}
			_, err := tx.ExecContext(ctx,
				`INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)`,
				version, time.Now().UnixMilli())
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion returns the schema version recorded in the database.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
