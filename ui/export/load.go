package export

import (
	"context"
	"fmt"
	"math"
	"slices"

	"thaw/store"
	"thaw/trainer"
)

// Source is what Load reads from; *store.Store is one.
type Source interface {
	Run(ctx context.Context, id string) (store.Run, error)
	MetricNames(ctx context.Context, run string) ([]string, error)
	Series(ctx context.Context, run, name string, maxPoints int) ([]store.Bucket, error)
	Stages(ctx context.Context, run string) ([]store.Stage, error)
	Checkpoints(ctx context.Context, run string) ([]store.Checkpoint, error)
	Checkpoint(ctx context.Context, id string) (store.Checkpoint, error)
}

// Load reads the stored run id (a full id or a unique prefix, as
// Store.Run takes) into a Run for the figures and CSV.
//
// names selects the series to read; nil reads every metric of the run.
// maxPoints is the point budget of each series: a series with more points
// is read as at most maxPoints buckets (see Store.Series), and four per
// pixel column of the figure keeps its look (decimate does the rest);
// zero or negative reads every point, as a CSV should.
//
// Each point gets its epoch from the run's epoch metric, interpolated
// between the steps it was recorded at; with no epoch metric, epochs are
// NaN. Stages, the best checkpoint (the newest one of kind best) and, for
// a branch, the step of the checkpoint it started from and its parent's
// name are filled in. Name falls back to the short id.
//
// It returns the errors of src, among them store.ErrNotFound and
// store.ErrAmbiguous for an id that names no run or several.
func Load(ctx context.Context, src Source, id string, names []string, maxPoints int) (Run, error) {
	sr, err := src.Run(ctx, id)
	if err != nil {
		return Run{}, err
	}
	r := Run{ID: sr.ID, Name: sr.Name, BestStep: -1, Model: sr.Model, Data: sr.Dataset, Plan: PlanName(sr.Plan)}
	if r.Name == "" {
		r.Name = store.Short(sr.ID)
	}
	fail := func(err error) (Run, error) {
		return Run{}, fmt.Errorf("load run %s: %w", store.Short(sr.ID), err)
	}

	if names == nil {
		if names, err = src.MetricNames(ctx, sr.ID); err != nil {
			return fail(err)
		}
	}
	// The epoch is monotone, so the extremes of a bucket are its epochs
	// at its first and last step: the budget loses nothing here.
	epochs, err := src.Series(ctx, sr.ID, trainer.MetricEpoch, maxPoints)
	if err != nil {
		return fail(err)
	}
	ax := epochAxis(epochs)
	for _, name := range names {
		bs, err := src.Series(ctx, sr.ID, name, maxPoints)
		if err != nil {
			return fail(err)
		}
		if len(bs) == 0 {
			continue
		}
		r.Series = append(r.Series, bucketSeries(name, bs, ax))
	}

	stages, err := src.Stages(ctx, sr.ID)
	if err != nil {
		return fail(err)
	}
	for _, s := range stages {
		r.Stages = append(r.Stages, Stage{
			Index: s.Index + 1, Label: s.Name, Trainable: s.Trainable,
			StartStep: int(s.Start), EndStep: int(s.End), // End < 0 while running
		})
	}

	cks, err := src.Checkpoints(ctx, sr.ID)
	if err != nil {
		return fail(err)
	}
	// Checkpoints come by step; only the newest best one is kept, but a
	// run resumed past a failed retention could hold more.
	for _, c := range cks {
		if c.Kind == store.KindBest {
			r.BestStep = int(c.Step)
		}
	}

	if sr.ParentCheckpoint != "" {
		c, err := src.Checkpoint(ctx, sr.ParentCheckpoint)
		if err != nil {
			return fail(fmt.Errorf("the checkpoint it branched from: %w", err))
		}
		r.BranchStep = int(c.Step)
		if sr.ParentRun != "" {
			if p, err := src.Run(ctx, sr.ParentRun); err == nil {
				r.Parent = p.Name
				if r.Parent == "" {
					r.Parent = store.Short(p.ID)
				}
			}
		}
	}
	return r, nil
}

// bucketSeries turns the buckets the store returns into a Series. A bucket
// of one point is that point. A bucket of several becomes its minimum and
// maximum, at its first and last step, in the order that leads on to the
// next bucket, so that a line through them covers what a line through
// every point would at the figure's resolution; its mean goes into Means,
// for smoothing.
func bucketSeries(name string, bs []store.Bucket, ax stepAxis) Series {
	s := Series{Name: name, Points: make([]Point, 0, 2*len(bs))}
	summarised := slices.ContainsFunc(bs, func(b store.Bucket) bool { return b.N > 1 })
	if summarised {
		s.Means = make([]Point, 0, len(bs))
	}
	at := func(step int64, v float64) Point {
		return Point{Step: int(step), Epoch: ax.x(int(step)), Value: v}
	}
	for i, b := range bs {
		if summarised {
			mid := b.From + (b.To-b.From)/2
			s.Means = append(s.Means, at(mid, b.Mean))
		}
		if b.N == 1 || b.From == b.To || b.Min == b.Max || math.IsNaN(b.Min) {
			s.Points = append(s.Points, at(b.From, b.Min))
			continue
		}
		first, last := b.Min, b.Max
		if i+1 < len(bs) && bs[i+1].Mean < b.Mean {
			first, last = b.Max, b.Min // falling: end low
		}
		s.Points = append(s.Points, at(b.From, first), at(b.To, last))
	}
	return s
}

// epochAxis maps steps to epochs through the recorded epoch buckets; with
// none, every step maps to NaN.
func epochAxis(bs []store.Bucket) stepAxis {
	ax := stepAxis{epoch: true}
	for _, b := range bs {
		for _, p := range [2]struct {
			s int64
			e float64
		}{{b.From, b.Min}, {b.To, b.Max}} {
			if math.IsNaN(p.e) || math.IsInf(p.e, 0) || p.s <= 0 {
				continue
			}
			if k := len(ax.steps); k > 0 && ax.steps[k-1] >= float64(p.s) {
				continue
			}
			ax.steps = append(ax.steps, float64(p.s))
			ax.epochs = append(ax.epochs, p.e)
		}
	}
	if len(ax.steps) == 0 {
		ax.steps, ax.epochs = []float64{1}, []float64{math.NaN()}
	}
	return ax
}
