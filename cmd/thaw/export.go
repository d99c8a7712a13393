package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"thaw/trainer/termtext"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
	"thaw/ui/export"
)

// pointsPerPixel is the point budget of a figure's series per pixel
// column: decimation keeps four points a column (first, lowest, highest,
// last), and the store's buckets give two each.
const pointsPerPixel = 4

// runExport is thaw export: stored runs as a figure or CSV.
func (m *Main) runExport(ctx context.Context, args []string) error {
	fs := m.newFlags("export")
	out := fs.String("o", "", "the output `file`: .png, .svg, .pdf or .csv")
	diagnostics := fs.Bool("diagnostics", false, "draw the per-block drift of one run instead of its learning curves")
	metric := fs.String("metric", "", "draw this one metric of each run (such as lr, samples_per_sec, block/conv1/grad_norm); with .csv, write only it")
	logY := fs.Bool("log-y", false, "log-scale y for the loss (or the metric, or the drift)")
	def := export.DefaultOptions()
	smooth := fs.Float64("smooth", def.Smoothing, "`weight` in [0, 1) of the EMA smoothing the training loss (TensorBoard's); with --metric, default 0")
	xAxis := fs.String("x", "step", "the x axis: step or epoch")
	width := fs.Int("width", def.Width, "figure width in `px`")
	height := fs.Int("height", def.Height, "figure height in `px`")
	dpi := fs.Int("dpi", def.DPI, "dots per inch: the scale of text and lines against the pixel size; PDF and SVG are width/dpi inches wide")
	title := fs.String("title", "", "a `title` above the figure")
	sweep := fs.String("sweep", "", "draw sweep `ID`: validation loss and accuracy against the freeze point, with the probes")
	storeDir := storeFlag(fs)
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *sweep != "" {
		switch {
		case len(ids) > 0:
			return usagef("export: --sweep draws one sweep; give no runs with it")
		case *out == "":
			return usagef("export: -o FILE is required (.png, .svg, .pdf or .csv)")
		case *width <= 0 || *height <= 0 || *dpi <= 0:
			return usagef("export: --width %d --height %d --dpi %d: all must be positive", *width, *height, *dpi)
		}
		if _, err := export.FormatOf(*out); err != nil {
			return usagef("export: %w", err)
		}
		return m.exportSweep(ctx, *storeDir, *sweep, *out, export.Options{Width: *width, Height: *height, DPI: *dpi, Title: *title})
	}

	// Check everything the user typed before opening the store.
	switch {
	case len(ids) == 0:
		return usagef("export: which runs? (see thaw runs)")
	case *out == "":
		return usagef("export: -o FILE is required (.png, .svg, .pdf or .csv)")
	case *diagnostics && len(ids) != 1:
		return usagef("export: --diagnostics draws one run, got %d", len(ids))
	case *diagnostics && *metric != "":
		return usagef("export: --diagnostics and --metric are different figures; choose one")
	case !(*smooth >= 0 && *smooth < 1):
		return usagef("export: --smooth %g: want a weight in [0, 1)", *smooth)
	case *width <= 0 || *height <= 0 || *dpi <= 0:
		return usagef("export: --width %d --height %d --dpi %d: all must be positive", *width, *height, *dpi)
	}
	format, err := export.FormatOf(*out)
	if err != nil {
		return usagef("export: %w", err)
	}
	opts := export.Options{
		Width: *width, Height: *height, DPI: *dpi, Title: *title,
		LogY: *logY, Smoothing: *smooth, Metric: *metric,
	}
	switch *xAxis {
	case "step":
		opts.X = export.XStep
	case "epoch":
		opts.X = export.XEpoch
	default:
		return usagef("export: --x %q: want step or epoch", *xAxis)
	}
	fig := export.LearningCurves
	switch {
	case *diagnostics:
		fig = export.BlockDrift
	case *metric != "":
		fig = export.OneMetric
		// Smoothing a learning rate or a throughput would shift it in
		// time; smooth a metric only when asked to.
		if !flagSet(fs, "smooth") {
			opts.Smoothing = 0
		}
	}

	st, err := openStoreForReading(*storeDir)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer st.Close()
	// A CSV is the data: every point. A figure needs a few per pixel.
	budget := pointsPerPixel * *width
	var names []string
	if format == export.FormatCSV {
		budget = 0
		if *metric != "" {
			names = []string{*metric}
		}
	}
	// The figures read runs through the engine's read model, as every
	// other view does.
	src := engine.New(st, m.catalog())
	runs := make([]export.Run, 0, len(ids))
	for _, id := range ids {
		r, err := findRun(ctx, st, id)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		if err := checkMetrics(ctx, st, r, *metric, opts.X); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		er, err := export.Load(ctx, src, r.ID, names, budget)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		runs = append(runs, er)
	}
	notes, err := export.WriteFile(*out, fig, runs, opts)
	for _, n := range notes {
		fmt.Fprintf(m.Stderr, "note: %s\n", termtext.Sanitize(n))
	}
	if errors.Is(err, export.ErrNoData) {
		return fmt.Errorf("export: %w", asUsage(err))
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	fmt.Fprintf(m.Stderr, "wrote %s\n", termtext.Sanitize(*out))
	return nil
}

// checkMetrics says, as bad input, when run r lacks the metric a figure
// needs: the one --metric names, or the epoch for --x epoch.
func checkMetrics(ctx context.Context, st *store.Store, r store.Run, metric string, x export.XAxis) error {
	if metric == "" && x != export.XEpoch {
		return nil
	}
	have, err := st.MetricNames(ctx, r.ID)
	if err != nil {
		return err
	}
	if metric != "" && !slices.Contains(have, metric) {
		return usagef("run %s has no metric %q; it has %s", store.Short(r.ID), metric, strings.Join(have, ", "))
	}
	if x == export.XEpoch && !slices.Contains(have, trainer.MetricEpoch) {
		return usagef("run %s recorded no epochs; use --x step", store.Short(r.ID))
	}
	return nil
}

// flagSet reports whether the flag called name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
