package serve

import (
	"context"
	"testing"

	tea "charm.land/bubbletea/v2"

	"thaw/store"
	"thaw/store/engine"
	"thaw/ui"
)

// panicky panics when the Runs screen lists runs.
type panicky struct{ *engine.Engine }

func (panicky) List(context.Context, engine.RunFilter) ([]engine.RunView, error) {
	panic("runs table exploded")
}

// TestSessionPanicEndsThatSessionOnly: a panic in one session's workbench
// ends that session, with the panic and its stack in the server's log;
// the server goes on serving the next session.
func TestSessionPanicEndsThatSessionOnly(t *testing.T) {
	st, err := store.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	eng := engine.New(st, nil)
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, func(c *Config) {
		c.Model = func(s Session) tea.Model {
			return ui.New(s.Context, ui.Options{Backend: panicky{eng}, NoProbes: true})
		}
	})
	term := openTerminal(t, ts.mustDial(t, alice), 100, 30)
	term.waitScreen(t, "mnist8-mlp")
	term.stdin.Write([]byte("5"))
	term.wait(t)
	ts.waitLog(t, "session crashed", "runs table exploded", "panicky")

	// The server is still there for the next session.
	again := openTerminal(t, ts.mustDial(t, alice), 100, 30)
	again.waitScreen(t, "mnist8-mlp")
}
