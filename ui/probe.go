package ui

import (
	"errors"

	tea "charm.land/bubbletea/v2"
)

// probeState holds the probes of one model and data.
type probeState struct {
	id int
}

// probeMsg reports one block's probe.
type probeMsg struct {
	id    int
	block int
	acc   float64
	err   error
}

func (b *blocksScreen) startProbes() tea.Cmd {
	b.s.flashErr(errors.New("probes are not available in this build"))
	return nil
}

func (b *blocksScreen) handleProbe(msg probeMsg) tea.Cmd { return nil }

func (b *blocksScreen) probeView(w int) string { return "" }
