package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"

	"thaw/store"
	"thaw/ui"
)

// modelDirs is a repeatable --model flag.
type modelDirs []string

func (d *modelDirs) String() string { return fmt.Sprint(*d) }
func (d *modelDirs) Set(v string) error {
	*d = append(*d, v)
	return nil
}

// noMouseFlag is --no-mouse: the workbench starts with the mouse off, so
// the terminal selects text as usual (M turns the mouse on).
func noMouseFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("no-mouse", false, "start with the mouse off, leaving the terminal its text selection (M toggles it)")
}

// isTerminal reports whether both stdin and stdout are terminals, so the
// workbench can draw and read keys.
func (m *Main) isTerminal() bool {
	in, ok1 := m.Stdin.(*os.File)
	out, ok2 := m.Stdout.(*os.File)
	return ok1 && ok2 && term.IsTerminal(in.Fd()) && term.IsTerminal(out.Fd())
}

// runWorkbench is thaw without a command: the workbench on this terminal,
// starting its runs through the same engine and store as thaw train.
func (m *Main) runWorkbench(ctx context.Context, args []string) error {
	fs := m.newFlags("")
	var dirs modelDirs
	fs.Var(&dirs, "model", "also list the model in `dir` (repeatable)")
	storeDir := storeFlag(fs)
	noMouse := noMouseFlag(fs)
	m.dataBudgetFlag(fs)
	fs.Usage = func() { fmt.Fprint(m.Stderr, usage) }
	if err := parse(fs, args); err != nil {
		return err
	}
	eng, st, err := m.openEngine(*storeDir)
	if err != nil {
		return err
	}
	defer st.Close()
	model := ui.New(ctx, ui.Options{ModelDirs: dirs, Backend: eng, FromEnv: true, NoMouse: *noMouse})
	p := tea.NewProgram(model, tea.WithContext(ctx), tea.WithInput(m.Stdin), tea.WithOutput(m.Stdout))
	_, err = p.Run()
	// Quitting cancels the session's runs; wait for them to stop and be
	// recorded before the store closes, saying so, since the last
	// evaluation and checkpoint can take a moment.
	if id := model.Stopping(); id != "" {
		fmt.Fprintf(m.Stderr, "stopping run %s… (thaw resume %s continues it)\n", store.Short(id), store.Short(id))
	}
	model.Wait()
	if c := model.Crash(); c != nil || errors.Is(err, tea.ErrProgramPanic) {
		return crashError(c)
	}
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// crashError writes the workbench's panic with its stack to a log file
// and returns an error that names the file: the terminal is already
// restored, and the process exits non-zero. A nil c is a panic Bubble
// Tea caught itself, whose stack it has printed.
func crashError(c *ui.Crash) error {
	if c == nil {
		return errors.New("the workbench crashed; its stack is printed above")
	}
	f, err := os.CreateTemp("", "thaw-crash-*.log")
	if err == nil {
		_, err = fmt.Fprintf(f, "thaw %s: %v\n\n%s", thawVersion(), c.Value, c.Stack)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("the workbench crashed (%v); writing its stack failed: %w\n%s", c.Value, err, c.Stack)
	}
	return fmt.Errorf("the workbench crashed (%v); its stack is in %s", c.Value, f.Name())
}
