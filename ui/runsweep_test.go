package ui

import (
	"slices"
	"testing"

	"thaw/store/engine"
)

// TestGroupSweeps: a sweep's runs follow one another in task order at the
// place of the first of them in the sort; other runs keep their places.
func TestGroupSweeps(t *testing.T) {
	task := func(sweep string, i int) *engine.SweepTask { return &engine.SweepTask{Sweep: sweep, Index: i} }
	rows := []runRow{
		{name: "a"},           // 0
		{task: task("s1", 2)}, // 1
		{name: "b"},           // 2
		{task: task("s1", 0)}, // 3
		{task: task("s2", 1)}, // 4
		{task: task("s1", 1)}, // 5
		{task: task("s2", 0)}, // 6
	}
	for _, c := range []struct {
		name        string
		shown, want []int
	}{
		{"no sweep", []int{0, 2}, []int{0, 2}},
		{"one sweep", []int{0, 1, 2, 3, 5}, []int{0, 3, 5, 1, 2}},
		{"two sweeps", []int{4, 1, 0, 6, 3, 2, 5}, []int{6, 4, 3, 5, 1, 0, 2}},
		{"filtered", []int{5, 2}, []int{5, 2}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := groupSweeps(rows, slices.Clone(c.shown)); !slices.Equal(got, c.want) {
				t.Errorf("groupSweeps(%v) = %v, want %v", c.shown, got, c.want)
			}
		})
	}
}
