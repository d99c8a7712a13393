//go:build race

package serve

// raceEnabled: the race detector slows the trainer some twentyfold, so the
// tests that train a CNN through the workbench skip under it.
const raceEnabled = true
