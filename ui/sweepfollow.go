package ui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
)

// Following a sweep that trains elsewhere: W on a sweep's run on the Runs
// screen opens its sweep on the Blocks screen's panel, whoever trains its
// tasks (thaw train --sweep ID --index I on a cluster's nodes, thaw sweep,
// another workbench). Its job goes into the Plan (see
// Session.openSweepJob), so that the block table is the sweep's model's
// and the panel's rows line up with it; when the model cannot be loaded
// here the panel stands alone and says why.
//
// The follow rule: the panel reads the sweep (Backend.SweepTable, and the
// status of its runs) once when it is opened, and again only when the
// backend's change feed (Backend.Subscribe) says the stored runs may have
// changed: no timer wakes it, and nothing is read while nothing changes.
// A change during a read makes one more read after it; a read starts no
// sooner than sweepReadGap after the one before, so that many nodes
// writing at once cost a read a second. Following stops, and the feed is
// left, when every task is done, when w stops it, when another sweep is
// opened or one is started here, when the data changes (another model or
// data chosen), when the sweep is deleted, and when the session ends.

// sweepReadGap is the least time between the starts of two reads of a
// followed sweep.
const sweepReadGap = time.Second

type (
	// followSweepMsg asks the Blocks screen to open and follow a stored
	// sweep (its full id).
	followSweepMsg struct{ sweep string }
	// sweepFeedMsg: the change feed of followed sweep id fired, or was
	// closed (following ended).
	sweepFeedMsg struct {
		id     int
		closed bool
	}
	// sweepReadMsg: a read of followed sweep id: its table and the
	// status of its runs, by run id.
	sweepReadMsg struct {
		id     int
		tb     engine.SweepTable
		status map[string]trainer.Status
		err    error
	}
	// sweepModelMsg: the followed sweep id's model, loaded for the Plan.
	sweepModelMsg struct {
		id    int
		model *modelEntry
		err   error
	}
)

// sweepFollow is how the panel follows a sweep that trains elsewhere.
type sweepFollow struct {
	sweep string // the sweep's full id
	// on is set while following: the feed is read. ctx ends with it.
	on   bool
	ctx  context.Context
	stop context.CancelFunc
	feed <-chan struct{}
	// reading says a read is under way; dirty that the feed fired
	// during it.
	reading, dirty bool
	readAt         time.Time // when the last read started
	// status is each of the sweep's runs' status, as last read.
	status map[string]trainer.Status
	// asked says the sweep's job was asked for (after the first read);
	// loaded that its model is the base model and the Plan its job;
	// modelErr why the model could not be loaded here.
	asked, loaded bool
	modelErr      error
	// dataID is the data load the sweep's job started: its reply does
	// not make the sweep stale.
	dataID int
}

// following returns the sweep the panel follows, nil when it follows
// none (or sweep id is no longer the one shown).
func (b *blocksScreen) following(id int) *sweepState {
	if sw := b.sweep; sw != nil && sw.follow != nil && sw.follow.on && sw.id == id {
		return sw
	}
	return nil
}

// ownsData reports whether the data load id leaves sw shown: sw is a
// followed sweep, and the load is its job's, or one its job, whose model
// is still loading, is about to replace.
func (sw *sweepState) ownsData(id int) bool {
	if sw == nil || sw.follow == nil {
		return false
	}
	f := sw.follow
	return f.loaded && f.dataID == id || !f.loaded && f.modelErr == nil
}

// alone reports whether the panel stands without the block table: it
// shows a followed sweep whose model is not (or cannot be) loaded here.
func (b *blocksScreen) alone() bool {
	sw := b.sweep
	return sw != nil && sw.follow != nil && !sw.follow.loaded
}

// followSweep opens sweep id on the panel and follows it (see above).
func (b *blocksScreen) followSweep(id string) tea.Cmd {
	s := b.s
	back := s.runs()
	if back == nil {
		return nil
	}
	if sw := b.sweep; sw != nil {
		switch {
		case sw.follow == nil && !sw.done:
			s.flashErr(fmt.Errorf("a sweep runs here: w on Blocks (2) cancels it; then W follows sweep %s", engine.Short(id)))
			return nil
		case sw.follow != nil && sw.follow.sweep == id && sw.follow.on:
			s.show(ScreenBlocks)
			return nil
		}
		b.unfollow()
	}
	b.sweepQueued = false
	ctx, stop := context.WithCancel(s.ctx)
	f := &sweepFollow{sweep: id, on: true, ctx: ctx, stop: stop, feed: back.Subscribe(ctx)}
	sw := &sweepState{id: s.nextID(), cancel: stop, follow: f}
	b.sweep = sw
	s.show(ScreenBlocks)
	s.flash(fmt.Sprintf("following sweep %s, which trains elsewhere: the panel fills as its tasks end; w stops following", engine.Short(id)))
	return tea.Batch(b.readFollowed(), waitFeed(sw.id, f.feed))
}

