package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"thaw/trainer"
)

// FuzzDecodeCheckpoint feeds the checkpoint decoder, seeded with
// checkpoints of a small model with BatchNorm, in each kind, with and
// without best weights and optimizer state. A file it accepts must encode
// again to a file that decodes to the same state; a file it refuses must say
// ErrCorrupt.
func FuzzDecodeCheckpoint(f *testing.F) {
	cfg := &trainer.Config{Name: "fuzz", InputShape: []int{3}, Classes: []string{"a", "b"},
		Blocks: []trainer.BlockConfig{
			{Name: "fc1", Layers: []trainer.LayerConfig{{Type: "linear", Name: "fc1", InFeatures: 3, OutFeatures: 4},
				{Type: "batchnorm1d", Name: "bn1", NumFeatures: 4}}},
			{Name: "head", Layers: []trainer.LayerConfig{{Type: "linear", Name: "head", InFeatures: 4, OutFeatures: 2}}},
		}}
	m, err := trainer.New[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		f.Fatal(err)
	}
	w, err := m.StateDict()
	if err != nil {
		f.Fatal(err)
	}
	loop := trainer.LoopState{Step: 7, BestStep: 5, BestValLoss: 0.5, BestValAcc: math.NaN(), StageBestLoss: math.Inf(1),
		Stages:        []trainer.StageResult{{Label: "stage 1: head", Trainable: []string{"head"}, EndStep: 5, BestValLoss: 0.5, BestValAcc: 0.75}},
		EverTrainable: []string{"head"}, SourceAccBefore: math.NaN()}
	opt := map[string]*trainer.Tensor[float32]{
		"head.weight.exp_avg": {Shape: []int{2, 4}, Data: make([]float32, 8)},
		"head.weight.step":    {Shape: []int{}, Data: []float32{7}},
	}
	for _, c := range []trainer.Checkpoint{
		{Kind: trainer.CheckpointLast, Step: 7, Weights: w, Best: w, Optimizer: opt, Loop: loop},
		{Kind: trainer.CheckpointBest, Step: 5, Weights: w, Loop: loop},
		{Kind: trainer.CheckpointStageEnd, Step: 5, Stage: 1, Weights: w, Optimizer: opt, Loop: loop},
	} {
		var buf bytes.Buffer
		if err := EncodeCheckpoint(&buf, c); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCheckpoint(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := EncodeCheckpoint(&buf, c); err != nil {
			t.Fatalf("a decoded checkpoint does not encode: %v", err)
		}
		c2, err := DecodeCheckpoint(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("a re-encoded checkpoint does not decode: %v", err)
		}
		l1, _ := json.Marshal(c.Loop)
		l2, _ := json.Marshal(c2.Loop)
		if c2.Kind != c.Kind || c2.Step != c.Step || c2.Stage != c.Stage || !bytes.Equal(l1, l2) ||
			sameTensors(c.Weights, c2.Weights) != nil || sameTensors(c.Best, c2.Best) != nil || len(c.Optimizer) != len(c2.Optimizer) {
			t.Fatalf("round trip changed the checkpoint")
		}
	})
}
