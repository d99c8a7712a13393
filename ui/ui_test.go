package ui

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"
	"github.com/charmbracelet/x/vt"

	"thaw/store/engine"
)

// ---- driving the model directly ----

// press returns the key message of a key name as Bubble Tea v2 spells it.
func press(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "left":
		return tea.KeyPressMsg{Code: tea.KeyLeft}
	case "right":
		return tea.KeyPressMsg{Code: tea.KeyRight}
	case "backspace":
		return tea.KeyPressMsg{Code: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	}
	r := []rune(k)
	if len(r) != 1 {
		panic("press: unknown key " + k)
	}
	if r[0] >= 'A' && r[0] <= 'Z' {
		return tea.KeyPressMsg{Code: r[0] + 'a' - 'A', ShiftedCode: r[0], Mod: tea.ModShift, Text: k}
	}
	return tea.KeyPressMsg{Code: r[0], Text: k}
}

// driver runs a workbench's Update by hand and runs the commands it
// returns, synchronously, until none is left: what a Bubble Tea program
// does, without a terminal or timing.
type driver struct {
	t    testing.TB
	m    *Model
	quit bool
}

// newDriver returns a driver of a workbench without probes, which would
// otherwise train (synchronously, here) whenever the data changes.
func newDriver(t testing.TB, opts Options) *driver {
	t.Helper()
	opts.NoProbes = true
	return newDriverOpts(t, opts)
}

func newDriverOpts(t testing.TB, opts Options) *driver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	m := New(ctx, opts)
	// Commands run synchronously here: a notice's expiry timer would
	// stall the test for its lifetime.
	m.s.infoLife = 0
	d := &driver{t: t, m: m}
	d.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	d.run(m.Init())
	return d
}

func (d *driver) send(msg tea.Msg) {
	_, cmd := d.m.Update(msg)
	d.run(cmd)
}

// run executes cmd and feeds what it returns back into Update.
func (d *driver) run(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	msg := cmd()
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			d.run(c)
		}
	case tea.QuitMsg:
		d.quit = true
	case liveTickMsg:
		// The Train screen's clock: re-armed it would run for as long
		// as the run trains.
	default:
		if reflect.TypeOf(msg).PkgPath() == "charm.land/bubbletea/v2" {
			return // terminal queries: no terminal here
		}
		d.send(msg)
	}
}

// keys presses keys in turn; a multi-rune word is typed rune by rune.
func (d *driver) keys(ks ...string) {
	for _, k := range ks {
		d.send(press(k))
	}
}

