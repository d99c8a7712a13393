package engine_test

import (
	"slices"
	"testing"

	"thaw/assets"
	"thaw/store/engine"
	"thaw/trainer"
)

// TestPrepareDecodesKeptSamples: Engine.Prepare, which decodes a
// built-in image task's samples only for those the job keeps, prepares
// the same training and validation sets, to the bit, as the job prepared
// from the task decoded whole, with shots and without.
func TestPrepareDecodesKeptSamples(t *testing.T) {
	for _, shots := range []int{20, 0} {
		job := trainer.Job{Model: "digits-cnn", Data: trainer.DataRef{Path: "digits-5to9"}, Shots: shots, Seed: 1}
		if err := job.SetPlan("gradual", 0, 1, 0); err != nil {
			t.Fatal(err)
		}
		cat := assets.NewCatalog()
		got, err := engine.New(nil, cat).Prepare(job)
		if err != nil {
			t.Fatal(err)
		}
		base, err := cat.Model(job.Model)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := cat.Data(job.Data, base.Model.Config.InputShape, assets.SplitTrain)
		if err != nil {
			t.Fatal(err)
		}
		want, err := job.Prepare(trainer.JobInputs{Model: base.Model, ModelName: base.Name, Data: whole})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name      string
			got, want *trainer.Dataset
		}{{"train", got.Train, want.Train}, {"val", got.Val, want.Val}} {
			if c.got.Len() == 0 || !slices.Equal(c.got.X, c.want.X) || !slices.Equal(c.got.Y, c.want.Y) ||
				c.got.Name != c.want.Name || !slices.Equal(c.got.Classes, c.want.Classes) || !slices.Equal(c.got.Shape, c.want.Shape) {
				t.Errorf("%d shots: %s set of %d samples (%s), want %d (%s)", shots, c.name, c.got.Len(), c.got.Name, c.want.Len(), c.want.Name)
			}
		}
		if g, w := trainer.DataHash(got.Train, got.Val), trainer.DataHash(want.Train, want.Val); g != w {
			t.Errorf("%d shots: data hash %s, want %s", shots, g, w)
		}
	}
}
