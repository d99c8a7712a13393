package ui

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"thaw/store/engine"
	"thaw/trainer/termtext"
)

// The Runs screen groups a sweep's runs: they sit together, in the
// sweep's task order, where the first of them falls in the sort, and each
// is named by its sweep, freeze point and seed (as thaw runs --sweep
// names them), whatever its record's name says.

// sweepTaskOf returns the sweep task run trains, nil for a run of no
// sweep. Only runs tagged as a sweep's are looked up.
func sweepTaskOf(ctx context.Context, src Backend, run engine.Run) (*engine.SweepTask, error) {
	if !slices.Contains(run.Tags, "sweep") {
		return nil, nil
	}
	t, found, err := src.RunSweepTask(ctx, run.ID)
	if err != nil || !found {
		return nil, err
	}
	return &t, nil
}

// sweepRunName names a sweep's run by its task: fc1 · seed 3002 · sweep
// 3f2a1b, with the task's preset and shots when the sweep crosses them;
// the point and seed first, so that a narrow column keeps them.
func sweepRunName(t *engine.SweepTask) string {
	name := fmt.Sprintf("%s · seed %d", termtext.Sanitize(t.Point), t.Seed)
	if t.Preset != "" {
		name += " · " + termtext.Sanitize(t.Preset)
	}
	if t.Shots > 0 {
		name += fmt.Sprintf(" · %d shots", t.Shots)
	}
	return name + " · sweep " + engine.Short(t.Sweep)
}

// groupSweeps reorders shown (indexes into rows, sorted) so that each
// sweep's runs follow one another in task order, at the place of the
// first of them; other runs keep their places.
func groupSweeps(rows []runRow, shown []int) []int {
	members := map[string][]int{}
	for _, i := range shown {
		if t := rows[i].task; t != nil {
			members[t.Sweep] = append(members[t.Sweep], i)
		}
	}
	if len(members) == 0 {
		return shown
	}
	out := make([]int, 0, len(shown))
	for _, i := range shown {
		t := rows[i].task
		if t == nil {
			out = append(out, i)
			continue
		}
		g, ok := members[t.Sweep]
		if !ok {
			continue // placed with the first of its sweep
		}
		delete(members, t.Sweep)
		slices.SortStableFunc(g, func(a, b int) int { return cmp.Compare(rows[a].task.Index, rows[b].task.Index) })
		out = append(out, g...)
	}
	return out
}
