// Package recipes rebuilds thaw's base models from scratch and measures what
// they are worth: each recipe pretrains a model of the zoo on its source task
// with thaw's own trainer, deterministically from a seed, and writes the
// files that assets/zoo ships (config.json, model.safetensors, meta.json,
// card.md); Transfer runs the few-shot benchmark behind the README's
// evidence table. The embedded data is read with assets.LoadTask, as
// every front-end reads it.
package recipes

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"thaw/assets"
	"thaw/trainer"
)

// recipe is how one base model is built.
type recipe struct {
	name         string
	architecture string
	summary      string // the architecture in one line, for the card
	source       string // task it is pretrained on
	target       string // task of its transfer benchmark
	blocks       func(classes int) []trainer.BlockConfig
	train        assets.Recipe
}

// recipesList holds the zoo's recipes, in the order the CLI lists them.
// The epochs are as few as reach a useful source accuracy: letters-mlp's
// rebuild is part of the ordinary tests.
var recipesList = []recipe{
	{
		name:         "digits-cnn",
		architecture: "cnn",
		summary:      "conv5×5(1→8, pad 2)-relu-maxpool2 | conv5×5(8→16, pad 2)-relu-maxpool2 | flatten-linear(784→64)-relu | linear(64→5)",
		source:       "digits-0to4",
		target:       "digits-5to9",
		blocks:       cnnBlocks,
		train:        assets.Recipe{Preset: "full", Epochs: 8, LR: 2e-3, BatchSize: 64, Seed: 1},
	},
	{
		name:         "letters-mlp",
		architecture: "mlp",
		summary:      "linear(16→128)-relu | linear(128→64)-relu | linear(64→13)",
		source:       "letters-a-m",
		target:       "letters-n-z",
		blocks:       func(c int) []trainer.BlockConfig { return mlpBlocks(16, c) },
		train:        assets.Recipe{Preset: "full", Epochs: 20, LR: 3e-3, BatchSize: 64, Seed: 1},
	},
	{
		name:         "mnist8-mlp",
		architecture: "mlp",
		summary:      "linear(64→128)-relu | linear(128→64)-relu | linear(64→10)",
		source:       "mnist8",
		target:       "uci-digits",
		blocks:       func(c int) []trainer.BlockConfig { return mlpBlocks(64, c) },
		train:        assets.Recipe{Preset: "full", Epochs: 8, LR: 2e-3, BatchSize: 64, Seed: 1},
	},
}

// cnnBlocks is digits-cnn's body and head, with the module names of the
// equivalent torch.nn.Sequential pair features/classifier.
func cnnBlocks(classes int) []trainer.BlockConfig {
	return []trainer.BlockConfig{
		{Name: "conv1", Layers: []trainer.LayerConfig{
			{Type: "conv2d", Name: "features.0", InChannels: 1, OutChannels: 8, KernelSize: 5, Padding: 2},
			{Type: "relu"},
			{Type: "maxpool2d", KernelSize: 2},
		}},
		{Name: "conv2", Layers: []trainer.LayerConfig{
			{Type: "conv2d", Name: "features.3", InChannels: 8, OutChannels: 16, KernelSize: 5, Padding: 2},
			{Type: "relu"},
			{Type: "maxpool2d", KernelSize: 2},
		}},
		{Name: "fc1", Layers: []trainer.LayerConfig{
			{Type: "flatten"},
			{Type: "linear", Name: "classifier.0", InFeatures: 16 * 7 * 7, OutFeatures: 64},
			{Type: "relu"},
		}},
		{Name: "head", Layers: []trainer.LayerConfig{
			{Type: "linear", Name: "classifier.2", InFeatures: 64, OutFeatures: classes},
		}},
	}
}

// mlpBlocks is the MLPs' in-128-64-classes stack, named like a
// torch.nn.Sequential of Linear, ReLU, Linear, ReLU, Linear.
func mlpBlocks(in, classes int) []trainer.BlockConfig {
	return []trainer.BlockConfig{
		{Name: "fc1", Layers: []trainer.LayerConfig{
			{Type: "linear", Name: "layers.0", InFeatures: in, OutFeatures: 128}, {Type: "relu"},
		}},
		{Name: "fc2", Layers: []trainer.LayerConfig{
			{Type: "linear", Name: "layers.2", InFeatures: 128, OutFeatures: 64}, {Type: "relu"},
		}},
		{Name: "head", Layers: []trainer.LayerConfig{
			{Type: "linear", Name: "layers.4", InFeatures: 64, OutFeatures: classes},
		}},
	}
}

func lookup(name string) (recipe, error) {
	for _, r := range recipesList {
		if r.name == name {
			return r, nil
		}
	}
	return recipe{}, fmt.Errorf("no base model named %q (models: %v)", name, Names())
}

// Names lists the base models that have a recipe.
func Names() []string {
	out := make([]string, len(recipesList))
	for i, r := range recipesList {
		out[i] = r.name
	}
	return out
}

