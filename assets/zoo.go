package assets

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
)

// Files of a zoo model's folder, zoo/<name>/.
const (
	ConfigFile  = "config.json"       // architecture, blocks, normalisation, classes
	WeightsFile = "model.safetensors" // weights with PyTorch-style names
	MetaFile    = "meta.json"         // ModelMeta: what the card states, machine-readable
	CardFile    = "card.md"           // the model card
)

// Zoo returns the embedded model zoo as an fs.FS whose top-level folders are
// the models, such as "digits-cnn/config.json"; trainer.LoadModelFS(Zoo(),
// name) loads one.
func Zoo() fs.FS {
	z, err := fs.Sub(FS, "zoo")
	if err != nil {
		// "zoo" is a valid path; fs.Sub fails only on an invalid one.
		panic(err)
	}
	return z
}

// ModelMeta is a zoo model's meta.json: the facts of its card in a form a
// program reads. The recipe that built the model writes it.
type ModelMeta struct {
	Name         string   `json:"name"`
	Architecture string   `json:"architecture"`
	Blocks       []string `json:"blocks"` // input to output
	Params       int      `json:"params"`
	// SourceTask and TargetTask are Task names: what the model was trained
	// on, and the task its benchmark transfers it to. The source task's
	// test split is the held-out slice of the forgetting gauge.
	SourceTask string `json:"source_task"`
	TargetTask string `json:"target_task"`
	// SourceTestAccuracy is the accuracy, a fraction, on all
	// SourceTestCount samples of the source task's test split.
	SourceTestAccuracy float64 `json:"source_test_accuracy"`
	SourceTestCount    int     `json:"source_test_count"`
	Recipe             Recipe  `json:"recipe"`
	// TrainSeconds is the wall time of the recipe's training run on the
	// machine that built the shipped files.
	TrainSeconds float64 `json:"train_seconds"`
	// Licence is the SPDX identifier of the weights' licence, inherited
	// from the training data.
	Licence string `json:"licence"`
}

// Recipe is how a zoo model was trained: a thaw preset from a fresh
// initialisation, with everything drawn from Seed.
type Recipe struct {
	Preset    string  `json:"preset"`
	Epochs    int     `json:"epochs"`
	LR        float64 `json:"lr"`
	BatchSize int     `json:"batch_size"`
	Seed      uint64  `json:"seed"`
}

// ModelInfo describes one model of the embedded zoo.
type ModelInfo struct {
	Name         string
	Architecture string
	InputShape   []int
	Classes      []string
	Dir          string // folder in FS, such as "zoo/digits-cnn"
	Card         string // path in FS of the markdown card
	Meta         ModelMeta
}

// Models lists the zoo's models by name: every folder of zoo/ holding a
// config.json. It returns an error naming the file if a config.json or
// meta.json cannot be read or decoded, or a folder's name differs from
// the name in its config.
func Models() ([]ModelInfo, error) {
	ents, err := fs.ReadDir(FS, "zoo")
	if err != nil {
		return nil, err
	}
	var out []ModelInfo
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := path.Join("zoo", e.Name())
		b, err := fs.ReadFile(FS, path.Join(dir, ConfigFile))
		if err != nil {
			continue // not a model folder
		}
		// Only the fields the listing shows; trainer.ParseConfig checks the rest.
		var cfg struct {
			Name         string   `json:"name"`
			Architecture string   `json:"architecture"`
			InputShape   []int    `json:"input_shape"`
			Classes      []string `json:"classes"`
		}
		if err := json.Unmarshal(b, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(dir, ConfigFile), err)
		}
		if cfg.Name != e.Name() {
			return nil, fmt.Errorf("%s: model %q is in folder %q", path.Join(dir, ConfigFile), cfg.Name, e.Name())
		}
		mi := ModelInfo{
			Name: cfg.Name, Architecture: cfg.Architecture, InputShape: cfg.InputShape,
			Classes: cfg.Classes, Dir: dir, Card: path.Join(dir, CardFile),
		}
		mb, err := fs.ReadFile(FS, path.Join(dir, MetaFile))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(mb, &mi.Meta); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(dir, MetaFile), err)
		}
		out = append(out, mi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Model returns the zoo model with the given name.
func Model(name string) (ModelInfo, bool, error) {
	ms, err := Models()
	if err != nil {
		return ModelInfo{}, false, err
	}
	for _, m := range ms {
		if m.Name == name {
			return m, true, nil
		}
	}
	return ModelInfo{}, false, nil
}

// ZooModels lists the model names of a zoo such as Zoo returns: the
// folders that hold a config.json, sorted. A nil zoo has no models.
func ZooModels(zoo fs.FS) []string {
	if zoo == nil {
		return nil
	}
	entries, err := fs.ReadDir(zoo, ".")
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := fs.Stat(zoo, path.Join(e.Name(), ConfigFile)); err == nil {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}
