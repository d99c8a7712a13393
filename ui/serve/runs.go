package serve

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	tea "charm.land/bubbletea/v2"

	"thaw/store/engine"
	"thaw/ui"
)

// RunsConfig says where the server keeps its users' files.
type RunsConfig struct {
	// Home is the folder holding each user's files: exported figures and
	// saved models, one folder per run, and plans, fetched with scp.
	// Required.
	Home string
}

// Runs are the server's side of its users' runs: each user's view of the
// engine (engine.Engine.For: ownership, the queue and the limits live
// there) and each user's files. The runs belong to the engine, not to the
// session that started them: a run goes on when its session ends, a later
// session of the same user finds it and watches it again, and
// engine.Engine.Shutdown stops every one (checkpointed, resumable). Runs
// does not change after NewRuns and is safe for concurrent use.
type Runs struct {
	eng *engine.Engine
	cfg RunsConfig
}

// NewRuns returns the server's side of the runs of eng, which must
// resolve names with a catalogue that reads no files
// (assets.Catalog.NoFiles): a user names models and data, and must not
// name the server's files. It returns an error when it does not.
func NewRuns(eng *engine.Engine, cfg RunsConfig) (*Runs, error) {
	if !eng.Catalog().NoFiles {
		return nil, errors.New("serve: runs: the engine's catalogue reads files; users must not name the server's files (set NoFiles)")
	}
	if cfg.Home == "" {
		return nil, errors.New("serve: runs: no home folder for users' files")
	}
	if err := os.MkdirAll(cfg.Home, 0o700); err != nil {
		return nil, fmt.Errorf("serve: runs: %w", err)
	}
	return &Runs{eng: eng, cfg: cfg}, nil
}

// For returns the engine as user u may use it: all that u's sessions
// reach.
func (r *Runs) For(u User) *engine.UserView {
	return r.eng.For(engine.User{ID: u.Fingerprint, Name: u.Name})
}

// AttachRequest is the message a server sends (see [Server.Send]) to the
// sessions of the owner of run, a queued run that has just started, so
// that their workbenches show it.
func AttachRequest(run *engine.UserRun) tea.Msg { return ui.AttachMsg{Run: run.Live()} }

// ---------------------------------------------------------------------
// Users' files

// userDir is the folder name of u's files: the fingerprint without its
// "SHA256:" and in base64's URL alphabet, so it is a valid file name.
func userDir(u User) string {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimPrefix(u.Fingerprint, "SHA256:"))
	if err != nil || len(raw) == 0 {
		// Not a fingerprint x/crypto made; never happens for a verified key.
		raw = []byte(u.Fingerprint)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// FileDir returns the folder where u's files of run id go (exported
// figures, saved models), creating it: <home>/<user>/<run id>/. u must
// control the run. The path is shown to the user, and the same file is
// fetched with `scp -P PORT HOST:<run id>/<file> .`.
func (r *Runs) FileDir(ctx context.Context, u User, id string) (string, error) {
	run, err := r.For(u).Owned(ctx, id)
	if err != nil {
		return "", err
	}
	dir, err := confinedDir(r.cfg.Home, userDir(u), run.ID)
	if err != nil {
		return "", fmt.Errorf("files of run %s: %w", engine.Short(run.ID), err)
	}
	return dir, nil
}

// PlanDir returns the folder of u's plan files, creating it: the Plan
// screen saves and loads there and nowhere else, and scp fetches them as
// plans/<file>.
func (r *Runs) PlanDir(u User) (string, error) {
	dir, err := confinedDir(r.cfg.Home, userDir(u), "plans")
	if err != nil {
		return "", fmt.Errorf("plan folder: %w", err)
	}
	return dir, nil
}

// PlanRoot opens u's plan folder for one save or load, checked as
// [Runs.PlanDir] checks it: a link planted as the folder is refused.
func (r *Runs) PlanRoot(u User) (*os.Root, error) {
	root, err := openConfined(r.cfg.Home, userDir(u), "plans")
	if err != nil {
		return nil, fmt.Errorf("plan folder: %w", err)
	}
	return root, nil
}

// Files is the [FileSource] of the server: a user's folder, read through
// os.Root so that no path, link or "..", leads out of it.
func (r *Runs) Files(u User) (fs.FS, error) {
	root, err := openConfined(r.cfg.Home, userDir(u))
	if err != nil {
		return nil, err
	}
	return rootFS{root.FS(), root}, nil
}

// rootFS is an os.Root's file system that closes the root when done.
type rootFS struct {
	fs.FS
	root *os.Root
}

func (r rootFS) Close() error { return r.root.Close() }
