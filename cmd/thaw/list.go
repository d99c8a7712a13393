package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"thaw/trainer/termtext"

	"thaw/assets"
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
	cat := m.catalog()
	tw := tabwriter.NewWriter(m.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tARCHITECTURE\tPARAMS\tSOURCE TASK\tSOURCE ACC\tINPUT\tCLASSES")
	for _, name := range names {
		sum, err := cat.Describe(name)
		if err != nil {
			return fmt.Errorf("models: %s: %w", name, err)
		}
		cfg := sum.Config
		source, acc := "-", "-"
		if sum.Meta != nil && sum.Meta.SourceTask != "" {
			source = termtext.Sanitize(sum.Meta.SourceTask)
			acc = fmt.Sprintf("%.2f%%", 100*sum.Meta.SourceTestAccuracy)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", termtext.Sanitize(name), termtext.Sanitize(cfg.Architecture), sum.Params,
			source, acc, shapeString(cfg.InputShape), classSummary(cfg.Classes))
	}
	return tw.Flush()
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
