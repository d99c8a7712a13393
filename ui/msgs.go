package ui

import (
	"thaw/store/engine"
	"thaw/trainer"
	"thaw/ui/export"
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
	runStartedMsg struct{ run *engine.Live }
	// runProgressMsg: a report of run id.
	runProgressMsg struct {
		id string
		p  trainer.Progress
	}
	// runHistoryMsg: what the store holds of run id, handed to the
	// session while it trains; total and stages are its plan's steps
	// and stages (zero when unknown).
	runHistoryMsg struct {
		id            string
		run           export.Run
		total, stages int
		err           error
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

// AttachMsg hands the workbench a run that is already training, as if it
// had just been started here: the SSH server sends it when a user comes
// back to a run started in an earlier session, or when a queued run of
// theirs starts. The Train screen shows what the store holds of the run
// first (its curves, stages and plan), then goes on from the session's own
// feed of its reports (engine.Live.Subscribe), each step once.
type AttachMsg struct{ Run *engine.Live }