// unfollow stops following the sweep shown, if it is followed: the feed
// is left and the panel keeps the table as last read.
func (b *blocksScreen) unfollow() {
	sw := b.sweep
	if sw == nil || sw.follow == nil || !sw.follow.on {
		return
	}
	sw.follow.on = false
	sw.follow.stop()
	sw.done = true
}

// waitFeed waits for the change feed ch of followed sweep id to fire or
// to be closed; it wakes for nothing else.
func waitFeed(id int, ch <-chan struct{}) tea.Cmd {
	return func() tea.Msg {
		_, ok := <-ch
		return sweepFeedMsg{id: id, closed: !ok}
	}
}

// readFollowed reads the followed sweep's table and its runs' status, no
// sooner than sweepReadGap after the last read started.
func (b *blocksScreen) readFollowed() tea.Cmd {
	sw := b.sweep
	f := sw.follow
	wait := max(sweepReadGap-time.Since(f.readAt), 0)
	f.reading, f.dirty, f.readAt = true, false, time.Now().Add(wait)
	ctx, back, id, sweep := f.ctx, b.s.runs(), sw.id, f.sweep
	return func() tea.Msg {
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		msg := sweepReadMsg{id: id}
		msg.tb, msg.err = back.SweepTable(ctx, sweep)
		if msg.err != nil {
			return msg
		}
		views, err := back.List(ctx, engine.RunFilter{Tag: engine.SweepTag(msg.tb.Sweep.ID)})
		if err != nil {
			msg.err = fmt.Errorf("its runs: %w", err)
			return msg
		}
		msg.status = make(map[string]trainer.Status, len(views))
		for _, v := range views {
			msg.status[v.Run.ID] = v.Status
		}
		return msg
	}
}

// handleFollow handles the messages of a followed sweep.
func (b *blocksScreen) handleFollow(msg tea.Msg) tea.Cmd {
	s := b.s
	switch msg := msg.(type) {
	case followSweepMsg:
		return b.followSweep(msg.sweep)
	case sweepFeedMsg:
		sw := b.following(msg.id)
		if sw == nil || msg.closed {
			return nil
		}
		f := sw.follow
		if f.reading {
			f.dirty = true
			return waitFeed(sw.id, f.feed)
		}
		return tea.Batch(b.readFollowed(), waitFeed(sw.id, f.feed))
	case sweepReadMsg:
		sw := b.following(msg.id)
		if sw == nil {
			return nil
		}
		f := sw.follow
		f.reading = false
		short := engine.Short(f.sweep)
		if msg.err != nil {
			sw.err = msg.err
			if errors.Is(msg.err, engine.ErrNotFound) {
				b.unfollow()
				s.flashErr(fmt.Errorf("sweep %s is not in the store (deleted, or not yours to see): not followed", short))
				return nil
			}
			// Still followed: the next change reads it again.
			s.flashErr(fmt.Errorf("sweep %s: %w", short, msg.err))
			if f.dirty {
				return b.readFollowed()
			}
			return nil
		}
		sw.err = nil
		sw.tb, f.status = msg.tb, msg.status
		var cmds []tea.Cmd
		if !f.asked {
			f.asked = true
			cmds = append(cmds, b.loadSweepModel())
		}
		if tb := sw.tb; tb.Total > 0 && tb.Done == tb.Total {
			b.unfollow()
			s.flash(fmt.Sprintf("sweep %s done: ★ %s; t takes it, e writes the figure", short, termtext.Sanitize(sw.pick())))
		} else if f.dirty {
			cmds = append(cmds, b.readFollowed())
		}
		return tea.Batch(cmds...)
	case sweepModelMsg:
		sw := b.sweep
		if sw == nil || sw.follow == nil || sw.id != msg.id {
			return nil
		}
		f := sw.follow
		if msg.err != nil {
			f.modelErr = msg.err
			s.flashErr(fmt.Errorf("sweep %s: its model could not be loaded here (%w): the panel follows it without the block table",
				engine.Short(f.sweep), msg.err))
			return nil
		}
		cmd := s.openSweepJob(msg.model, sw.tb.Spec)
		f.loaded, f.dataID = true, s.plan.dataID
		b.cursor = 0
		return cmd
	}
	return nil
}

