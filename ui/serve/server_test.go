package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

func TestAuthorizedKeyGetsTheWorkbench(t *testing.T) {
	alice := newKey(t, "alice@laptop")
	ts := startServer(t, []testKey{alice}, nil)
	tm := openTerminal(t, ts.mustDial(t, alice), 80, 24)
	tm.waitScreen(t, "user alice@laptop", "key "+alice.fp, "size 80x24")
	ts.waitLog(t, "authenticated", "session", alice.fp)

	tm.stdin.Write([]byte("q"))
	if got := tm.wait(t); got != 0 {
		t.Errorf("exit status after q = %d, want 0", got)
	}
	ts.waitLog(t, "session end")
}

func TestRefusedAuthentication(t *testing.T) {
	alice := newKey(t, "alice")
	stranger := newKey(t, "stranger")
	cases := []struct {
		name string
		auth []gossh.AuthMethod
	}{
		{"unknown key", []gossh.AuthMethod{gossh.PublicKeys(stranger.signer)}},
		{"password", []gossh.AuthMethod{gossh.Password("alice")}},
		{"keyboard-interactive", []gossh.AuthMethod{gossh.KeyboardInteractive(
			func(string, string, []string, []bool) ([]string, error) { return []string{"alice"}, nil })}},
		{"none", nil},
		// The client offers alice's key, which the server accepts, but
		// signs with the stranger's: it does not hold alice's.
		{"authorised key signed by another", []gossh.AuthMethod{gossh.PublicKeys(impostor{alice.signer.PublicKey(), stranger.signer})}},
	}
	ts := startServer(t, []testKey{alice}, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn, err := ts.dial(c.auth...)
			if err == nil {
				conn.Close()
				t.Fatal("connection was let in")
			}
			if !strings.Contains(err.Error(), "unable to authenticate") && !strings.Contains(err.Error(), "signature") &&
				!errors.Is(err, io.EOF) {
				t.Errorf("error = %v, want an authentication failure", err)
			}
		})
	}
	if n := ts.models.Load(); n != 0 {
		t.Errorf("%d workbench models were built for refused clients", n)
	}
	ts.waitLog(t, "refused")
}

// impostor presents one public key and signs with another key.
type impostor struct {
	pub    gossh.PublicKey
	signer gossh.Signer
}

func (i impostor) PublicKey() gossh.PublicKey { return i.pub }
func (i impostor) Sign(r io.Reader, data []byte) (*gossh.Signature, error) {
	return i.signer.Sign(r, data)
}

// queryOnly offers a key without being able to sign with it.
type queryOnly struct{ pub gossh.PublicKey }

func (q queryOnly) PublicKey() gossh.PublicKey { return q.pub }
func (q queryOnly) Sign(io.Reader, []byte) (*gossh.Signature, error) {
	return nil, errors.New("no private key")
}

