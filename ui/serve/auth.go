package serve

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"charm.land/log/v2"
	gossh "golang.org/x/crypto/ssh"

	"thaw/trainer/termtext"
)

// User is who a session belongs to: the public key that the client proved
// it holds, named by that key's comment in the authorized-keys file.
type User struct {
	// Fingerprint is the key's SHA256 fingerprint as OpenSSH prints it
	// ("SHA256:…"). It is the user's identity: runs are owned by it.
	Fingerprint string
	// Name is the key's comment, made safe for a terminal; the short
	// fingerprint when the comment is empty. Two keys may share a name.
	Name string
}

// String returns "name (SHA256:…)".
func (u User) String() string { return u.Name + " (" + u.Fingerprint + ")" }

// Permission extensions that carry the verified identity from the
// authentication callbacks to the session. They are written only by
// verified, which x/crypto calls after the client's signature over the
// session identifier has been checked, on the Permissions of that key.
const (
	extFingerprint = "thaw-serve-fingerprint"
	extName        = "thaw-serve-name"
)

// shortFingerprint is what a key without a comment is called.
func shortFingerprint(fp string) string {
	const n = len("SHA256:") + 12
	if len(fp) > n {
		return fp[:n] + "…"
	}
	return fp
}

// keyring is the set of authorised keys, read from an OpenSSH
// authorized_keys file and read again whenever the file changes. It is
// checked on every authentication attempt, so an edit takes effect for the
// next attempt without a restart; sessions already open are not affected.
type keyring struct {
	path string
	log  *log.Logger

	mu     sync.Mutex
	stamp  fileStamp
	loaded bool
	keys   map[string]User // by the key's wire form
}

// fileStamp identifies one version of a file. A rewrite that keeps the
// size within the file system's time resolution could hide from it, which
// is why an edit through a new file (rename over) is also caught by ino.
type fileStamp struct {
	info os.FileInfo
}

func (a fileStamp) same(b os.FileInfo) bool {
	if a.info == nil || b == nil {
		return false
	}
	return os.SameFile(a.info, b) && a.info.ModTime().Equal(b.ModTime()) && a.info.Size() == b.Size()
}

// newKeyring reads path once; an error means the file cannot be read at
// all. Malformed lines are logged and skipped.
func newKeyring(path string, lg *log.Logger) (*keyring, error) {
	k := &keyring{path: path, log: lg}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("authorized keys: %w", err)
	}
	if err := k.reload(fi); err != nil {
		return nil, err
	}
	return k, nil
}

// lookup returns the user an authorised key stands for, reading the file
// again first when it has changed since it was last read. When the file has
// gone or become unreadable, no key is authorised until it is back.
func (k *keyring) lookup(key gossh.PublicKey) (User, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	fi, err := os.Stat(k.path)
	switch {
	case err != nil:
		if k.loaded {
			k.log.Error("authorized keys unreadable: no key is accepted until it is back", "file", k.path, "err", err)
		}
		k.keys, k.loaded, k.stamp = nil, false, fileStamp{}
	case !k.stamp.same(fi):
		if err := k.reload(fi); err != nil {
			k.log.Error("authorized keys: no key is accepted until the file can be read", "err", err)
			k.keys, k.loaded, k.stamp = nil, false, fileStamp{}
		}
	}
	u, ok := k.keys[string(key.Marshal())]
	return u, ok
}

// reload reads the file; k.mu is held or k is not shared yet.
func (k *keyring) reload(fi os.FileInfo) error {
	// As sshd's StrictModes: a file that others may write lets them add
	// their own keys.
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("authorized keys: %s is writable by group or others (mode %04o); chmod go-w it", k.path, fi.Mode().Perm())
	}
	f, err := os.Open(k.path)
	if err != nil {
		return fmt.Errorf("authorized keys: %w", err)
	}
	defer f.Close()
	keys, problems, err := parseAuthorizedKeys(f, k.path)
	if err != nil {
		return err
	}
	for _, p := range problems {
		k.log.Warn("authorized keys: line skipped", "at", p.where, "reason", p.reason)
	}
	k.keys, k.loaded, k.stamp = keys, true, fileStamp{info: fi}
	k.log.Info("authorized keys read", "file", k.path, "keys", len(keys), "skipped", len(problems),
		"modified", fi.ModTime().Format(time.RFC3339))
	return nil
}

// lineProblem is a line of an authorized-keys file that was skipped.
type lineProblem struct {
	where  string // file:line
	reason string
}

// allowedOptions are the authorized_keys options that restrict only what
// thaw serve never offers (forwarding, agents, X11, user rc files), so a
// key carrying them can be accepted as it is. Any other option (from=,
// command=, expiry-time=, cert-authority, principals=, no-pty, …) asks for
// a restriction thaw serve does not enforce, so such a line is skipped:
// failing closed rather than granting more than the file says.
var allowedOptions = map[string]bool{
	"restrict":            true,
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
}

// maxKeyLine bounds one line of the file; OpenSSH's own limit is 16 KiB
// per key, and an RSA-16384 key fits in well under this.
const maxKeyLine = 64 << 10

// parseAuthorizedKeys reads an OpenSSH authorized_keys file. Blank lines
// and comments are ignored; a line that does not parse, or asks for an
// option thaw serve does not enforce, or names a certificate, is returned
// as a problem and skipped. The error is for a read failure only.
func parseAuthorizedKeys(r io.Reader, name string) (map[string]User, []lineProblem, error) {
	keys := map[string]User{}
	var problems []lineProblem
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxKeyLine)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		where := fmt.Sprintf("%s:%d", name, n)
		key, comment, opts, rest, err := gossh.ParseAuthorizedKey(line)
		if err != nil {
			problems = append(problems, lineProblem{where, "not a public key: " + err.Error()})
			continue
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			problems = append(problems, lineProblem{where, "more than one key on the line"})
			continue
		}
		if _, ok := key.(*gossh.Certificate); ok {
			problems = append(problems, lineProblem{where, "certificates are not accepted, only plain keys"})
			continue
		}
		if bad := unsupportedOption(opts); bad != "" {
			problems = append(problems, lineProblem{where, fmt.Sprintf("option %q is not supported", termtext.Sanitize(bad))})
			continue
		}
		fp := gossh.FingerprintSHA256(key)
		name := strings.TrimSpace(termtext.Sanitize(comment))
		if name == "" {
			name = shortFingerprint(fp)
		}
		keys[string(key.Marshal())] = User{Fingerprint: fp, Name: name}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, nil, fmt.Errorf("authorized keys: %s: a line is longer than %d bytes", name, maxKeyLine)
		}
		return nil, nil, fmt.Errorf("authorized keys: %s: %w", name, err)
	}
	return keys, problems, nil
}

// unsupportedOption returns the first option not in allowedOptions, or "".
func unsupportedOption(opts []string) string {
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		if !allowedOptions[strings.ToLower(name)] {
			return o
		}
	}
	return ""
}
