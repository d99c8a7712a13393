package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
)

// rowOf is the terminal row of the first line of scr holding s, -1 when
// none does.
func rowOf(scr, s string) int {
	for i, l := range strings.Split(scr, "\n") {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

// cursorOn waits until the line with the cursor (▸) holds want.
func cursorOn(t *testing.T, scr *screenReader, want string) {
	t.Helper()
	scr.waitFor(t, "▸")
	for range 500 {
		s := scr.pump()
		if l := strings.Split(s, "\n")[max(rowOf(s, "▸"), 0)]; strings.Contains(l, want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := scr.pump()
	t.Fatalf("the cursor is not on %q:\n%s", want, s)
}

// TestFlowMouseRuns: on Runs the wheel moves the cursor, a click selects
// the row under it, g and G go to the first and last run; M turns the
// mouse off, and a wheel then does nothing.
func TestFlowMouseRuns(t *testing.T) {
	eng, st := newTestEngine(t)
	names := []string{"alpha", "bravo", "charlie", "delta"}
	for _, name := range names {
		if _, err := st.CreateRun(context.Background(), store.Run{Name: name, Model: "mnist8-mlp", Dataset: "mnist8"}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true, Backend: eng})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	scr := newScreenReader(tm.Output(), 80, 24)
	scr.waitFor(t, "digits-cnn")
	tm.Send(press("5"))
	first := scr.waitFor(t, "alpha", "bravo", "charlie", "delta")
	// The order the screen lists them in (newest first).
	var order []string
	for _, l := range strings.Split(first, "\n") {
		for _, n := range names {
			if strings.Contains(l, n) {
				order = append(order, n)
			}
		}
	}
	if len(order) != 4 {
		t.Fatalf("runs listed %v", order)
	}
	cursorOn(t, scr, order[0])
	tm.Send(tea.MouseWheelMsg{X: 10, Y: rowOf(first, order[0]), Button: tea.MouseWheelDown})
	tm.Send(tea.MouseWheelMsg{X: 10, Y: rowOf(first, order[0]), Button: tea.MouseWheelDown})
	cursorOn(t, scr, order[2])
	tm.Send(press("g"))
	cursorOn(t, scr, order[0])
	tm.Send(press("G"))
	cursorOn(t, scr, order[3])
	tm.Send(tea.MouseClickMsg{X: 10, Y: rowOf(first, order[1]), Button: tea.MouseLeft})
	cursorOn(t, scr, order[1])
	tm.Send(press("M"))
	scr.waitFor(t, "mouse off")
	tm.Send(tea.MouseWheelMsg{X: 10, Y: rowOf(first, order[0]), Button: tea.MouseWheelDown})
	tm.Send(press("k")) // up: were the wheel heard, the cursor would stay on order[1]
	cursorOn(t, scr, order[0])
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestFlowMouseBlocks: on Blocks the wheel moves the cursor, a click
// selects a block and a second click on it thaws it; G goes to the last.
func TestFlowMouseBlocks(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	scr := newScreenReader(tm.Output(), 80, 24)
	scr.waitFor(t, "digits-cnn")
	tm.Send(press("enter"))
	first := scr.waitFor(t, "Blocks of digits-cnn", "trainable 325 of 53,989")
	cursorOn(t, scr, "conv1")
	tm.Send(tea.MouseWheelMsg{X: 10, Y: rowOf(first, "conv1"), Button: tea.MouseWheelDown})
	cursorOn(t, scr, "conv2")
	fc1 := rowOf(first, "fc1 ")
	tm.Send(tea.MouseClickMsg{X: 10, Y: fc1, Button: tea.MouseLeft})
	cursorOn(t, scr, "fc1")
	tm.Send(tea.MouseClickMsg{X: 10, Y: fc1, Button: tea.MouseLeft})
	scr.waitFor(t, "trainable 50,565 of 53,989")
	tm.Send(press("G"))
	cursorOn(t, scr, "head")
	tm.Send(press("g"))
	cursorOn(t, scr, "conv1")
	if !strings.Contains(scr.pump(), "? keys · q quit") {
		t.Errorf("the help bar lost its end")
	}
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}

// TestFlowMessageLog: an error too long for its line points to the log,
// ! shows it whole, esc closes the log.
func TestFlowMessageLog(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{NoProbes: true})
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	scr := newScreenReader(tm.Output(), 80, 24)
	scr.waitFor(t, "digits-cnn")
	dir := "/nonexistent/" + strings.Repeat("a-long-folder-name/", 5) + "model"
	tm.Send(press("o"))
	for _, r := range dir {
		tm.Send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
	tm.Send(press("enter"))
	scr.waitFor(t, "! whole")
	tm.Send(press("!"))
	log := scr.waitFor(t, "Messages")
	if joined := strings.Join(strings.Fields(log), ""); !strings.Contains(joined, strings.ReplaceAll(dir, " ", "")) {
		t.Errorf("the log does not hold the error whole:\n%s", log)
	}
	tm.Send(press("esc"))
	scr.waitFor(t, "Base models")
	tm.Send(press("q"))
	tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
}