// TestUserIsTheVerifiedKey is the CVE-2024-45337 pattern: the client first
// offers the victim's authorised key (the server says it would accept it),
// then authenticates with its own. The session must be its own.
func TestUserIsTheVerifiedKey(t *testing.T) {
	victim := newKey(t, "victim")
	mallory := newKey(t, "mallory")
	ts := startServer(t, []testKey{victim, mallory}, nil)

	var offered bool
	c, err := gossh.Dial("tcp", ts.addr, &gossh.ClientConfig{
		User:            "victim",
		HostKeyCallback: gossh.FixedHostKey(ts.hostKey),
		Auth:            []gossh.AuthMethod{gossh.PublicKeys(queryOnly{victim.signer.PublicKey()})},
		AuthCallback: func(ctx *gossh.ClientAuthContext) (gossh.AuthMethod, error) {
			if !offered {
				offered = true
				return gossh.PublicKeys(mallory.signer), nil
			}
			return nil, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !offered {
		t.Fatal("the client never moved on from the victim's key")
	}
	tm := openTerminal(t, c, 80, 24)
	s := tm.waitScreen(t, "user ", "key ")
	if !strings.Contains(s, "key "+mallory.fp) || strings.Contains(s, victim.fp) {
		t.Errorf("session shows\n%s\nwant mallory's key %s and not the victim's %s", s, mallory.fp, victim.fp)
	}
}

func TestSessionWithoutTerminalIsRefused(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, nil)
	for _, cmd := range []string{"", "ls /"} {
		sess, err := ts.mustDial(t, alice).NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		sess.Stdout, sess.Stderr = &stdout, &stderr
		if cmd == "" {
			err = sess.Shell()
			if err == nil {
				err = sess.Wait()
			}
		} else {
			err = sess.Run(cmd)
		}
		var ee *gossh.ExitError
		if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
			t.Errorf("command %q: err = %v, want exit status 1", cmd, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], "needs a terminal") {
			t.Errorf("command %q: stderr = %q, want one line saying a terminal is needed", cmd, stderr.String())
		}
		if stdout.Len() != 0 {
			t.Errorf("command %q: stdout = %q, want nothing", cmd, stdout.String())
		}
	}
	if n := ts.models.Load(); n != 0 {
		t.Errorf("%d models built for sessions without a terminal", n)
	}
}

func TestCommandWithTerminalIsRefused(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, nil)
	sess, err := ts.mustDial(t, alice).NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestPty("xterm", 24, 80, nil); err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("cat /etc/passwd")
	var ee *gossh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 1 {
		t.Errorf("err = %v, want exit status 1", err)
	}
	if !strings.Contains(string(out), "no commands") || strings.Contains(string(out), "root:") {
		t.Errorf("output = %q", out)
	}
}

func TestAuthorizedKeysAreReadAgain(t *testing.T) {
	alice := newKey(t, "alice")
	bob := newKey(t, "bob")
	ts := startServer(t, []testKey{alice}, nil)
	if c, err := ts.dial(gossh.PublicKeys(bob.signer)); err == nil {
		c.Close()
		t.Fatal("bob let in before his key was added")
	}

	writeKeys(t, ts.keysFile,
		"# the team",
		bob.line,
		"ssh-ed25519 AAAAnot-base64 broken",
		`command="/bin/sh" `+alice.line,
	)
	c, err := ts.dial(gossh.PublicKeys(bob.signer))
	if err != nil {
		t.Fatalf("bob refused after his key was added: %v", err)
	}
	c.Close()
	ts.waitLog(t, "authorized_keys:3", "authorized_keys:4", `option`)
	// alice's line now asks for a forced command, which is not supported:
	// the line is skipped, so alice is out.
	if c, err := ts.dial(gossh.PublicKeys(alice.signer)); err == nil {
		c.Close()
		t.Error("alice let in through a line that was skipped")
	}

	if err := os.Remove(ts.keysFile); err != nil {
		t.Fatal(err)
	}
	if c, err := ts.dial(gossh.PublicKeys(bob.signer)); err == nil {
		c.Close()
		t.Error("bob let in after the authorized keys file was removed")
	}
	writeKeys(t, ts.keysFile, alice.line)
	if err := os.Chmod(ts.keysFile, 0o666); err != nil {
		t.Fatal(err)
	}
	if c, err := ts.dial(gossh.PublicKeys(alice.signer)); err == nil {
		c.Close()
		t.Error("alice let in through a file anyone may write")
	}
	ts.waitLog(t, "writable by group or others")
}

