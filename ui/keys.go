package ui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
)

// KeyMap is the workbench's one key map: the keys every screen shares and
// each screen's own. A screen lists the bindings it uses in its Keys
// method; TestKeysUnambiguous walks every screen and fails when one key
// means two things on one screen.
type KeyMap struct {
	// Global: work on every screen unless a text field has focus (then
	// only Back, Forward, Cycle and ForceQuit reach the frame).
	Quit      key.Binding
	ForceQuit key.Binding
	Help      key.Binding
	Back      key.Binding
	Forward   key.Binding
	Cycle     key.Binding
	CycleBack key.Binding
	Jump      [numScreens]key.Binding

	// Lists and tables.
	Up       key.Binding
	Down     key.Binding
	PageUp   key.Binding
	PageDown key.Binding

	// Models.
	Filter    key.Binding
	OpenModel key.Binding

	// Blocks.
	Toggle      key.Binding
	FreezeBelow key.Binding
	ThawAll     key.Binding
	HeadOnly    key.Binding
	Sweep       key.Binding
	TakeDepth   key.Binding

	// Plan.
	Preset      key.Binding
	AddStage    key.Binding
	RemoveStage key.Binding
	StageUp     key.Binding
	StageDown   key.Binding
	Edit        key.Binding
	Left        key.Binding
	Right       key.Binding
	LRFind      key.Binding
	SavePlan    key.Binding
	LoadPlan    key.Binding

	// Confirmations and overlays.
	Yes key.Binding
	No  key.Binding
}

// DefaultKeyMap returns the workbench's keys.
func DefaultKeyMap() KeyMap {
	k := KeyMap{
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "all keys")),
		Back:      key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Forward:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next")),
		Cycle:     key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next screen")),
		CycleBack: key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous screen")),

		Up:       key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:     key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:   key.NewBinding(key.WithKeys("pgup"), key.WithHelp("pgup", "page up")),
		PageDown: key.NewBinding(key.WithKeys("pgdown"), key.WithHelp("pgdn", "page down")),

		Filter:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		OpenModel: key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "open a model folder")),

		Toggle:      key.NewBinding(key.WithKeys("space"), key.WithHelp("space", "freeze/thaw block")),
		FreezeBelow: key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "freeze below cursor")),
		ThawAll:     key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "thaw all")),
		HeadOnly:    key.NewBinding(key.WithKeys("h"), key.WithHelp("h", "head only")),
		Sweep:       key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "freeze-depth sweep")),
		TakeDepth:   key.NewBinding(key.WithKeys("t"), key.WithHelp("t", "take the sweep row at the cursor")),

		Preset:      key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "next preset")),
		AddStage:    key.NewBinding(key.WithKeys("+", "="), key.WithHelp("+", "add stage")),
		RemoveStage: key.NewBinding(key.WithKeys("-", "delete"), key.WithHelp("-", "remove stage")),
		StageUp:     key.NewBinding(key.WithKeys("K", "shift+up"), key.WithHelp("K", "move stage up")),
		StageDown:   key.NewBinding(key.WithKeys("J", "shift+down"), key.WithHelp("J", "move stage down")),
		Edit:        key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "edit field")),
		Left:        key.NewBinding(key.WithKeys("left"), key.WithHelp("←", "previous choice")),
		Right:       key.NewBinding(key.WithKeys("right"), key.WithHelp("→", "next choice")),
		LRFind:      key.NewBinding(key.WithKeys("l"), key.WithHelp("l", "LR finder")),
		SavePlan:    key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "save plan")),
		LoadPlan:    key.NewBinding(key.WithKeys("L"), key.WithHelp("L", "load plan")),

		Yes: key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "yes")),
		No:  key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "no")),
	}
	for i := range numScreens {
		n := string(rune('1' + i))
		k.Jump[i] = key.NewBinding(key.WithKeys(n), key.WithHelp(n, Screen(i).String()))
	}
	return k
}

// global lists the frame's bindings, which every screen shares.
func (k KeyMap) global() []key.Binding {
	b := []key.Binding{k.Quit, k.ForceQuit, k.Help, k.Back, k.Forward, k.Cycle, k.CycleBack}
	return append(b, k.Jump[:]...)
}

// jumpHelp is one help entry standing for the number keys.
func (k KeyMap) jumpHelp() key.Binding {
	return key.NewBinding(key.WithKeys("1", "2", "3", "4", "5"), key.WithHelp("1-5", "screens"))
}

// helpKeys adapts a screen's bindings and the frame's to help.KeyMap.
type helpKeys struct {
	short []key.Binding
	full  [][]key.Binding
}

func (h helpKeys) ShortHelp() []key.Binding  { return h.short }
func (h helpKeys) FullHelp() [][]key.Binding { return h.full }

// textInput returns a text field whose keys do not collide with the
// frame's: Bubbles' textinput accepts a suggestion with tab, which the
// workbench keeps for cycling screens.
func textInput(prompt, placeholder string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = prompt
	ti.Placeholder = placeholder
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
