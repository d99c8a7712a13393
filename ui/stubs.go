package ui

import (
	"fmt"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
)

// placeholder stands in for a screen that is not built yet: Train and Runs
// replace it (newTrainScreen in train.go, newRunsScreen in runs.go, which
// then remove this file).
type placeholder struct {
	s    *Session
	name Screen
}

func newTrainScreen(s *Session) ScreenModel { return &placeholder{s: s, name: ScreenTrain} }
func newRunsScreen(s *Session) ScreenModel  { return &placeholder{s: s, name: ScreenRuns} }

func (p *placeholder) Update(tea.Msg) (ScreenModel, tea.Cmd) { return p, nil }
func (p *placeholder) Keys() []key.Binding                   { return nil }
func (p *placeholder) Capturing() bool                       { return false }

func (p *placeholder) View(w, h int) string {
	s := p.s
	if p.name == ScreenTrain && s.run != nil {
		return fmt.Sprintf("%s\n\nrun %s: %s", s.Styles.Heading.Render("Train"), s.run.ID(), s.runStatus())
	}
	return s.Styles.Heading.Render(p.name.String()) + "\n\n" + s.Styles.Faint.Render("nothing here yet")
}
