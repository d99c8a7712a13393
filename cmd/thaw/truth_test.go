package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"

	"thaw/assets"
	"thaw/store"
	"thaw/store/engine"
	"thaw/trainer"
	"thaw/ui"
)

// The six kinds of run the issue names, each read by thaw show --json,
// the workbench's stored view (Runs → enter, on the real model) and thaw
// export's CSV: all three must tell the same story of best, stages and
// totals, since all three read the engine's read model.

// truthJob is a plan of two 60-step stages of mnist8-mlp on uci-digits,
// evaluated every 10 steps.
func truthJob() trainer.Job {
	return trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Shots: 10, Seed: 5, EvalEvery: 10,
		Plan: trainer.Plan{Name: "two stages", LR: 0.01, Stages: []trainer.Stage{
			{Train: []string{"head"}, Steps: 60}, {Train: []string{"all"}, Steps: 60}}}}
}

// sixRuns records the six runs in a store in dir and returns their names.
func sixRuns(t *testing.T, dir string) []string {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := engine.New(st, nil)
	wait := func(l *engine.Live, err error) *engine.Live {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Wait(); err != nil && !strings.Contains(err.Error(), "stop") {
			t.Fatalf("run %s: %v", l.ID, err)
		}
		return l
	}
	// at calls act once the run reports step in stage.
	at := func(stage, step int, act func(*trainer.Control)) engine.StartOptions {
		var ctl *trainer.Control
		var once sync.Once
		return engine.StartOptions{
			Ready: func(l *engine.Live) { ctl = l.Control },
			Report: func(p trainer.Progress) {
				if p.Stage == stage && p.Step >= step {
					once.Do(func() { act(ctl) })
				}
			},
		}
	}
	named := func(o engine.StartOptions, name string) engine.StartOptions { o.Name = name; return o }
	stop := func(c *trainer.Control) { c.Stop() }

	fin := wait(e.Start(ctx, truthJob(), engine.StartOptions{Name: "run-finished"}))
	wait(e.Start(ctx, truthJob(), named(at(1, 80, stop), "run-stopped")))
	res := wait(e.Start(ctx, truthJob(), named(at(1, 80, stop), "run-resumed")))
	wait(e.Resume(ctx, res.ID, engine.StartOptions{}))
	wait(e.Branch(ctx, fin.ID, engine.BranchPoint{Stage: 1}, &engine.Continuation{Plan: trainer.Plan{Name: "all again", LR: 0.02,
		Stages: []trainer.Stage{{Train: []string{"all"}, Steps: 40}}}}, engine.StartOptions{Name: "run-branch"}))
	wait(e.Start(ctx, truthJob(), named(at(0, 30, func(c *trainer.Control) { c.Skip() }), "run-skipped")))
	killed := wait(e.Start(ctx, truthJob(), named(at(1, 90, stop), "run-killed")))
	st.Close()

	// Killed: its process died without a word, so its status is still
	// running, and its heartbeat is long stale.
	db, err := sql.Open("sqlite", filepath.Join(dir, "thaw.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE runs SET status = 'running', finished_ms = NULL, heartbeat_ms = 0 WHERE id = ?`, killed.ID); err != nil {
		t.Fatal(err)
	}
	return []string{"run-finished", "run-stopped", "run-resumed", "run-branch", "run-skipped", "run-killed"}
}

// shown is what the test reads of thaw show --json.
type shown struct {
	ID          string   `json:"id"`
	Status      string   `json:"status"`
	Steps       int64    `json:"steps"`
	TotalSteps  int64    `json:"total_steps"`
	Stage       int      `json:"stage"`
	BestStep    int64    `json:"best_step"`
	BestValLoss *float64 `json:"best_val_loss"`
	BestValAcc  *float64 `json:"best_val_acc"`
	ParentStep  int64    `json:"parent_step"`
	Stages      []struct {
		Index       int
		Name        string
		Start, End  int64
		Planned     int64    `json:"planned"`
		Ran         int64    `json:"ran"`
		Inherited   bool     `json:"inherited"`
		BestValLoss *float64 `json:"best_val_loss"`
	} `json:"stages"`
}

// screenOf feeds a program's output into a terminal emulator.
type screenOf struct {
	mu  sync.Mutex
	emu *vt.Emulator
	out io.Reader
}

func (s *screenOf) wait(t *testing.T, want ...string) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(60 * time.Second)
	for {
		s.mu.Lock()
		for {
			n, _ := s.out.Read(buf)
			if n == 0 {
				break
			}
			s.emu.Write(buf[:n])
		}
		scr := s.emu.String()
		s.mu.Unlock()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(scr, w)
		}
		if ok {
			return scr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the workbench never showed %q; last screen:\n%s", want, scr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func key(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	}
	return tea.KeyPressMsg{Code: []rune(k)[0], Text: k}
}

// compact is the Runs table's way with a count (ui's compactInt).
func compact(n int64) string {
	if n < 10_000 {
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%.1fk", float64(n)/1e3)
}

// TestOneTruthAboutSixRuns: thaw show --json, the workbench's stored view
// and thaw export agree on the best step and figures, the stage table and
// the totals of a finished, a stopped, a resumed, a branched, a skipped
// and a killed run.
func TestOneTruthAboutSixRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("trains six runs")
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	names := sixRuns(t, dir)

	// The workbench over the same store, read-only as a viewer would.
	st, err := store.OpenForReading(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const w, h = 180, 56
	tm := teatest.NewTestModel(t, ui.New(wctx, ui.Options{Backend: engine.New(st, nil), NoProbes: true}), teatest.WithInitialTermSize(w, h))
	defer tm.Quit()
	emu := vt.NewEmulator(w, h)
	go io.Copy(io.Discard, emu)
	emu.WriteString(ansi.SetMode(ansi.ModeLineFeedNewLine))
	scr := &screenOf{emu: emu, out: tm.Output()}
	scr.wait(t, "mnist8-mlp")
	tm.Send(key("5"))
	scr.wait(t, names...)

	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			// thaw show --json.
			stdout, stderr, code := runMain(t, ctx, &Main{}, "show", "--json", "--store", dir, name[:0]+idOf(t, st, name))
			if code != 0 {
				t.Fatalf("thaw show: exit %d: %s", code, stderr)
			}
			var s shown
			if err := json.Unmarshal([]byte(stdout), &s); err != nil {
				t.Fatal(err)
			}
			if s.BestStep < 0 || s.BestValLoss == nil || s.BestValAcc == nil || len(s.Stages) == 0 {
				t.Fatalf("thaw show: best at %d, %d stages:\n%s", s.BestStep, len(s.Stages), stdout)
			}
			switch name {
			case "run-killed":
				if s.Status != "interrupted" {
					t.Errorf("status %s, want interrupted: its heartbeat is stale", s.Status)
				}
			case "run-stopped":
				if s.Stage != 2 || s.TotalSteps != 120 || s.Steps >= 120 {
					t.Errorf("stage %d, step %d of %d; want stage 2 of a 120-step plan", s.Stage, s.Steps, s.TotalSteps)
				}
			case "run-branch":
				if !s.Stages[0].Inherited || s.Stages[0].Ran != 60 || s.TotalSteps != 100 {
					t.Errorf("branch: stage 1 inherited %v ran %d, total %d; want inherited, 60, 100", s.Stages[0].Inherited, s.Stages[0].Ran, s.TotalSteps)
				}
			}

			// thaw export's CSV.
			csvPath := filepath.Join(t.TempDir(), "run.csv")
			if _, stderr, code := runMain(t, ctx, &Main{}, "export", "-o", csvPath, "--store", dir, s.ID); code != 0 {
				t.Fatalf("thaw export: exit %d: %s", code, stderr)
			}
			rows := readCSV(t, csvPath)[1:]
			var last int64
			bestStep, bestLoss := int64(-1), math.Inf(1)
			accAt := map[int64]float64{}
			stageLast := map[string]int64{}
			stageBest := map[string]float64{}
			for _, r := range rows {
				step, _ := strconv.ParseInt(r[1], 10, 64)
				v, _ := strconv.ParseFloat(r[4], 64)
				switch r[3] {
				case trainer.MetricTrainLoss:
					last = max(last, step)
					stageLast[r[2]] = max(stageLast[r[2]], step)
				case trainer.MetricValLoss:
					if v < bestLoss {
						bestStep, bestLoss = step, v
					}
					if b, ok := stageBest[r[2]]; !ok || v < b {
						stageBest[r[2]] = v
					}
				case trainer.MetricValAcc:
					accAt[step] = v
				}
			}
			if last != s.Steps {
				t.Errorf("export: last step %d, show %d", last, s.Steps)
			}
			if s.BestStep > s.ParentStep {
				if bestStep != s.BestStep || bestLoss != *s.BestValLoss || accAt[bestStep] != *s.BestValAcc {
					t.Errorf("export: best %v (acc %v) at step %d; show %v (acc %v) at %d", bestLoss, accAt[bestStep], bestStep, *s.BestValLoss, *s.BestValAcc, s.BestStep)
				}
			} else if bestLoss < *s.BestValLoss {
				t.Errorf("export: val loss %v at step %d beats the inherited best %v", bestLoss, bestStep, *s.BestValLoss)
			}
			for _, sg := range s.Stages {
				k := strconv.Itoa(sg.Index + 1)
				switch {
				case sg.Inherited || sg.Ran == 0:
					if _, ok := stageLast[k]; ok {
						t.Errorf("export: stage %s has points; show says it ran %d here (inherited %v)", k, sg.Ran, sg.Inherited)
					}
				case stageLast[k] != sg.Start+sg.Ran:
					t.Errorf("export: stage %s ends at step %d; show says %d + %d", k, stageLast[k], sg.Start, sg.Ran)
				case sg.BestValLoss != nil && stageBest[k] != *sg.BestValLoss:
					t.Errorf("export: stage %s's best %v; show %v", k, stageBest[k], *sg.BestValLoss)
				}
			}

			// The workbench: Runs → enter.
			tm.Send(key("/"))
			tm.Type(name)
			tm.Send(key("enter"))
			tm.Send(key("enter"))
			want := []string{
				fmt.Sprintf("%s · stage %d/%d", s.Status, s.Stage, len(s.Stages)),
				fmt.Sprintf("step %d/%d", s.Steps, s.TotalSteps),
				fmt.Sprintf("best val loss %.4f · acc %.1f%% at step %d", *s.BestValLoss, 100**s.BestValAcc, s.BestStep),
			}
			for _, sg := range s.Stages {
				want = append(want, fmt.Sprintf("%s/%s", compact(sg.Ran), compact(sg.Planned)))
				if sg.BestValLoss != nil {
					want = append(want, fmt.Sprintf("%.4f", *sg.BestValLoss))
				}
			}
			scr.wait(t, want...)
			tm.Send(key("esc"))
			tm.Send(key("/"))
			tm.Send(key("esc"))
			scr.wait(t, names...)
		})
	}
}

