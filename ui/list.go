package ui

import (
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// Lists: the keys and mouse gestures every scrolling list shares.

// pageRows is how far pgup and pgdn move a list's cursor.
const pageRows = 10

// wheelRows is how far one notch of the mouse wheel moves a list's cursor.
const wheelRows = 1

// moveCursor applies a list key (↑ ↓ pgup pgdn g G home end) to cursor
// over n rows. It reports false when msg is not a list key.
func moveCursor(k KeyMap, msg tea.KeyPressMsg, cursor, n int) (int, bool) {
	last := max(n-1, 0)
	switch {
	case key.Matches(msg, k.Up):
		return max(cursor-1, 0), true
	case key.Matches(msg, k.Down):
		return min(cursor+1, last), true
	case key.Matches(msg, k.PageUp):
		return max(cursor-pageRows, 0), true
	case key.Matches(msg, k.PageDown):
		return min(cursor+pageRows, last), true
	case key.Matches(msg, k.Top):
		return 0, true
	case key.Matches(msg, k.Bottom):
		return last, true
	}
	return cursor, false
}

// wheelCursor moves cursor over n rows by a wheel notch; it reports false
// for a wheel message that is not up or down.
func wheelCursor(msg tea.MouseWheelMsg, cursor, n int) (int, bool) {
	switch msg.Button {
	case tea.MouseWheelUp:
		return max(cursor-wheelRows, 0), true
	case tea.MouseWheelDown:
		return min(cursor+wheelRows, max(n-1, 0)), true
	}
	return cursor, false
}

// listHits remembers where a list's rows were last drawn, so that a click
// finds the row under it: row y0 of the screen's body shows item first,
// and n items follow one a line, in columns below w (0: any). When
// gapAt > 0, one line that is not an item (a marker) is drawn before item
// gapAt.
type listHits struct{ y0, first, n, w, gapAt int }

// at returns the item drawn on body row y, or false when none is.
func (l listHits) at(y int) (int, bool) {
	i := y - l.y0
	if l.gapAt > 0 && i >= l.gapAt-l.first {
		if i == l.gapAt-l.first {
			return 0, false
		}
		i--
	}
	if i < 0 || i >= l.n {
		return 0, false
	}
	return l.first + i, true
}
