package ui

import (
	"math"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/store/engine"
	"thaw/trainer"
	"thaw/ui/export"
)

// synthRun makes the reports of a three-stage run of total steps,
// reporting every `every` steps and evaluating every `eval` steps.
func synthRun(total, every, eval int) []trainer.Progress {
	var out []trainer.Progress
	labels := []string{"stage 1: head", "stage 2: +fc1", "stage 3: +fc0"}
	blocks := func(stage int) []trainer.BlockProgress {
		names := []string{"fc0", "fc1", "head"}
		bs := make([]trainer.BlockProgress, 3)
		for i, n := range names {
			tr := i >= 2-stage
			bs[i] = trainer.BlockProgress{Name: n, Trainable: tr}
			if tr {
				bs[i].LR, bs[i].GradNorm, bs[i].UpdateRatio, bs[i].Drift = 1e-3, 0.5, 1e-3, 0.01*float64(stage+1)
			}
		}
		return bs
	}
	nan := math.NaN()
	stageLen := total / 3
	last := 0
	for step := 0; step <= total; step += every {
		stage := min(step/stageLen, 2)
		// As the trainer reports: the losses up to a stage's first step,
		// then the stage.
		stageEvent := func() {
			if step%stageLen == 0 && step < total {
				out = append(out, trainer.Progress{Event: trainer.EventStage, Step: step, TotalSteps: total, Stage: stage,
					StageLabel: labels[stage], ValLoss: nan, ValAcc: nan, SourceAcc: nan, Blocks: blocks(stage), Status: trainer.StatusRunning})
			}
		}
		if step == 0 {
			stageEvent()
			continue
		}
		if step%stageLen == 0 {
			stage = step/stageLen - 1
		}
		losses := make([]float64, step-last)
		for i := range losses {
			s := float64(last + i + 1)
			losses[i] = 2*math.Exp(-s/float64(total/4)) + 0.1 + 0.05*math.Sin(s)
		}
		p := trainer.Progress{Event: trainer.EventStep, Step: step, TotalSteps: total, Stage: stage, StageLabel: labels[stage],
			Epoch: float64(step) / 50, FirstStep: last, Losses: losses, ValLoss: nan, ValAcc: nan, SourceAcc: nan,
			SamplesPerSec: 12345, ETA: time.Duration(total-step) * time.Millisecond, Blocks: blocks(stage), Status: trainer.StatusRunning}
		if step%eval == 0 {
			p.Event = trainer.EventEval
			p.ValLoss = 2.2*math.Exp(-float64(step)/float64(total/3)) + 0.2
			p.ValAcc = 1 - p.ValLoss/2.5
			p.SourceAcc = 0.95 - 0.1*float64(step)/float64(total)
		}
		out = append(out, p)
		last = step
		stage = min(step/stageLen, 2)
		stageEvent()
	}
	return out
}

func plain(s string) []string { return strings.Split(ansi.Strip(s), "\n") }

func TestDashboardShowsStagesEvalsAndBest(t *testing.T) {
	d := newDashboard(palette{dark: true})
	ps := synthRun(3000, 25, 250)
	// Stop in stage 3's first report, with fc0 thawed; check frozen on the
	// way.
	for i, p := range ps {
		d.progress(p)
		if i == len(ps)/2 {
			if v := ansi.Strip(d.view(160, 45)); !strings.Contains(v, "frozen") || !strings.Contains(v, "stage 2/") {
				t.Fatalf("mid-run view lacks a frozen block or stage 2:\n%s", v)
			}
		}
	}
	for _, size := range [][2]int{{160, 45}, {80, 21}} {
		v := d.view(size[0], size[1])
		ls := plain(v)
		if len(ls) > size[1] {
			t.Fatalf("%v: %d rows, want at most %d", size, len(ls), size[1])
		}
		for i, l := range ls {
			if w := ansi.StringWidth(l); w > size[0] {
				t.Fatalf("%v: row %d is %d wide: %q", size, i, w, l)
			}
		}
		text := ansi.Strip(v)
		for _, want := range []string{"head", "+fc1", "+fc0", "stage 3/3", "best val loss", "◆", "•", "trains"} {
			if !strings.Contains(text, want) {
				t.Fatalf("%v: view lacks %q:\n%s", size, want, text)
			}
		}
	}
}

