package serve

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// openSSH runs OpenSSH's own clients (scp, sftp) against a test server,
// with a key, a known_hosts file and no user configuration.
type openSSH struct {
	ts   *testServer
	dir  string
	args []string // options common to scp and sftp
}

// newOpenSSH skips the test when OpenSSH's client is not installed.
func newOpenSSH(t *testing.T, ts *testServer, k testKey) *openSSH {
	t.Helper()
	for _, bin := range []string{"scp", "sftp"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("OpenSSH's %s is not installed (apt-get install openssh-client): %v", bin, err)
		}
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "id")
	if err := os.WriteFile(key, pem.EncodeToMemory(k.pem), 0o600); err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(dir, "known_hosts")
	line := "[" + host + "]:" + port + " " + string(gossh.MarshalAuthorizedKey(ts.hostKey))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	return &openSSH{ts: ts, dir: dir, args: []string{
		"-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
		"-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=30",
	}}
}

// run runs an OpenSSH client with the common options and args, returning
// its exit status and what it wrote.
func (o *openSSH) run(t *testing.T, stdin string, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	all := append(append([]string{}, o.args...), args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not end: %s", bin, args, out.String())
	}
	return cmd.ProcessState.ExitCode(), out.String()
}

func (o *openSSH) port() string { _, p, _ := net.SplitHostPort(o.ts.addr); return p }
func (o *openSSH) host() string { h, _, _ := net.SplitHostPort(o.ts.addr); return h }

// filesServer serves the folder home as every user's files, read through
// an os.Root as the real server's are.
func filesServer(t *testing.T, k testKey, home string) *testServer {
	return startServer(t, []testKey{k}, func(c *Config) {
		c.Files = func(User) (fs.FS, error) {
			r, err := os.OpenRoot(home)
			if err != nil {
				return nil, err
			}
			return rootFS{r.FS(), r}, nil
		}
	})
}

// runFolder makes a run's folder of files under home: two figures and a
// nested folder, with bytes no text mode would leave alone.
func runFolder(t *testing.T, home, name string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"curves.png":         randomBytes(t, 70<<10),
		"metrics.csv":        []byte("step,loss\r\n1,0.5\r\n"),
		"ckpt/stage-1.bin":   randomBytes(t, 300<<10),
		"ckpt/empty.txt":     nil,
		"ckpt/deep/more.bin": randomBytes(t, 1000),
	}
	for p, b := range files {
		full := filepath.Join(home, name, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// sameFiles checks that dir holds exactly files.
func sameFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	n := 0
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		n++
		want, ok := files[filepath.ToSlash(rel)]
		got, _ := os.ReadFile(p)
		if !ok {
			t.Errorf("%s: not a file of the run", rel)
		} else if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes differ from the %d sent", rel, len(got), len(want))
		}
		return nil
	})
	if n != len(files) {
		t.Errorf("%d files arrived, want %d", n, len(files))
	}
}

// TestOpenSSHClients: OpenSSH's scp, in its SFTP mode (the default since
// 9.0) and its original one (-O), and sftp fetch a run's files, exit 0,
// and the bytes arrive intact; refusals say why.
func TestOpenSSHClients(t *testing.T) {
	alice := newKey(t, "alice")
	home := t.TempDir()
	files := runFolder(t, home, "run1")
	ts := filesServer(t, alice, home)
	o := newOpenSSH(t, ts, alice)
	remote := func(p string) string { return "anyone@" + o.host() + ":" + p }

	for _, mode := range []struct{ name, flag string }{{"sftp mode", "-s"}, {"original mode", "-O"}} {
		t.Run(mode.name+" file", func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "curves.png")
			code, out := o.run(t, "", "scp", mode.flag, "-P", o.port(), remote("run1/curves.png"), dst)
			if code != 0 {
				t.Fatalf("scp exit %d: %s", code, out)
			}
			got, _ := os.ReadFile(dst)
			if !bytes.Equal(got, files["curves.png"]) {
				t.Errorf("%d bytes arrived, want the %d sent", len(got), len(files["curves.png"]))
			}
		})
		t.Run(mode.name+" folder", func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "got")
			code, out := o.run(t, "", "scp", mode.flag, "-r", "-P", o.port(), remote("run1"), dst)
			if code != 0 {
				t.Fatalf("scp -r exit %d: %s", code, out)
			}
			sameFiles(t, dst, files)
		})
		t.Run(mode.name+" everything", func(t *testing.T) {
			for _, from := range []string{"/", ".", "~", "run1/", "/run1/."} {
				dst := filepath.Join(t.TempDir(), "got")
				code, out := o.run(t, "", "scp", mode.flag, "-r", "-P", o.port(), remote(from), dst)
				if code != 0 {
					t.Errorf("scp -r %s: exit %d: %s", from, code, out)
					continue
				}
				want := map[string][]byte{}
				for p, b := range files {
					if strings.HasPrefix(from, "run1") || strings.HasPrefix(from, "/run1") {
						want[p] = b
					} else {
						want["run1/"+p] = b
					}
				}
				sameFiles(t, dst, want)
			}
		})
		t.Run(mode.name+" missing file", func(t *testing.T) {
			code, out := o.run(t, "", "scp", mode.flag, "-P", o.port(), remote("run1/nope.png"), t.TempDir())
			if low := strings.ToLower(out); code == 0 || !strings.Contains(low, "no such file") && !strings.Contains(low, "no files matching") {
				t.Errorf("scp of a missing file: exit %d, %q; want a failure saying no such file", code, out)
			}
		})
		t.Run(mode.name+" upload refused", func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "x")
			os.WriteFile(src, []byte("x"), 0o600)
			code, out := o.run(t, "", "scp", mode.flag, "-P", o.port(), src, remote("run1/x"))
			if code == 0 || !strings.Contains(strings.ToLower(out), "read-only") && !strings.Contains(strings.ToLower(out), "permission denied") {
				t.Errorf("scp upload: exit %d, %q; want a refusal saying why", code, out)
			}
			if _, err := os.Stat(filepath.Join(home, "run1", "x")); err == nil {
				t.Error("the upload was written")
			}
		})
	}

	t.Run("sftp", func(t *testing.T) {
		dst := t.TempDir()
		batch := strings.Join([]string{
			"get run1/curves.png " + filepath.Join(dst, "c.png"),
			"-get run1/nope.png " + filepath.Join(dst, "n.png"),
			"-put " + filepath.Join(home, "run1", "metrics.csv") + " run1/up.csv",
			"-mkdir newdir",
			"-rm run1/metrics.csv",
			"ls run1",
		}, "\n") + "\n"
		code, out := o.run(t, batch, "sftp", "-b", "-", "-P", o.port(), "anyone@"+o.host())
		if code != 0 {
			t.Fatalf("sftp exit %d: %s", code, out)
		}
		got, _ := os.ReadFile(filepath.Join(dst, "c.png"))
		if !bytes.Equal(got, files["curves.png"]) {
			t.Errorf("%d bytes arrived, want the %d sent", len(got), len(files["curves.png"]))
		}
		low := strings.ToLower(out)
		if !strings.Contains(low, "not found") && !strings.Contains(low, "no such file") {
			t.Errorf("a missing file's error does not say so:\n%s", out)
		}
		if strings.Count(low, "permission denied") < 3 {
			t.Errorf("put, mkdir and rm are not each refused with permission denied:\n%s", out)
		}
		if strings.Contains(out, "Failure") {
			t.Errorf("an error said only Failure:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(home, "run1", "metrics.csv")); err != nil {
			t.Errorf("rm removed a file: %v", err)
		}
	})
}
