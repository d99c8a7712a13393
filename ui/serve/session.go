package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/ssh"
	"charm.land/wish/v2/bubbletea"

	"thaw/ui"
)

// A client's window is clamped to this many cells: a terminal larger than
// this is not a person's, and every session keeps a grid of that size.
const (
	maxWidth  = 512
	maxHeight = 256
)

// termSession is a session that passed the checks of [Server.session],
// as handed to the Bubble Tea middleware: its window is clamped, and its
// input and output are counted.
type termSession struct {
	ssh.Session
	user    User
	ctx     context.Context
	pty     ssh.Pty
	winch   chan ssh.Window
	input   atomic.Int64 // unix nanoseconds of the last byte read
	written atomic.Int64 // bytes written to the client
	live    *liveSession
}

func (ts *termSession) Pty() (ssh.Pty, <-chan ssh.Window, bool) { return ts.pty, ts.winch, true }

func clamp(w ssh.Window) ssh.Window {
	w.Width = min(max(w.Width, 1), maxWidth)
	w.Height = min(max(w.Height, 1), maxHeight)
	return w
}

// activity counts input for the idle limit.
type activity struct{ ts *termSession }

func (a activity) Read(p []byte) (int, error) {
	n, err := a.ts.Session.Read(p)
	if n > 0 {
		a.ts.input.Store(time.Now().UnixNano())
	}
	return n, err
}

// counted counts output, for the log.
type counted struct{ ts *termSession }

func (c counted) Write(p []byte) (int, error) {
	n, err := c.ts.Session.Write(p)
	c.ts.written.Add(int64(n))
	return n, err
}

// refuse ends a session with one line on its error stream.
func (s *Server) refuse(sess ssh.Session, user, why string) {
	s.log.Warn("session refused", "remote", sess.RemoteAddr().String(), "user", user, "reason", why)
	fmt.Fprintf(sess.Stderr(), "thaw serve: %s\r\n", why)
	_ = sess.Exit(1)
}

// session is the middleware that admits a session to the workbench: a
// verified user, a terminal, no command. It also ends the session when it
// idles or lasts too long, and says why.
func (s *Server) session(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			s.refuse(sess, "", "the server is shutting down")
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()

		u, ok := verifiedUser(sess)
		if !ok {
			s.refuse(sess, "", "no verified key")
			return
		}
		pty, winch, ok := sess.Pty()
		if !ok {
			s.refuse(sess, u.String(), "the workbench needs a terminal; connect with ssh -t")
			return
		}
		if len(sess.Command()) > 0 {
			s.refuse(sess, u.String(), "no commands here, only the workbench; connect without one")
			return
		}

		ctx, cancel := context.WithCancel(sess.Context())
		defer cancel()
		pty.Window = clamp(pty.Window)
		ts := &termSession{Session: sess, user: u, ctx: ctx, pty: pty, winch: make(chan ssh.Window, 1)}
		ts.input.Store(time.Now().UnixNano())
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case w, ok := <-winch:
					if !ok {
						return
					}
					select {
					case ts.winch <- clamp(w):
					case <-ctx.Done():
						return
					}
				}
			}
		}()

		start := time.Now()
		s.log.Info("session", "user", u.Name, "fingerprint", u.Fingerprint, "remote", sess.RemoteAddr().String(),
			"term", pty.Term, "width", pty.Window.Width, "height", pty.Window.Height)
		next(ts)
		cancel()

		code := 0
		if ls := ts.live; ls != nil && ls.told.Load() {
			reason, _ := ls.reason.Load().(string)
			fmt.Fprintf(sess, "\r\nthaw serve: session ended: %s.\r\n", reason)
			if reason != "the server is shutting down" {
				code = 1
			}
		}
		_ = sess.Exit(code)
		s.log.Info("session end", "user", u.Name, "fingerprint", u.Fingerprint, "remote", sess.RemoteAddr().String(),
			"duration", time.Since(start).Round(time.Millisecond), "bytes", ts.written.Load())
	}
}

