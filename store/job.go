package store

import (
	"encoding/json"
	"fmt"

	"thaw/trainer"
)

// JobRecord is what a run keeps in its Plan field: the job it was started
// from, and its plan as resolved then, so that resume and branch rebuild the
// same run and can check that they did.
//
// Version 2 is the [trainer.Job] itself. Version 1, written by thaw train
// before the engine, kept thaw train's flags; [DecodeJob] turns those into
// the job they describe.
type JobRecord struct {
	Version int                 `json:"version"`
	Job     trainer.Job         `json:"job"`
	Plan    trainer.PlanSummary `json:"plan"`
	// Kernel is the path the run's matrix products took
	// ([trainer.KernelPath]); empty in records written before it was kept.
	// Runs on different paths may differ in the last bits, so resume and
	// branch warn when it is not this binary's.
	Kernel string `json:"kernel,omitempty"`
}

// KernelWarning says why continuing the run of rec here may not reproduce
// its bits: it ran on another kernel path than this binary takes. It is
// empty when the paths agree or the record does not say.
func (rec JobRecord) KernelWarning() string {
	if rec.Kernel == "" || rec.Kernel == trainer.KernelPath() {
		return ""
	}
	return fmt.Sprintf("the run computed with the %s kernels and continues with %s: its weights may differ in the last bits from an uninterrupted run's",
		rec.Kernel, trainer.KernelPath())
}

// JobVersion is the version of JobRecord this store writes.
const JobVersion = 2

// NewJobRecord returns the record of a prepared job.
func NewJobRecord(p *trainer.Prepared) JobRecord {
	return JobRecord{Version: JobVersion, Job: p.Job, Plan: p.Summary(), Kernel: trainer.KernelPath()}
}

// jobRecordV1 is version 1: thaw train's flags.
type jobRecordV1 struct {
	Version int `json:"version"`
	Inputs  struct {
		Model     string          `json:"model"`            // zoo name or absolute folder
		Data      string          `json:"data"`             // task name or absolute path
		Labels    string          `json:"labels,omitempty"` // absolute IDX labels path
		Plan      string          `json:"plan"`             // preset name or the plan file as given
		PlanFile  json.RawMessage `json:"plan_file,omitempty"`
		Shots     int             `json:"shots"`
		ValSplit  float64         `json:"val_split"`
		Batch     int             `json:"batch"`
		LR        float64         `json:"lr"`
		Epochs    int             `json:"epochs"`
		Seed      uint64          `json:"seed"`
		EvalEvery int             `json:"eval_every"`
	} `json:"inputs"`
	Plan trainer.PlanSummary `json:"plan"`
}

// DecodeJob reads the job record of run r, of either version. It returns
// an error wrapping [ErrInvalid] when the record is not one (a run created
// without a job) or is of a version this thaw does not know.
func DecodeJob(r Run) (JobRecord, error) {
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(r.Plan, &head); err != nil {
		return JobRecord{}, fmt.Errorf("run %s: its job: %w: %v", Short(r.ID), ErrInvalid, err)
	}
	switch head.Version {
	case JobVersion:
		var rec JobRecord
		if err := json.Unmarshal(r.Plan, &rec); err != nil {
			return JobRecord{}, fmt.Errorf("run %s: its job: %w: %v", Short(r.ID), ErrInvalid, err)
		}
		return rec, nil
	case 1:
		var v1 jobRecordV1
		if err := json.Unmarshal(r.Plan, &v1); err != nil {
			return JobRecord{}, fmt.Errorf("run %s: its job: %w: %v", Short(r.ID), ErrInvalid, err)
		}
		in := v1.Inputs
		job := trainer.Job{
			Model: in.Model, Data: trainer.DataRef{Path: in.Data, Labels: in.Labels},
			Shots: in.Shots, ValSplit: in.ValSplit, BatchSize: in.Batch, Seed: in.Seed, EvalEvery: in.EvalEvery,
		}
		if in.PlanFile != nil {
			p, err := trainer.ParsePlan(in.PlanFile)
			if err != nil {
				return JobRecord{}, fmt.Errorf("run %s: its plan file %s: %w: %v", Short(r.ID), in.Plan, ErrInvalid, err)
			}
			job.Plan = p.Override(in.LR, in.Epochs, 0)
		} else {
			job.Preset = &trainer.PresetRef{Name: in.Plan, LR: in.LR, Epochs: in.Epochs}
		}
		return JobRecord{Version: 1, Job: job, Plan: v1.Plan}, nil
	}
	return JobRecord{}, fmt.Errorf("run %s: its job is of version %d; this thaw reads versions 1 and %d: %w",
		Short(r.ID), head.Version, JobVersion, ErrInvalid)
}
