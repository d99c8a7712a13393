package serve

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"

	"thaw/ui"
)

// Workbench returns the model factory of a server whose runs are runs:
// every session gets its own workbench (ui.New), bound to the session's
// context, whose backend is the session's user's view of the engine (the
// runs that user may see, changes only to their own, new runs within the
// limits and owned by them), and whose exported figures go to the user's
// own files, fetched with scp. A user who comes back while a run of
// theirs trains is shown that run at once, and one who arrives while a run
// of theirs is being prepared (started in another session, or leaving the
// queue) is shown it as soon as it starts.
//
// opts is each session's starting point; its Backend and ExportDir are
// replaced. NoColor is set when the client sent NO_COLOR.
func Workbench(runs *Runs, opts ui.Options) func(Session) tea.Model {
	return func(s Session) tea.Model {
		o := opts
		o.FromEnv = false // the server's environment is not the client's
		// The user names models and data through the engine's catalogue,
		// which reads no files (see NewRuns), and lists no folders.
		o.ModelDirs = nil
		o.RunsOutlive = true
		// Plans are saved and loaded in the user's own folder only, opened
		// and checked again for every save and load.
		o.PlanDir = filepath.Join(runs.cfg.Home, userDir(s.User), "plans")
		if _, err := runs.PlanDir(s.User); err != nil {
			log.Warn("plan folder", "user", s.User.Name, "fingerprint", s.User.Fingerprint, "err", err)
		}
		o.PlanRoot = func() (*os.Root, error) { return runs.PlanRoot(s.User) }
		if slices.ContainsFunc(s.Environ, func(e string) bool { return strings.HasPrefix(e, "NO_COLOR=") && e != "NO_COLOR=" }) {
			o.NoColor = true
		}
		view := runs.For(s.User)
		o.Backend = view
		o.ExportDir = func(ctx context.Context, id string) (string, string, error) {
			dir, err := runs.FileDir(ctx, s.User, id)
			// The user fetches it by this name: scp -P PORT HOST:<run>/<file> .
			return dir, filepath.Base(dir), err
		}
		m := ui.New(s.Context, o)
		var attach tea.Cmd
		switch l, starting := view.Arrive(); {
		case l != nil:
			attach = func() tea.Msg { return ui.AttachMsg{Run: l} }
		case starting != nil:
			// Asked in the same breath as Attach's, so no run falls
			// between the two; it ends with the start or the session.
			attach = func() tea.Msg {
				select {
				case l, ok := <-starting:
					if ok {
						return ui.AttachMsg{Run: l}
					}
				case <-s.Context.Done():
				}
				return nil
			}
		}
		return &withInit{Model: m, init: attach}
	}
}

// withInit is a workbench with one more command at start. It hands the
// workbench each run to attach to once: a run that leaves the queue as
// the session arrives comes both from that command and from the server
// (AttachRequest).
type withInit struct {
	tea.Model
	init     tea.Cmd
	attached string // the id of the last run handed over
}

func (m *withInit) Init() tea.Cmd { return tea.Batch(m.Model.Init(), m.init) }

func (m *withInit) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if a, ok := msg.(ui.AttachMsg); ok {
		if a.Run == nil || a.Run.ID == m.attached {
			return m, nil
		}
		m.attached = a.Run.ID
	}
	var cmd tea.Cmd
	m.Model, cmd = m.Model.Update(msg)
	return m, cmd
}
