package serve

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/log/v2"
	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Defaults of pre-authentication admission, used where a [Config] field
// is zero. They follow sshd's: MaxStartups 10:30:100, LoginGraceTime,
// ClientAliveInterval and ClientAliveCountMax, PerSourceNetBlockSize.
const (
	// DefaultMaxPerSource bounds the connections one source (an IPv4
	// address, an IPv6 /64) may have still authenticating. It is below
	// DefaultEarlyDropStart, so one source alone never makes the server
	// drop anyone else's connections.
	DefaultMaxPerSource = 8
	// DefaultEarlyDropStart is how many connections may be authenticating
	// before new ones are dropped at random, with probability
	// DefaultEarlyDropRate percent rising linearly to 100% at
	// MaxUnauthenticated (sshd's MaxStartups start:rate:full).
	DefaultEarlyDropStart = 32
	DefaultEarlyDropRate  = 30
	// DefaultVersionTimeout is how long a client may take to send its
	// version line, the first thing every SSH client sends at once: a
	// connection that sends nothing holds a slot this long, not the whole
	// login grace.
	DefaultVersionTimeout = 5 * time.Second
	// DefaultKeepAlive is how often an authenticated client that has
	// sent nothing is asked to answer; after keepAliveMax unanswered
	// requests its connection is closed.
	DefaultKeepAlive = 15 * time.Second
	keepAliveMax     = 3
	// DefaultV6PrefixBits groups IPv6 sources: one host usually holds a
	// whole /64.
	DefaultV6PrefixBits = 64
	// refusalWarnEvery bounds the refusal warnings in the log to one in
	// this interval; each says how many were refused since the last.
	refusalWarnEvery = 10 * time.Second
)

// Reasons a connection is refused before it authenticates.
const (
	reasonClosing   = "shutting down"
	reasonPerSource = "too many connections from this source still authenticating"
	reasonEarlyDrop = "connections still authenticating are past the soft limit: dropped at random"
	reasonFull      = "too many connections still authenticating"
)

// AdmissionStats counts connections since the server started: those let in
// to authenticate, and those refused or cut off before authenticating, by
// reason.
type AdmissionStats struct {
	Admitted  uint64 // let in to authenticate
	PerSource uint64 // refused: their source had MaxPerSource authenticating
	EarlyDrop uint64 // dropped at random past EarlyDropStart
	Full      uint64 // refused: MaxUnauthenticated were authenticating
	Closing   uint64 // refused: the server was shutting down
	Silent    uint64 // closed: no version line within VersionTimeout
}

// admission decides which new connections may start authenticating:
// at most perSource per source, at most full in all, and past start a
// rising share dropped at random, so that a flood from a few sources
// cannot keep others out.
type admission struct {
	perSource         int
	v6Bits            int
	start, rate, full int
	rand              func() float64 // in [0, 1); tests replace it
	log               *log.Logger

	mu       sync.Mutex
	total    int
	bySource map[netip.Prefix]int
	stats    AdmissionStats
	unwarned AdmissionStats // refusals since the last warning
	lastWarn time.Time
}

func newAdmission(cfg Config, lg *log.Logger) *admission {
	a := &admission{
		perSource: cfg.MaxPerSource,
		v6Bits:    cfg.V6PrefixBits,
		start:     cfg.EarlyDropStart,
		rate:      cfg.EarlyDropRate,
		full:      cfg.MaxUnauthenticated,
		rand:      rand.Float64,
		log:       lg,
		bySource:  map[netip.Prefix]int{},
	}
	a.start = min(a.start, a.full)
	return a
}

// source is the group addr counts against: the IPv4 address, or its IPv6
// prefix. An address that is not IP (a test's pipe) is one group.
func (a *admission) source(addr net.Addr) netip.Prefix {
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return netip.Prefix{}
	}
	ip := ap.Addr().Unmap().WithZone("")
	bits := 32
	if ip.Is6() {
		bits = a.v6Bits
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}

// take admits a connection from addr, returning the function that gives
// its place back (safe to call more than once), or the reason it is
// refused.
func (a *admission) take(addr net.Addr) (release func(), reason string) {
	src := a.source(addr)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.bySource[src] >= a.perSource:
		reason = reasonPerSource
		a.stats.PerSource++
		a.unwarned.PerSource++
	case a.total >= a.full:
		reason = reasonFull
		a.stats.Full++
		a.unwarned.Full++
	case a.total >= a.start && a.drop():
		reason = reasonEarlyDrop
		a.stats.EarlyDrop++
		a.unwarned.EarlyDrop++
	}
	if reason != "" {
		a.warn(addr, reason)
		return nil, reason
	}
	a.total++
	a.bySource[src]++
	a.stats.Admitted++
	return sync.OnceFunc(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.total--
		if a.bySource[src]--; a.bySource[src] <= 0 {
			delete(a.bySource, src)
		}
	}), ""
}

