package assets

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"

	"thaw/trainer"
)

// LoadTask reads the named task of the catalogue (Tasks) from the
// embedded files: its training split, and its test split when it has one
// (test is nil otherwise, as for uci-digits and fashion). Only the task's
// classes are kept, relabelled in the task's order, and the datasets'
// Classes are the task's class names. Image pixels are scaled to [0, 1] as
// trainer.LoadIDX does; table features are kept as stored.
//
// It returns an error for an unknown task or an embedded file that does not
// parse.
func LoadTask(name string) (train, test *trainer.Dataset, err error) {
	t, ok := TaskByName(name)
	if !ok {
		return nil, nil, fmt.Errorf("no task named %q", name)
	}
	d, ok := Dataset(t.Dataset)
	if !ok {
		return nil, nil, fmt.Errorf("task %s: no dataset named %q", name, t.Dataset)
	}
	train, err = loadSplit(t, d, t.Train, trainer.LoadOptions{})
	if err != nil {
		return nil, nil, err
	}
	if t.Test != "" {
		if test, err = loadSplit(t, d, t.Test, trainer.LoadOptions{}); err != nil {
			return nil, nil, err
		}
	}
	return train, test, nil
}

// loadSplit reads one split of d and keeps t's classes, its decoded
// images counted against opts' budget.
func loadSplit(t Task, d DatasetInfo, split string, opts trainer.LoadOptions) (*trainer.Dataset, error) {
	s, ok := d.Split(split)
	if !ok {
		return nil, fmt.Errorf("task %s: dataset %s has no split %q", t.Name, d.Name, split)
	}
	// Map dataset labels to task labels; -1 drops the sample.
	remap := make([]int, len(d.Classes))
	for i, c := range d.Classes {
		remap[i] = -1
		if l, ok := t.Label(c); ok {
			remap[i] = l
		}
	}
	var ds *trainer.Dataset
	var err error
	switch d.Kind {
	case Images:
		// Only the task's images are decoded.
		ds, err = readImages(d, s, remap, opts)
	case Table:
		var all *trainer.Dataset
		if all, err = readTable(d, s, opts); err == nil {
			keep := make([]int, 0, all.Len())
			for i, y := range all.Y {
				if remap[y] >= 0 {
					keep = append(keep, i)
				}
			}
			ds = all.Subset(keep)
			for i := range ds.Y {
				ds.Y[i] = remap[ds.Y[i]]
			}
		}
	default:
		err = fmt.Errorf("dataset %s: unknown kind %q", d.Name, d.Kind)
	}
	if err != nil {
		return nil, err
	}
	ds.Classes = slices.Clone(t.Classes)
	ds.Name = t.Name + "/" + split
	if err := ds.Validate(); err != nil {
		return nil, fmt.Errorf("task %s: %w", t.Name, err)
	}
	return ds, nil
}

// readImages reads an IDX image split, keeping the samples whose label
// remap sends to 0 or more, relabelled: pixels scaled to [0, 1], samples
// of shape [1, rows, cols]. Only the kept images are decoded, as the
// images file streams past.
func readImages(d DatasetInfo, s Split, remap []int, opts trainer.LoadOptions) (*trainer.Dataset, error) {
	shape, rows, y, err := imageRows(d, s, remap)
	if err != nil {
		return nil, err
	}
	x, err := decodeImageRows(s.Files[0], shape, rows, opts)
	if err != nil {
		return nil, err
	}
	return &trainer.Dataset{Name: d.Name, Shape: []int{1, shape[1], shape[2]}, X: x, Y: y, Classes: slices.Clone(d.Classes)}, nil
}

// imageRows reads an IDX image split's shape (from the images file's
// header) and its labels, and returns the rows (file indices) of the
// samples whose label remap sends to 0 or more, with their new labels.
func imageRows(d DatasetInfo, s Split, remap []int) (shape, rows, y []int, err error) {
	if shape, err = readIDXShape(s.Files[0]); err != nil {
		return nil, nil, nil, err
	}
	lshape, lab, err := readIDX(s.Files[1])
	if err != nil {
		return nil, nil, nil, err
	}
	if len(shape) != 3 || len(lshape) != 1 || lshape[0] != shape[0] {
		return nil, nil, nil, fmt.Errorf("%s: images %v and labels %v do not match", s.Files[0], shape, lshape)
	}
	for i, v := range lab {
		if int(v) >= len(remap) {
			return nil, nil, nil, fmt.Errorf("%s: label %d of sample %d is not a class of %s", s.Files[1], v, i, d.Name)
		}
		if remap[v] >= 0 {
			rows = append(rows, i)
			y = append(y, remap[v])
		}
	}
	return shape, rows, y, nil
}

