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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/vt"
	gossh "golang.org/x/crypto/ssh"

	"thaw/assets"
	"thaw/store"
	"thaw/store/engine"
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
	if run.Status != trainer.StatusStopped || run.StopReason != store.StopShutdown {
		t.Errorf("run status %s (stop reason %q) after the signal, want stopped by the shutdown", run.Status, run.StopReason)
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

// startServe runs thaw serve in-process with args on a loopback port and
// returns its log and a function that signals it (as SIGTERM does) and
// waits for it to end.
func startServe(t *testing.T, m *Main, args ...string) (log *syncBuf, stop func()) {
	t.Helper()
	log = &syncBuf{}
	m.Stderr = log
	ready := make(chan struct{}, 1)
	m.serveReady = func(net.Addr, string) { ready <- struct{}{} }
	ctx, signal := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)) }()
	select {
	case <-ready:
	case err := <-done:
		signal()
		t.Fatalf("thaw serve ended before listening: %v\n%s", err, log.String())
	case <-time.After(serveWait):
		signal()
		t.Fatal("thaw serve did not start")
	}
	return log, func() {
		t.Helper()
		signal()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("thaw serve: %v\n%s", err, log.String())
			}
		case <-time.After(serveWait):
			t.Fatalf("thaw serve did not stop\n%s", log.String())
		}
	}
}

// TestServeResumesRunsItsShutdownStopped is the acceptance of a restart:
// a user's run that the server's shutdown stopped (paused first, so that
// the stop falls between two batches and not inside an evaluation) is
// recorded as stopped by the shutdown; thaw serve --no-resume-stopped
// leaves it so, and thaw serve resumes it in its owner's queue, to the
// curves and weights of the same job run without a stop, bit for bit.
// A run its owner stopped stays stopped.
func TestServeResumesRunsItsShutdownStopped(t *testing.T) {
	if testing.Short() {
		t.Skip("trains three runs and starts thaw serve twice")
	}
	ctx := context.Background()
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
	alice := engine.User{ID: gossh.FingerprintSHA256(signer.PublicKey()), Name: "alice"}
	storeDir := filepath.Join(dir, "store")
	zoo := NewMain().Zoo
	job := trainer.Job{Model: "mnist8-mlp", Data: trainer.DataRef{Path: "uci-digits"}, Seed: 3}
	if err := job.SetPlan("gradual", 0, 4, 0); err != nil {
		t.Fatal(err)
	}
	job.Preset.Legacy = true // an evaluation every epoch and no early stop

	// The first server: its shutdown path stops alice's run, paused past
	// step 10; she stops another run herself.
	st, err := store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(st, &assets.Catalog{Zoo: zoo, NoFiles: true},
		engine.WithRecordOptions(store.HeartbeatEvery(10*time.Millisecond)))
	view := eng.For(alice)
	mine, err := view.Submit(job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hers, err := view.Submit(job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := view.Stop(ctx, hers.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(serveWait)
	for p, ok := mine.Live().Latest(); !ok || p.Step <= 10; p, ok = mine.Live().Latest() {
		if time.Now().After(deadline) {
			t.Fatal("the run did not pass step 10")
		}
		time.Sleep(time.Millisecond)
	}
	mine.Live().Control.Pause()
	for r, _ := st.Run(ctx, mine.ID); r.Status != trainer.StatusPaused; r, _ = st.Run(ctx, mine.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the run is %s, not paused", r.Status)
		}
		time.Sleep(5 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, serveWait)
	err = eng.Shutdown(sctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	mustBe := func(id string, status trainer.Status, reason string) store.Run {
		t.Helper()
		r, err := st.Run(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != status || r.StopReason != reason {
			t.Fatalf("run %s is %s, stop reason %q; want %s, %q", store.Short(id), r.Status, r.StopReason, status, reason)
		}
		return r
	}
	stopped := mustBe(mine.ID, trainer.StatusStopped, store.StopShutdown)
	mustBe(hers.ID, trainer.StatusStopped, "")
	stopCk, err := st.LastGoodCheckpoint(ctx, mine.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	m := &Main{Stdout: io.Discard, Zoo: zoo}
	args := []string{"--authorized-keys", keys, "--store", storeDir}
	_, stop := startServe(t, m, append(args, "--no-resume-stopped")...)
	stop()
	st, err = store.Open(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mustBe(mine.ID, trainer.StatusStopped, store.StopShutdown)

	log, stop := startServe(t, m, args...)
	deadline = time.Now().Add(serveWait)
	for r, _ := st.Run(ctx, mine.ID); r.Status != trainer.StatusDone; r, _ = st.Run(ctx, mine.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("the run is %s, not done, after the restart\n%s", r.Status, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	mustBe(hers.ID, trainer.StatusStopped, "")
	for _, want := range []string{"run requeued", "from the queue"} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, log.String())
		}
	}

	// The same job, uninterrupted.
	rec, err := store.DecodeJob(stopped)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := engine.New(st, &assets.Catalog{Zoo: zoo, NoFiles: true}).Start(ctx, rec.Job, engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := whole.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if stopCk.Step <= 10 || stopCk.Step >= int64(res.Steps) {
		t.Fatalf("stopped at step %d of %d, want inside the run", stopCk.Step, res.Steps)
	}
	for _, name := range curves {
		a, b := series(t, st, mine.ID, name), series(t, st, whole.ID, name)
		if len(a) == 0 || !slices.Equal(a, b) {
			t.Errorf("%s: the resumed run has %d points, the uninterrupted one %d; want the same bits", name, len(a), len(b))
		}
	}
	if !sameWeights(finalWeights(t, st, mine.ID), finalWeights(t, st, whole.ID)) {
		t.Error("the resumed run's final weights differ from the uninterrupted run's")
	}
	t.Logf("stopped at step %d of %d; resumed on restart to the uninterrupted run's curves and weights", stopCk.Step, res.Steps)
}
