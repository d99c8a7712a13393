package serve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"charm.land/ssh"
	"charm.land/wish/v2"
	gossh "golang.org/x/crypto/ssh"
)

// Defaults used where a [Config] field is zero.
const (
	// DefaultAddr listens on loopback only: reaching the server from
	// another machine is a choice the operator makes with --listen.
	DefaultAddr = "127.0.0.1:2222"
	// DefaultMaxUnauthenticated bounds connections that have not finished
	// authenticating, so that a flood of idle handshakes cannot exhaust
	// the server (sshd's MaxStartups "full").
	DefaultMaxUnauthenticated = 100
	// DefaultHandshakeTimeout bounds the key exchange and authentication,
	// as sshd's LoginGraceTime: long enough for a key that waits for a
	// touch or for an agent's confirmation.
	DefaultHandshakeTimeout = 60 * time.Second
	// maxAuthTries is how many authentication requests one connection
	// may make, as sshd's MaxAuthTries.
	maxAuthTries = 6
)

// Config says how a [Server] listens, whom it lets in and what it shows.
type Config struct {
	// Addr is the TCP address to listen on; "" means [DefaultAddr].
	Addr string
	// AuthorizedKeys is an OpenSSH authorized_keys file naming the keys
	// allowed in. Required. It is read again whenever it changes.
	AuthorizedKeys string
	// HostKey is the host key file, created on first use (see [HostKey]).
	// Required.
	HostKey string
	// Model builds the workbench for one session. Required. It is called
	// once per session, on that session's goroutine.
	Model func(Session) tea.Model
	// Files, when not nil, gives the files a user may fetch with scp: a
	// read-only tree, rooted at what that user may see. Nil serves none.
	Files FileSource
	// IdleTimeout ends a session that has received no input for this long;
	// zero means no limit.
	IdleTimeout time.Duration
	// MaxSession ends a session this long after it started; zero means no
	// limit.
	MaxSession time.Duration
	// MaxUnauthenticated bounds the connections still authenticating;
	// more are closed at once. Zero means [DefaultMaxUnauthenticated].
	MaxUnauthenticated int
	// EarlyDropStart and EarlyDropRate are sshd's MaxStartups start and
	// rate: once EarlyDropStart connections are authenticating, a new one
	// is dropped with probability EarlyDropRate percent, rising linearly
	// to 100 at MaxUnauthenticated. Zero means [DefaultEarlyDropStart] and
	// [DefaultEarlyDropRate]; a start above MaxUnauthenticated is lowered
	// to it.
	EarlyDropStart, EarlyDropRate int
	// MaxPerSource bounds the connections still authenticating from one
	// source: an IPv4 address, or an IPv6 prefix of V6PrefixBits. Zero
	// means [DefaultMaxPerSource] and [DefaultV6PrefixBits].
	MaxPerSource int
	V6PrefixBits int
	// VersionTimeout closes a connection whose client has not sent its
	// version line this long after connecting; zero means
	// [DefaultVersionTimeout].
	VersionTimeout time.Duration
	// HandshakeTimeout bounds key exchange plus authentication; zero
	// means [DefaultHandshakeTimeout].
	HandshakeTimeout time.Duration
	// KeepAlive is how often an authenticated client is asked to answer;
	// after three unanswered requests its connection is closed. Zero
	// means [DefaultKeepAlive]; negative sends none.
	KeepAlive time.Duration
	// Logger receives every connection, refusal and session; nil means
	// log.Default().
	Logger *log.Logger
}

// Session is what the model factory knows of one SSH session.
type Session struct {
	// Context is cancelled when the session ends, whatever the reason:
	// the client left, a time limit, or the server shutting down.
	Context context.Context
	// User is the verified key's owner.
	User User
	// Term is the client's $TERM; Width and Height its window in cells
	// when the session started (later changes arrive as
	// tea.WindowSizeMsg).
	Term          string
	Width, Height int
	// Environ is the environment the client sent, with TERM added.
	Environ []string
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr
}

// ShutdownMsg is sent to every session's program when the server is
// shutting down, just before the program is told to quit.
type ShutdownMsg struct{}

// Server serves the workbench over SSH. Build it with [New].
type Server struct {
	cfg    Config
	log    *log.Logger
	keys   *keyring
	srv    *ssh.Server
	adm    *admission // who may start authenticating
	signer gossh.Signer

	closing atomic.Bool
	mu      sync.Mutex
	live    map[*liveSession]struct{}
	wg      sync.WaitGroup // session handlers
}

// liveSession is a session whose program is running.
type liveSession struct {
	user    User
	program *tea.Program
	told    atomic.Bool // ended by the server, which says why
	reason  atomic.Value
}