// idOf is the id of the run called name.
func idOf(t *testing.T, st *store.Store, name string) string {
	t.Helper()
	runs, err := st.ListRuns(context.Background(), store.RunFilter{Name: name})
	if err != nil || len(runs) != 1 {
		t.Fatalf("run %s: %d found, %v", name, len(runs), err)
	}
	return runs[0].ID
}

// TestSourceAccBest: thaw train --json and thaw show --json say the
// source task's accuracy at the best step (the weights --save writes),
// beside before and after, and agree on it and on the best.
func TestSourceAccBest(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "store")
	stdout, stderr, code := runMain(t, ctx, &Main{Zoo: assets.Zoo()}, "train", "--json", "--store", dir, "--model", "mnist8-mlp",
		"--data", "uci-digits", "--shots", "10", "--plan", "fine-tune", "--epochs", "30", "--eval-every", "10", "--seed", "4")
	if code != 0 {
		t.Fatalf("thaw train: exit %d: %s", code, stderr)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	id, _ := out["run"].(string)
	stdout, stderr, code = runMain(t, ctx, &Main{}, "show", "--json", "--store", dir, id)
	if code != 0 {
		t.Fatalf("thaw show: exit %d: %s", code, stderr)
	}
	var show map[string]any
	if err := json.Unmarshal([]byte(stdout), &show); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"source_acc_before", "source_acc_best", "best_step", "best_val_acc", "total_steps"} {
		a, ok1 := out[k].(float64)
		b, ok2 := show[k].(float64)
		if !ok1 || !ok2 || a != b {
			t.Errorf("%s: thaw train %v, thaw show %v; want the same number", k, out[k], show[k])
		}
	}
	if b, a := show["source_acc_best"].(float64), show["source_acc_end"].(float64); b == a && out["best_step"].(float64) != out["steps"].(float64) {
		t.Logf("the gauge at the best step equals the final one (%v)", b)
	}
}
