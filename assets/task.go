package assets

import (
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
	train, err = loadSplit(t, d, t.Train)
	if err != nil {
		return nil, nil, err
	}
	if t.Test != "" {
		if test, err = loadSplit(t, d, t.Test); err != nil {
			return nil, nil, err
		}
	}
	return train, test, nil
}

// loadSplit reads one split of d and keeps t's classes.
func loadSplit(t Task, d DatasetInfo, split string) (*trainer.Dataset, error) {
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
		ds, err = readImages(d, s, remap)
	case Table:
		var all *trainer.Dataset
		if all, err = readTable(d, s); err == nil {
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
// of shape [1, rows, cols]. Only the kept images are decoded.
func readImages(d DatasetInfo, s Split, remap []int) (*trainer.Dataset, error) {
	shape, px, err := readIDX(s.Files[0])
	if err != nil {
		return nil, err
	}
	lshape, lab, err := readIDX(s.Files[1])
	if err != nil {
		return nil, err
	}
	if len(shape) != 3 || len(lshape) != 1 || lshape[0] != shape[0] {
		return nil, fmt.Errorf("%s: images %v and labels %v do not match", s.Files[0], shape, lshape)
	}
	size := shape[1] * shape[2]
	var lut [256]float32
	for i := range lut {
		lut[i] = float32(i) / 255
	}
	n := 0
	for _, v := range lab {
		if int(v) < len(remap) && remap[v] >= 0 {
			n++
		}
	}
	ds := &trainer.Dataset{Name: d.Name, Shape: []int{1, shape[1], shape[2]}, X: make([]float32, 0, n*size), Y: make([]int, 0, n), Classes: slices.Clone(d.Classes)}
	for i, v := range lab {
		if int(v) >= len(remap) {
			return nil, fmt.Errorf("%s: label %d of sample %d is not a class of %s", s.Files[1], v, i, d.Name)
		}
		if remap[v] < 0 {
			continue
		}
		for _, b := range px[i*size : (i+1)*size] {
			ds.X = append(ds.X, lut[b])
		}
		ds.Y = append(ds.Y, remap[v])
	}
	return ds, nil
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
func readTable(d DatasetInfo, s Split) (*trainer.Dataset, error) {
	r, err := OpenGzip(s.Files[0])
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return trainer.ReadCSV(io.Reader(r), s.Files[0], trainer.LoadOptions{Classes: d.Classes})
}

// LoadTaskSplit reads one split ("train" or "test", as the task names
// them in t.Train and t.Test) of a catalogued task, as LoadTask does.
func LoadTaskSplit(t Task, split string) (*trainer.Dataset, error) {
	d, ok := Dataset(t.Dataset)
	if !ok {
		return nil, fmt.Errorf("task %s: no dataset named %q", t.Name, t.Dataset)
	}
	return loadSplit(t, d, split)
}
