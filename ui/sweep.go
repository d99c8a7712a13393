package ui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/trainer/termtext"
	"thaw/ui/export"
)

// The freeze-depth sweep on the Blocks screen is the sweep thaw sweep
// runs (see engine.Engine.RunSweep): the Plan's job, its first stage at
// every freeze point, over engine.DefaultSweepSeeds seeds, recorded as a
// sweep through the backend. The panel draws the engine's table as it
// fills: a row per freeze point in the block table's order, mean ± sd of
// the lowest validation loss and of the accuracy there, ★ on the pick and
// its note. w runs it (or cancels it: its runs stay stored and w resumes
// them), t takes the pick, e writes its figure. The panel also shows a
// sweep that trains elsewhere, followed as it fills (see sweepfollow.go);
// w then stops following rather than train its tasks here.

type (
	// sweepTableMsg: sweep id's table, as it stood when a run started or
	// ended.
	sweepTableMsg struct {
		id int
		tb engine.SweepTable
	}
	// sweepDoneMsg: sweep id ended, with its last table; err says why
	// when it did not finish.
	sweepDoneMsg struct {
		id  int
		tb  engine.SweepTable
		err error
	}
)

// sweepState is a sweep running or ended.
type sweepState struct {
	id     int
	cancel context.CancelFunc
	ch     <-chan tea.Msg
	// key is the spec swept, as JSON: w on the same spec goes on with
	// the same stored sweep.
	key string
	// tb is the latest table; it has a sweep (tb.Sweep.ID) once recorded.
	tb   engine.SweepTable
	done bool
	err  error
	// follow is set for a sweep that trains elsewhere, which the panel
	// follows (see sweepfollow.go); nil for one run here.
	follow *sweepFollow
}

// group is the sweep's one group (the workbench crosses no presets or
// shots), or nil before the first table.
func (sw *sweepState) group() *engine.SweepGroup {
	if sw == nil || len(sw.tb.Groups) == 0 {
		return nil
	}
	return &sw.tb.Groups[0]
}

// pick is the picked row's freeze point, "" while no row has a result.
func (sw *sweepState) pick() string {
	g := sw.group()
	if g == nil || g.Pick.Index < 0 {
		return ""
	}
	return g.Rows[g.Pick.Index].Point
}

// sweepSpec is the sweep of the Plan's job: model, data, shots, split,
// batch and the plan as edited, at every freeze point, over the default
// seeds.
func (s *Session) sweepSpec() engine.SweepSpec {
	d := s.plan
	spec := engine.SweepSpec{Job: d.job(s), Seeds: engine.SweepSeeds(engine.DefaultSweepSeeds)}
	if !d.byHand {
		spec.PlanRef = d.preset
	}
	return spec
}

// toggleSweep starts the sweep, or cancels the one running. The same
// spec again goes on with the stored sweep: its done runs are kept, its
// stopped ones resume.
func (b *blocksScreen) toggleSweep() tea.Cmd {
	s := b.s
	if sw := b.sweep; sw != nil && sw.follow != nil && !sw.done {
		// Its tasks are queued for other processes: training them here
		// would race them. w lets the sweep go instead.
		b.unfollow()
		// Short enough for an 80-column status line: the panel itself
		// says how to follow it again.
		s.flash(fmt.Sprintf("stopped following sweep %s; its tasks go on where they run", engine.Short(sw.follow.sweep)))
		return nil
	}
	if sw := b.sweep; sw != nil && !sw.done {
		sw.cancel()
		s.flash("cancelling the sweep; its runs stay stored and w resumes them…")
		return nil
	}
	d := s.plan
	switch {
	case !s.hasStore():
		s.flashErr(errors.New("no run store: the sweep stores its runs; start thaw with a store"))
		return nil
	case d.dataErr != nil:
		s.flashErr(fmt.Errorf("%w — fix the data on the Plan screen (3) first", d.dataErr))
		return nil
	}
	if _, err := d.resolved(s); err != nil {
		s.flashErr(fmt.Errorf("plan: %w — fix it on the Plan screen (3)", err))
		return nil
	}
	spec := s.sweepSpec()
	raw, _ := json.Marshal(spec)
	resume := b.sweeps[string(raw)]
	ctx, cancel := context.WithCancel(s.ctx)
	ch := make(chan tea.Msg, 1)
	sw := &sweepState{id: s.nextID(), cancel: cancel, ch: ch, key: string(raw)}
	if old := b.sweep; resume != "" && old != nil && old.key == sw.key {
		sw.tb = old.tb
	}
	b.sweep = sw
	s.sweeping = true
	back := s.backend
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		runSweep(ctx, s.ctx.Done(), back, spec, resume, sw.id, ch)
	}()
	n := len(s.base.blocks) * len(spec.Seeds)
	if resume != "" {
		s.flash(fmt.Sprintf("going on with sweep %s; w cancels", engine.Short(resume)))
	} else {
		s.flash(fmt.Sprintf("sweeping %d freeze points × %d seeds (%d runs) in the background; w cancels",
			len(s.base.blocks), len(spec.Seeds), n))
	}
	return waitMsg(ch)
}

