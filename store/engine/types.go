package engine

import (
	"thaw/assets"
	"thaw/store"
)

// The store's and the catalogue's vocabulary, as the engine's callers use
// it: a front-end that talks to the engine needs no other package for it.
type (
	// Run is a stored run's record.
	Run = store.Run
	// RunFilter selects runs to list.
	RunFilter = store.RunFilter
	// Stage is a stored stage boundary.
	Stage = store.Stage
	// Checkpoint is a stored checkpoint's record.
	Checkpoint = store.Checkpoint
	// Bucket is a span of a stored series.
	Bucket = store.Bucket
	// ResumePoint is where a resumed run continues.
	ResumePoint = store.ResumePoint
	// JobRecord is the job a run keeps.
	JobRecord = store.JobRecord
	// Liveness is a run's status judged by its heartbeat.
	Liveness = store.Liveness
	// BaseModel is a base model resolved by name and loaded.
	BaseModel = assets.BaseModel
	// ModelMeta is what a model's card states.
	ModelMeta = assets.ModelMeta
)

// Checkpoint kinds, as the store records them.
const (
	KindBest     = store.KindBest
	KindLast     = store.KindLast
	KindStageEnd = store.KindStageEnd
)

// Errors of the store that the engine's methods return, wrapped. Test for
// them with errors.Is.
var (
	ErrNotFound  = store.ErrNotFound
	ErrAmbiguous = store.ErrAmbiguous
	ErrInvalid   = store.ErrInvalid
	ErrLive      = store.ErrLive
	ErrNotLive   = store.ErrNotLive
)

// Short returns the short form of a run id that the command line, the
// workbench and the figures show (see store.Short).
func Short(id string) string { return store.Short(id) }

// DecodeJob reads the job record of run r (see store.DecodeJob).
func DecodeJob(r Run) (JobRecord, error) { return store.DecodeJob(r) }
