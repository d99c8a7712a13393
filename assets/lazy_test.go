package assets

import (
	"slices"
	"testing"
)

// TestImagesDecodeKeptRows: an image task's split, decoded row by row as
// its file streams past, holds the task's samples of the whole file
// decoded at once, pixels divided by 255, in file order.
func TestImagesDecodeKeptRows(t *testing.T) {
	task, ok := TaskByName("digits-5to9")
	if !ok {
		t.Fatal("no task digits-5to9")
	}
	got, err := LoadTaskSplit(task, task.Test)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Dataset(task.Dataset)
	s, _ := d.Split(task.Test)
	shape, px, err := readIDX(s.Files[0])
	if err != nil {
		t.Fatal(err)
	}
	_, lab, err := readIDX(s.Files[1])
	if err != nil {
		t.Fatal(err)
	}
	size := shape[1] * shape[2]
	var x []float32
	var y []int
	for i, v := range lab {
		l, ok := task.Label(d.Classes[v])
		if !ok {
			continue
		}
		for _, b := range px[i*size : (i+1)*size] {
			x = append(x, float32(b)/255)
		}
		y = append(y, l)
	}
	if len(y) == 0 || !slices.Equal(got.X, x) || !slices.Equal(got.Y, y) {
		t.Errorf("%d samples decoded row by row, %d decoded whole, or they differ", got.Len(), len(y))
	}
}
