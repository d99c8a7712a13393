package engine

import (
	"slices"

	"thaw/assets"
)

// DataTask is a built-in task as the catalogue offers it for a job's data:
// its name (what a job's data names it by), what it is, its number of
// classes and the shape of one sample.
type DataTask struct {
	Name, Description string
	Classes           int
	Shape             []int
}

// Tasks lists the catalogue's built-in tasks, in the catalogue's order:
// what a data picker offers.
func (e *Engine) Tasks() []DataTask {
	var out []DataTask
	for _, t := range assets.Tasks() {
		dt := DataTask{Name: t.Name, Description: t.Description, Classes: len(t.Classes)}
		if d, ok := assets.Dataset(t.Dataset); ok {
			dt.Shape = slices.Clone(d.Shape)
		}
		out = append(out, dt)
	}
	return out
}

// Tasks lists the catalogue's built-in tasks (see Engine.Tasks): every
// user may train on them.
func (v *UserView) Tasks() []DataTask { return v.e.Tasks() }
