package ui

import (
	"runtime"
	"syscall"
	"testing"

	tea "charm.land/bubbletea/v2"
)

// benchScreen measures Update of msgs in turn plus View of the whole frame
// at 160x48, as Bubble Tea calls them for one frame.
//
// Besides wall time it reports cpu-ns/op, the CPU time of the benchmark's
// thread per frame: on a machine shared with other work the wall time
// measures the queue for a core as much as the frame.
func benchScreen(b *testing.B, d *driver, msgs ...tea.Msg) {
	b.Helper()
	d.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	start := threadCPU()
	n := 0
	for i := 0; b.Loop(); i++ {
		d.m.Update(msgs[i%len(msgs)])
		_ = d.m.View()
		n++
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(n), "cpu-ns/op")
}

// threadCPU is the CPU time the calling OS thread has used, in ns.
func threadCPU() int64 {
	var ru syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkModels(b *testing.B) {
	d := newDriver(b, Options{})
	benchScreen(b, d, press("down"), press("up"))
}

func BenchmarkBlocks(b *testing.B) {
	d := newDriver(b, Options{})
	d.chooseModel("digits-cnn")
	d.keys("down", "down")
	// space changes the freeze choice, the totals and the plan.
	benchScreen(b, d, press("space"))
}

func BenchmarkPlan(b *testing.B) {
	d := newDriver(b, Options{})
	d.chooseModel("digits-cnn")
	d.keys("enter")
	benchScreen(b, d, press("down"), press("up"))
}

// BenchmarkPlanRedraw changes the preset every frame, so the LR preview is
// drawn anew each time: the worst case of the Plan screen.
func BenchmarkPlanRedraw(b *testing.B) {
	d := newDriver(b, Options{})
	d.chooseModel("digits-cnn")
	d.keys("enter")
	benchScreen(b, d, press("p"))
}
