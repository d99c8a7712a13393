package trainer

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// The training-step benchmarks of the performance notes, the same networks,
// batch sizes and update as trainer/testdata/bench/torch_bench.py so the
// two can be compared in one run:
//
//	go test -run XXX -bench TrainStep -cpu 1 ./trainer/
//	go test -tags openblas -run XXX -bench TrainStep -cpu 1 ./trainer/
//	/usr/bin/python3 trainer/testdata/bench/torch_bench.py --threads 1
//
// Each reports samples/s for a full step: forward, cross-entropy,
// backward, SGD with momentum.

// benchMLP is the MLP 784-256-128-10, one block per layer.
func benchMLP() *Config {
	return &Config{
		Name: "bench-mlp", InputShape: []int{784},
		Classes: []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		Blocks: []BlockConfig{
			{Name: "fc1", Layers: []LayerConfig{{Type: "linear", Name: "0", InFeatures: 784, OutFeatures: 256}, {Type: "relu"}}},
			{Name: "fc2", Layers: []LayerConfig{{Type: "linear", Name: "2", InFeatures: 256, OutFeatures: 128}, {Type: "relu"}}},
			{Name: "head", Layers: []LayerConfig{{Type: "linear", Name: "4", InFeatures: 128, OutFeatures: 10}}},
		},
	}
}

// benchCNN is conv5x5(8)-pool-conv5x5(16)-pool-fc64-fc10 on 28×28 input,
// with padding 2 so each conv keeps its input's size (as digits-cnn).
func benchCNN() *Config {
	return &Config{
		Name:       "bench-cnn",
		InputShape: []int{1, 28, 28},
		Classes:    []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"},
		Blocks: []BlockConfig{
			{Name: "conv1", Layers: []LayerConfig{
				{Type: "conv2d", Name: "0", InChannels: 1, OutChannels: 8, KernelSize: 5, Padding: 2},
				{Type: "relu"},
				{Type: "maxpool2d", KernelSize: 2},
			}},
			{Name: "conv2", Layers: []LayerConfig{
				{Type: "conv2d", Name: "3", InChannels: 8, OutChannels: 16, KernelSize: 5, Padding: 2},
				{Type: "relu"},
				{Type: "maxpool2d", KernelSize: 2},
				{Type: "flatten"},
			}},
			{Name: "fc1", Layers: []LayerConfig{
				{Type: "linear", Name: "7", InFeatures: 16 * 7 * 7, OutFeatures: 64},
				{Type: "relu"},
			}},
			{Name: "head", Layers: []LayerConfig{
				{Type: "linear", Name: "9", InFeatures: 64, OutFeatures: 10},
			}},
		},
	}
}

func BenchmarkTrainStep(b *testing.B) {
	nets := []struct {
		name  string
		cfg   *Config
		batch int
	}{
		{"mlp", benchMLP(), 128},
		{"cnn", benchCNN(), 64},
	}
	for _, n := range nets {
		for _, frozen := range []int{0, 1} {
			name := fmt.Sprintf("%s/%s", n.name, []string{"all", "first-frozen"}[frozen])
			b.Run(name, func(b *testing.B) { benchStep(b, n.cfg, n.batch, frozen) })
		}
	}
}

func benchStep(b *testing.B, cfg *Config, batch, frozen int) {
	// -cpu sets GOMAXPROCS after the backend started: match its threads.
	SetThreads(runtime.GOMAXPROCS(0))
	m, err := New[float32](cfg, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		b.Fatal(err)
	}
	m.FreezeBelow(frozen)
	opt, err := NewSGD(m, 0.9, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	// The run loop collects diagnostics only on the steps it reports, a
	// few a second; PyTorch computes none.
	opt.SkipStats(true)
	rng := rand.New(rand.NewPCG(3, 4))
	x := NewTensor[float32](append([]int{batch}, cfg.InputShape...)...)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	labels := make([]int, batch)
	for i := range labels {
		labels[i] = rng.IntN(10)
	}
	ce := &CrossEntropy[float32]{}
	step := func() {
		ce.Forward(m.Forward(x, true), labels)
		m.Backward(ce.Backward())
		opt.Step(0.01)
	}
	for range 5 {
		step()
	}
	for b.Loop() {
		step()
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "samples/s")
}
