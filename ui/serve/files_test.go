package serve

import (
	"bufio"
	"bytes"
	"fmt"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pkg/sftp"
	gossh "golang.org/x/crypto/ssh"

	"thaw/store/engine"
)

// scpFetch copies one file from the server as `scp -f path` does, with the
// x/crypto client speaking the scp protocol's sink side.
func scpFetch(c *gossh.Client, path string) ([]byte, error) {
	sess, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	in, err := sess.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	sess.Stderr = &stderr
	if err := sess.Start("scp -f " + path); err != nil {
		return nil, err
	}
	r := bufio.NewReader(out)
	in.Write([]byte{0})
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			sess.Wait()
			return nil, fmt.Errorf("scp: %q %v: %s", line, err, strings.TrimSpace(stderr.String()))
		}
		switch line[0] {
		case 'T': // times
			in.Write([]byte{0})
			continue
		case 'C':
			f := strings.Fields(line[1:])
			if len(f) != 3 {
				return nil, fmt.Errorf("scp: bad header %q", line)
			}
			n, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return nil, err
			}
			in.Write([]byte{0})
			data := make([]byte, n)
			if _, err := io.ReadFull(r, data); err != nil {
				return nil, err
			}
			if b, err := r.ReadByte(); err != nil || b != 0 {
				return nil, fmt.Errorf("scp: no end of file mark (%v)", err)
			}
			in.Write([]byte{0})
			in.Close()
			sess.Wait()
			return data, nil
		default: // 1 or 2: an error line
			sess.Wait()
			return nil, fmt.Errorf("scp refused: %s %s", strings.TrimSpace(line[1:]), strings.TrimSpace(stderr.String()))
		}
	}
}

// TestExportComesHome: a figure exported on the Train screen is written
// under the user's own run, its path shown, and fetched with scp by its
// owner only.
func TestExportComesHome(t *testing.T) {
	alice, bob := newKey(t, "alice"), newKey(t, "bob")
	rs := startRunsServer(t, []testKey{alice, bob}, nil)
	run, err := rs.runs.For(userOf(alice)).Submit(longJob(t, 100), engine.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca := rs.mustDial(t, alice)
	tm := openTerminal(t, ca, 120, 40)
	waitStep(t, tm, engine.Short(run.ID), 45) // an evaluation is stored
	tm.stdin.Write([]byte("e"))
	s := tm.waitScreen(t, "curves written to")
	m := regexp.MustCompile(`curves written to (\S+\.png)`).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no path on screen:\n%s", s)
	}
	rel := m[1]
	if filepath.Dir(rel) != run.ID {
		t.Fatalf("figure shown as %s, want it in the run's folder %s", rel, run.ID)
	}
	path := filepath.Join(rs.runs.cfg.Home, userDir(userOf(alice)), rel)
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	got, err := scpFetch(ca, rel)
	if err != nil {
		t.Fatalf("alice fetching her figure: %v", err)
	}
	if !bytes.Equal(got, onDisk) {
		t.Fatalf("fetched %d bytes, the file has %d", len(got), len(onDisk))
	}
	if _, err := png.Decode(bytes.NewReader(got)); err != nil {
		t.Errorf("the fetched figure is not a PNG: %v", err)
	}
	if _, err := scpFetch(ca, "/"+rel); err != nil {
		t.Errorf("an absolute path in alice's tree: %v", err)
	}

	cb := rs.mustDial(t, bob)
	for _, p := range []string{
		rel,
		"../" + userDir(userOf(alice)) + "/" + rel,
		"/../../" + userDir(userOf(alice)) + "/" + rel,
		path,
	} {
		if _, err := scpFetch(cb, p); err == nil {
			t.Errorf("bob fetched alice's figure as %q", p)
		}
	}
	// Nothing can be copied to the server.
	sess, err := ca.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sess.CombinedOutput("scp -t " + run.ID)
	if err == nil || !strings.Contains(string(out), "read-only") {
		t.Errorf("scp -t: %v, %q; want a refusal", err, out)
	}
	rs.waitLog(t, "scp")

	// SFTP, which OpenSSH's scp speaks by default: the same tree, read-only.
	sa, err := sftp.NewClient(ca)
	if err != nil {
		t.Fatal(err)
	}
	defer sa.Close()
	f, err := sa.Open("/" + rel)
	if err != nil {
		t.Fatalf("alice opening her figure over sftp: %v", err)
	}
	got, err = io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, onDisk) {
		t.Errorf("sftp read %d bytes (%v), the file has %d", len(got), err, len(onDisk))
	}
	list, err := sa.ReadDir("/")
	var names []string
	for _, fi := range list {
		names = append(names, fi.Name())
	}
	slices.Sort(names)
	if want := []string{run.ID, "plans"}; err != nil || !slices.Equal(names, want) {
		t.Errorf("alice's tree over sftp: %v, %v; want %v", names, err, want)
	}
	if _, err := sa.Create("/" + run.ID + "/new.txt"); err == nil {
		t.Error("sftp created a file")
	}
	if err := sa.Remove("/" + rel); err == nil {
		t.Error("sftp removed a file")
	}
	if err := sa.Mkdir("/x"); err == nil {
		t.Error("sftp made a folder")
	}
	sb, err := sftp.NewClient(cb)
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	for _, p := range []string{"/" + rel, "/../" + userDir(userOf(alice)) + "/" + rel, path} {
		if f, err := sb.Open(p); err == nil {
			f.Close()
			t.Errorf("bob opened alice's figure over sftp as %q", p)
		}
	}
	if _, err := os.Stat(filepath.Join(rs.runs.cfg.Home, userDir(userOf(alice)), run.ID, "new.txt")); err == nil {
		t.Error("a file was created in alice's folder")
	}
}
