package main

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"
	"thaw/trainer/termtext"

	"thaw/assets"
	"thaw/trainer"
)

// runModels is thaw models: the base models of the zoo.
func (m *Main) runModels(args []string) error {
	if err := parse(m.newFlags("models"), args); err != nil {
		return err
	}
	names := assets.ZooModels(m.Zoo)
	if len(names) == 0 {
		fmt.Fprintln(m.Stdout, "The zoo has no models yet. Pass --model DIR, a folder with config.json and model.safetensors.")
		return nil
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tARCHITECTURE\tPARAMS\tSOURCE TASK\tSOURCE ACC\tINPUT\tCLASSES")
	for _, name := range names {
		cfg, params, err := zooSummary(m.Zoo, name)
		if err != nil {
			return fmt.Errorf("models: %s: %w", name, err)
		}
		meta, ok, err := zooMeta(m.Zoo, name)
		if err != nil {
			return fmt.Errorf("models: %w", err)
		}
		source, acc := "-", "-"
		if ok && meta.SourceTask != "" {
			source = termtext.Sanitize(meta.SourceTask)
			acc = fmt.Sprintf("%.2f%%", 100*meta.SourceTestAccuracy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", termtext.Sanitize(name), termtext.Sanitize(cfg.Architecture), params,
			source, acc, shapeString(cfg.InputShape), classSummary(cfg.Classes))
	}
	return tw.Flush()
}

// zooSummary reads a zoo model's config and counts its parameters without
// reading its weights.
func zooSummary(zoo fs.FS, name string) (*trainer.Config, int, error) {
	b, err := fs.ReadFile(zoo, path.Join(name, trainer.ConfigFile))
	if err != nil {
		return nil, 0, err
	}
	cfg, err := trainer.ParseConfig(b)
	if err != nil {
		return nil, 0, err
	}
	// The count does not depend on the weights; any seed builds the model.
	mod, err := trainer.New[float32](cfg, rand.New(rand.NewPCG(0, 0)))
	if err != nil {
		return nil, 0, err
	}
	total, _ := mod.Count()
	return cfg, total, nil
}

// runDatasets is thaw datasets: the built-in datasets and the tasks made
// from them.
func (m *Main) runDatasets(args []string) error {
	if err := parse(m.newFlags("datasets"), args); err != nil {
		return err
	}
	writeDatasets(m.Stdout)
	return nil
}

func writeDatasets(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATASET\tKIND\tSHAPE\tCLASSES\tTRAIN\tTEST\tLICENCE")
	for _, d := range assets.Datasets() {
		train, test := "-", "-"
		for _, s := range d.Splits {
			switch s.Name {
			case "test":
				test = strconv.Itoa(s.Count)
			default: // "train", or "all" for a dataset without a test split
				train = strconv.Itoa(s.Count)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Kind, shapeString(d.Shape),
			classSummary(d.Classes), train, test, d.Licence)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "TASK (--data)\tDATASET\tCLASSES\tTRAIN\tTEST\tDESCRIPTION")
	for _, t := range assets.Tasks() {
		test := "-"
		if t.Test != "" {
			test = strconv.Itoa(t.TestCount)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.Name, t.Dataset, classSummary(t.Classes),
			t.TrainCount, test, t.Description)
	}
	tw.Flush()
}

func shapeString(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return strings.Join(parts, "×")
}

// classSummary gives the number of classes and their first names.
func classSummary(classes []string) string {
	const show = 3
	names := classes
	more := ""
	if len(names) > show {
		names, more = names[:show], ",…"
	}
	quoted := make([]string, len(names))
	for i, c := range names {
		quoted[i] = termtext.Sanitize(c)
	}
	return fmt.Sprintf("%d (%s%s)", len(classes), strings.Join(quoted, ","), more)
}
