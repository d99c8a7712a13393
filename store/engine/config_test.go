package engine

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"thaw/store"
	"thaw/trainer"
)

// TestReadConfig: Read takes a run's shots, seed, freeze point and peak
// lr from its job record: the first stage's lowest trainable block and
// its lr, or "all" for a first stage that trains every block; a run
// without a job record has no Config.
func TestReadConfig(t *testing.T) {
	st := openStore(t, t.TempDir())
	ctx := context.Background()
	mk := func(name string, rec *store.JobRecord) string {
		r := store.Run{Name: name, Model: "m", Dataset: "d"}
		if rec != nil {
			js, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			r.Plan = js
		}
		r, err := st.CreateRun(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	stages := []trainer.StageSummary{
		{Label: "stage 1: fc2, head", Trainable: []string{"fc2", "head"}, LR: 3e-3, Steps: 10},
		{Label: "stage 2: all", Trainable: []string{"fc1", "fc2", "head"}, LR: 1e-3, Steps: 10},
	}
	part := mk("part", &store.JobRecord{Version: store.JobVersion, Job: trainer.Job{Shots: 10, Seed: 42},
		Plan: trainer.PlanSummary{Name: "gradual", Stages: stages}})
	// A named stage keeps its name as label: the plan's "all" says it.
	whole := mk("whole", &store.JobRecord{Version: store.JobVersion,
		Job:  trainer.Job{Seed: 7, Plan: trainer.Plan{Stages: []trainer.Stage{{Name: "everything", Train: []string{"all"}, Steps: 10}}}},
		Plan: trainer.PlanSummary{Name: "", Stages: []trainer.StageSummary{{Label: "everything", Trainable: []string{"fc1", "fc2", "head"}, LR: 1e-4, Steps: 10}}}})
	bare := mk("bare", nil)
	for id, want := range map[string]*Config{
		part:  {Shots: 10, Seed: 42, FreezePoint: "fc2", PeakLR: 3e-3},
		whole: {Seed: 7, FreezePoint: "all", PeakLR: 1e-4},
		bare:  nil,
	} {
		v, err := Read(ctx, st, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(v.Config, want) {
			t.Errorf("run %s: config %+v, want %+v", v.Run.Name, v.Config, want)
		}
	}
}
