package ui

import (
	"testing"

	tea "charm.land/bubbletea/v2"
)

// benchScreen measures Update of msgs in turn plus View of the whole frame
// at 160x48, as Bubble Tea calls them for one frame.
func benchScreen(b *testing.B, d *driver, msgs ...tea.Msg) {
	b.Helper()
	d.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		d.m.Update(msgs[i%len(msgs)])
		_ = d.m.View()
	}
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
