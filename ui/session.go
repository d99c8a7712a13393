package ui

import (
	"context"
	"fmt"
	"sync"
	"time"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
)

// Session is the state one workbench's screens share: the styles and keys
// of its terminal, the model and data chosen, the freeze choice, the plan
// being edited and the run started from it. Screens read and change it from
// their Update only, so it needs no lock.
type Session struct {
	Styles Styles
	Keys   KeyMap

	opts Options
	// backend is the options' Backend, or, without one, an engine that
	// only prepares: the catalogue, previews, probes and the LR finder
	// work, and what needs a store says it is missing (see hasStore).
	backend Backend
	ctx     context.Context
	cancel  context.CancelFunc

	// models lists what the Models screen offers; base is the chosen one.
	models []*modelEntry
	base   *modelEntry
	// frozen[i] says whether block i (input to output) stays frozen in the
	// first stage: the Blocks screen's choice.
	frozen []bool

	// plan is the job being edited on the Plan screen.
	plan *planDraft

	// run is the run started from this session, if any; last is its
	// latest report.
	run     *engine.Live
	feed    feed   // the session's subscription to run's reports
	leave   func() // ends feed
	last    trainer.Progress
	hasLast bool
	runDone bool
	runErr  error

	// msg is the message area above the help bar; log keeps every
	// message whole, for `!`.
	msg message
	log []logEntry
	// infoLife is how long a notice stays; zero keeps it until replaced
	// (tests that run commands synchronously cannot wait on a timer).
	infoLife time.Duration

	// sweeping is set while a freeze-depth sweep runs: quitting asks
	// first.
	sweeping bool

	// probeCache keeps finished probes per model and job.
	probeCache map[probeKey]*probeState

	// bg counts the background goroutines that start runs (sweeps), so
	// that Wait can let their runs stop and be recorded.
	bg sync.WaitGroup

	// showNext, when set, is the screen to show once the active screen's
	// Update returns (see show).
	showNext *Screen

	// seq numbers background jobs, so that replies from a cancelled one
	// are told apart from the current one's.
	seq int
}

func newSession(ctx context.Context, opts Options, noColor bool) *Session {
	ctx, cancel := context.WithCancel(ctx)
	s := &Session{
		Styles:  NewStyles(true, noColor),
		Keys:    DefaultKeyMap(),
		opts:    opts,
		backend: opts.Backend,
		ctx:     ctx,
		cancel:  cancel,

		infoLife: infoLifetime,
	}
	if s.backend == nil {
		s.backend = engine.New(nil, nil)
	}
	s.plan = newPlanDraft()
	return s
}

// nextID returns a fresh id for a background job.
func (s *Session) nextID() int {
	s.seq++
	return s.seq
}

// show asks the frame to show screen sc as soon as the current Update
// returns, so that the next key already goes to it.
func (s *Session) show(sc Screen) { s.showNext = &sc }

// flash shows a notice above the help bar for a few seconds.
func (s *Session) flash(msg string) {
	s.say(sevInfo, termtext.Sanitize(msg), nil)
}

// flashErr shows an error above the help bar until the screen changes or
// another message replaces it.
func (s *Session) flashErr(err error) {
	if err != nil {
		s.say(sevError, termtext.Sanitize(err.Error()), nil)
	}
}

// flashErrWhile shows an error for as long as holds reports its cause
// is still there: the frame asks after every key and every reply of
// background work, and clears the error once the cause is fixed.
func (s *Session) flashErrWhile(err error, holds func() bool) {
	if err != nil {
		s.say(sevError, termtext.Sanitize(err.Error()), holds)
	}
}

// noteWhile shows a notice for as long as holds reports true ("run …
// started" while the run trains).
func (s *Session) noteWhile(msg string, holds func() bool) {
	s.say(sevInfo, termtext.Sanitize(msg), holds)
}

