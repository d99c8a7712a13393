package ui

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"thaw/assets"
)

// TestFrameFits: every screen fills the terminal exactly, at small and
// large sizes and after a resize, with no line wider than the terminal.
func TestFrameFits(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("digits-cnn")
	for _, size := range [][2]int{{80, 24}, {160, 48}, {100, 30}, {40, 12}, {80, 24}} {
		d.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for sc := range numScreens {
			d.keys(fmt.Sprint(int(sc) + 1))
			out := d.m.render()
			lines := strings.Split(out, "\n")
			if len(lines) != size[1] {
				t.Errorf("%v at %dx%d: %d lines", sc, size[0], size[1], len(lines))
			}
			for i, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("%v at %dx%d: line %d is %d wide: %q", sc, size[0], size[1], i, w, ansi.Strip(l))
				}
			}
		}
	}
	// Wide: the card beside the list; narrow: below it.
	d.keys("1")
	d.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	if row := lineWith(d.screen(), "digits-cnn   "); !strings.Contains(row, "│") {
		t.Errorf("at 160 columns the card is not beside the list: %q", row)
	}
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if row := lineWith(d.screen(), "digits-cnn   "); strings.Contains(row, "│") {
		t.Errorf("at 80 columns the card is beside the list: %q", row)
	}
	// The table's header is whole at 80 columns.
	if row := lineWith(d.screen(), "architecture"); !strings.HasSuffix(strings.TrimRight(row, " "), "classes") {
		t.Errorf("at 80 columns the models header is clipped: %q", row)
	}
}

// sgrColour matches a foreground or background colour in an SGR sequence.
var sgrColour = regexp.MustCompile(`\x1b\[[0-9;]*(3[0-9]|4[0-9]|9[0-7]|10[0-7])[;m]`)

// TestNoColor: with NO_COLOR set, no screen draws a colour.
func TestNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	d := newDriver(t, Options{FromEnv: true})
	d.send(tea.BackgroundColorMsg{}) // a light terminal answering: still no colour
	d.chooseModel("digits-cnn")
	for sc := range numScreens {
		d.keys(fmt.Sprint(int(sc) + 1))
		if loc := sgrColour.FindStringIndex(d.m.render()); loc != nil {
			out := d.m.render()
			t.Errorf("%v draws a colour: %q", sc, out[max(loc[0]-20, 0):loc[1]])
		}
	}
	// And without it, colours are drawn (the check above can fail).
	t.Setenv("NO_COLOR", "")
	d = newDriver(t, Options{FromEnv: true})
	if !sgrColour.MatchString(d.m.render()) {
		t.Errorf("no colour drawn without NO_COLOR")
	}
}

