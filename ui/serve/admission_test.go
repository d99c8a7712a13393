package serve

import (
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"charm.land/log/v2"
	gossh "golang.org/x/crypto/ssh"
)

// dialFrom connects from the loopback address local and authenticates with
// k, returning how long the whole login took.
func (ts *testServer) dialFrom(local string, k testKey) (*gossh.Client, time.Duration, error) {
	begin := time.Now()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: waitLimit}
	nc, err := d.Dial("tcp", ts.addr)
	if err != nil {
		return nil, 0, err
	}
	cc, chans, reqs, err := gossh.NewClientConn(nc, ts.addr, &gossh.ClientConfig{
		User:            "anyone",
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(k.signer)},
		HostKeyCallback: gossh.FixedHostKey(ts.hostKey),
		Timeout:         waitLimit,
	})
	if err != nil {
		nc.Close()
		return nil, 0, err
	}
	return gossh.NewClient(cc, chans, reqs), time.Since(begin), nil
}

// flood holds n idle connections to addr from 127.0.0.1, each sending
// nothing; when the server closes one, it is opened again after a pause,
// as an attacker keeping the slots full would. stop closes them all and
// waits for its goroutines.
func flood(t *testing.T, addr string, n int) (stop func() int) {
	t.Helper()
	done := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	dials := 0
	for range n {
		wg.Go(func() {
			for {
				c, err := net.Dial("tcp", addr)
				if err == nil {
					mu.Lock()
					dials++
					mu.Unlock()
					closed := make(chan struct{})
					go func() { io.Copy(io.Discard, c); close(closed) }()
					select {
					case <-done:
						c.Close()
						<-closed
						return
					case <-closed:
						c.Close()
					}
				}
				select {
				case <-done:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	return sync.OnceValue(func() int {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return dials
	})
}

// TestLoginUnderIdleFlood is the acceptance check of issue 23: while 64
// idle connections from one source are held, a valid key from another
// source gets in, 10 of 10 times, quickly.
func TestLoginUnderIdleFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 64 connections for a few seconds")
	}
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, nil)
	stop := flood(t, ts.addr, 64)
	defer stop()
	// Let the flood fill what it can, be refused, and come back.
	deadline := time.Now().Add(waitLimit)
	for ts.AdmissionStats().PerSource < 64 {
		if time.Now().After(deadline) {
			t.Fatalf("the flood was never refused: %+v", ts.AdmissionStats())
		}
		time.Sleep(20 * time.Millisecond)
	}

	var took []time.Duration
	for i := range 10 {
		c, d, err := ts.dialFrom("127.0.0.2", alice)
		if err != nil {
			t.Fatalf("login %d of 10 from 127.0.0.2 under the flood: %v", i+1, err)
		}
		c.Close()
		took = append(took, d)
	}
	dials := stop()
	slices.Sort(took)
	st := ts.AdmissionStats()
	t.Logf("10 of 10 logins under a flood of 64 idle connections (%d dials): median %v, max %v; %+v",
		dials, took[len(took)/2], took[len(took)-1], st)
	// Well under 2 s on a loaded machine; the bound is what the issue
	// asks, not a measurement.
	if took[len(took)-1] > 2*time.Second {
		t.Errorf("slowest login took %v, want under 2s", took[len(took)-1])
	}
	ts.waitLog(t, reasonPerSource)
}

func TestAdmission(t *testing.T) {
	addr := func(s string) net.Addr { return net.TCPAddrFromAddrPort(mustAddrPort(t, s)) }
	newAdm := func(per, start, rate, full int, r float64) *admission {
		a := newAdmission(Config{MaxPerSource: per, EarlyDropStart: start, EarlyDropRate: rate,
			MaxUnauthenticated: full, V6PrefixBits: 64}, log.New(io.Discard))
		a.rand = func() float64 { return r }
		return a
	}
	cases := []struct {
		name string
		adm  *admission
		in   []string // sources in order
		want []string // reason for each, "" when admitted
	}{
		{
			name: "per IPv4 address",
			adm:  newAdm(2, 100, 30, 100, 0.99),
			in:   []string{"10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3", "10.0.0.2:1"},
			want: []string{"", "", reasonPerSource, ""},
		},
		{
			name: "IPv6 grouped by /64, IPv4-mapped as IPv4",
			adm:  newAdm(2, 100, 30, 100, 0.99),
			in: []string{"[2001:db8::1]:1", "[2001:db8::2]:1", "[2001:db8::3]:1", "[2001:db8:0:1::1]:1",
				"[::ffff:10.0.0.1]:1", "10.0.0.1:2", "10.0.0.1:3"},
			want: []string{"", "", reasonPerSource, "", "", "", reasonPerSource},
		},
		{
			// Past start=2 of full=4 at rate 50: 50% at 2, 75% at 3. A
			// draw of 0.6 keeps the first (60 ≥ 50) and drops the second
			// (60 < 75); at full everything is refused.
			name: "early drop rises from rate to full",
			adm:  newAdm(10, 2, 50, 4, 0.6),
			in:   []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"},
			want: []string{"", "", "", reasonEarlyDrop},
		},
		{
			name: "nothing dropped below start",
			adm:  newAdm(10, 3, 100, 4, 0),
			in:   []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1", "10.0.0.4:1"},
			want: []string{"", "", "", reasonEarlyDrop},
		},
		{
			name: "full",
			adm:  newAdm(10, 5, 0, 2, 0.99),
			in:   []string{"10.0.0.1:1", "10.0.0.2:1", "10.0.0.3:1"},
			want: []string{"", "", reasonFull},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, s := range c.in {
				_, reason := c.adm.take(addr(s))
				got = append(got, reason)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}

	t.Run("released places come back once", func(t *testing.T) {
		a := newAdm(1, 10, 30, 10, 0.99)
		rel, reason := a.take(addr("10.0.0.1:1"))
		if reason != "" {
			t.Fatal(reason)
		}
		rel()
		rel()
		if _, reason := a.take(addr("10.0.0.1:2")); reason != "" {
			t.Errorf("after release: %s", reason)
		}
		if _, reason := a.take(addr("10.0.0.1:3")); reason != reasonPerSource {
			t.Errorf("a double release gave two places back: %q", reason)
		}
		if st := a.Stats(); st.Admitted != 2 || st.PerSource != 1 {
			t.Errorf("stats %+v, want 2 admitted, 1 refused per source", st)
		}
	})

	t.Run("warnings are rate-limited", func(t *testing.T) {
		var buf syncBuffer
		a := newAdmission(Config{MaxPerSource: 1, EarlyDropStart: 10, EarlyDropRate: 30, MaxUnauthenticated: 10}, log.New(&buf))
		for i := range 50 {
			a.take(addr("10.0.0.1:" + strings.Repeat("1", 1+i%4)))
		}
		if n := strings.Count(buf.String(), "refusing connections"); n != 1 {
			t.Errorf("%d warnings for 49 refusals in a moment, want 1:\n%s", n, buf.String())
		}
	})
}

func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// TestSilentClientIsCut: a client that sends no version line is closed
// after the version timeout, not the login grace.
func TestSilentClientIsCut(t *testing.T) {
	ts := startServer(t, nil, func(c *Config) { c.VersionTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	begin := time.Now()
	c.SetReadDeadline(time.Now().Add(waitLimit))
	io.Copy(io.Discard, c)
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("a silent client was closed after %v, want about 200ms", d)
	}
	if st := ts.AdmissionStats(); st.Silent != 1 {
		t.Errorf("stats %+v, want one silent", st)
	}
}

// TestDeadClientIsNoticed: an authenticated client that stops answering
// the server's keepalives is disconnected.
func TestDeadClientIsNoticed(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, func(c *Config) { c.KeepAlive = 100 * time.Millisecond })
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cc, _, reqs, err := gossh.NewClientConn(nc, ts.addr, &gossh.ClientConfig{
		User: "anyone", Auth: []gossh.AuthMethod{gossh.PublicKeys(alice.signer)},
		HostKeyCallback: gossh.FixedHostKey(ts.hostKey),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	// Take the server's requests and never answer them: a wedged client.
	asked := 0
	timeout := time.After(waitLimit)
	for {
		select {
		case r, ok := <-reqs:
			if !ok {
				// x/crypto sends one global request at a time: the
				// later ones wait behind the first, unanswered.
				if asked < 1 {
					t.Error("closed without a keepalive")
				}
				ts.waitLog(t, "did not answer keepalives")
				return
			}
			if r.Type == "keepalive@openssh.com" {
				asked++
			}
		case <-timeout:
			t.Fatalf("connection never closed; %d keepalives", asked)
		}
	}
}