func TestParseAuthorizedKeys(t *testing.T) {
	a := newKey(t, "")
	b := newKey(t, "bob \x1b[31mred\x1b[0m")
	c := newKey(t, "carol")
	d := newKey(t, "dave")
	bare := func(k testKey) string { return strings.Join(strings.Fields(k.line)[:2], " ") }
	// A line of 70 KB: an options field too long for any key.
	long := `environment="X=` + strings.Repeat("x", 70<<10) + `" ` + c.line
	cases := []struct {
		name   string
		line   string
		user   string // the user the line names, or "" when skipped
		reason string // part of the reason it is skipped
	}{
		{"no comment", a.line, shortFingerprint(a.fp), ""},
		{"name is the comment's first word, made safe", "   " + b.line + "   ", "bob", ""},
		{"allowed options", "no-port-forwarding,no-agent-forwarding,no-X11-forwarding,no-user-rc,pty " + c.line, "carol", ""},
		{"blank", "", "", ""},
		{"comment line", "# " + c.line, "", ""},
		{"garbage", "garbage", "", "not a public key"},
		{"truncated key", "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== truncated", "", "not a public key"},
		{"line over 64 KiB", long, "", "longer than"},
		{"second key as the comment", c.line + " " + d.line, "", "more than one key"},
		{"second key without a comment", bare(c) + " " + bare(d), "", "more than one key"},
		{"restrict implies no-pty", "restrict " + c.line, "", "implies no-pty"},
		{"restrict with pty still refused", "restrict,pty " + c.line, "", "implies no-pty"},
		{"no-pty", "no-pty " + c.line, "", "needs a terminal"},
		{"from", `from="10.0.0.1" ` + c.line, "", "source restrictions"},
		{"command", `command="/bin/sh" ` + c.line, "", "forced commands"},
		{"expiry-time", `expiry-time="20300101" ` + c.line, "", "expiry"},
		{"cert-authority", "cert-authority " + c.line, "", "certificates"},
		{"environment", `environment="A=b" ` + c.line, "", "environment"},
		{"verify-required", "verify-required " + c.line, "", "verification"},
		{"unknown option", "frobnicate " + c.line, "", "unknown option"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each line is read between two good ones: a skipped line
			// costs only itself.
			in := strings.Join([]string{d.line, tc.line, d.line}, "\n")
			keys, problems, err := parseAuthorizedKeys(strings.NewReader(in), "keys")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			dave := false
			for _, u := range keys {
				if u.Fingerprint == d.fp {
					dave = true
				} else {
					names = append(names, u.Name)
				}
			}
			if !dave {
				t.Errorf("dave's lines around it were lost: %+v", keys)
			}
			got := strings.Join(names, ",")
			if got != tc.user {
				t.Errorf("user %q, want %q", got, tc.user)
			}
			switch {
			case tc.reason == "" && len(problems) > 0:
				t.Errorf("skipped: %+v", problems)
			case tc.reason != "" && (len(problems) != 1 || problems[0].where != "keys:2" || !strings.Contains(problems[0].reason, tc.reason)):
				t.Errorf("problems %+v, want one at keys:2 saying %q", problems, tc.reason)
			}
		})
	}
}

// TestAuthorizedKeysModeIsRechecked: a chmod that lets others write the
// file, with no other change, refuses it at once; chmod back, and it is
// read again.
func TestAuthorizedKeysModeIsRechecked(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, nil)
	steps := []struct {
		mode os.FileMode
		in   bool
	}{{0o600, true}, {0o666, false}, {0o620, false}, {0o644, true}}
	for _, st := range steps {
		if err := os.Chmod(ts.keysFile, st.mode); err != nil {
			t.Fatal(err)
		}
		c, err := ts.dial(gossh.PublicKeys(alice.signer))
		if err == nil {
			c.Close()
		}
		if (err == nil) != st.in {
			t.Errorf("mode %04o: let in = %v, want %v (%v)", st.mode, err == nil, st.in, err)
		}
	}
	ts.waitLog(t, "writable by group or others (mode 0666)", "writable by group or others (mode 0620)")
}

