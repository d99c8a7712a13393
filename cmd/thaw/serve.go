package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"charm.land/log/v2"

	"thaw/assets"
	"thaw/store/engine"
	"thaw/ui"
	"thaw/ui/serve"
)

// serveFlags are thaw serve's flags.
type serveFlags struct {
	listen, authorizedKeys, hostKey, operator string
	store                                     storeRef
	maxPerUser, maxTotal, maxUnauth           int
	idle, maxSession                          time.Duration
	share, noResumeStopped, noMouse           bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.listen, "listen", serve.DefaultAddr, "`address` to listen on; loopback unless told otherwise")
	fs.StringVar(&f.authorizedKeys, "authorized-keys", "", "OpenSSH authorized_keys `file` of the keys let in, re-read when it changes (default ~/.ssh/authorized_keys)")
	fs.StringVar(&f.hostKey, "host-key", "", "host key `file`, an ed25519 key created on first start (default <store>/serve/host_ed25519)")
	fs.IntVar(&f.maxPerUser, "max-runs-per-user", 2, "runs one user trains at once; more are queued (0: no limit)")
	fs.IntVar(&f.maxTotal, "max-runs", runtime.GOMAXPROCS(0), "runs trained at once in all; more are queued (0: no limit)")
	fs.IntVar(&f.maxUnauth, "max-unauthenticated", serve.DefaultMaxUnauthenticated, "connections allowed to be still authenticating")
	fs.DurationVar(&f.idle, "idle-timeout", 30*time.Minute, "end a session after this long without input (0: never)")
	fs.DurationVar(&f.maxSession, "max-session", 12*time.Hour, "end a session this long after it started (0: never)")
	fs.BoolVar(&f.share, "share-runs", false, "let every user view every run (control stays with its owner)")
	fs.BoolVar(&f.noResumeStopped, "no-resume-stopped", false, "leave stopped the runs that an earlier server's shutdown stopped (by default they resume, in their owners' queues)")
	fs.BoolVar(&f.noMouse, "no-mouse", false, "start every session with the mouse off, leaving the client's terminal its text selection (M toggles it)")
	fs.StringVar(&f.operator, "operator", "", "key `fingerprint` (SHA256:…) whose sessions own the runs started outside the server, as by thaw train")
}

// runServe is thaw serve: the workbench over SSH until the first SIGINT or
// SIGTERM (ctx), which stops the runs, checkpointed and resumable; main
// restores the default handlers then, so a second signal ends the process
// at once.
func (m *Main) runServe(ctx context.Context, args []string) error {
	var f serveFlags
	fs := m.newFlags("serve")
	f.register(fs)
	storeDir := storeFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	f.store = *storeDir
	if f.maxPerUser < 0 || f.maxTotal < 0 || f.maxUnauth < 0 || f.idle < 0 || f.maxSession < 0 {
		return usagef("serve: limits and durations must be 0 or more")
	}
	if f.operator != "" && !strings.HasPrefix(f.operator, "SHA256:") {
		return usagef("serve: --operator %q: want a key fingerprint as ssh-keygen -lf prints it (SHA256:…)", f.operator)
	}
	if f.authorizedKeys == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return usagef("serve: no --authorized-keys given and no home folder: %v", err)
		}
		f.authorizedKeys = filepath.Join(home, ".ssh", "authorized_keys")
	}

	lg := log.NewWithOptions(m.Stderr, log.Options{ReportTimestamp: true, Prefix: "thaw serve"})
	// wish's middleware logs through the package's default logger.
	log.SetDefault(lg)

	// Users name models and data; the server's files are not theirs to name.
	cat := &assets.Catalog{Zoo: m.Zoo, NoFiles: true}
	st, err := openStore(f.store)
	if err != nil {
		return err
	}
	closeStore := func() error {
		if st == nil {
			return nil
		}
		err := st.Close()
		st = nil
		return err
	}
	defer closeStore()
	if f.hostKey == "" {
		f.hostKey = filepath.Join(st.Dir(), "serve", "host_ed25519")
	}
	eng := engine.New(st, cat, engine.WithVersion(thawVersion()), engine.WithLogger(slog.New(lg)),
		engine.WithLimits(engine.Limits{MaxPerUser: f.maxPerUser, MaxTotal: f.maxTotal, Share: f.share, Operator: f.operator}))
	runs, err := serve.NewRuns(eng, serve.RunsConfig{Home: filepath.Join(st.Dir(), "serve", "files")})
	if err != nil {
		return err
	}
	// Runs of the server's users that an earlier server's shutdown stopped
	// resume, and those it left queued join the queue.
	if !f.noResumeStopped {
		if _, err := eng.RequeueStopped(ctx); err != nil {
			return fmt.Errorf("serve: %w", err)
		}
	}
	if err := eng.LoadQueue(ctx); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv, err := serve.New(serve.Config{
		Addr:               f.listen,
		AuthorizedKeys:     f.authorizedKeys,
		HostKey:            f.hostKey,
		Model:              serve.Workbench(runs, ui.Options{NoMouse: f.noMouse}),
		Files:              runs.Files,
		IdleTimeout:        f.idle,
		MaxSession:         f.maxSession,
		MaxUnauthenticated: f.maxUnauth,
		Logger:             lg,
	})
	if err != nil {
		eng.Shutdown(context.Background())
		return usageError{err}
	}
	eng.OnQueuedStart(func(r *engine.UserRun) { srv.Send(r.Owner, serve.AttachRequest(r)) })
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		eng.Shutdown(context.Background())
		return fmt.Errorf("serve: %w", err)
	}
	if m.serveReady != nil {
		m.serveReady(ln.Addr(), srv.HostKeyFingerprint())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
		lg.Info("signal: shutting down; a second signal exits at once")
	case serveErr = <-served:
		lg.Error("server stopped", "err", serveErr)
	}

	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err = srv.Shutdown(sctx)
	cancel()
	// A run stops within one batch; a slow batch of a big model on a busy
	// machine takes a few seconds.
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err = errors.Join(err, eng.Shutdown(rctx))
	cancel()
	err = errors.Join(serveErr, err, closeStore())
	if err == nil {
		lg.Info("stopped: runs checkpointed, store closed")
	}
	return err
}