func (s *Session) say(sev severity, text string, holds func() bool) {
	s.msg = message{text: text, sev: sev, holds: holds, seq: s.msg.seq + 1}
	if sev == sevInfo && holds == nil && s.infoLife > 0 {
		s.msg.until = time.Now().Add(s.infoLife)
	}
	s.log = append(s.log, logEntry{at: time.Now(), sev: sev, text: text})
	if len(s.log) > maxLog {
		s.log = append(s.log[:0], s.log[len(s.log)-maxLog:]...)
	}
}

// message returns the text of the message shown, "" when none.
func (s *Session) message() string { return s.msg.text }

// messageErr reports whether the message shown is an error.
func (s *Session) messageErr() bool { return s.msg.text != "" && s.msg.sev == sevError }

// clearMessage takes the message away (the log keeps it).
func (s *Session) clearMessage() { s.msg = message{seq: s.msg.seq + 1} }

// recheckMessage clears a message whose cause has gone.
func (s *Session) recheckMessage() {
	if s.msg.holds != nil && !s.msg.holds() {
		s.clearMessage()
	}
}

// hasStore reports whether the workbench has a backend that records runs:
// without one it previews and probes but cannot train.
func (s *Session) hasStore() bool { return s.opts.Backend != nil }

// training reports whether a run started here is still live.
func (s *Session) training() bool {
	return s.run != nil && !s.runDone
}

// Message area.

// infoLifetime is how long a notice stays: long enough to read a line.
const infoLifetime = 5 * time.Second

// maxLog is how many messages the log keeps.
const maxLog = 200

type severity int

const (
	sevInfo severity = iota
	sevError
)

// message is what the message area shows: a notice lives until, an
// error until the screen changes, and either with holds until holds
// reports false.
type message struct {
	text  string
	sev   severity
	until time.Time
	holds func() bool
	seq   int // tells an expiry timer which message it was armed for
}

// logEntry is one message as the log keeps it, whole.
type logEntry struct {
	at   time.Time
	sev  severity
	text string
}

// feed is a session's subscription to a run's reports.
type feed struct {
	run  *engine.Live
	ch   <-chan trainer.Progress
	gone chan struct{} // closed when the session leaves the feed
}

// watch subscribes the session to run's reports, leaving the feed of the
// run it watched before. The subscription ends with the session too: a
// session that goes away leaves nothing behind in the run.
func (s *Session) watch(run *engine.Live) {
	s.unwatch()
	ch, cancel := run.Subscribe()
	f := feed{run: run, ch: ch, gone: make(chan struct{})}
	var once sync.Once
	leave := func() { once.Do(func() { close(f.gone); cancel() }) }
	stop := context.AfterFunc(s.ctx, leave)
	s.feed = f
	s.leave = func() { stop(); leave() }
}

// unwatch leaves the session's feed, if any.
func (s *Session) unwatch() {
	if s.leave != nil {
		s.leave()
		s.leave = nil
	}
}

// stopAll cancels the session's background work and its runs: a run
// stops within one batch and stays stored, resumable.
func (s *Session) stopAll() {
	s.cancel()
}

// statusLine is the header's right side: model → data, and the run.
func (s *Session) statusLine() string {
	out := "no model chosen"
	switch {
	case s.base != nil:
		out = s.base.name + " → " + s.plan.dataName()
	case s.run != nil:
		// A run handed over (AttachMsg): its own model and data.
		out = s.run.Run.Model + " → " + s.run.Run.Dataset
	}
	if s.run != nil {
		out += " · run " + engine.Short(s.run.ID) + " " + s.runStatus()
	}
	return termtext.Sanitize(out)
}

// runStatus says what the run is doing in a few words.
func (s *Session) runStatus() string {
	switch {
	case s.runDone && s.runErr != nil:
		return "failed"
	case s.runDone:
		if s.hasLast {
			return string(s.last.Status)
		}
		return "done"
	case !s.hasLast:
		return "starting"
	}
	p := s.last
	return fmt.Sprintf("%s stage %d %d/%d", p.Status, p.Stage+1, p.Step, p.TotalSteps)
}