func TestDashboardKeys(t *testing.T) {
	d := newDashboard(palette{dark: true})
	for _, p := range synthRun(3000, 25, 250) {
		d.progress(p)
	}
	d.view(160, 45)
	press := func(k string) {
		var msg tea.KeyPressMsg
		switch k {
		case "left":
			msg = tea.KeyPressMsg{Code: tea.KeyLeft}
		case "right":
			msg = tea.KeyPressMsg{Code: tea.KeyRight}
		default:
			msg = tea.KeyPressMsg{Code: rune(k[0]), Text: k}
		}
		if !d.handleKey(msg) {
			t.Fatalf("key %q not handled", k)
		}
	}
	press("y")
	if !d.loss.LogY() {
		t.Fatal("y did not set log scale")
	}
	press("s")
	if got := smoothings[d.smoothIdx]; got != 0.9 {
		t.Fatalf("smoothing after s: %v, want 0.9", got)
	}
	// The smoothed series is recomputed over the whole history.
	_, raw := d.loss.Points(d.sRaw)
	_, sm := d.loss.Points(d.sSmooth)
	if len(sm) != len(raw) {
		t.Fatalf("smoothed %d points, raw %d", len(sm), len(raw))
	}
	press("i")
	if d.loss.IgnoreOutliers() {
		t.Fatal("i did not show outliers")
	}
	press("left") // the cursor appears on the last step
	if !d.cursorOn || int(d.cursor) != 3000 {
		t.Fatalf("cursor %v on %v, want on 3000", d.cursor, d.cursorOn)
	}
	for range 30 {
		press("left")
	}
	line := ansi.Strip(d.footer(160))
	if !strings.Contains(line, "stage 3: +fc0") || !strings.Contains(line, "val loss") || !strings.Contains(line, "train loss") {
		t.Fatalf("inspect line: %q", line)
	}
	press("z")
	if lo, hi := d.loss.XRange(); lo != 2000 || hi != 3000 {
		t.Fatalf("zoomed to [%v, %v], want the last stage [2000, 3000]", lo, hi)
	}
	press("z")
	if d.loss.Zoomed() {
		t.Fatal("second z did not unzoom")
	}
}

func TestPlateauHint(t *testing.T) {
	d := newDashboard(palette{})
	nan := math.NaN()
	d.progress(trainer.Progress{Event: trainer.EventStage, TotalSteps: 100, StageLabel: "stage 1: head", ValLoss: nan, ValAcc: nan, SourceAcc: nan, Status: trainer.StatusRunning})
	d.planStages = 2
	for i, l := range []float64{1, 0.8, 0.9, 0.85, 0.95} {
		d.progress(trainer.Progress{Event: trainer.EventEval, Step: 10 * (i + 1), TotalSteps: 100, ValLoss: l, ValAcc: 0.5, SourceAcc: nan, Status: trainer.StatusRunning})
	}
	if h := d.plateau(); !strings.Contains(h, "3 evaluations") || !strings.Contains(h, "n thaws") {
		t.Fatalf("hint %q", h)
	}
	d.progress(trainer.Progress{Event: trainer.EventEval, Step: 60, TotalSteps: 100, ValLoss: 0.5, ValAcc: 0.5, SourceAcc: nan, Status: trainer.StatusRunning})
	if h := d.plateau(); h != "" {
		t.Fatalf("hint after an improvement: %q", h)
	}
}

