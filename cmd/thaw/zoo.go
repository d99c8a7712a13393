package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"thaw/trainer/termtext"

	"thaw/assets/recipes"
	"thaw/trainer"
)

// runZoo is thaw zoo: for now one subcommand, build.
func (m *Main) runZoo(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "build" {
		return usagef("zoo: want \"thaw zoo build [NAME...] [--out DIR]\"")
	}
	return m.runZooBuild(ctx, args[1:])
}

// runZooBuild is thaw zoo build: retrain base models from their recipes
// and write config.json, model.safetensors, meta.json and card.md, the
// same bytes as the shipped weights on the same binary and machine.
func (m *Main) runZooBuild(ctx context.Context, args []string) error {
	fs := m.newFlags("zoo build")
	out := fs.String("out", "zoo", "write each model to `dir`/NAME")
	names, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		names = recipes.Names()
	}
	for _, n := range names {
		if !slices.Contains(recipes.Names(), n) {
			return usagef("zoo build: no recipe named %q (recipes: %s)", n, strings.Join(recipes.Names(), ", "))
		}
	}
	for _, n := range names {
		dir := filepath.Join(*out, n)
		progress := func(s string) { fmt.Fprintf(m.Stderr, "%s\n", termtext.Sanitize(s)) }
		if err := recipes.Build(ctx, n, dir, progress); err != nil {
			return fmt.Errorf("zoo build %s: %w", n, err)
		}
		fmt.Fprintf(m.Stderr, "wrote %s\n", termtext.Sanitize(dir))
	}
	return nil
}

// runBench is thaw bench: for now one benchmark, transfer.
func (m *Main) runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "transfer" {
		return usagef("bench: want \"thaw bench transfer [--models M,...] [--shots 2,5,10] [--seeds N] [--first-seed S] [--defaults | --probe]\"")
	}
	fs := m.newFlags("bench transfer")
	models := fs.String("models", "", "comma-separated base models (default: every zoo recipe)")
	shots := fs.String("shots", "2,5,10", "comma-separated shots per class")
	seeds := fs.Int("seeds", 5, "repetitions per cell, each with its own draw and initialisation")
	maxEval := fs.Int("max-eval", 0, "cap the validation samples per target (0: all)")
	firstSeed := fs.Uint64("first-seed", 1001, "the first `seed` of the repetitions")
	defaults := fs.Bool("defaults", false, "check the defaults: the tuned presets beside every preset run with its defaults, no scratch")
	probe := fs.Bool("probe", false, "how far a linear probe goes: the head preset's defaults varied one way each, beside the tuned head and fine-tune")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	opts := recipes.TransferOptions{Seeds: *seeds, MaxEval: *maxEval, FirstSeed: *firstSeed,
		Progress: func(s string) { fmt.Fprintln(m.Stderr, termtext.Sanitize(s)) }}
	render := recipes.Table.Markdown
	switch {
	case *defaults && *probe:
		return usagef("bench transfer: --defaults and --probe are two benchmarks: give one")
	case *defaults:
		opts.Methods, render = recipes.DefaultsMethods(), recipes.Table.DefaultsMarkdown
	case *probe:
		opts.Methods, render = recipes.ProbeMethods(), recipes.Table.ProbeMarkdown
	}
	if *models != "" {
		opts.Models = strings.Split(*models, ",")
	}
	for _, s := range strings.Split(*shots, ",") {
		k, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || k < 1 {
			return usagef("bench transfer: --shots %q: want positive integers separated by commas", *shots)
		}
		opts.Shots = append(opts.Shots, k)
	}
	if *seeds < 1 {
		return usagef("bench transfer: --seeds %d: want 1 or more", *seeds)
	}
	table, err := recipes.Transfer(ctx, opts)
	if err != nil {
		return fmt.Errorf("bench transfer: %w", err)
	}
	fmt.Fprint(m.Stdout, render(table))
	fmt.Fprintf(m.Stderr, "BLAS backend: %s\n", trainer.Backend())
	return nil
}
