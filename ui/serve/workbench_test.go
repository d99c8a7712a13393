package serve

import (
	"testing"

	tea "charm.land/bubbletea/v2"

	"thaw/assets"
	"thaw/ui"
)

// TestWorkbenchOverSSH: an authorised key gets a terminal and the real
// workbench's Models screen, listing the zoo.
func TestWorkbenchOverSSH(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, func(c *Config) {
		c.Model = func(s Session) tea.Model { return ui.New(s.Context, ui.Options{}) }
	})
	tm := openTerminal(t, ts.mustDial(t, alice), 120, 40)
	want := append([]string{"Models"}, assets.ZooModels(assets.Zoo())...)
	if len(want) < 3 {
		t.Fatalf("the zoo lists %d models", len(want)-1)
	}
	s := tm.waitScreen(t, want...)
	t.Logf("screen:\n%s", s)

	tm.stdin.Write([]byte("q"))
	if code := tm.wait(t); code != 0 {
		t.Errorf("exit status %d after q, want 0; screen:\n%s", code, tm.screen())
	}
}
