package ui

import (
	"thaw/store"
	"thaw/trainer"
)

// Messages of the frame. Screens send them through commands; replies of
// background work carry an id so that a stale reply (from a job the user
// cancelled or replaced) is dropped.
type (
	// gotoMsg asks the frame to show a screen, from a command; a screen's
	// Update asks with Session.show, which takes effect before the next
	// key.
	gotoMsg Screen
	// shownMsg tells a screen it has just been shown.
	shownMsg struct{}
	// quitMsg ends the program.
	quitMsg struct{}
	// errMsg shows an error above the help bar.
	errMsg struct{ err error }
	// noticeMsg shows a notice above the help bar.
	noticeMsg string
)

// Messages of the session's run.
type (
	// runStartedMsg: a run started from the Plan screen.
	runStartedMsg struct{ run *store.Live }
	// runProgressMsg: a report of run id.
	runProgressMsg struct {
		id string
		p  trainer.Progress
	}
	// runDoneMsg: run id ended, err saying how if it failed.
	runDoneMsg struct {
		id  string
		res trainer.Result
		err error
	}
)

// Messages of background work on the chosen model and data.
type (
	// modelsLoadedMsg lists the models the Models screen offers.
	modelsLoadedMsg struct{ models []*modelEntry }
	// modelOpenedMsg: a folder typed in on the Models screen, loaded.
	modelOpenedMsg struct{ model *modelEntry }
	// dataLoadedMsg: the data of the Plan screen, loaded and checked
	// against the model (err says what is wrong).
	dataLoadedMsg struct {
		id   int
		prep *trainer.Prepared
		err  error
	}
)