// decodeImageRows decodes the images at rows (sorted file indices) of
// an IDX images file of the given shape [N, rows, cols], one after the
// other, pixels scaled to [0, 1]. What they take as float32 is checked
// against opts' budget before anything is allocated.
func decodeImageRows(p string, shape, rows []int, opts trainer.LoadOptions) ([]float32, error) {
	size := shape[1] * shape[2]
	if err := opts.Check(int64(len(rows)) * int64(size) * 4); err != nil {
		return nil, fmt.Errorf("%s: %d images of %d×%d: %w", p, len(rows), shape[1], shape[2], err)
	}
	var lut [256]float32
	for i := range lut {
		lut[i] = float32(i) / 255
	}
	x := make([]float32, len(rows)*size)
	r, err := OpenGzip(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	k := 0
	got, err := trainer.ReadIDXRows(r, rows, func(_ int, row []byte) {
		out := x[k*size : (k+1)*size]
		for j, b := range row {
			out[j] = lut[b]
		}
		k++
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if !slices.Equal(got, shape) {
		return nil, fmt.Errorf("%s: shape %v in the header, then %v", p, shape, got)
	}
	return x, nil
}

func readIDX(p string) ([]int, []byte, error) {
	r, err := OpenGzip(p)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	shape, data, err := trainer.ReadIDXBytes(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", p, err)
	}
	return shape, data, nil
}

// readTable reads a CSV split with the dataset's classes in catalogue order.
func readTable(d DatasetInfo, s Split, opts trainer.LoadOptions) (*trainer.Dataset, error) {
	r, err := OpenGzip(s.Files[0])
	if err != nil {
		return nil, err
	}
	defer r.Close()
	opts.Classes = d.Classes
	return trainer.ReadCSV(io.Reader(r), s.Files[0], opts)
}

// LoadTaskSplit reads one split ("train" or "test", as the task names
// them in t.Train and t.Test) of a catalogued task, as LoadTask does,
// within the default data budget.
func LoadTaskSplit(t Task, split string) (*trainer.Dataset, error) {
	return loadTaskSplit(t, split, trainer.LoadOptions{})
}

// loadTaskSplit is LoadTaskSplit within opts' budget.
func loadTaskSplit(t Task, split string, opts trainer.LoadOptions) (*trainer.Dataset, error) {
	d, ok := Dataset(t.Dataset)
	if !ok {
		return nil, fmt.Errorf("task %s: no dataset named %q", t.Name, t.Dataset)
	}
	return loadSplit(t, d, split, opts)
}

// loadSplitLazy reads one split of a catalogued task as LoadTaskSplit
// does, except that an image split comes without its samples: the
// dataset's X is nil, and samples decodes those at the indices it is
// given (see trainer.JobInputs.Samples), so that a job that keeps a few
// thousand of MNIST's 60,000 images decodes those only. A table split
// comes whole, with a nil samples.
func loadSplitLazy(t Task, split string, opts trainer.LoadOptions) (ds *trainer.Dataset, samples func([]int) ([]float32, error), err error) {
	d, ok := Dataset(t.Dataset)
	if !ok {
		return nil, nil, fmt.Errorf("task %s: no dataset named %q", t.Name, t.Dataset)
	}
	s, ok := d.Split(split)
	if !ok || d.Kind != Images {
		ds, err := loadSplit(t, d, split, opts)
		return ds, nil, err
	}
	remap := make([]int, len(d.Classes))
	for i, c := range d.Classes {
		remap[i] = -1
		if l, ok := t.Label(c); ok {
			remap[i] = l
		}
	}
	shape, rows, y, err := imageRows(d, s, remap)
	if err != nil {
		return nil, nil, err
	}
	ds = &trainer.Dataset{Name: t.Name + "/" + split, Shape: []int{1, shape[1], shape[2]}, Y: y, Classes: slices.Clone(t.Classes)}
	if err := ds.CheckClasses(); err != nil {
		return nil, nil, fmt.Errorf("task %s: %w", t.Name, err)
	}
	samples = func(indices []int) ([]float32, error) {
		want := make([]int, len(indices))
		for k, i := range indices {
			want[k] = rows[i]
		}
		return decodeImageRows(s.Files[0], shape, want, opts)
	}
	return ds, samples, nil
}

// readIDXShape reads the shape in the header of an IDX file of u8
// elements, and nothing more.
func readIDXShape(p string) ([]int, error) {
	r, err := OpenGzip(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return nil, fmt.Errorf("%s: header: %w", p, err)
	}
	if head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] == 0 {
		return nil, fmt.Errorf("%s: magic number % x, want an IDX file of bytes (00 00 08 <dimensions>)", p, head[:])
	}
	dims := make([]byte, 4*int(head[3]))
	if _, err := io.ReadFull(r, dims); err != nil {
		return nil, fmt.Errorf("%s: header: %w", p, err)
	}
	shape := make([]int, head[3])
	for i := range shape {
		shape[i] = int(binary.BigEndian.Uint32(dims[4*i:]))
	}
	return shape, nil
}
