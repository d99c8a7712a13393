package storetest

import (
	"math/rand/v2"

	"thaw/trainer"
)

// A small synthetic training problem for the store's and the engine's
// tests (the recorder, resume, fault and engine tests): a four-block MLP
// (with BatchNorm and dropout, so that buffers and the dropout stream must
// survive a resume) on Gaussian blobs.

// TrainConfig is the model: 8 features → 32 → 32 → 16 → 3 classes.
func TrainConfig() *trainer.Config {
	return &trainer.Config{Name: "store-mlp", InputShape: []int{8}, Classes: []string{"a", "b", "c"},
		Blocks: []trainer.BlockConfig{
			{Name: "fc1", Layers: []trainer.LayerConfig{{Type: "linear", Name: "fc1", InFeatures: 8, OutFeatures: 32}, {Type: "relu"}}},
			{Name: "fc2", Layers: []trainer.LayerConfig{{Type: "linear", Name: "fc2", InFeatures: 32, OutFeatures: 32},
				{Type: "batchnorm1d", Name: "bn2", NumFeatures: 32}, {Type: "relu"}}},
			{Name: "fc3", Layers: []trainer.LayerConfig{{Type: "linear", Name: "fc3", InFeatures: 32, OutFeatures: 16},
				{Type: "relu"}, {Type: "dropout", P: 0.1}}},
			{Name: "head", Layers: []trainer.LayerConfig{{Type: "linear", Name: "head", InFeatures: 16, OutFeatures: 3}}},
		}}
}

// Blobs is k Gaussian clusters in d dimensions, n samples per class.
func Blobs(k, d, n int, seed uint64) *trainer.Dataset {
	rng := rand.New(rand.NewPCG(seed, 99))
	ds := &trainer.Dataset{Name: "blobs", Shape: []int{d}}
	centers := make([][]float64, k)
	for c := range centers {
		centers[c] = make([]float64, d)
		for j := range centers[c] {
			centers[c][j] = 1.5 * rng.NormFloat64()
		}
	}
	for i := 0; i < n*k; i++ {
		c := i % k
		for j := 0; j < d; j++ {
			ds.X = append(ds.X, float32(centers[c][j]+rng.NormFloat64()))
		}
		ds.Y = append(ds.Y, c)
	}
	for c := 0; c < k; c++ {
		ds.Classes = append(ds.Classes, []string{"a", "b", "c", "d"}[c])
	}
	return ds
}
