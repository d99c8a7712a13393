package ui

import (
	"context"
	"image"
	_ "image/png"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/teatest/v2"

	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
)

// newTestEngine is a real engine over a store in a temporary folder.
func newTestEngine(t *testing.T) (*engine.Engine, *store.Store) {
	t.Helper()
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return engine.New(st, nil), st
}

// longPlan is gradual over mnist8-mlp's blocks with stages far longer
// than any test waits: n ends them.
const longPlan = `{"name": "long gradual", "lr": 0.001, "stages": [
  {"train": ["head"], "steps": 20000000},
  {"train": ["top:2"], "steps": 20000000},
  {"train": ["all"], "steps": 20000000}
]}`

// storedSteps is the last step of run id's training loss in the store.
func storedSteps(t *testing.T, st *store.Store, id string) int64 {
	t.Helper()
	bs, err := st.Series(context.Background(), id, trainer.MetricTrainLoss, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) == 0 {
		return 0
	}
	return bs[len(bs)-1].To
}

// eventually polls cond until it holds, failing after 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func onlyRun(t *testing.T, st *store.Store) []store.Run {
	t.Helper()
	runs, err := st.ListRuns(context.Background(), engine.RunFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// TestFlowTrainBranchRuns is the Train and Runs screens end to end on a
// real engine: gradual on mnist8-mlp → uci-digits at 10 shots, started from
// the keyboard; an evaluation and a labelled stage boundary; p pauses (the
// stored steps stop), p resumes, n starts the next stage; e writes a PNG
// with curve pixels; x stops; b branches from the end of stage 2 with the
// full preset, a new run whose parent is the first; Runs overlays both.
func TestFlowTrainBranchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two runs")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("long.json", []byte(longPlan), 0o644); err != nil {
		t.Fatal(err)
	}
	eng, st := newTestEngine(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := New(ctx, Options{Backend: eng})
	const w, h = 160, 48
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(w, h))
	scr := newScreenReader(tm.Output(), w, h)
	keys := func(ks ...string) {
		for _, k := range ks {
			tm.Send(press(k))
		}
	}

	// Models → Blocks → Plan, with the long plan loaded and 10 shots.
	scr.waitFor(t, "mnist8-mlp")
	keys("down", "down", "enter")
	scr.waitFor(t, "Blocks of mnist8-mlp")
	keys("enter")
	scr.waitFor(t, "uci-digits", "preset")
	keys("L", "ctrl+u")
	tm.Type("long.json")
	keys("enter")
	scr.waitFor(t, "loaded the plan")
	keys("down", "e", "ctrl+u")
	tm.Type("10")
	keys("enter")
	scr.waitFor(t, "10 per class", "100 train")
	keys("enter")

	// Train: an evaluation, the first stage's label.
	scr.waitFor(t, "stage 1/3", "best val loss", "head", "samples/s")
	var id string
	eventually(t, "the run is stored", func() bool {
		runs := onlyRun(t, st)
		if len(runs) == 1 {
			id = runs[0].ID
		}
		return id != ""
	})

	// p pauses: the status is stored and the steps stop moving.
	keys("p")
	scr.waitFor(t, "paused")
	eventually(t, "the run is paused in the store", func() bool {
		r, err := st.Run(ctx, id)
		return err == nil && r.Status == trainer.StatusPaused
	})
	// The trainer holds before its next batch; what it had queued is
	// stored by now or soon, then nothing more.
	s1 := storedSteps(t, st, id)
	eventually(t, "the stored steps settle", func() bool {
		time.Sleep(100 * time.Millisecond)
		s2 := storedSteps(t, st, id)
		settled := s2 == s1
		s1 = s2
		return settled
	})
	time.Sleep(300 * time.Millisecond)
	if s3 := storedSteps(t, st, id); s3 != s1 {
		t.Fatalf("paused, the stored steps moved from %d to %d", s1, s3)
	}
	keys("p")
	eventually(t, "training goes on after p", func() bool { return storedSteps(t, st, id) > s1 })

	// n: the next stage now.
	keys("n")
	scr.waitFor(t, "stage 2/3", "+fc2")

	// e: the curves as a PNG with curve pixels.
	keys("e")
	scr.waitFor(t, "curves written to")
	png := filepath.Join(dir, "thaw-"+engine.Short(id)+".png")
	checkCurvePNG(t, png)

	// Through stage 2, then stop.
	keys("n")
	scr.waitFor(t, "stage 3/3", "+fc1")
	keys("x")
	scr.waitFor(t, "Stop the run?")
	keys("y")
	eventually(t, "the run is stopped", func() bool {
		r, err := st.Run(ctx, id)
		return err == nil && r.Status == trainer.StatusStopped
	})

	// c: the confusion matrix of the best weights, on the validation set
	// (10 classes, 359 samples).
	keys("c")
	scr.waitFor(t, "Confusion matrix", "predicted", "of 359)")
	keys("c")

	// b: branch from the end of stage 2 with the full preset.
	keys("b")
	scr.waitFor(t, "Branch from a stage boundary", "end of stage 2: +fc2")
	keys("up", "up", "up", "down", "right")
	scr.waitFor(t, "full")
	keys("enter")
	var branch store.Run
	eventually(t, "the branch is stored and done", func() bool {
		for _, r := range onlyRun(t, st) {
			if r.ID != id {
				branch = r
			}
		}
		return branch.ID != "" && branch.Status == trainer.StatusDone
	})
	if branch.ParentRun != id {
		t.Fatalf("branch's parent %q, want %q", branch.ParentRun, id)
	}
	cks, err := st.Checkpoints(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cks {
		if c.ID == branch.ParentCheckpoint && (c.Kind != store.KindStageEnd || c.Stage != 1) {
			t.Fatalf("branched from %+v, want the end of stage 2", c)
		}
	}

	// Runs: both, the branch under its parent's name; overlay both.
	keys("5")
	scr.waitFor(t, "Runs", "⑂", "stopped", "done")
	keys("space", "space", "o")
	scr.waitFor(t, "overlay", "aligned by step", "smoothed train loss", "forgetting")
	keys("a")
	final := scr.waitFor(t, "aligned by stage start", "stage 1", "stage 2")
	for _, want := range []string{"head", "+fc2"} {
		if !strings.Contains(final, want) {
			t.Errorf("overlay lacks %q:\n%s", want, final)
		}
	}
	// d deletes the branch (newest, at the top) after confirmation: the
	// marks taken off first, since d deletes the marked runs.
	keys("esc", "up", "up", "space", "space", "up", "up", "d")
	scr.waitFor(t, "Delete run \"", "("+engine.Short(branch.ID)+")")
	keys("y")
	scr.waitFor(t, "1 stored")
	if runs := onlyRun(t, st); len(runs) != 1 || runs[0].ID != id {
		t.Fatalf("after deleting the branch the store holds %d runs", len(runs))
	}
	// enter opens the stored run: its curves and per-stage table.
	keys("enter")
	scr.waitFor(t, "best acc", "val loss", "forgetting", "stage 3: +fc1")
	keys("esc")

	// r resumes the stopped run from its last good checkpoint; it trains
	// again until q stops it.
	keys("r")
	scr.waitFor(t, "running · stage")
	eventually(t, "the resumed run trains", func() bool {
		r, err := st.Run(ctx, id)
		return err == nil && r.Status == trainer.StatusRunning
	})
	// enter on the session's own live run opens its dashboard on Train,
	// not a stored view: there q asks to stop the run (in a stored view
	// it would close the view).
	keys("5")
	scr.waitFor(t, "Runs", "running")
	keys("enter")
	scr.waitFor(t, "running · stage 3/3", "p pause/resume")
	keys("q")
	scr.waitFor(t, "Quit and stop it?")
	keys("y")
	tm.WaitFinished(t, teatest.WithFinalTimeout(20*time.Second))
	m.Wait()
	if r, err := st.Run(ctx, id); err != nil || r.Status != trainer.StatusStopped {
		t.Errorf("after quitting, the resumed run is %v (%v), want stopped", r.Status, err)
	}
	// thaw says which run the quit stopped ("stopping run …, thaw resume
	// continues it") even once it has ended: a run may stop before the
	// program returns, and was stopped all the same.
	if got := m.Stopping(); got != id {
		t.Errorf("Stopping() = %q once the run the quit stopped has ended, want %s", got, id)
	}
	cancel()
	checkNoLeak(t)
}

