package ui

import (
	"context"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/ui/export"
)

// Backend is everything the workbench asks of the world outside its
// screens: the catalogue of models, preparing and previewing a job,
// probes, the freeze-depth sweep, the learning-rate finder, starting,
// resuming, branching and stopping runs, the stored runs and their
// changes. Screens keep state and views only; anything that trains,
// prepares or reads the store goes through it.
//
// The local workbench's backend is the engine itself (*engine.Engine); an
// SSH session's is its user's view (*engine.UserView), so that no session
// reaches runs its user may not see. Its methods are called from commands,
// off the Update goroutine, and must be safe for concurrent use.
type Backend interface {
	// Models lists the catalogue's base models by name; Model resolves
	// and loads one by name, or a model folder where files are allowed.
	Models() []string
	Model(name string) (*engine.BaseModel, error)
	// Tasks lists the built-in tasks a job's data may name, for the
	// Plan's data picker.
	Tasks() []engine.DataTask

	// Prepare prepares a job as a run would start; Inspect does so
	// without the forgetting gauge, to preview the data, the split and
	// the plan's lengths. Errors name the bad input.
	Prepare(job trainer.Job) (*trainer.Prepared, error)
	Inspect(job trainer.Job) (*trainer.Prepared, error)
	// Probe trains the linear probe of block k (engine.ProbeInput: the
	// raw input) for job and returns its best checkpoint's validation
	// loss and accuracy (see engine.Engine.Probe).
	Probe(ctx context.Context, job trainer.Job, k int) (engine.ProbeScore, error)

	// The freeze-depth sweep, the same one thaw sweep runs: NewSweep
	// records one (see engine.Engine.NewSweep); RunSweep trains its tasks
	// that have no result yet and reports the table as it fills (over
	// thaw serve, as one run against the user's limits); SweepTable reads
	// it as it stands; SweepProbes measures the probes of its blocks on
	// its data and seeds, once, and stores them; RunSweepTask finds the
	// sweep task a run trains, found false for a run of no sweep.
	NewSweep(ctx context.Context, spec engine.SweepSpec) (engine.SweepRecord, error)
	RunSweep(ctx context.Context, id string, opts engine.SweepOptions) (engine.SweepTable, error)
	SweepTable(ctx context.Context, id string) (engine.SweepTable, error)
	SweepProbes(ctx context.Context, id string) ([]engine.SweepProbe, error)
	RunSweepTask(ctx context.Context, id string) (t engine.SweepTask, found bool, err error)
	// FindLR runs the learning-rate range test of job's stage (0 is the
	// first).
	FindLR(ctx context.Context, job trainer.Job, stage int) (trainer.LRFindResult, error)

	// Start prepares job and starts it as a recorded run in the
	// background; Resume continues a stopped or interrupted run; Branch
	// starts a run from a stored checkpoint of another. Stop asks a run
	// to stop wherever it trains.
	Start(ctx context.Context, job trainer.Job, opts engine.StartOptions) (*engine.Live, error)
	Resume(ctx context.Context, id string, opts engine.StartOptions) (*engine.Live, error)
	Branch(ctx context.Context, parent string, from engine.BranchPoint, cont *engine.Continuation, opts engine.StartOptions) (*engine.Live, error)
	Stop(ctx context.Context, id string) error
	// Confusion evaluates the best weights of run id on its validation
	// set: counts[i][j] samples of class i predicted as j.
	Confusion(ctx context.Context, id string) (classes []string, counts [][]int, err error)

	// The stored runs, through the engine's read model: listed (List),
	// read (Read, ReadSeries: export.Source, as the figures read them),
	// deleted, renamed and tagged, and a feed of their changes. ListRuns
	// lists their bare records, for what needs no figures (the data
	// they trained on).
	List(ctx context.Context, f engine.RunFilter) ([]engine.RunView, error)
	ListRuns(ctx context.Context, f engine.RunFilter) ([]engine.Run, error)
	export.Source
	Delete(ctx context.Context, id string) error
	Rename(ctx context.Context, id, name string) error
	SetTags(ctx context.Context, id string, tags []string) error
	Subscribe(ctx context.Context) <-chan struct{}
}

var (
	_ Backend = (*engine.Engine)(nil)
	_ Backend = (*engine.UserView)(nil)
)

// readRun reads a stored run for a view or a figure, with at most
// maxPoints points a series (see export.Load).
func readRun(ctx context.Context, b Backend, id string, maxPoints int) (export.Run, error) {
	return export.Load(ctx, b, id, nil, maxPoints)
}