// TestOpenModelFolder: o opens a model folder typed in; a folder that is
// not a model shows why and the list keeps working.
func TestOpenModelFolder(t *testing.T) {
	d := newDriver(t, Options{})
	empty := t.TempDir()
	d.keys("o")
	d.typeText(empty)
	d.keys("enter")
	if !d.m.s.messageErr() || !strings.Contains(d.m.s.message(), "config.json") {
		t.Fatalf("opening an empty folder: message %q", d.m.s.message())
	}
	// A real model folder: the zoo's files copied out.
	dir := filepath.Join(t.TempDir(), "my-model")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, err := fsRead("zoo/mnist8-mlp/" + f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d.keys("o")
	d.typeText(dir)
	d.keys("enter")
	if d.m.s.messageErr() {
		t.Fatalf("opening %s: %s", dir, d.m.s.message())
	}
	d.keys("enter")
	if d.m.active != ScreenBlocks || d.m.s.base == nil || d.m.s.base.name != dir {
		t.Fatalf("the opened folder was not chosen: screen %v", d.m.active)
	}
	if !strings.Contains(d.screen(), "trainable 650 of 17,226") {
		t.Errorf("blocks of the opened model:\n%s", d.screen())
	}
}

func fsRead(name string) ([]byte, error) { return fs.ReadFile(assets.FS, name) }

// TestHelpBarEndsWithKeysAndQuit: on every screen, at every size, the help
// bar's last entries are `? keys · q quit`, and at 80 columns the screen's
// first key is still there before them.
func TestHelpBarEndsWithKeysAndQuit(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("digits-cnn")
	for _, size := range [][2]int{{80, 24}, {160, 48}, {40, 12}} {
		d.send(tea.WindowSizeMsg{Width: size[0], Height: size[1]})
		for sc := range numScreens {
			d.keys(fmt.Sprint(int(sc) + 1))
			lines := strings.Split(d.m.render(), "\n")
			last := strings.TrimRight(ansi.Strip(lines[len(lines)-1]), " ")
			if !strings.HasSuffix(last, "? keys · q quit") {
				t.Errorf("%v at %dx%d: help bar %q does not end with the keys and quit", sc, size[0], size[1], last)
			}
			if size[0] >= 80 {
				if ks := d.m.screens[sc].Keys(); len(ks) > 0 && !strings.HasPrefix(last, ks[0].Help().Key+" ") {
					t.Errorf("%v at %d columns: help bar %q does not start with %q", sc, size[0], last, ks[0].Help().Key)
				}
			}
		}
	}
}

// TestFullHelpOnceAndWhole: the ? overlay lists ↑/k once and its last
// column is not cut at 80×24.
func TestFullHelpOnceAndWhole(t *testing.T) {
	d := newDriver(t, Options{})
	d.chooseModel("digits-cnn")
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	for sc := range numScreens {
		d.keys(fmt.Sprint(int(sc)+1), "?")
		scr := d.screen()
		if n := strings.Count(scr, "↑/k"); n != 1 {
			t.Errorf("%v: ↑/k listed %d times:\n%s", sc, n, scr)
		}
		for _, want := range []string{"ctrl+c", "shift+tab", "message log"} {
			if !strings.Contains(scr, want) {
				t.Errorf("%v: the overlay lacks %q:\n%s", sc, want, scr)
			}
		}
		d.keys("?")
	}
}

// TestMessageLifetime: a notice goes after its lifetime, a data error
// when the data is fixed, "run … started" with the run; the log keeps
// every message whole.
func TestMessageLifetime(t *testing.T) {
	d := newDriver(t, Options{})
	s := d.m.s
	s.infoLife = infoLifetime
	s.flash("hello")
	if s.msg.until.IsZero() {
		t.Fatalf("a notice has no lifetime")
	}
	s.infoLife = 0
	d.send(expireMsg{seq: s.msg.seq})
	if s.message() != "" {
		t.Errorf("notice still shown after it expired: %q", s.message())
	}
	d.chooseModel("digits-cnn")
	d.keys("enter") // Plan
	long := strings.Repeat("a long reason with numbers 12345 ", 10)
	s.plan.dataErr = fmt.Errorf("%s", long)
	s.flashErrWhile(s.plan.dataErr, s.dataBad)
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if !strings.Contains(d.screen(), "! whole") {
		t.Errorf("a long error does not point to the log:\n%s", d.screen())
	}
	s.plan.dataErr = nil
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if s.message() != "" {
		t.Errorf("the data error outlived its cause: %q", s.message())
	}
	d.keys("!")
	scr := strings.Join(strings.Fields(d.screen()), " ")
	if !strings.Contains(scr, strings.TrimSpace(strings.Join(strings.Fields(long), " "))) {
		t.Errorf("the log does not hold the error whole:\n%s", d.screen())
	}
	d.keys("esc")
	if d.m.showLog {
		t.Errorf("esc did not close the log")
	}
	running := true
	s.noteWhile("run x started", func() bool { return running })
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if s.message() == "" {
		t.Fatalf("the run notice went while the run trains")
	}
	running = false
	d.send(tea.WindowSizeMsg{Width: 80, Height: 24})
	if s.message() != "" {
		t.Errorf("the run notice outlived the run: %q", s.message())
	}
}

// TestCardRendered: the model card is Markdown rendered, not source, at
// 160×48, and it scrolls.
func TestCardRendered(t *testing.T) {
	d := newDriver(t, Options{})
	d.send(tea.WindowSizeMsg{Width: 160, Height: 48})
	scr := d.screen()
	for _, raw := range []string{"**", "|---", "`"} {
		if strings.Contains(scr, raw) {
			t.Errorf("the card shows Markdown source %q:\n%s", raw, scr)
		}
	}
	if !strings.Contains(scr, "Architecture") {
		t.Errorf("the card is not shown:\n%s", scr)
	}
	ms := d.m.screens[ScreenModels].(*modelsScreen)
	if ms.card.vp.TotalLineCount() <= ms.card.vp.Height() {
		t.Skip("the card fits: nothing to scroll")
	}
	d.keys("J")
	if ms.card.vp.YOffset() == 0 {
		t.Errorf("J did not scroll the card")
	}
	d.send(tea.MouseWheelMsg{X: 150, Y: 10, Button: tea.MouseWheelUp})
	if ms.card.vp.YOffset() != 0 {
		t.Errorf("the wheel over the card did not scroll it up: offset %d", ms.card.vp.YOffset())
	}
}

func TestCommaInt(t *testing.T) {
	for _, c := range []struct {
		n    int
		want string
	}{{0, "0"}, {999, "999"}, {1000, "1,000"}, {53989, "53,989"}, {-1234, "-1,234"}, {-999, "-999"}, {1234567, "1,234,567"}} {
		if got := commaInt(c.n); got != c.want {
			t.Errorf("commaInt(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}

// TestClickTab: a click on a screen's name in the header shows it.
func TestClickTab(t *testing.T) {
	d := newDriver(t, Options{})
	header := strings.Split(d.screen(), "\n")[0]
	x := strings.Index(header, "5 Runs")
	d.send(tea.MouseClickMsg{X: x + 2, Y: 0, Button: tea.MouseLeft})
	if d.m.active != ScreenRuns {
		t.Errorf("a click on %q showed %v", "5 Runs", d.m.active)
	}
}

// TestMouseOption: the mouse is on by default, off with NoMouse, and M
// toggles it.
func TestMouseOption(t *testing.T) {
	d := newDriver(t, Options{})
	if got := d.m.View().MouseMode; got != tea.MouseModeCellMotion {
		t.Errorf("default mouse mode %v, want cell motion", got)
	}
	d.keys("M")
	if got := d.m.View().MouseMode; got != tea.MouseModeNone {
		t.Errorf("after M: mouse mode %v, want none", got)
	}
	d = newDriver(t, Options{NoMouse: true})
	if got := d.m.View().MouseMode; got != tea.MouseModeNone {
		t.Errorf("with NoMouse: mouse mode %v, want none", got)
	}
}