// checkCurvePNG decodes the PNG at path and checks it has coloured (curve)
// pixels, not only the axes' greys.
func checkCurvePNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	coloured := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			hi, lo := max(r, g, bl), min(r, g, bl)
			if hi-lo > 0x3000 { // saturated: not a grey of the axes or text
				coloured++
			}
		}
	}
	// A curve across a 1600 px figure is well over a thousand pixels.
	if coloured < 1000 {
		t.Fatalf("%s has %d coloured pixels: no curves", path, coloured)
	}
}

// checkNoLeak waits until no goroutine of the workbench, its runs or
// its program is left: every goroutine whose stack holds a frame of
// thaw's own code (tests aside) or of Bubble Tea. The test harness's own
// (teatest's, the store the test opened) are not counted.
func checkNoLeak(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		leaks := leakedGoroutines()
		if len(leaks) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines outlived the workbench:\n%s", len(leaks), strings.Join(leaks, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func leakedGoroutines() []string {
	buf := make([]byte, 4<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "thaw/ui.leakedGoroutines") {
			continue
		}
		ours := false
		lines := strings.Split(g, "\n")
		for i := 1; i+1 < len(lines); i += 2 {
			fn, file := lines[i], strings.TrimSpace(lines[i+1])
			own := strings.HasPrefix(fn, "thaw/") && !strings.Contains(file, "_test.go")
			tea := strings.HasPrefix(fn, "charm.land/bubbletea/")
			if own || tea {
				ours = true
			}
		}
		if ours {
			out = append(out, g)
		}
	}
	return out
}