// BenchmarkTrainFrame is one frame of the live dashboard at 160×48 with a
// million steps of history: a report arrives (Update) and the screen is
// drawn (View).
func BenchmarkTrainFrame(b *testing.B) {
	d := newDashboard(palette{dark: true})
	const total = 1_000_000
	for _, p := range synthRun(total, 1000, 20_000) {
		d.progress(p)
	}
	d.view(160, 45)
	nan := math.NaN()
	step := total
	b.ReportAllocs()
	for b.Loop() {
		step++
		d.progress(trainer.Progress{Event: trainer.EventStep, Step: step, TotalSteps: total * 2, Stage: 2, StageLabel: "stage 3: +fc0",
			FirstStep: step - 1, Losses: []float64{0.2}, ValLoss: nan, ValAcc: nan, SourceAcc: nan, Status: trainer.StatusRunning,
			Blocks: []trainer.BlockProgress{{Name: "fc0", Trainable: true, GradNorm: 1}, {Name: "fc1"}, {Name: "head", Trainable: true}}})
		_ = d.view(160, 45)
	}
}

// A stage ended early with n leaves its unused steps out of the charts:
// the x axis counts steps trained, the inspect line says the plan's step.
func TestSkippedStepsAreNotDrawn(t *testing.T) {
	d := newDashboard(palette{})
	nan := math.NaN()
	const total = 60_000_000
	stage := func(i, step int, label string) trainer.Progress {
		return trainer.Progress{Event: trainer.EventStage, Step: step, TotalSteps: total, Stage: i, StageLabel: label,
			ValLoss: nan, ValAcc: nan, SourceAcc: nan, Status: trainer.StatusRunning}
	}
	losses := func(from, n int) trainer.Progress {
		ls := make([]float64, n)
		for i := range ls {
			ls[i] = 1 / float64(from+i+1)
		}
		return trainer.Progress{Event: trainer.EventStep, Step: from + n, TotalSteps: total, FirstStep: from, Losses: ls,
			ValLoss: nan, ValAcc: nan, SourceAcc: nan, Status: trainer.StatusRunning}
	}
	d.progress(stage(0, 0, "stage 1: head"))
	d.progress(losses(0, 60))
	d.progress(stage(1, 60, "stage 2: +fc2")) // n at step 60
	// As the trainer reports after n: the stage's first losses with
	// FirstStep left where the last stage stopped.
	p := losses(20_000_000, 40)
	p.FirstStep = 60
	d.progress(p)
	if _, hi := d.loss.XRange(); hi > 1000 {
		t.Fatalf("x axis reaches %v: the skipped steps are drawn", hi)
	}
	if got := d.stages[1].start; got != 60 {
		t.Fatalf("stage 2 drawn at %d, want 60", got)
	}
	d.view(120, 40)
	d.moveCursor(0) // onto the latest step
	if line := d.inspectLine(); !strings.HasPrefix(line, "step 20000040") {
		t.Fatalf("inspect line %q, want the plan's step 20000040", line)
	}
	if got := d.real(d.disp(20_000_007)); got != 20_000_007 {
		t.Fatalf("real(disp(20000007)) = %d", got)
	}
}

// TestStatusLineOnAVeryLongRun: a run of tens of millions of steps keeps
// its throughput and ETA on the status line at 114 columns (its width in a
// 160-column terminal); step counts
// past a million are written in millions, epochs past a thousand whole.
func TestStatusLineOnAVeryLongRun(t *testing.T) {
	d := newDashboard(palette{})
	nan := math.NaN()
	d.progress(trainer.Progress{Event: trainer.EventStage, Step: 0, TotalSteps: 60_000_000, StageLabel: "stage 1: head",
		ValLoss: nan, ValAcc: nan, SourceAcc: nan, Status: trainer.StatusRunning})
	d.progress(trainer.Progress{Event: trainer.EventStep, Step: 40_121_820, TotalSteps: 60_000_000, StageLabel: "stage 1: head",
		Epoch: 10_030_455, FirstStep: 40_121_819, Losses: []float64{0.5}, ValLoss: nan, ValAcc: nan, SourceAcc: nan,
		SamplesPerSec: 65416, ETA: time.Minute, Status: trainer.StatusRunning})
	line := ansi.Strip(strings.SplitN(d.statusView(114), "\n", 2)[0])
	for _, want := range []string{"epoch 10030455 ", "step 40.12M/60.00M", "65,416 samples/s", "ETA 1m0s"} {
		if !strings.Contains(line, want) {
			t.Errorf("status line lacks %q: %q", want, line)
		}
	}
}

