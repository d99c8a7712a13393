package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"

	"thaw/trainer"
)

// setupFlags are the flags train and lr-find share: what to fine-tune, on
// what, and how.
type setupFlags struct {
	model string
	data  dataSpec
	plan  string
	// planJSON, when set, is the content of the plan file named by plan,
	// as a stored run kept it; the file itself is not read.
	planJSON []byte
	shots    int
	valSplit float64
	batch    int
	lr       float64
	epochs   int
	seed     uint64
}

func (s *setupFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.model, "model", "", "base model: a zoo model's `name` or a folder with config.json and model.safetensors")
	fs.StringVar(&s.data.data, "data", "", "training data: a built-in task, a .csv/.csv.gz file, an IDX images file or an image folder")
	fs.StringVar(&s.data.labels, "labels", "", "IDX labels `file` (default: found next to the images by MNIST's naming)")
	fs.StringVar(&s.plan, "plan", "gradual", "a preset ("+strings.Join(presetNames(), ", ")+") or a plan JSON `file`")
	fs.IntVar(&s.shots, "shots", 0, "train on `K` samples per class, drawn after the validation split (0: all)")
	fs.Float64Var(&s.valSplit, "val-split", 0.2, "`fraction` of the data held out for validation, stratified by class")
	fs.IntVar(&s.batch, "batch", trainer.DefaultBatchSize, "batch size")
	fs.Float64Var(&s.lr, "lr", 0, "peak learning rate of every stage (0: the plan's)")
	fs.IntVar(&s.epochs, "epochs", 0, "epochs of every stage (0: the plan's)")
	fs.Uint64Var(&s.seed, "seed", 1, "seed of every random choice: split, shots, new head, batch order")
}

func presetNames() []string {
	var names []string
	for _, p := range trainer.Presets() {
		names = append(names, p.Name)
	}
	return names
}

func (s *setupFlags) check() error {
	switch {
	case !(s.valSplit > 0 && s.valSplit < 1):
		return usagef("--val-split %v: want a fraction between 0 and 1", s.valSplit)
	case s.shots < 0:
		return usagef("--shots %d: want 0 (all) or more", s.shots)
	case s.batch < 1:
		return usagef("--batch %d: want at least 1", s.batch)
	case !(s.lr >= 0):
		return usagef("--lr %v: want a positive rate, or 0 for the plan's", s.lr)
	case s.epochs < 0:
		return usagef("--epochs %d: want a positive count, or 0 for the plan's", s.epochs)
	}
	return nil
}

// Salts separate the random streams drawn from one seed.
const (
	saltSplit = 1 // validation split and shots
	saltHead  = 2 // a replaced head's initialisation
)

// setup is a base model made ready for a target task: data split, head
// matched to the classes, plan resolved against the blocks.
type setup struct {
	base       *baseModel
	train, val *trainer.Dataset
	// source and sourceHead drive the forgetting gauge; nil without one.
	source     *trainer.Dataset
	sourceHead *trainer.Block[float32]
	// replaced reports whether the head was replaced for other classes.
	replaced bool
	plan     *trainer.ResolvedPlan
}

// prepare loads the model and the data and gets them ready to train:
//
//   - validation: a stratified --val-split of the training data;
//   - shots: --shots K per class from what is left, so validation stays
//     large;
//   - classes: data whose classes are all among the model's is relabelled
//     to the model's order and the head is kept; other classes get a new
//     head (ReplaceHead), the base head being kept for the forgetting gauge;
//   - plan: a preset expanded for the model's blocks or a plan file, with
//     --lr and --epochs, resolved so that a bad block name fails now.
func (m *Main) prepare(f *setupFlags) (*setup, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	base, err := m.loadModel(f.model)
	if err != nil {
		return nil, err
	}
	mod := base.m
	s := &setup{base: base}

	// The plan first: a mistake in it shows before any data is read. A new
	// head keeps the old one's name, so the blocks do not change.
	plan, err := f.loadPlan(mod.Config.BlockNames())
	if err != nil {
		return nil, err
	}
	if s.plan, err = plan.Resolve(mod.Config.BlockNames()); err != nil {
		return nil, usagef("plan %s: %w", f.plan, err)
	}

	ds, err := f.data.load(mod.Config.InputShape, splitTrain)
	if err != nil {
		return nil, err
	}
	if err := checkShape(ds, mod); err != nil {
		return nil, err
	}

	rng := rand.New(rand.NewPCG(f.seed, saltSplit))
	if s.train, s.val, err = ds.Split(rng, f.valSplit); err != nil {
		return nil, asUsage(err)
	}
	if f.shots > 0 {
		if s.train, err = s.train.KShot(rng, f.shots); err != nil {
			return nil, asUsage(err)
		}
	}

	if s.source, err = m.sourceFor(base); err != nil {
		return nil, err
	}
	if s.source != nil {
		// A snapshot: the model's own head trains in place when kept.
		s.sourceHead = mod.CloneHead()
	}
	if subset(ds.Classes, mod.Config.Classes) {
		for _, d := range []*trainer.Dataset{s.train, s.val} {
			if err := d.Relabel(mod.Config.Classes); err != nil {
				return nil, asUsage(err)
			}
		}
	} else {
		if err := mod.ReplaceHead(ds.Classes, rand.New(rand.NewPCG(f.seed, saltHead))); err != nil {
			return nil, asUsage(fmt.Errorf("data %s: %w", ds.Name, err))
		}
		s.replaced = true
	}
	return s, nil
}

// loadPlan reads --plan: a preset name, or else a plan file.
func (f *setupFlags) loadPlan(blocks []string) (trainer.Plan, error) {
	if f.planJSON != nil {
		p, err := trainer.ParsePlan(f.planJSON)
		if err != nil {
			return trainer.Plan{}, usagef("plan %s: %w", f.plan, err)
		}
		return p.Override(f.lr, f.epochs), nil
	}
	if slices.Contains(presetNames(), f.plan) {
		p, err := trainer.Preset(f.plan, blocks, f.lr, f.epochs)
		return p, asUsage(err)
	}
	if _, err := os.Stat(f.plan); err != nil {
		return trainer.Plan{}, usagef("unknown plan %q: not a preset (%s) nor a plan file", f.plan, strings.Join(presetNames(), ", "))
	}
	p, err := trainer.LoadPlan(f.plan)
	if err != nil {
		return trainer.Plan{}, usagef("plan: %w", err)
	}
	return p.Override(f.lr, f.epochs), nil
}

// subset reports whether every class of have is among want.
func subset(have, want []string) bool {
	for _, c := range have {
		if !slices.Contains(want, c) {
			return false
		}
	}
	return true
}