// TestStalledViewerNeverBlocksTheTrainer: a run whose progress feed is
// never read finishes, and the store holds every step's loss and every
// evaluation.
func TestStalledViewerNeverBlocksTheTrainer(t *testing.T) {
	eng, st := newTestEngine(t)
	ctx := context.Background()
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 10, Seed: 1}
	if err := job.SetPlan("gradual", 0, 40, 0); err != nil {
		t.Fatal(err)
	}
	// The preset as it expanded before its cadence and patience: an
	// evaluation every epoch and no early stop, so the run lasts its
	// whole length.
	job.Preset.Legacy = true
	l, err := eng.Start(ctx, job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Wait() // Progress() is never read
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != trainer.StatusDone {
		t.Fatalf("status %s, want done", res.Status)
	}
	bs, err := st.Series(ctx, l.ID, trainer.MetricTrainLoss, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(bs) != res.Steps || bs[0].From != 1 || int(bs[len(bs)-1].To) != res.Steps {
		t.Fatalf("stored %d training losses, the run made %d steps", len(bs), res.Steps)
	}
	evals, err := st.Series(ctx, l.ID, trainer.MetricValLoss, 0)
	if err != nil {
		t.Fatal(err)
	}
	best := math.Inf(1)
	for _, b := range evals {
		best = math.Min(best, b.Mean)
	}
	if len(evals) < 40 || best != res.BestValLoss {
		t.Fatalf("stored %d evaluations with best %v; the run's best %v", len(evals), best, res.BestValLoss)
	}
	// More reports than the feed holds: the oldest were dropped for the
	// viewer, which is what let the trainer go on.
	if l.Dropped() == 0 {
		t.Fatalf("no report was dropped in %d steps: the test did not fill the feed", res.Steps)
	}
}

// BenchmarkAttachedThroughput trains the same job headless and with the
// Train dashboard attached, folding in every report and redrawing at
// 160×48 as the workbench does, and reports both training throughputs and
// their ratio (the trainer's own samples/s, over its training steps).
func BenchmarkAttachedThroughput(b *testing.B) {
	st, err := store.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	eng := engine.New(st, nil)
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Seed: 1}
	if err := job.SetPlan("gradual", 0, 3, 0); err != nil {
		b.Fatal(err)
	}
	run := func(attached bool) float64 {
		l, err := eng.Start(context.Background(), job, engine.StartOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if attached {
			d := newDashboard(palette{dark: true})
			for p := range l.Progress() {
				d.progress(p)
				_ = d.view(160, 45)
			}
		}
		res, err := l.Wait()
		if err != nil {
			b.Fatal(err)
		}
		return res.SamplesPerSec
	}
	var head, att float64
	for b.Loop() {
		head += run(false)
		att += run(true)
	}
	b.ReportMetric(head/float64(b.N), "headless-samples/s")
	b.ReportMetric(att/float64(b.N), "attached-samples/s")
	b.ReportMetric(att/head, "attached/headless")
}
