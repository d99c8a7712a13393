package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"

	"thaw/assets"
	"thaw/trainer"
)

// sweepNames resolves a sweep's names: the catalogue's, except that the
// training data is read once and the samples a seed's split and shots
// draw are decoded once, for all the points of that seed (each task
// prepares its job afresh, and decoding a compressed task dominated the
// cost of preparing). There is no forgetting gauge: a sweep's runs skip
// it. Every call returns fresh datasets, so that preparing one task cannot
// change another's. It is safe for concurrent use.
type sweepNames struct {
	inner names

	mu   sync.Mutex
	data map[trainer.DataRef]*sweepData
}

// sweepData is one training set read once: its labels and, per set of
// sample indices asked for, their values.
type sweepData struct {
	once    sync.Once
	ds      *trainer.Dataset
	samples func([]int) ([]float32, error)
	err     error

	mu   sync.Mutex
	rows map[[sha256.Size]byte]*sweepRows
}

// sweepRows is the values of one set of indices, decoded once.
type sweepRows struct {
	once sync.Once
	x    []float32
	err  error
}

func newSweepNames(inner names) *sweepNames {
	return &sweepNames{inner: inner, data: map[trainer.DataRef]*sweepData{}}
}

func (n *sweepNames) Model(name string) (*assets.BaseModel, error) { return n.inner.Model(name) }

func (n *sweepNames) Source(*assets.BaseModel) (*trainer.Dataset, error) { return nil, nil }

func (n *sweepNames) ResolveData(ref trainer.DataRef) (trainer.DataRef, error) {
	return n.inner.ResolveData(ref)
}

func (n *sweepNames) Data(ref trainer.DataRef, shape []int, split assets.DataSplit) (*trainer.Dataset, error) {
	return n.inner.Data(ref, shape, split)
}

func (n *sweepNames) TrainingData(ref trainer.DataRef, shape []int) (*trainer.Dataset, func([]int) ([]float32, error), error) {
	n.mu.Lock()
	d := n.data[ref]
	if d == nil {
		d = &sweepData{rows: map[[sha256.Size]byte]*sweepRows{}}
		n.data[ref] = d
	}
	n.mu.Unlock()
	d.once.Do(func() { d.ds, d.samples, d.err = n.inner.TrainingData(ref, shape) })
	if d.err != nil {
		return nil, nil, d.err
	}
	ds := &trainer.Dataset{Name: d.ds.Name, Shape: slices.Clone(d.ds.Shape), X: slices.Clone(d.ds.X),
		Y: slices.Clone(d.ds.Y), Classes: slices.Clone(d.ds.Classes)}
	if d.samples == nil {
		return ds, nil, nil
	}
	return ds, d.fetch, nil
}

// fetch returns a copy of the values of the samples at indices, decoding
// them the first time these indices are asked for.
func (d *sweepData) fetch(indices []int) ([]float32, error) {
	h := sha256.New()
	var b [8]byte
	for _, i := range indices {
		binary.LittleEndian.PutUint64(b[:], uint64(i))
		h.Write(b[:])
	}
	var key [sha256.Size]byte
	h.Sum(key[:0])
	d.mu.Lock()
	r := d.rows[key]
	if r == nil {
		r = &sweepRows{}
		d.rows[key] = r
	}
	d.mu.Unlock()
	r.once.Do(func() { r.x, r.err = d.samples(indices) })
	if r.err != nil {
		return nil, r.err
	}
	return slices.Clone(r.x), nil
}
