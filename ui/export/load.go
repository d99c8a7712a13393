package export

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// Source is what Load reads from: the engine's read model of stored runs
// (*engine.Engine, or a user's *engine.UserView).
type Source interface {
	Read(ctx context.Context, id string) (engine.RunView, error)
	ReadSeries(ctx context.Context, id string, names []string, maxPoints int) ([]engine.Series, error)
}

// Load reads the stored run id (a full id or a unique prefix, as
// Store.Run takes) into a Run for the figures and CSV, through the
// engine's read model: its stages, best and branch point are the ones
// every other view shows.
//
// names selects the series to read; nil reads every metric of the run.
// maxPoints is the point budget of each series: a series with more points
// is read as at most maxPoints buckets (see Store.Series), and four per
// pixel column of the figure keeps its look (decimate does the rest);
// zero or negative reads every point, as a CSV should.
//
// Each point gets its epoch from the run's epoch metric, interpolated
// between the steps it was recorded at; with no epoch metric, epochs are
// NaN. Stages are the ones that started, BestStep the read model's best
// (which may be an ancestor's, before BranchStep, for a branch that has
// not beaten it), and for a branch its branch point and its parent's
// name. Name falls back to the short id. View is the read model itself.
//
// It returns the errors of src, among them store.ErrNotFound and
// store.ErrAmbiguous for an id that names no run or several.
func Load(ctx context.Context, src Source, id string, names []string, maxPoints int) (Run, error) {
	v, err := src.Read(ctx, id)
	if err != nil {
		return Run{}, err
	}
	return load(ctx, src, v, names, maxPoints)
}

// load reads the series of the run v describes into a Run.
func load(ctx context.Context, src Source, v engine.RunView, names []string, maxPoints int) (Run, error) {
	sr := v.Run
	r := Run{ID: sr.ID, Name: cmp.Or(sr.Name, store.Short(sr.ID)), BestStep: int(v.Best.Step), View: v,
		Model: sr.Model, Data: sr.Dataset, Plan: PlanName(sr.Plan)}
	fail := func(err error) (Run, error) {
		return Run{}, fmt.Errorf("load run %s: %w", store.Short(sr.ID), err)
	}
	// The epoch axis needs the epoch series, asked for or not.
	skipEpoch := names != nil && !slices.Contains(names, trainer.MetricEpoch)
	if skipEpoch {
		names = append(slices.Clip(names), trainer.MetricEpoch)
	}
	series, err := src.ReadSeries(ctx, sr.ID, names, maxPoints)
	if err != nil {
		return fail(err)
	}
	// The epoch is monotone, so the extremes of a bucket are its epochs
	// at its first and last step: the budget loses nothing here.
	var epochs []store.Bucket
	for _, s := range series {
		if s.Name == trainer.MetricEpoch {
			epochs = s.Buckets
		}
	}
	ax := epochAxis(epochs)
	for _, s := range series {
		if skipEpoch && s.Name == trainer.MetricEpoch {
			continue
		}
		r.Series = append(r.Series, bucketSeries(s.Name, s.Buckets, ax))
	}

	for _, s := range v.Stages {
		if s.Start < 0 {
			continue // not reached
		}
		r.Stages = append(r.Stages, Stage{
			Index: s.Index + 1, Label: s.Label, Trainable: s.Trainable,
			StartStep: int(s.Start), EndStep: int(s.End), // End < 0 while running
		})
	}
	if v.Parent.IsBranch() {
		r.BranchStep = int(v.Parent.Step)
		r.Parent = v.Parent.Name
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
