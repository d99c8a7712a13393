package serve

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/log/v2"
	"github.com/charmbracelet/x/vt"
	gossh "golang.org/x/crypto/ssh"
)

// waitLimit guards every wait for the server: long enough for a loaded
// two-core machine under the race detector, short enough that a hang fails
// the test instead of the whole run. It never decides a pass.
const waitLimit = 90 * time.Second

// testKey is a user's key pair and its authorized_keys line.
type testKey struct {
	signer gossh.Signer
	line   string
	fp     string
	pem    *pem.Block // the private key as OpenSSH writes it
}

func newKey(t testing.TB, comment string) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := gossh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
	if comment != "" {
		line += " " + comment
	}
	return testKey{signer: s, line: line, fp: gossh.FingerprintSHA256(s.PublicKey()), pem: block}
}

// syncBuffer is a log destination read while the server writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testServer is a server on a random loopback port.
type testServer struct {
	*Server
	addr     string
	logs     *syncBuffer
	keysFile string
	hostKey  gossh.PublicKey
	models   atomic.Int64 // models the factory built
	shutdown atomic.Int64 // ShutdownMsgs the test models received
	done     chan error
}

// writeKeys writes an authorized_keys file of the given lines, mode 0600.
func writeKeys(t *testing.T, path string, lines ...string) {
	t.Helper()
	// Write a new file and rename it over the old one, as editors do, so
	// the server never reads half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startServer starts a server letting in the given keys; edit changes the
// configuration before the server is built.
func startServer(t *testing.T, keys []testKey, edit func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	ts := &testServer{logs: &syncBuffer{}, keysFile: filepath.Join(dir, "authorized_keys"), done: make(chan error, 1)}
	var lines []string
	for _, k := range keys {
		lines = append(lines, k.line)
	}
	writeKeys(t, ts.keysFile, lines...)
	lg := log.New(ts.logs)
	lg.SetLevel(log.DebugLevel)
	cfg := Config{
		Addr:           "127.0.0.1:0",
		AuthorizedKeys: ts.keysFile,
		HostKey:        filepath.Join(dir, "host_ed25519"),
		Logger:         lg,
		Model: func(s Session) tea.Model {
			ts.models.Add(1)
			return &echoModel{s: s, w: s.Width, h: s.Height, shutdown: &ts.shutdown}
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	ts.hostKey = srv.signer.PublicKey()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = ln.Addr().String()
	go func() { ts.done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-ts.done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", ts.logs)
		}
	})
	return ts
}

// dial connects and authenticates with the given methods, checking the
// host key.
func (ts *testServer) dial(auth ...gossh.AuthMethod) (*gossh.Client, error) {
	return gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User:            "anyone",
		Auth:            auth,
		HostKeyCallback: gossh.FixedHostKey(ts.hostKey),
		Timeout:         waitLimit,
	})
}

func (ts *testServer) mustDial(t *testing.T, k testKey) *gossh.Client {
	t.Helper()
	c, err := ts.dial(gossh.PublicKeys(k.signer))
	if err != nil {
		t.Fatalf("dial with %s: %v", k.fp, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// terminal is a client session with a PTY whose output is fed to a
// terminal emulator, so tests read the screen a person would see.
type terminal struct {
	sess    *gossh.Session
	stdin   io.WriteCloser
	mu      sync.Mutex
	emu     *vt.Emulator
	bytes   atomic.Int64
	ended   chan struct{}
	exitErr error
}

func openTerminal(t *testing.T, c *gossh.Client, w, h int) *terminal {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	tm := &terminal{sess: sess, emu: vt.NewEmulator(w, h), ended: make(chan struct{})}
	if err := sess.RequestPty("xterm-256color", h, w, gossh.TerminalModes{}); err != nil {
		t.Fatal(err)
	}
	tm.stdin, err = sess.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	// The emulator answers the program's queries (colours, device
	// attributes) as a terminal would; its answers go back as input.
	go io.Copy(tm.stdin, emuReader{tm.emu})
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := out.Read(buf)
			if n > 0 {
				tm.bytes.Add(int64(n))
				tm.mu.Lock()
				tm.emu.Write(buf[:n])
				tm.mu.Unlock()
			}
			if err != nil {
				break
			}
		}
		tm.exitErr = sess.Wait()
		close(tm.ended)
	}()
	// The emulator is not closed: its Close races with its Read. The
	// goroutine copying its answers ends with the test binary.
	t.Cleanup(func() { sess.Close() })
	return tm
}

// emuReader reads the emulator's answers without holding the screen lock.
type emuReader struct{ e *vt.Emulator }

func (r emuReader) Read(p []byte) (int, error) { return r.e.Read(p) }

func (tm *terminal) screen() string {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	return tm.emu.String()
}

// waitScreen waits until the screen holds every one of want, failing the
// test with the last screen if it does not within waitLimit.
func (tm *terminal) waitScreen(t *testing.T, want ...string) string {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		s := tm.screen()
		missing := ""
		for _, w := range want {
			if !strings.Contains(s, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("screen never showed %q; last screen:\n%s", missing, s)
		}
		select {
		case <-tm.ended:
			t.Fatalf("session ended before the screen showed %q (%v); last screen:\n%s", missing, tm.exitErr, tm.screen())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// wait waits for the session to end and returns its exit status.
func (tm *terminal) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-tm.ended:
	case <-time.After(waitLimit):
		t.Fatalf("session did not end; screen:\n%s", tm.screen())
	}
	var ee *gossh.ExitError
	switch {
	case tm.exitErr == nil:
		return 0
	case errors.As(tm.exitErr, &ee):
		return ee.ExitStatus()
	default:
		t.Fatalf("session ended without a status: %v", tm.exitErr)
		return -1
	}
}

// echoModel is a small real workbench stand-in: it shows who the session
// belongs to and its size, quits on q, and counts ShutdownMsgs.
type echoModel struct {
	s        Session
	w, h     int
	shutdown *atomic.Int64
}

func (m *echoModel) Init() tea.Cmd { return nil }

func (m *echoModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
	case tea.KeyPressMsg:
		if msg.String() == "q" {
			return m, tea.Quit
		}
	case ShutdownMsg:
		m.shutdown.Add(1)
	}
	return m, nil
}

func (m *echoModel) View() tea.View {
	v := tea.NewView(fmt.Sprintf("user %s\nkey %s\nsize %dx%d\n", m.s.User.Name, m.s.User.Fingerprint, m.w, m.h))
	v.AltScreen = true
	return v
}

// waitLog waits until the server log holds every one of want.
func (ts *testServer) waitLog(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		l := ts.logs.String()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(l, w)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log never held %q; log:\n%s", want, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