// TestStoredRunShowsItsEpoch: a stored run's view reads the epoch of its
// last recorded point, as the live view shows it.
func TestStoredRunShowsItsEpoch(t *testing.T) {
	d := newDashboard(palette{})
	var pts []export.Point
	for s := 1; s <= 40; s++ {
		pts = append(pts, export.Point{Step: s, Epoch: float64(s) / 10, Value: 1 / float64(s)})
	}
	d.load(export.Run{Name: "r", BestStep: -1, Series: []export.Series{{Name: export.TrainLoss, Points: pts}},
		Stages: []export.Stage{{Index: 1, Label: "stage 1: head", StartStep: 0, EndStep: 40}}}, trainer.StatusDone)
	line := ansi.Strip(strings.SplitN(d.statusView(114), "\n", 2)[0])
	if !strings.Contains(line, "epoch 4.0 · step 40/40") {
		t.Errorf("stored status line: %q, want epoch 4.0 at step 40", line)
	}
}

// TestBranchWithOnlyItsParentsBest: a branch that has trained nothing yet
// shows the best it inherited, before its own steps, without a stage of
// its own to name (this used to index an empty stage list).
func TestBranchWithOnlyItsParentsBest(t *testing.T) {
	d := newDashboard(palette{})
	v := engine.RunView{Run: engine.Run{ID: "b"}, Status: trainer.StatusStopped, Step: 200, TotalSteps: 400, Stage: 0,
		Stages:          []engine.StageView{{Index: 0, Label: "stage 1: head", Planned: 200, Start: 0, End: 200, Inherited: true}, {Index: 1, Label: "stage 2: all", Planned: 200, Start: -1, End: -1}},
		Best:            engine.Best{Step: 180, ValLoss: 0.25, ValAcc: 0.9, SourceAcc: math.NaN()},
		Parent:          engine.Parent{Run: "p", Name: "parent", Step: 200},
		SourceAccBefore: math.NaN(), SourceAccBest: math.NaN(), SourceAccEnd: math.NaN()}
	d.load(export.Run{ID: "b", Name: "b", BestStep: 180, BranchStep: 200, View: v}, v.Status)
	got := strings.Join(plain(d.statusView(120)), "\n")
	if !strings.Contains(got, "best val loss 0.2500 · acc 90.0% at step 180 (the parent's)") || !strings.Contains(got, "step 200/400") {
		t.Errorf("status:\n%s", got)
	}
}

// TestCompactLegend: at 80×24 (a body of 80×21) one line names every
// series and shows what s, y and i changed, and the forgetting figure.
func TestCompactLegend(t *testing.T) {
	d := newDashboard(palette{dark: true})
	for _, p := range synthRun(3000, 25, 250) {
		d.progress(p)
	}
	d.srcBefore = 0.97 // as the read model gives it once stored
	legend := func() string {
		t.Helper()
		v := ansi.Strip(d.view(80, 21))
		for _, l := range strings.Split(v, "\n") {
			if strings.HasPrefix(l, "loss ") {
				return l
			}
		}
		t.Fatalf("no legend line at 80×21:\n%s", v)
		return ""
	}
	l := legend()
	for _, want := range []string{"━ train s0.6", "• val", "◆ best", "lin y", "acc", "• source", "→"} {
		if !strings.Contains(l, want) {
			t.Errorf("legend %q lacks %q", l, want)
		}
	}
	for _, c := range []struct{ key, want string }{{"s", "train s0.9"}, {"y", "log y"}, {"i", "outliers"}} {
		d.handleKey(press(c.key))
		if l := legend(); !strings.Contains(l, c.want) {
			t.Errorf("after %s the legend %q lacks %q", c.key, l, c.want)
		}
	}
}