// runSweep records the sweep of spec (or goes on with the stored sweep
// resume) and runs it through the backend, sending the latest table
// whenever a run starts or ends, then the end; it closes out when done.
// Only the latest table waits to be read: the sweep's workers never wait
// for the workbench. Cancelling ctx stops the sweep; gone is closed when
// the workbench has quit and reads no more.
func runSweep(ctx context.Context, gone <-chan struct{}, b Backend, spec engine.SweepSpec, resume string, id int, out chan tea.Msg) {
	defer close(out)
	id0 := resume
	if id0 == "" {
		sw, err := b.NewSweep(ctx, spec)
		if err != nil {
			select {
			case out <- sweepDoneMsg{id: id, err: err}:
			case <-gone:
			}
			return
		}
		id0 = sw.ID
	}
	latest := func(tb engine.SweepTable) {
		m := sweepTableMsg{id: id, tb: tb}
		for {
			select {
			case out <- m:
				return
			case <-gone:
				return
			default:
			}
			// A table not yet read is older than this one: drop it.
			select {
			case <-out:
			default:
			}
		}
	}
	tb, err := b.RunSweep(ctx, id0, engine.SweepOptions{Progress: latest})
	select {
	case out <- sweepDoneMsg{id: id, tb: tb, err: err}:
	case <-gone:
	}
}

// waitMsg waits for the next message on ch; nil when it is closed.
func waitMsg(ch <-chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		m, ok := <-ch
		if !ok {
			return nil
		}
		return m
	}
}

func (b *blocksScreen) handleSweep(msg tea.Msg) tea.Cmd {
	sw := b.sweep
	switch msg := msg.(type) {
	case sweepTableMsg:
		if sw == nil || msg.id != sw.id {
			return nil
		}
		sw.tb = msg.tb
		if b.sweeps == nil {
			b.sweeps = map[string]string{}
		}
		b.sweeps[sw.key] = msg.tb.Sweep.ID
		return waitMsg(sw.ch)
	case sweepDoneMsg:
		if sw == nil || msg.id != sw.id {
			return nil
		}
		sw.done, sw.err = true, msg.err
		if msg.tb.Total > 0 {
			sw.tb = msg.tb
		}
		sw.cancel()
		b.s.sweeping = false
		tb := sw.tb
		switch {
		case errors.Is(msg.err, context.Canceled):
			b.s.flash(fmt.Sprintf("sweep %s cancelled with %d of %d runs done; they stay stored, and w goes on with it",
				engine.Short(tb.Sweep.ID), tb.Done, tb.Total))
		case msg.err != nil:
			b.s.flashErr(fmt.Errorf("sweep: %w", msg.err))
		default:
			b.s.flash(fmt.Sprintf("sweep %s done: ★ %s; t takes it, e writes the figure", engine.Short(tb.Sweep.ID), sw.pick()))
		}
	case exportedMsg:
		if msg.from != ScreenBlocks {
			return nil
		}
		if msg.err != nil {
			b.s.flashErr(msg.err)
		} else {
			b.s.flash("sweep figure written to " + msg.path)
		}
	}
	return nil
}

// dropSweep cancels and forgets the sweep shown, made stale by new data:
// its runs stay stored, and w on its job again goes on with it. A
// followed sweep is no longer followed.
func (b *blocksScreen) dropSweep() {
	sw := b.sweep
	if sw == nil {
		return
	}
	if sw.follow != nil {
		if !sw.done {
			b.unfollow()
			b.s.flash(fmt.Sprintf("the data changed: sweep %s is no longer followed; W on one of its runs (5) follows it again", engine.Short(sw.follow.sweep)))
		}
		b.sweep = nil
		return
	}
	if !sw.done {
		sw.cancel()
		b.s.sweeping = false
		if id := sw.tb.Sweep.ID; id != "" {
			b.s.flash(fmt.Sprintf("the data changed: sweep %s cancelled with its runs kept; w on the same job goes on with it", engine.Short(id)))
		}
	}
	b.sweep = nil
}

