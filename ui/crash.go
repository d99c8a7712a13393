package ui

import (
	"fmt"
	"runtime/debug"

	tea "charm.land/bubbletea/v2"
)

// Crash is a panic the workbench caught: in Update, in View, or in a
// command it ran. The program quits on it, restoring the terminal, and
// the caller reports it (see Model.Crash).
type Crash struct {
	Value any    // what was panicked with
	Stack []byte // the panicking goroutine's stack
}

func (c *Crash) Error() string { return fmt.Sprintf("panic: %v", c.Value) }

// crashMsg carries a command's panic to Update.
type crashMsg struct{ crash *Crash }

// Crash returns the panic that ended the program, nil when none did.
func (m *Model) Crash() *Crash { return m.crash }

// crashed records the first panic and stops the session's runs, which
// then stop and are recorded as after q (Wait waits for them).
func (m *Model) crashed(c *Crash) {
	if m.crash == nil {
		m.crash = c
	}
	defer func() { _ = recover() }() // the session may be what is broken
	m.s.stopAll()
}

// guard wraps a command so that its panic becomes a crashMsg, and the
// commands of a batch so, since Bubble Tea runs each on its own.
func guard(cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() (msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				msg = crashMsg{&Crash{Value: r, Stack: debug.Stack()}}
			}
		}()
		msg = cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			out := make(tea.BatchMsg, len(b))
			for i, c := range b {
				out[i] = guard(c)
			}
			msg = out
		}
		return msg
	}
}