// loadSweepModel loads the followed sweep's model, or takes it from the
// models listed when it is one of them.
func (b *blocksScreen) loadSweepModel() tea.Cmd {
	sw := b.sweep
	name, id := sw.tb.Spec.Job.Model, sw.id
	for _, e := range b.s.models {
		if e.name == name && e.model != nil {
			return func() tea.Msg { return sweepModelMsg{id: id, model: e} }
		}
	}
	back := b.s.backend
	return func() tea.Msg {
		base, err := back.Model(name)
		if err != nil {
			return sweepModelMsg{id: id, err: fmt.Errorf("model %s: %w", name, err)}
		}
		return sweepModelMsg{id: id, model: modelEntryOf(base)}
	}
}

// taskCounts counts a sweep's tasks by where they are: done (with a
// result), training (their run trains or is paused), queued (no run yet,
// or one waiting for a node), stopped (or interrupted: resumable) and
// failed.
type taskCounts struct{ done, running, queued, stopped, failed int }

func countTasks(tb engine.SweepTable, status map[string]trainer.Status) taskCounts {
	c := taskCounts{done: tb.Done}
	for _, g := range tb.Groups {
		for _, runs := range g.Runs {
			for _, run := range runs {
				if run == "" {
					c.queued++
					continue
				}
				switch status[run] {
				case trainer.StatusQueued:
					c.queued++
				case trainer.StatusRunning, trainer.StatusPaused:
					c.running++
				case trainer.StatusStopped, trainer.StatusInterrupted:
					c.stopped++
				case trainer.StatusFailed:
					c.failed++
				}
			}
		}
	}
	return c
}

// followHead is the head of a followed sweep's panel: its id and name,
// then where its tasks are (following · 5 of 12 done · 2 running · 5
// queued), and how to follow it again once w let it go.
func (sw *sweepState) followHead(st Styles, w int) []string {
	f, tb := sw.follow, sw.tb
	lines := []string{ansi.Truncate(st.Heading.Render("Freeze-depth sweep "+engine.Short(f.sweep))+
		st.Faint.Render("  "+termtext.Sanitize(tb.Sweep.Name)), w, "…")}
	var status string
	switch c := countTasks(tb, f.status); {
	case tb.Total == 0 && sw.err != nil:
		status = "not read"
	case tb.Total == 0:
		status = "opening…"
	default:
		parts := []string{fmt.Sprintf("%d of %d done", c.done, tb.Total)}
		for _, n := range []struct {
			n    int
			what string
		}{{c.running, "running"}, {c.queued, "queued"}, {c.stopped, "stopped"}, {c.failed, "failed"}} {
			if n.n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n.n, n.what))
			}
		}
		if tb.CPU > 0 {
			parts = append(parts, fmt.Sprintf("%.1f CPU-s", tb.CPU.Seconds()))
		}
		switch {
		case c.done == tb.Total:
			parts[0] = fmt.Sprintf("done · %d of %d runs", c.done, tb.Total)
		case !f.on:
			parts = append([]string{"not followed"}, parts...)
		case sw.err != nil:
			parts = append([]string{"following (the last read failed)"}, parts...)
		default:
			parts = append([]string{"following"}, parts...)
		}
		status = strings.Join(parts, " · ")
	}
	lines = append(lines, ansi.Truncate(status, w, "…"))
	if !f.on && tb.Done < tb.Total {
		lines = append(lines, st.Faint.Render(ansi.Truncate("its tasks train elsewhere: W on one of its runs (5) follows it again", w, "…")))
	}
	return lines
}

// aloneView draws a followed sweep's panel without the block table, while
// its model loads or when it cannot be loaded here.
func (b *blocksScreen) aloneView(w, h int) string {
	st, sw := b.s.Styles, b.sweep
	b.hits = listHits{}
	model := termtext.Sanitize(sw.tb.Spec.Job.Model)
	var head string
	switch f := sw.follow; {
	case f.modelErr != nil:
		head = st.Error.Render(ansi.Truncate(termtext.Sanitize(fmt.Sprintf("The sweep's model %s could not be loaded here: %v. No block table; the panel follows the sweep.", model, f.modelErr)), w, "…"))
	case model != "":
		head = st.Faint.Render(ansi.Truncate("loading the sweep's model "+model+"…", w, "…"))
	}
	// The probes, if any, are the other model's: the sweep alone.
	return fitBlock(head+"\n\n"+b.sweepView(w), w, h)
}