// New checks cfg, reads the authorised keys and the host key (creating the
// latter when missing) and returns a server that is not yet listening.
func New(cfg Config) (*Server, error) {
	if cfg.AuthorizedKeys == "" {
		return nil, errors.New("serve: no authorized keys file given")
	}
	if cfg.HostKey == "" {
		return nil, errors.New("serve: no host key file given")
	}
	if cfg.Model == nil {
		return nil, errors.New("serve: no model factory given")
	}
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxUnauthenticated <= 0 {
		cfg.MaxUnauthenticated = DefaultMaxUnauthenticated
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.EarlyDropStart <= 0 {
		cfg.EarlyDropStart = DefaultEarlyDropStart
	}
	if cfg.EarlyDropRate <= 0 {
		cfg.EarlyDropRate = DefaultEarlyDropRate
	}
	cfg.EarlyDropRate = min(cfg.EarlyDropRate, 100)
	if cfg.MaxPerSource <= 0 {
		cfg.MaxPerSource = DefaultMaxPerSource
	}
	if cfg.V6PrefixBits <= 0 || cfg.V6PrefixBits > 128 {
		cfg.V6PrefixBits = DefaultV6PrefixBits
	}
	if cfg.VersionTimeout <= 0 {
		cfg.VersionTimeout = DefaultVersionTimeout
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	s := &Server{
		cfg:  cfg,
		log:  cfg.Logger,
		live: map[*liveSession]struct{}{},
	}
	if s.log == nil {
		s.log = log.Default()
	}
	s.adm = newAdmission(cfg, s.log)
	keys, err := newKeyring(cfg.AuthorizedKeys, s.log)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.keys = keys
	signer, created, err := HostKey(cfg.HostKey)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.signer = signer
	if created {
		s.log.Info("host key created", "file", cfg.HostKey, "fingerprint", gossh.FingerprintSHA256(signer.PublicKey()))
	}

	opts := []ssh.Option{
		wish.WithAddress(cfg.Addr),
		func(srv *ssh.Server) error { srv.AddHostKey(signer); return nil },
		wish.WithPublicKeyAuth(s.offered),
		func(srv *ssh.Server) error {
			srv.ServerConfigCallback = s.serverConfig
			srv.ConnCallback = s.admit
			srv.ConnectionFailedCallback = s.failed
			srv.HandshakeTimeout = cfg.HandshakeTimeout
			// Backstops at the connection level; the session handler
			// enforces the limits itself and says why it ends a session.
			if cfg.IdleTimeout > 0 {
				srv.IdleTimeout = cfg.IdleTimeout + time.Minute
			}
			if cfg.MaxSession > 0 {
				srv.MaxTimeout = cfg.MaxSession + time.Minute
			}
			return nil
		},
	}
	var mw []wish.Middleware
	// wish runs the last middleware first.
	mw = append(mw, s.workbench, s.session)
	if cfg.Files != nil {
		mw = append(mw, s.scp())
		opts = append(opts, wish.WithSubsystem("sftp", s.sftpSubsystem))
	}
	opts = append(opts, wish.WithMiddleware(mw...))
	srv, err := wish.NewServer(opts...)
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	s.srv = srv
	return s, nil
}

// HostKeyFingerprint returns the SHA256 fingerprint of the server's host
// key, for the operator to publish.
func (s *Server) HostKeyFingerprint() string { return gossh.FingerprintSHA256(s.signer.PublicKey()) }

// ListenAndServe listens on the configured address and serves until
// [Server.Shutdown]; it then returns nil.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return s.Serve(ln)
}

// Serve serves connections accepted on ln until [Server.Shutdown]; it then
// returns nil. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.log.Info("listening", "addr", ln.Addr().String(), "host key", s.HostKeyFingerprint())
	err := s.srv.Serve(ln)
	if errors.Is(err, ssh.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, tells every session the server is
// going away and ends it, waits for the session handlers to return (or for
// ctx), then closes every connection left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	s.mu.Unlock()
	// Shutdown with a context that is already done closes the listeners and
	// returns without waiting for the connections, which are ended below.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	_ = s.srv.Shutdown(done)

	s.mu.Lock()
	n := len(s.live)
	for ls := range s.live {
		ls.end("the server is shutting down")
		ls.program.Send(ShutdownMsg{})
		ls.program.Quit()
	}
	s.mu.Unlock()
	s.log.Info("shutting down", "sessions", n)

	waited := make(chan struct{})
	go func() { s.wg.Wait(); close(waited) }()
	var err error
	select {
	case <-waited:
	case <-ctx.Done():
		err = fmt.Errorf("serve: shutdown: %w", ctx.Err())
	}
	if cerr := s.srv.Close(); cerr != nil && err == nil && !errors.Is(cerr, net.ErrClosed) {
		err = fmt.Errorf("serve: shutdown: %w", cerr)
	}
	return err
}

// Send sends msg to the program of every session of the user with this
// key fingerprint, without waiting for them.
func (s *Server) Send(fingerprint string, msg tea.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ls := range s.live {
		if ls.user.Fingerprint == fingerprint {
			go ls.program.Send(msg)
		}
	}
}

// end marks the session as ended by the server, for the reason given; the
// first reason wins.
func (ls *liveSession) end(reason string) {
	if ls.told.CompareAndSwap(false, true) {
		ls.reason.Store(reason)
	}
}
