package ui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	"github.com/charmbracelet/x/ansi"
)

// KeyMap holds every key binding of the workbench: the frame's and the
// lists' keys, which every screen shares, and one key map per screen. A
// screen lists the bindings it offers in its Keys method;
// TestKeysUnambiguous walks every screen, in each of its states, and fails
// when one key means two things there, and TestKeysAllListed fails when a
// binding here is offered by no screen.
type KeyMap struct {
	// The frame: these work on every screen unless a text field has focus
	// or an overlay is open (then only Cycle, CycleBack and ForceQuit
	// reach the frame).
	Quit      key.Binding
	ForceQuit key.Binding
	Help      key.Binding
	Log       key.Binding // the message log
	Mouse     key.Binding // mouse on and off
	Back      key.Binding
	Forward   key.Binding
	Cycle     key.Binding
	CycleBack key.Binding
	Jump      [numScreens]key.Binding

	// Every list and table that scrolls.
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding
	Top      key.Binding
	Bottom   key.Binding

	// Confirmations.
	Yes key.Binding
	No  key.Binding

	Models ModelsKeys
	Blocks BlocksKeys
	Plan   PlanKeys
	Train  TrainKeys
	Branch BranchKeys
	Chart  ChartKeys
	Runs   RunsKeys
}

// ModelsKeys are the Models screen's keys.
type ModelsKeys struct {
	Filter, OpenModel, CardDown, CardUp key.Binding
}

// BlocksKeys are the Blocks screen's keys.
type BlocksKeys struct {
	Toggle, FreezeBelow, ThawAll, HeadOnly, Sweep, TakeDepth, ExportSweep key.Binding
}

// PlanKeys are the Plan screen's keys.
type PlanKeys struct {
	Preset, AddStage, RemoveStage, StageUp, StageDown, Edit, Left, Right,
	LRFind, SavePlan, LoadPlan key.Binding
}

// TrainKeys are the Train screen's keys beside its charts'.
type TrainKeys struct {
	Pause, Next, Stop, Export, Branch, Confusion key.Binding
	// Metrics cycles what the chart under the loss shows: accuracy, or a
	// per-block diagnostic.
	Metrics key.Binding
}

// BranchKeys are the keys of Train's branch picker.
type BranchKeys struct {
	Point, Continuation, Start, Cancel key.Binding
}

// ChartKeys are the keys of a run's charts, live on Train or stored on
// Runs.
type ChartKeys struct {
	LogY, Smooth, Zoom, Left, Right, Outliers key.Binding
}

// list is the chart keys in the order help shows them; ← stands for both
// arrows.
func (k ChartKeys) list() []key.Binding {
	return []key.Binding{k.Smooth, k.LogY, k.Outliers, k.Zoom, k.Left}
}

// RunsKeys are the Runs screen's keys.
type RunsKeys struct {
	Open, Mark, Overlay, Align, Delete, Export, Resume, Filter, Sort,
	Tags, Rename, Apply, BackToList key.Binding
	// Sweep opens the sweep of the run under the cursor on the Blocks
	// screen's sweep panel, which follows it as its tasks run anywhere.
	Sweep key.Binding
}