func (d *driver) typeText(s string) {
	for _, r := range s {
		d.send(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// screen is the frame as drawn, without styles.
func (d *driver) screen() string {
	return stripANSI(d.m.render())
}

func stripANSI(s string) string {
	e := vt.NewEmulator(200, 60)
	go io.Copy(io.Discard, e)
	e.WriteString(strings.ReplaceAll(s, "\n", "\r\n"))
	return e.String()
}

// chooseModel moves the Models cursor to name and presses enter.
func (d *driver) chooseModel(name string) {
	d.t.Helper()
	for i, e := range d.m.screens[ScreenModels].(*modelsScreen).visible() {
		if e.name == name {
			for range i {
				d.keys("down")
			}
			d.keys("enter")
			if d.m.active != ScreenBlocks || d.m.s.base.name != name {
				d.t.Fatalf("after choosing %s: screen %v, base %v", name, d.m.active, d.m.s.base)
			}
			return
		}
	}
	d.t.Fatalf("model %s is not listed", name)
}

// ---- the key map ----

// TestKeysUnambiguous fails when one key means two things where both
// work: on each screen, its own keys, the lists' and the frame's; and in
// each of keys.go's per-screen key maps, with the frame's and the lists'
// beside it (less the bindings of an overlay that captures every key,
// where enter and esc mean the overlay's own thing).
func TestKeysUnambiguous(t *testing.T) {
	d := newDriver(t, Options{})
	k := d.m.s.Keys
	shared := append(append([]key.Binding{}, k.global()...), k.listKeys()...)
	check := func(where string, bs []key.Binding) {
		t.Helper()
		seen := map[string]string{}
		for _, b := range bs {
			for _, key := range b.Keys() {
				what := b.Help().Desc
				if prev, ok := seen[key]; ok && prev != what {
					t.Errorf("%s: key %q means both %q and %q", where, key, prev, what)
				}
				seen[key] = what
			}
		}
	}
	for i, sc := range d.m.screens {
		check(Screen(i).String(), append(append([]key.Binding{}, shared...), sc.Keys()...))
	}
	// Bindings that work only inside a capturing overlay.
	overlay := map[string]bool{"Runs.Open": true, "Runs.Apply": true, "Runs.BackToList": true}
	km := reflect.ValueOf(k)
	for i := range km.NumField() {
		f := km.Type().Field(i)
		if f.Type.Kind() != reflect.Struct || f.Type == reflect.TypeOf(key.Binding{}) || f.Name == "Branch" {
			continue
		}
		bs := append([]key.Binding{}, shared...)
		for j := range f.Type.NumField() {
			name := f.Name + "." + f.Type.Field(j).Name
			b, ok := km.Field(i).Field(j).Interface().(key.Binding)
			if !ok {
				t.Fatalf("%s is not a key.Binding", name)
			}
			if len(b.Keys()) == 0 || b.Help().Desc == "" {
				t.Errorf("%s has no keys or no help", name)
			}
			if !overlay[name] {
				bs = append(bs, b)
			}
		}
		check("key map "+f.Name, bs)
	}
	// Train shows its chart keys beside its own: they share one screen.
	check("Train with its charts", append(append(append([]key.Binding{}, shared...), reflectBindings(k.Train)...), reflectBindings(k.Chart)...))
}

// reflectBindings lists the key.Binding fields of a key map struct.
func reflectBindings(km any) []key.Binding {
	v := reflect.ValueOf(km)
	var out []key.Binding
	for i := range v.NumField() {
		if b, ok := v.Field(i).Interface().(key.Binding); ok {
			out = append(out, b)
		}
	}
	return out
}

// TestTextFieldTakesKeys: typing "10" into shots sets shots; it does not
// jump to screen 1 and 0.
func TestTextFieldTakesKeys(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("mnist8-mlp")
	d.keys("enter") // Blocks → Plan
	if d.m.active != ScreenPlan {
		t.Fatalf("screen %v, want Plan", d.m.active)
	}
	d.keys("down", "e", "ctrl+u")
	d.typeText("10q")
	d.keys("backspace", "enter")
	if d.m.active != ScreenPlan || d.quitRequested() {
		t.Fatalf("typing in a field changed screen to %v or quit", d.m.active)
	}
	if got := d.m.s.plan.shots; got != 10 {
		t.Errorf("shots = %d, want 10", got)
	}
	if !strings.Contains(d.screen(), "10 per class") {
		t.Errorf("the screen does not show 10 shots:\n%s", d.screen())
	}
	// With no field focused, 1 jumps to Models.
	d.keys("1")
	if d.m.active != ScreenModels {
		t.Errorf("1 went to %v, want Models", d.m.active)
	}
}

func (d *driver) quitRequested() bool { return d.quit || d.m.confirmQuit }

// TestFreezeKeys checks space, f, a and h, and the counts they show.
func TestFreezeKeys(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("digits-cnn")
	e := d.m.s.base
	total := e.params()
	params := map[string]int{}
	for _, b := range e.blocks {
		params[b.name] = b.params
	}
	counts := func() string {
		tr, tot := d.m.s.counts()
		return fmt.Sprintf("trainable %s of %s", commaInt(tr), commaInt(tot))
	}
	check := func(step string, wantTrainable int) {
		t.Helper()
		want := fmt.Sprintf("trainable %s of %s", commaInt(wantTrainable), commaInt(total))
		if got := counts(); got != want {
			t.Errorf("%s: %s, want %s", step, got, want)
		}
		if !strings.Contains(d.screen(), want) {
			t.Errorf("%s: the screen does not show %q:\n%s", step, want, d.screen())
		}
	}
	check("start (head only)", params["head"])
	d.keys("down", "down", "f") // cursor on fc1
	check("f on fc1", params["fc1"]+params["head"])
	costF, full := d.m.s.stepCost()
	d.keys("a")
	check("a", total)
	costA, _ := d.m.s.stepCost()
	if costA != full || costF >= costA {
		t.Errorf("step cost: fc1 and up %d, all %d, full %d: want fc1 < all = full", costF, costA, full)
	}
	d.keys("h")
	check("h", params["head"])
	d.keys("space") // cursor still on fc1: thaw it alone
	check("space on fc1", params["fc1"]+params["head"])
	d.keys("down", "space") // freeze the head: fc1 alone trains
	check("space on head", params["fc1"])
	d.keys("up", "space") // freezing the last trainable block is refused
	check("space on the last trainable block", params["fc1"])
	if !d.m.s.messageErr() {
		t.Errorf("no error shown after freezing every block")
	}
}

// ---- bad input ----

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	csv := filepath.Join(dir, "three.csv")
	if err := os.WriteFile(csv, []byte("a,b,c,label\n1,2,3,x\n4,5,6,y\n7,8,9,x\n1,1,1,y\n2,2,2,x\n3,3,3,y\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	badPlan := filepath.Join(dir, "plan.json")
	if err := os.WriteFile(badPlan, []byte(`{"lr": 0.001, "epochs": 1, "stages": [{"train": ["head"]}, {"train": ["conv9"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		keys  func(d *driver)
		want  []string // in the message line
		check func(t *testing.T, d *driver)
	}{
		{
			name: "data path that does not exist",
			keys: func(d *driver) {
				d.keys("e", "ctrl+u")
				d.typeText(filepath.Join(dir, "missing.csv"))
				d.keys("enter")
			},
			want: []string{"missing.csv", "no task or file by that name"},
		},
		{
			name: "CSV with the wrong number of features",
			keys: func(d *driver) {
				d.keys("e", "ctrl+u")
				d.typeText(csv)
				d.keys("enter")
			},
			want: []string{"shape [3]", "takes [64]", "64 values per sample"},
		},
		{
			name: "plan file naming an unknown block",
			keys: func(d *driver) {
				d.keys("L", "ctrl+u")
				d.typeText(badPlan)
				d.keys("enter")
			},
			want: []string{"plan.json", `no block named "conv9"`},
			check: func(t *testing.T, d *driver) {
				// The field stays open to fix the name; esc closes it and
				// the plan is the one from before.
				d.keys("esc")
				if d.m.s.plan.plan.Name != "gradual" {
					t.Errorf("the plan changed to %q", d.m.s.plan.plan.Name)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, Options{})
			d.chooseModel("mnist8-mlp")
			d.keys("enter")
			tc.keys(d)
			if !d.m.s.messageErr() {
				t.Fatalf("no error shown; message %q", d.m.s.message())
			}
			for _, w := range tc.want {
				if !strings.Contains(d.m.s.message(), w) {
					t.Errorf("message %q does not contain %q", d.m.s.message(), w)
				}
			}
			if tc.check != nil {
				tc.check(t, d)
			}
			// The UI keeps working: the data can be fixed and the screens
			// still change.
			d.keys("up", "up", "up", "up", "up", "up", "up", "up", "e", "ctrl+u")
			d.typeText("uci-digits")
			d.keys("enter")
			if d.m.s.plan.dataErr != nil || d.m.s.plan.prep == nil {
				t.Fatalf("after fixing the data: %v", d.m.s.plan.dataErr)
			}
			d.keys("2")
			if d.m.active != ScreenBlocks {
				t.Errorf("2 went to %v", d.m.active)
			}
		})
	}
}

// TestQuitConfirm: q quits at once without a run, and asks while one
// trains.
func TestQuitConfirm(t *testing.T) {
	d := newDriver(t, Options{})
	d.keys("q")
	if !d.quit {
		t.Fatalf("q did not quit without a run")
	}
	d = newDriver(t, Options{})
	d.m.s.run = &engine.Live{ID: "0123456789abcdef"}
	before := strings.Split(d.screen(), "\n")
	d.keys("q")
	if d.quit || !d.m.confirmQuit {
		t.Fatalf("q with a live run: quit %v, asking %v", d.quit, d.m.confirmQuit)
	}
	scr := d.screen()
	if !strings.Contains(scr, "Quit and stop it?") {
		t.Errorf("no question on screen:\n%s", scr)
	}
	// The screen stays under the box: its first lines, above the box,
	// are as they were.
	if after := strings.Split(scr, "\n"); len(after) < 4 || strings.TrimSpace(before[1]) == "" ||
		after[1] != before[1] || after[2] != before[2] {
		t.Errorf("the screen under the question is gone:\n%s\nbefore:\n%s", scr, strings.Join(before, "\n"))
	}
	// The run ends while the question stands: it says so, not that a
	// sweep is running.
	d.m.s.runDone = true
	if scr := d.screen(); !strings.Contains(scr, "What was training has ended") || strings.Contains(scr, "sweep") {
		t.Errorf("the question after the run ended:\n%s", scr)
	}
	d.m.s.runDone = false
	d.keys("n")
	if d.quit || d.m.confirmQuit {
		t.Fatalf("n did not cancel")
	}
	d.keys("ctrl+c", "y")
	if !d.quit {
		t.Fatalf("ctrl+c then y did not quit")
	}
}

// ---- teatest flows ----

// screenReader reconstructs the terminal screen from a program's output:
// the v2 renderer sends cell diffs, so text is only comparable after
// replaying them on an emulator.
type screenReader struct {
	mu  sync.Mutex
	emu *vt.Emulator
	out io.Reader
}

func newScreenReader(out io.Reader, w, h int) *screenReader {
	e := vt.NewEmulator(w, h)
	go io.Copy(io.Discard, e) // the emulator's replies to queries
	// The program writes to a pipe, not a terminal, so its line feeds
	// count on the terminal's newline translation (a tty's ONLCR): set
	// LNM, where a line feed also returns the carriage.
	e.WriteString(ansi.SetMode(ansi.ModeLineFeedNewLine))
	return &screenReader{emu: e, out: out}
}

func (r *screenReader) pump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	buf := make([]byte, 64<<10)
	for {
		n, _ := r.out.Read(buf)
		if n == 0 {
			break
		}
		r.emu.Write(buf[:n])
	}
	return r.emu.String()
}

// waitFor waits until the screen holds every string of want.
func (r *screenReader) waitFor(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var scr string
	for time.Now().Before(deadline) {
		scr = r.pump()
		ok := true
		for _, w := range want {
			if !strings.Contains(scr, w) {
				ok = false
				break
			}
		}
		if ok {
			return scr
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the screen never showed %q; last screen:\n%s", want, scr)
	return ""
}

// TestFlowPickFreezePlan: open → pick digits-cnn → f on fc1 (trainable
// becomes fc1 + head) → Plan with gradual → the LR preview draws one line
// per block.
func TestFlowPickFreezePlan(t *testing.T) {
	for _, size := range [][2]int{{80, 24}, {160, 48}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			m := New(ctx, Options{NoProbes: true})
			tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(size[0], size[1]))
			scr := newScreenReader(tm.Output(), size[0], size[1])
			scr.waitFor(t, "digits-cnn", "mnist8-mlp")
			tm.Send(press("enter"))
			scr.waitFor(t, "Blocks of digits-cnn", "trainable 325 of 53,989")
			tm.Send(press("down"))
			tm.Send(press("down"))
			tm.Send(press("f"))
			// fc1 (50,240) + head (325).
			scr.waitFor(t, "trainable 50,565 of 53,989", "freeze point")
			tm.Send(press("enter"))
			final := scr.waitFor(t, "preset", "gradual", "LR preview", "━ conv1", "━ conv2", "━ fc1", "━ head", "classes")
			if strings.Contains(final, "loading") {
				t.Errorf("the data never loaded:\n%s", final)
			}
			tm.Send(press("q"))
			tm.WaitFinished(t, teatest.WithFinalTimeout(10*time.Second))
			fm := tm.FinalModel(t).(*Model)
			ps := fm.screens[ScreenPlan].(*planScreen)
			if ps.chart.series != 4 {
				t.Errorf("the LR preview drew %d lines, want one per block (4)", ps.chart.series)
			}
			stages := fm.s.plan.plan.Stages
			if len(stages) != 3 || strings.Join(stages[0].Train, ",") != "fc1,head" {
				t.Errorf("stages %+v: want gradual from fc1 + head, 3 stages", stages)
			}
		})
	}
}
