// Package store persists thaw's runs: their plans and lineage, stage
// boundaries, metrics and checkpoints.
//
// A store is a directory:
//
//	thaw.db                       SQLite database (WAL mode; -wal and -shm beside it)
//	runs/<run id>/ckpt-<step>-<kind>.safetensors
//	quarantine/                   files the store found but did not know
//
// The database is embedded SQLite through modernc.org/sqlite (pure Go). All
// SQL outside dialect.go is portable, so that a team can later point many
// thaw processes at one PostgreSQL database: ids are random and time-sortable
// rather than autoincremented, times are integer milliseconds, and checkpoint
// paths are relative to the store root, which may be shared storage.
//
// Several goroutines and several processes may use one store at once.
// Writers wait for each other (busy timeout, then a retry of the whole
// transaction), so "database is locked" does not reach callers in normal
// use. A process that runs a run calls [Store.Heartbeat] every few seconds;
// a run whose heartbeats stop is declared interrupted by the next [Open],
// and at once when its process, recorded with the run, ran on the same
// machine and is gone (see [Judge]).
//
// Checkpoint files are written atomically (temporary file, fsync, rename,
// fsync of the folder) before their row is inserted, so a recorded
// checkpoint always names a complete file unless the disk itself lost it;
// [Store.OpenCheckpoint] verifies size and SHA-256 before handing it out.
//
// A sweep ([Sweep], [SweepTask]) is recorded beside its runs: its spec,
// and per task index the freeze point and seed it trains and, once a
// process claims it ([Store.ClaimSweepTask]), its run.
//
// The store records runs; it does not know how models and data are found
// nor how a job is prepared. Package thaw/store/engine runs jobs: it
// prepares a trainer.Job, records it as a run ([JobRecord] in Run.Plan),
// trains it while a [Recorder] stores its metrics and checkpoints
// ([Store.StartResume] and [Recorder.Train] for resumed runs), and gives
// each user of a shared server their view of the runs. A stop requested by
// another process ([Store.RequestStop]) reaches a run at its recorder's
// next heartbeat.
package store