// drop decides at random whether to drop a connection while a.total is
// between start and full, as sshd does: with probability rate% at start,
// rising linearly to 100% at full. a.mu is held.
func (a *admission) drop() bool {
	p := float64(a.rate)
	if a.full > a.start {
		p += float64(100-a.rate) * float64(a.total-a.start) / float64(a.full-a.start)
	}
	return a.rand()*100 < p
}

// warn logs a refusal: each at debug level, and at most one warning per
// refusalWarnEvery saying how many were refused since the last. a.mu is
// held.
func (a *admission) warn(addr net.Addr, reason string) {
	a.log.Debug("refused", "remote", addr.String(), "reason", reason)
	now := time.Now()
	if !a.lastWarn.IsZero() && now.Sub(a.lastWarn) < refusalWarnEvery {
		return
	}
	u := a.unwarned
	a.log.Warn("refusing connections still authenticating", "last", reason, "remote", addr.String(),
		"per source", u.PerSource, "early drop", u.EarlyDrop, "full", u.Full,
		"authenticating", a.total, "soft limit", a.start, "limit", a.full, "per source limit", a.perSource)
	a.unwarned = AdmissionStats{}
	a.lastWarn = now
}

// count adds one to a counter kept outside take.
func (a *admission) count(f func(*AdmissionStats)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(&a.stats)
}

// Stats returns the counters since the server started.
func (a *admission) Stats() AdmissionStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// ---------------------------------------------------------------------
// The connection

// ctxKeyGate holds a connection's *gatedConn in its ssh.Context.
var ctxKeyGate = &struct{ name string }{"thaw-serve-gate"}

// gatedConn is a connection that holds a place among those still
// authenticating. It gives the place back once, when the connection
// authenticates or closes, whichever comes first; and it is closed when
// the client has not sent its version line within the version timeout.
type gatedConn struct {
	net.Conn
	release   func()
	versioned atomic.Bool // the client's version line has arrived
	silent    *time.Timer
}

func (c *gatedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.versioned.Load() && bytes.IndexByte(p[:n], '\n') >= 0 {
		c.versioned.Store(true)
	}
	return n, err
}

func (c *gatedConn) Close() error {
	c.silent.Stop()
	c.release()
	return c.Conn.Close()
}

// admit is the server's connection callback: it lets a new connection
// start authenticating, or closes it (returns nil) when the admission
// rules refuse it.
func (s *Server) admit(ctx ssh.Context, c net.Conn) net.Conn {
	remote := c.RemoteAddr().String()
	if s.closing.Load() {
		s.adm.count(func(st *AdmissionStats) { st.Closing++ })
		s.log.Info("refused", "remote", remote, "reason", reasonClosing)
		return nil
	}
	release, reason := s.adm.take(c.RemoteAddr())
	if reason != "" {
		return nil
	}
	s.log.Debug("connection", "remote", remote)
	gc := &gatedConn{Conn: c, release: release}
	gc.silent = time.AfterFunc(s.cfg.VersionTimeout, func() {
		if gc.versioned.Load() {
			return
		}
		s.adm.count(func(st *AdmissionStats) { st.Silent++ })
		s.log.Debug("closed", "remote", remote, "reason", "no version line", "after", s.cfg.VersionTimeout)
		// Not gc.Close, which reads gc.silent: it is set after this
		// timer starts.
		gc.release()
		gc.Conn.Close()
	})
	ctx.SetValue(ctxKeyGate, gc)
	return gc
}

// AdmissionStats returns how many connections were let in to authenticate
// and how many were refused, by reason, since the server started.
func (s *Server) AdmissionStats() AdmissionStats { return s.adm.Stats() }

// keepAlive asks the client of an authenticated connection to answer every
// s.cfg.KeepAlive, as sshd's ClientAliveInterval, and closes the
// connection after keepAliveMax requests in a row went unanswered: a
// client that vanished without closing its connection is noticed. It
// returns when the connection ends.
func (s *Server) keepAlive(ctx ssh.Context, c net.Conn) {
	t := time.NewTicker(s.cfg.KeepAlive)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		conn, ok := ctx.Value(ssh.ContextKeyConn).(*gossh.ServerConn)
		if !ok {
			continue // not yet handed to the connection's handler
		}
		answered := make(chan struct{})
		go func() {
			// Any reply, even a refusal, shows the client is there.
			if _, _, err := conn.SendRequest("keepalive@openssh.com", true, nil); err == nil {
				close(answered)
			}
		}()
		select {
		case <-answered:
			missed = 0
		case <-ctx.Done():
			return
		case <-time.After(s.cfg.KeepAlive):
			if missed++; missed >= keepAliveMax {
				s.log.Info("closed", "remote", c.RemoteAddr().String(), "reason", "client did not answer keepalives",
					"requests", missed)
				c.Close()
				return
			}
		}
	}
}
