package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	gossh "golang.org/x/crypto/ssh"

	"thaw/store"
	"thaw/trainer"
)

// serveWait guards the waits of the serve test; it never decides a pass.
const serveWait = 90 * time.Second

// TestServe runs thaw serve as the command line does: it listens on
// loopback, creates its host key in the store (0600), serves the
// workbench to an authorised key, and on the first signal stops the run a
// session started, checkpointed and resumable, and closes the store.
func TestServe(t *testing.T) {
	if testing.Short() {
		t.Skip("trains a CNN through the workbench over SSH")
	}
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "authorized_keys")
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " alice\n"
	if err := os.WriteFile(keys, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	storeDir := filepath.Join(dir, "store")

	var stderr syncBuf
	m := &Main{Stdout: io.Discard, Stderr: &stderr, Zoo: NewMain().Zoo}
	type ready struct {
		addr net.Addr
		fp   string
	}
	readyc := make(chan ready, 1)
	m.serveReady = func(a net.Addr, fp string) { readyc <- ready{a, fp} }
	ctx, signal := context.WithCancel(context.Background())
	defer signal()
	done := make(chan error, 1)
	go func() {
		done <- m.Run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--authorized-keys", keys, "--store", storeDir})
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("thaw serve ended before listening: %v\n%s", err, stderr.String())
	case <-time.After(serveWait):
		t.Fatal("thaw serve did not start")
	}
	if !r.addr.(*net.TCPAddr).IP.IsLoopback() {
		t.Errorf("listening on %v, want loopback", r.addr)
	}
	hostKey := filepath.Join(storeDir, "serve", "host_ed25519")
	if fi, err := os.Stat(hostKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("host key %s: %v, mode %v; want 0600", hostKey, err, fi.Mode().Perm())
	}

	c, err := gossh.Dial("tcp", r.addr.String(), &gossh.ClientConfig{
		User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: func(_ string, _ net.Addr, k gossh.PublicKey) error {
			if gossh.FingerprintSHA256(k) != r.fp {
				t.Errorf("host key %s, want %s", gossh.FingerprintSHA256(k), r.fp)
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	term := newVTSession(t, c, 120, 40)
	term.waitFor(t, "digits-cnn")
	term.send("\r") // Models → Blocks, digits-cnn
	term.waitFor(t, "trainable")
	term.send("\r") // Blocks → Plan
	term.waitFor(t, " train / ")
	term.send("\r") // start
	term.waitFor(t, "running stage 1")

	st, err := store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	runs, err := st.ListRuns(ctx, store.RunFilter{})
	st.Close()
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs %v, %v; want one", runs, err)
	}
	id := runs[0].ID

	signal() // what SIGINT or SIGTERM does in main
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("thaw serve: %v\n%s", err, stderr.String())
		}
	case <-time.After(serveWait):
		t.Fatalf("thaw serve did not stop\n%s", stderr.String())
	}
	term.waitFor(t, "the server is shutting down")

	st, err = store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, err := st.Run(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != trainer.StatusStopped {
		t.Errorf("run status %s after the signal, want stopped", run.Status)
	}
	if _, err := st.LastGoodCheckpoint(context.Background(), id); err != nil {
		t.Errorf("the stopped run has no checkpoint to resume from: %v", err)
	}
	for _, want := range []string{"listening", "authenticated", "run started", "stopping runs", "run ended", "store closed"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, stderr.String())
		}
	}
}

// syncBuf is a log written by the server while the test reads it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// vtSession is an SSH session with a PTY whose output feeds a terminal
// emulator.
type vtSession struct {
	stdin io.Writer
	mu    sync.Mutex
	emu   *vt.Emulator
}

func newVTSession(t *testing.T, c *gossh.Client, w, h int) *vtSession {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm-256color", h, w, nil); err != nil {
		t.Fatal(err)
	}
	in, _ := sess.StdinPipe()
	out, _ := sess.StdoutPipe()
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	v := &vtSession{stdin: in, emu: vt.NewEmulator(w, h)}
	go io.Copy(in, readerFunc(v.emu.Read)) // the terminal's answers to queries
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := out.Read(buf)
			v.mu.Lock()
			v.emu.Write(buf[:n])
			v.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return v
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func (v *vtSession) send(s string) { v.stdin.Write([]byte(s)) }

func (v *vtSession) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(serveWait)
	for {
		v.mu.Lock()
		s := v.emu.String()
		v.mu.Unlock()
		if strings.Contains(s, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the screen never showed %q:\n%s", want, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