// TestRSASignaturesNeedSHA2: an RSA key gets in signing with rsa-sha2-256
// or -512, and not with ssh-rsa's SHA-1, as sshd since 8.8.
func TestRSASignaturesNeedSHA2(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k := testKey{signer: signer, line: strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " rsa"}
	ts := startServer(t, []testKey{k}, nil)
	for _, tc := range []struct {
		algo string
		in   bool
	}{{gossh.KeyAlgoRSASHA256, true}, {gossh.KeyAlgoRSASHA512, true}, {gossh.KeyAlgoRSA, false}} {
		t.Run(tc.algo, func(t *testing.T) {
			as, err := gossh.NewSignerWithAlgorithms(signer.(gossh.AlgorithmSigner), []string{tc.algo})
			if err != nil {
				t.Fatal(err)
			}
			c, err := ts.dial(gossh.PublicKeys(as))
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.in {
				t.Errorf("let in = %v, want %v (%v)", err == nil, tc.in, err)
			}
		})
	}
}

func TestHostKeyIsCreatedOnceAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "host")
	s1, created, err := HostKey(path)
	if err != nil || !created {
		t.Fatalf("first HostKey: created=%v err=%v", created, err)
	}
	if s1.PublicKey().Type() != gossh.KeyAlgoED25519 {
		t.Errorf("key type %s, want ed25519", s1.PublicKey().Type())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %04o, want 0600", fi.Mode().Perm())
	}
	s2, created, err := HostKey(path)
	if err != nil || created {
		t.Fatalf("second HostKey: created=%v err=%v", created, err)
	}
	if !bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()) {
		t.Error("the host key changed between starts")
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	pk, _, _, _, err := gossh.ParseAuthorizedKey(pub)
	if err != nil || !bytes.Equal(pk.Marshal(), s1.PublicKey().Marshal()) {
		t.Errorf("%s.pub does not hold the host key (%v)", path, err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := HostKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a host key readable by others: err = %v, want a refusal", err)
	}
}

func TestRestartKeepsHostKey(t *testing.T) {
	alice := newKey(t, "alice")
	dir := t.TempDir()
	var seen []string
	for range 2 {
		ts := startServer(t, []testKey{alice}, func(c *Config) { c.HostKey = filepath.Join(dir, "host") })
		c := ts.mustDial(t, alice) // checks the host key against ts.hostKey
		c.Close()
		seen = append(seen, gossh.FingerprintSHA256(ts.hostKey))
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		ts.Shutdown(ctx)
		cancel()
	}
	if seen[0] != seen[1] {
		t.Errorf("host key changed across restarts: %s then %s", seen[0], seen[1])
	}
}

// TestUnauthenticatedConnectionsAreBounded holds connections open without
// authenticating: beyond the bound the server closes new ones at once,
// and an authenticated connection does not count.
func TestUnauthenticatedConnectionsAreBounded(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, func(c *Config) { c.MaxUnauthenticated = 2 })

	// An authenticated connection gives its slot back.
	c := ts.mustDial(t, alice)
	defer c.Close()

	banner := func(conn net.Conn) (string, error) {
		conn.SetReadDeadline(time.Now().Add(waitLimit))
		b := make([]byte, 64)
		n, err := conn.Read(b)
		return string(b[:n]), err
	}
	var held []net.Conn
	for i := range 2 {
		conn, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if got, err := banner(conn); !strings.HasPrefix(got, "SSH-2.0-") {
			t.Fatalf("connection %d: got %q, %v; want the server's version line", i, got, err)
		}
		held = append(held, conn)
	}
	over, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if got, err := banner(over); err == nil || got != "" {
		t.Errorf("third unauthenticated connection got %q, %v; want it closed", got, err)
	}
	ts.waitLog(t, "too many connections still authenticating")

	held[0].Close()
	// The slot comes back once the server has seen the close.
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := ts.dial(gossh.PublicKeys(alice.signer))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection admitted after one closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestIdleAndMaxSession(t *testing.T) {
	alice := newKey(t, "alice")
	cases := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"idle", func(c *Config) { c.IdleTimeout = 300 * time.Millisecond }, "no input for 300ms"},
		{"max", func(c *Config) { c.MaxSession = 300 * time.Millisecond }, "maximum session length of 300ms"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ts := startServer(t, []testKey{alice}, c.edit)
			tm := openTerminal(t, ts.mustDial(t, alice), 80, 24)
			if got := tm.wait(t); got != 1 {
				t.Errorf("exit status %d, want 1", got)
			}
			if s := tm.screen(); !strings.Contains(s, c.want) {
				t.Errorf("screen does not say %q:\n%s", c.want, s)
			}
			ts.waitLog(t, "session limit")
		})
	}
}