// DefaultKeyMap returns the workbench's keys.
func DefaultKeyMap() KeyMap {
	b := func(help, desc string, keys ...string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
	}
	k := KeyMap{
		Quit:      b("q", "quit", "q"),
		ForceQuit: b("ctrl+c", "quit now", "ctrl+c"),
		Help:      b("?", "keys", "?"),
		Log:       b("!", "message log", "!"),
		Mouse:     b("M", "mouse on/off", "M"),
		Back:      b("esc", "back", "esc"),
		Forward:   b("enter", "next", "enter"),
		Cycle:     b("tab", "next screen", "tab"),
		CycleBack: b("shift+tab", "previous screen", "shift+tab"),

		Up:       b("↑/k", "up", "up", "k"),
		Down:     b("↓/j", "down", "down", "j"),
		PageUp:   b("pgup", "page up", "pgup"),
		PageDown: b("pgdn", "page down", "pgdown"),
		Top:      b("g/home", "first", "g", "home"),
		Bottom:   b("G/end", "last", "G", "end"),

		Yes: b("y", "yes", "y"),
		No:  b("n", "no", "n"),

		Models: ModelsKeys{
			Filter:    b("/", "filter", "/"),
			OpenModel: b("o", "open a model folder", "o"),
			CardDown:  b("J", "scroll card", "J"),
			CardUp:    b("K", "scroll card up", "K"),
		},
		Blocks: BlocksKeys{
			Toggle:      b("space", "freeze/thaw", "space"),
			FreezeBelow: b("f", "freeze below", "f"),
			ThawAll:     b("a", "thaw all", "a"),
			HeadOnly:    b("h", "head only", "h"),
			Sweep:       b("w", "depth sweep", "w"),
			TakeDepth:   b("t", "take the sweep's pick", "t"),
			ExportSweep: b("e", "export the sweep's PNG", "e"),
		},
		Plan: PlanKeys{
			Preset:      b("p", "preset", "p"),
			AddStage:    b("+", "add stage", "+", "="),
			RemoveStage: b("-", "remove stage", "-", "delete"),
			StageUp:     b("K", "move stage up", "K", "shift+up"),
			StageDown:   b("J", "move stage down", "J", "shift+down"),
			Edit:        b("e", "edit", "e"),
			Left:        b("←", "previous choice", "left"),
			Right:       b("→", "next choice", "right"),
			LRFind:      b("l", "LR finder", "l"),
			SavePlan:    b("s", "save plan", "s"),
			LoadPlan:    b("L", "load plan", "L"),
		},
		Train: TrainKeys{
			Pause:     b("p", "pause/resume", "p"),
			Next:      b("n", "next stage", "n"),
			Stop:      b("x", "stop", "x"),
			Export:    b("e", "export", "e"),
			Branch:    b("b", "branch", "b"),
			Confusion: b("c", "confusion matrix", "c"),
			Metrics:   b("m", "chart: acc/grad/Δw/drift", "m"),
		},
		Branch: BranchKeys{
			Point:        b("↑/↓", "stage boundary", "up", "down"),
			Continuation: b("←/→", "continuation", "left", "right"),
			Start:        b("enter", "start branch", "enter"),
			Cancel:       b("esc", "cancel", "esc"),
		},
		Chart: ChartKeys{
			LogY:     b("y", "log y", "y"),
			Smooth:   b("s", "smoothing", "s"),
			Zoom:     b("z", "zoom to stage", "z"),
			Left:     b("←/→", "inspect", "left"),
			Right:    b("→", "inspect right", "right"),
			Outliers: b("i", "outliers in y range", "i"),
		},
		Runs: RunsKeys{
			Open:       b("enter", "open curves", "enter"),
			Mark:       b("space", "mark", "space"),
			Overlay:    b("o", "overlay marked", "o"),
			Align:      b("a", "align by step/stage", "a"),
			Delete:     b("d", "delete", "d"),
			Export:     b("e", "export marked PNG", "e"),
			Resume:     b("r", "resume", "r"),
			Filter:     b("/", "filter", "/"),
			Sort:       b("s", "sort", "s"),
			Tags:       b("t", "tags", "t"),
			Rename:     b("R", "rename", "R"),
			Apply:      b("enter", "apply", "enter"),
			BackToList: b("esc", "back to the list", "esc"),
			Sweep:      b("W", "follow its sweep", "W"),
		},
	}
	for i := range numScreens {
		n := string(rune('1' + i))
		k.Jump[i] = b(n, Screen(i).String(), n)
	}
	return k
}

// global lists the frame's bindings, which every screen shares.
func (k KeyMap) global() []key.Binding {
	b := []key.Binding{k.Quit, k.ForceQuit, k.Help, k.Log, k.Mouse, k.Back, k.Forward, k.Cycle, k.CycleBack}
	return append(b, k.Jump[:]...)
}

// listKeys are the keys of a list that scrolls.
func (k KeyMap) listKeys() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.PageUp, k.PageDown, k.Top, k.Bottom}
}

// jumpHelp is one help entry standing for the number keys.
func (k KeyMap) jumpHelp() key.Binding {
	return key.NewBinding(key.WithKeys("1", "2", "3", "4", "5"), key.WithHelp("1-5", "screens"))
}

// pickHelp is the help entry of a picker's arrows (the Plan's data
// picker): ↑ and ↓ only, since j and k type into its field.
func (k KeyMap) pickHelp() key.Binding {
	return key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "choose"))
}

// fieldWidth sizes ti to the room left of w columns once its prompt and
// indent columns are drawn, and never below its placeholder's width.
func fieldWidth(ti *textinput.Model, w, indent int) {
	ti.SetWidth(max(w-indent-ansi.StringWidth(ti.Prompt)-1, ansi.StringWidth(ti.Placeholder), 1))
}

// textInput returns a text field whose keys do not collide with the
// frame's: Bubbles' textinput accepts a suggestion with tab, which the
// workbench keeps for cycling screens.
func textInput(prompt, placeholder string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = prompt
	ti.Placeholder = placeholder
	// Without a width, Bubbles draws only the placeholder's first
	// character; a screen widens the field to its room when it draws it
	// (fieldWidth).
	ti.SetWidth(ansi.StringWidth(placeholder))
	km := textinput.DefaultKeyMap()
	km.AcceptSuggestion = key.NewBinding(key.WithKeys("ctrl+y"))
	km.NextSuggestion = key.NewBinding(key.WithDisabled())
	km.PrevSuggestion = key.NewBinding(key.WithDisabled())
	ti.KeyMap = km
	ti.ShowSuggestions = false
	// A steady cursor: a blinking one redraws the screen twice a second
	// for nothing.
	st := ti.Styles()
	st.Cursor.Blink = false
	ti.SetStyles(st)
	return ti
}