// SourceTask returns the task a base model was pretrained on; its test
// split is the held-out slice for the forgetting gauge. It returns "" for
// a name without a recipe.
func SourceTask(model string) string {
	r, err := lookup(model)
	if err != nil {
		return ""
	}
	return r.source
}

// TargetTask returns the task the benchmark transfers a base model to, or
// "" for a name without a recipe.
func TargetTask(model string) string {
	r, err := lookup(model)
	if err != nil {
		return ""
	}
	return r.target
}

// config returns the config of a base model before training: its
// architecture for the source task's classes, with the normalisation
// fitted on train (the source task's training split). The benchmark builds
// its from-scratch models from the same config.
func config(r recipe, train *trainer.Dataset) *trainer.Config {
	nz := trainer.FitNormalization(train)
	return &trainer.Config{
		Name:         r.name,
		Architecture: r.architecture,
		InputShape:   slices.Clone(train.Shape),
		Normalize:    &nz,
		Classes:      slices.Clone(train.Classes),
		Blocks:       r.blocks(len(train.Classes)),
	}
}

// Build retrains the named base model from its recipe and writes its files
// to the folder outDir, creating it: config.json and model.safetensors
// (trainer.SaveModel), meta.json (assets.ModelMeta) and card.md. The same
// binary on the same machine writes the same config.json and
// model.safetensors bytes every time; meta.json and the card also record
// the training time, which varies.
//
// progress, if not nil, receives a line at every stage and epoch end, and
// one with the source test accuracy. Build returns an error for an unknown
// name, ctx's error if it is cancelled, or an error from training or
// writing.
func Build(ctx context.Context, name, outDir string, progress func(string)) error {
	r, err := lookup(name)
	if err != nil {
		return err
	}
	if progress == nil {
		progress = func(string) {}
	}
	train, test, err := assets.LoadTask(r.source)
	if err != nil {
		return err
	}
	cfg := config(r, train)
	m, err := trainer.New[float32](cfg, rand.New(rand.NewPCG(r.train.Seed, initStream)))
	if err != nil {
		return err
	}
	plan, err := trainer.Preset(r.train.Preset, cfg.BlockNames(), r.train.LR, r.train.Epochs)
	if err != nil {
		return err
	}
	// The zoo's models were trained on the plain cross-entropy, before
	// the presets smoothed their labels (trainer.DefaultLabelSmoothing);
	// the recipe keeps it, so that the shipped files rebuild to their
	// bytes.
	plan.LabelSmoothing = 0
	rp, err := plan.Resolve(cfg.BlockNames())
	if err != nil {
		return err
	}
	progress(fmt.Sprintf("%s: training on %s (%d samples), %s preset, %d epochs, lr %g, batch %d, seed %d",
		name, r.source, train.Len(), r.train.Preset, r.train.Epochs, r.train.LR, r.train.BatchSize, r.train.Seed))
	// No validation set: the recipe keeps its final weights, so nothing
	// is selected on the test split it is measured on.
	start := time.Now()
	res, err := trainer.Run(ctx, trainer.Spec{
		Model: m, Plan: rp, Train: train, Seed: r.train.Seed, BatchSize: r.train.BatchSize,
		ReportEvery: time.Hour, // only stage and epoch events
	}, func(p trainer.Progress) {
		if p.Event == trainer.EventEval {
			progress(fmt.Sprintf("%s: epoch %.0f/%d, training loss %.4f", name, p.Epoch, r.train.Epochs, p.TrainLoss))
		}
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	elapsed := time.Since(start)
	acc := Accuracy(m, test)
	progress(fmt.Sprintf("%s: %d steps in %s, source test accuracy %.2f%% on %d samples",
		name, res.Steps, elapsed.Round(time.Millisecond), 100*acc, test.Len()))

	total, _ := m.Count()
	task, _ := assets.TaskByName(r.source)
	data, _ := assets.Dataset(task.Dataset)
	meta := assets.ModelMeta{
		Name: name, Architecture: r.architecture, Blocks: cfg.BlockNames(), Params: total,
		SourceTask: r.source, TargetTask: r.target,
		SourceTestAccuracy: acc, SourceTestCount: test.Len(),
		Recipe: r.train, TrainSeconds: elapsed.Seconds(), Licence: data.Licence,
	}
	if err := trainer.SaveModel(outDir, m); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(outDir, assets.MetaFile), append(mb, '\n'), 0o644); err != nil {
		return err
	}
	text := card(r, meta, m, data)
	return os.WriteFile(filepath.Join(outDir, assets.CardFile), []byte(text), 0o644)
}

// initStream separates the weight-initialisation stream from the run's
// streams drawn from the same seed.
const initStream = 0x1217

// Accuracy returns the fraction of ds that m classifies correctly, in
// inference mode. It returns NaN for an empty or nil ds.
func Accuracy(m *trainer.Model[float32], ds *trainer.Dataset) float64 {
	_, acc := trainer.Evaluate(m, ds)
	return acc
}