// takeDepth makes the sweep's pick the freeze choice: its freeze point
// and every block above it train in the first stage.
func (b *blocksScreen) takeDepth() {
	s := b.s
	p := b.sweep.pick()
	if p == "" {
		s.flashErr(b.noResult())
		return
	}
	if f := b.sweep.follow; f != nil && !f.loaded {
		err := errors.New("the sweep's model is still loading")
		if f.modelErr != nil {
			err = fmt.Errorf("the sweep's model could not be loaded here (%w), so its pick cannot be the freeze choice", f.modelErr)
		}
		s.flashErr(err)
		return
	}
	k := slices.IndexFunc(s.base.blocks, func(e blockInfo) bool { return e.name == p })
	if k < 0 {
		s.flashErr(fmt.Errorf("the sweep's pick %s is no block of %s", p, s.base.name))
		return
	}
	for i := range s.frozen {
		s.frozen[i] = i < k
	}
	b.cursor = k
	s.plan.freezeChanged(s)
	so := ""
	if tb := b.sweep.tb; tb.Done < tb.Total {
		so = " so far"
	}
	s.flash(fmt.Sprintf("freeze point taken from the sweep's pick%s: %s and above train", so, p))
}

// exportSweep writes the sweep's figure, as thaw export --sweep draws it
// (with the probes of its blocks, measured once on its data and seeds and
// stored with it), to a PNG where the workbench's figures go.
func (b *blocksScreen) exportSweep() tea.Cmd {
	s, sw := b.s, b.sweep
	g := sw.group()
	if g == nil || g.Pick.Index < 0 {
		s.flashErr(b.noResult())
		return nil
	}
	id, run := sw.tb.Sweep.ID, ""
	// The figure goes with one of the sweep's runs where figures go with
	// a run (a user's own folder over SSH): the pick's.
	for _, r := range g.Runs[g.Pick.Index] {
		if r != "" {
			run = r
			break
		}
	}
	ctx, back := s.ctx, s.backend
	s.flash("drawing the sweep figure (its probes are measured the first time)…")
	return func() tea.Msg {
		fail := func(err error) tea.Msg { return exportedMsg{from: ScreenBlocks, err: fmt.Errorf("export: %w", err)} }
		tb, err := back.SweepTable(ctx, id)
		if err != nil {
			return fail(err)
		}
		probes, err := back.SweepProbes(ctx, id)
		if err != nil {
			return fail(err)
		}
		dir, shown, err := s.exportDir(ctx, run)
		if err != nil {
			return fail(err)
		}
		name := "thaw-sweep-" + engine.Short(id) + ".png"
		opts := export.DefaultOptions()
		opts.Title = "sweep " + engine.Short(id) + ": " + tb.Sweep.Name
		if _, err := export.WriteSweep(filepath.Join(dir, name), export.SweepFigure(tb, 0, probes), opts); err != nil {
			return fail(err)
		}
		return exportedMsg{from: ScreenBlocks, path: filepath.Join(shown, name)}
	}
}

// noResult says why the sweep shown has no pick yet.
func (b *blocksScreen) noResult() error {
	if sw := b.sweep; sw != nil && sw.follow != nil {
		return fmt.Errorf("no task of sweep %s has a result yet: they train elsewhere, and the panel fills as they end", engine.Short(sw.follow.sweep))
	}
	return errors.New("no sweep result yet: press w to run the freeze-depth sweep")
}

// evidenceView draws the evidence shown beside (or below) the blocks in h
// lines: the sweep, and the probes' panel when there are probes; "" when
// there is neither. Where the probes' panel does not fit under the sweep,
// its one-line summary takes its place (the blocks table's probe column
// has every block's figure), so no heading is left without its rows.
func (b *blocksScreen) evidenceView(w, h int) string {
	sv, pv := b.sweepView(w), b.probeView(w)
	switch {
	case sv == "":
		return pv
	case pv == "":
		return sv
	}
	used := strings.Count(sv, "\n") + 1
	if used+1+strings.Count(pv, "\n")+1 <= h {
		return sv + "\n\n" + pv
	}
	sum := b.probeSummary(w)
	if used+2 <= h {
		return sv + "\n\n" + sum
	}
	return sv + "\n" + sum
}