// workbench is the middleware that runs a session's program: wish's
// bubbletea middleware, but logging to the server's logger, and a client
// that goes away (the session's context ends under the program) is the
// INFO it is, not an ERROR. Window changes reach the program until the
// session ends.
func (s *Server) workbench(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		p := s.program(sess)
		if p == nil {
			next(sess)
			return
		}
		_, winch, _ := sess.Pty()
		ctx, cancel := context.WithCancel(sess.Context())
		defer cancel()
		go func() {
			for {
				select {
				case <-ctx.Done():
					p.Quit()
					return
				case w, ok := <-winch:
					if !ok {
						return
					}
					p.Send(tea.WindowSizeMsg{Width: w.Width, Height: w.Height})
				}
			}
		}()
		final, err := p.Run()
		ended := errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
		crashed, _ := final.(interface{ Crash() *ui.Crash })
		switch {
		case crashed != nil && crashed.Crash() != nil:
			// A panic ends this session only; the stack goes to the log.
			c := crashed.Crash()
			s.log.Error("session crashed", "remote", sess.RemoteAddr().String(), "user", sess.User(),
				"panic", fmt.Sprint(c.Value), "stack", string(c.Stack))
			fmt.Fprint(sess.Stderr(), "thaw serve: this session crashed; the server logged it\r\n")
		case errors.Is(err, tea.ErrProgramPanic):
			s.log.Error("session crashed", "remote", sess.RemoteAddr().String(), "err", err)
			fmt.Fprint(sess.Stderr(), "thaw serve: this session crashed; the server logged it\r\n")
		case err == nil:
		case errors.Is(err, tea.ErrProgramKilled) && ended:
			s.log.Info("client gone", "remote", sess.RemoteAddr().String())
		default:
			s.log.Error("session program", "remote", sess.RemoteAddr().String(), "err", err)
		}
		// Kill restores the terminal if the program did not end itself.
		p.Kill()
		cancel()
		next(sess)
	}
}

// program builds the Bubble Tea program of one session: a fresh model
// from the factory, the session's terminal for input and output, and no
// signal handling (signals are the server's).
func (s *Server) program(sess ssh.Session) *tea.Program {
	ts, ok := sess.(*termSession)
	if !ok {
		return nil
	}
	m := s.cfg.Model(Session{
		Context:    ts.ctx,
		User:       ts.user,
		Term:       ts.pty.Term,
		Width:      ts.pty.Window.Width,
		Height:     ts.pty.Window.Height,
		Environ:    append(ts.Environ(), "TERM="+ts.pty.Term),
		RemoteAddr: ts.RemoteAddr(),
	})
	if m == nil {
		return nil
	}
	opts := append(bubbletea.MakeOptions(ts),
		tea.WithInput(activity{ts}),
		tea.WithOutput(counted{ts}),
		tea.WithContext(ts.ctx),
		tea.WithoutSignalHandler(),
	)
	p := tea.NewProgram(m, opts...)
	ls := &liveSession{user: ts.user, program: p}
	s.mu.Lock()
	if s.closing.Load() {
		// Shutdown has told the sessions it knew of; this one came too late.
		s.mu.Unlock()
		fmt.Fprint(ts.Stderr(), "thaw serve: the server is shutting down\r\n")
		return nil
	}
	ts.live = ls
	s.live[ls] = struct{}{}
	s.mu.Unlock()
	go func() {
		<-ts.ctx.Done()
		s.mu.Lock()
		delete(s.live, ls)
		s.mu.Unlock()
	}()
	go s.watch(ts, ls)
	return p
}

// watch ends a session that has had no input for the idle limit, or has
// lasted the maximum.
func (s *Server) watch(ts *termSession, ls *liveSession) {
	idle, maxDur := s.cfg.IdleTimeout, s.cfg.MaxSession
	if idle <= 0 && maxDur <= 0 {
		return
	}
	start := time.Now()
	period := time.Second
	for _, d := range []time.Duration{idle, maxDur} {
		if d > 0 && d/10 < period {
			period = max(d/10, 10*time.Millisecond)
		}
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ts.ctx.Done():
			return
		case now := <-t.C:
			var reason string
			switch {
			case maxDur > 0 && now.Sub(start) >= maxDur:
				reason = fmt.Sprintf("it reached the maximum session length of %v", maxDur)
			case idle > 0 && now.Sub(time.Unix(0, ts.input.Load())) >= idle:
				reason = fmt.Sprintf("no input for %v", idle)
			default:
				continue
			}
			ls.end(reason)
			s.log.Info("session limit", "user", ts.user.Name, "fingerprint", ts.user.Fingerprint, "reason", reason)
			ls.program.Quit()
			return
		}
	}
}

var _ io.Reader = activity{}