func TestShutdownTellsSessions(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, nil)
	tm := openTerminal(t, ts.mustDial(t, alice), 80, 24)
	tm.waitScreen(t, "user alice")

	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tm.wait(t); got != 0 {
		t.Errorf("exit status %d, want 0", got)
	}
	if s := tm.screen(); !strings.Contains(s, "the server is shutting down") {
		t.Errorf("screen does not say the server is shutting down:\n%s", s)
	}
	if n := ts.shutdown.Load(); n != 1 {
		t.Errorf("model got %d ShutdownMsgs, want 1", n)
	}
	if _, err := ts.dial(gossh.PublicKeys(alice.signer)); err == nil {
		t.Error("a connection was accepted after shutdown")
	}
}

func TestHugeWindowIsClamped(t *testing.T) {
	alice := newKey(t, "alice")
	ts := startServer(t, []testKey{alice}, nil)
	c := ts.mustDial(t, alice)
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if err := sess.RequestPty("xterm", 1<<20, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	want := "size " + strconv.Itoa(maxWidth) + "x" + strconv.Itoa(maxHeight)
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(want)) {
		n, err := out.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("output ended without %q: %v\n%q", want, err, got)
		}
	}
}

// TestCryptoVersion checks the build list: x/crypto before v0.45.0 has
// known flaws in its SSH server.
func TestCryptoVersion(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to read the build list with")
	}
	out, err := exec.Command(gobin, "list", "-m", "-f", "{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}",
		"golang.org/x/crypto").Output()
	if err != nil {
		t.Fatalf("go list -m golang.org/x/crypto: %v", err)
	}
	v := strings.TrimSpace(string(out))
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 3 {
		t.Fatalf("cannot read x/crypto version %q", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("cannot read x/crypto version %q", v)
	}
	if major == 0 && minor < 45 {
		t.Errorf("golang.org/x/crypto %s in the build list, want v0.45.0 or later", v)
	}
}

// TestDroppedClientIsNotAnError: a client that goes away mid-session is
// logged as gone, at INFO; nothing is logged as an error.
func TestDroppedClientIsNotAnError(t *testing.T) {
	alice := newKey(t, "alice@laptop")
	ts := startServer(t, []testKey{alice}, nil)
	c := ts.mustDial(t, alice)
	tm := openTerminal(t, c, 80, 24)
	tm.waitScreen(t, "user alice@laptop")
	c.Close()
	ts.waitLog(t, "client gone", "session end")
	for _, l := range strings.Split(ts.logs.String(), "\n") {
		if strings.HasPrefix(l, "ERRO") || strings.Contains(l, " ERRO") {
			t.Errorf("a dropped client logged an error: %s", l)
		}
	}
}

// FuzzParseAuthorizedKeys: no input makes the parser fail or panic, and
// every key it accepts is named by one word.
func FuzzParseAuthorizedKeys(f *testing.F) {
	k := newKey(f, "alice laptop")
	for _, s := range []string{
		k.line,
		"restrict,pty " + k.line,
		`from="10.0.0.1",command="x" ` + k.line,
		k.line + " " + k.line,
		"# comment\n\n" + k.line + "\r\n",
		strings.Repeat("x", 70<<10) + "\n" + k.line,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		keys, _, err := parseAuthorizedKeys(strings.NewReader(in), "fuzz")
		if err != nil {
			t.Fatalf("a read from memory failed: %v", err)
		}
		for _, u := range keys {
			if u.Name == "" || strings.ContainsAny(u.Name, " \t\n") {
				t.Errorf("user name %q", u.Name)
			}
		}
	})
}