// sweepView draws the sweep's table as it stands: per freeze point, in the
// block table's order, the lowest validation loss and the accuracy there
// (mean ± sd over the seeds done), the seeds done and an error bar of the
// loss; ★ on the pick, its note, and the progress.
func (b *blocksScreen) sweepView(w int) string {
	sw := b.sweep
	if sw == nil {
		return ""
	}
	st := b.s.Styles
	tb := sw.tb
	status := "recording…"
	if tb.Total > 0 {
		status = fmt.Sprintf("%d of %d runs, %.1f CPU-s", tb.Done, tb.Total, tb.CPU.Seconds())
	}
	switch {
	case sw.done && sw.err == nil:
		status = "done · " + status
	case sw.done && errors.Is(sw.err, context.Canceled):
		status = "cancelled · " + status
	case sw.done:
		status = "failed · " + status
	case tb.Running > 0:
		status = fmt.Sprintf("%d training · %s", tb.Running, status)
	}
	seeds := len(tb.Spec.Seeds)
	head := st.Heading.Render("Freeze-depth sweep") + st.Faint.Render("  "+status)
	lines := []string{ansi.Truncate(head, w, "…")}
	if sw.follow != nil {
		lines = sw.followHead(st, w)
	}
	g := sw.group()
	if g == nil {
		return strings.Join(lines, "\n")
	}
	// Columns: mark, point, trainable, val loss, acc there, seeds, bar.
	const fixed = 2 + 8 + 8 + 2 + 15 + 2 + 11 + 2 + 3 + 1
	barW := min(max(w-fixed, 0), 24)
	hdr := fmt.Sprintf("  %-8s%8s  %-15s  %-11s  %3s", "point", "params", "lowest val loss", "val acc", "run")
	if barW >= 6 {
		hdr += " " + ansi.Truncate("loss ± sd", barW, "")
	}
	lines = append(lines, st.Faint.Render(ansi.Truncate(hdr, w, "")))
	stats := make([]trainer.SweepStats, len(g.Rows))
	lo, hi := math.Inf(1), math.Inf(-1)
	for i, r := range g.Rows {
		stats[i] = r.Stats()
		m, sd := stats[i].LossMean, stats[i].LossSD
		if math.IsNaN(sd) {
			sd = 0
		}
		if !math.IsNaN(m) {
			lo, hi = min(lo, m-sd), max(hi, m+sd)
		}
	}
	for i, r := range g.Rows {
		x := stats[i]
		mark := "  "
		if i == g.Pick.Index {
			mark = st.Marker.Render("★ ")
		}
		row := fmt.Sprintf("%-8s%8s  %-15s  %-11s  %d/%d", ansi.Truncate(termtext.Sanitize(r.Point), 8, "…"), humanCount(r.Trainable),
			sweepMeanSD(x.LossMean, x.LossSD, false), sweepMeanSD(x.AccMean, x.AccSD, true), x.Seeds, seeds)
		if barW >= 6 {
			row += " " + st.Bar.Render(errorBar(x.LossMean, x.LossSD, lo, hi, barW))
		}
		lines = append(lines, ansi.Truncate(mark+row, w, "…"))
	}
	if g.Pick.Index >= 0 {
		note := termtext.Sanitize(g.Pick.Note)
		style := st.Faint
		if !g.Pick.Clear {
			style = st.Marker
		}
		for _, l := range strings.Split(ansi.Wrap("★ "+note, max(w, 10), ""), "\n") {
			lines = append(lines, style.Render(ansi.Truncate(l, w, "…")))
		}
	}
	if sw.follow == nil && sw.done && errors.Is(sw.err, context.Canceled) {
		lines = append(lines, st.Faint.Render(ansi.Truncate("cancelled: its runs are kept; w goes on with it", w, "…")))
	}
	if t := g.Test; t != nil {
		test := fmt.Sprintf("test acc of %s: %s (measured once, after the choice)", termtext.Sanitize(t.Point), sweepMeanSD(t.Mean, t.SD, true))
		for _, l := range strings.Split(ansi.Wrap(test, max(w, 10), ""), "\n") {
			lines = append(lines, ansi.Truncate(l, w, "…"))
		}
	}
	return strings.Join(lines, "\n")
}

// sweepMeanSD writes mean ± sd as thaw sweep's table does, more tightly:
// a percentage when pct is set; "·" without a mean, the mean alone
// without an sd.
func sweepMeanSD(mean, sd float64, pct bool) string {
	switch {
	case math.IsNaN(mean):
		return "·"
	case pct && math.IsNaN(sd):
		return fmt.Sprintf("%.1f%%", 100*mean)
	case pct:
		return fmt.Sprintf("%.1f%%±%.1f", 100*mean, 100*sd)
	case math.IsNaN(sd):
		return fmt.Sprintf("%.4f", mean)
	}
	return fmt.Sprintf("%.4f±%.4f", mean, sd)
}

// errorBar draws mean ± sd on a scale from lo to hi in w cells: ├─●─┤,
// the dot alone without an sd, blank without a mean.
func errorBar(mean, sd, lo, hi float64, w int) string {
	cells := []rune(strings.Repeat(" ", w))
	if math.IsNaN(mean) || !(hi >= lo) {
		return string(cells)
	}
	at := func(x float64) int {
		if hi == lo {
			return w / 2
		}
		return min(max(int(math.Round((x-lo)/(hi-lo)*float64(w-1))), 0), w-1)
	}
	c := at(mean)
	if !math.IsNaN(sd) && sd > 0 {
		a, z := at(mean-sd), at(mean+sd)
		for i := a; i <= z; i++ {
			cells[i] = '─'
		}
		cells[a], cells[z] = '├', '┤'
	}
	cells[c] = '●'
	return string(cells)
}
