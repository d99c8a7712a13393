// Package engine runs thaw's jobs: it is the one thing the front-ends (the
// command line, the workbench, the SSH server) call to prepare, start,
// resume, branch or sweep a run, and to probe a model's blocks, find a
// learning rate, preview data, label inputs or read the stored runs.
//
// An [Engine] resolves a job's names through the catalogue
// (assets.Catalog, which only resolves names), prepares it
// ([Engine.Prepare]), records it as a run (store.JobRecord in Run.Plan),
// trains it in a goroutine of its own while a store.Recorder keeps its
// metrics and checkpoints, and hands the caller a [Live] run: its control,
// a progress feed that never holds up the trainer, and its result. It
// also resumes stored runs, starts queued ones and branches new runs from
// a stored checkpoint of another. A stop requested by another process
// (store.Store.RequestStop) reaches the run at its recorder's next
// heartbeat.
//
// A sweep ([Engine.NewSweep], [Engine.RunSweep]) is a stored record of
// its own: the first stage of a plan at every freeze point over seeds,
// each task index mapped to its point and seed and to the run that trains
// it, run in parallel and resumable; its table ([SweepTable]) is the one
// thaw sweep prints and the workbench draws, and a cluster's task trains
// one index ([Engine.StartSweepTask]).
//
// [Engine.For] is the engine as one user of a shared server may use it
// ([UserView]): the runs they may see, changes only to their own, new
// runs within the [Limits], queued beyond them. An SSH session reaches
// nothing else.
package engine
