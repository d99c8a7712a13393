package serve

import (
	"bufio"
	"bytes"
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
// The mode is part of it: a chmod that lets others write the file is a
// change, and the file is refused from then on.
type fileStamp struct {
	info os.FileInfo
}

func (a fileStamp) same(b os.FileInfo) bool {
	if a.info == nil || b == nil {
		return false
	}
	return os.SameFile(a.info, b) && a.info.ModTime().Equal(b.ModTime()) && a.info.Size() == b.Size() &&
		a.info.Mode() == b.Mode()
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
	f, err := os.Open(k.path)
	if err != nil {
		return fmt.Errorf("authorized keys: %w", err)
	}
	defer f.Close()
	// The mode of the file opened, not of the one stat'ed a moment ago.
	if fi, err = f.Stat(); err != nil {
		return fmt.Errorf("authorized keys: %w", err)
	}
	// As sshd's StrictModes: a file that others may write lets them add
	// their own keys.
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("authorized keys: %s is writable by group or others (mode %04o); chmod go-w it", k.path, fi.Mode().Perm())
	}
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

// optionRefusals says why a line with one of these authorized_keys options
// is skipped: each asks for a restriction thaw serve does not enforce, so
// accepting the key would grant more than the file says. Options not here
// and not in allowedOptions are refused as unknown, as sshd refuses them.
var optionRefusals = map[string]string{
	"restrict":          "it implies no-pty, and the workbench needs a terminal",
	"no-pty":            "the workbench needs a terminal",
	"command":           "forced commands are not supported",
	"from":              "source restrictions are not enforced",
	"expiry-time":       "key expiry is not enforced",
	"cert-authority":    "certificates are not accepted, only plain keys",
	"principals":        "certificates are not accepted, only plain keys",
	"environment":       "the environment is not set from authorized_keys",
	"tunnel":            "tunnels are not offered",
	"verify-required":   "user verification of security keys is not enforced",
	"no-touch-required": "the touch of a security key is always required",
}

// allowedOptions are the authorized_keys options that restrict or permit
// only what thaw serve never offers (forwarding, agents, X11, user rc
// files), so they are honoured by doing nothing; and "pty", which permits
// what thaw serve needs.
var allowedOptions = map[string]bool{
	"no-port-forwarding":  true,
	"no-agent-forwarding": true,
	"no-x11-forwarding":   true,
	"no-user-rc":          true,
	"port-forwarding":     true,
	"agent-forwarding":    true,
	"x11-forwarding":      true,
	"user-rc":             true,
	"permitopen":          true,
	"permitlisten":        true,
	"pty":                 true,
}

// maxKeyLine bounds one line of the file; a longer line is skipped, the
// rest of the file is read. An RSA-16384 key fits in well under this.
const maxKeyLine = 64 << 10

// parseAuthorizedKeys reads an OpenSSH authorized_keys file as sshd does.
// Blank lines and comments are ignored; a line that is too long or does
// not parse, holds more than one key, names a certificate, or carries an
// option thaw serve does not honour is returned as a problem and skipped.
// A user's name is the first word of the key's comment. The error is for a
// read failure only.
func parseAuthorizedKeys(r io.Reader, name string) (map[string]User, []lineProblem, error) {
	keys := map[string]User{}
	var problems []lineProblem
	br := bufio.NewReaderSize(r, 4096)
	for n := 1; ; n++ {
		line, long, err := readLine(br, maxKeyLine)
		if err == io.EOF && len(line) == 0 && !long {
			break
		}
		if err != nil && err != io.EOF {
			return nil, nil, fmt.Errorf("authorized keys: %s: %w", name, err)
		}
		where := fmt.Sprintf("%s:%d", name, n)
		if long {
			problems = append(problems, lineProblem{where, fmt.Sprintf("line longer than %d bytes", maxKeyLine)})
		} else if u, key, reason := parseKeyLine(line); reason != "" {
			problems = append(problems, lineProblem{where, reason})
		} else if key != nil {
			keys[string(key.Marshal())] = u
		}
		if err == io.EOF {
			break
		}
	}
	return keys, problems, nil
}

// readLine reads one line without its newline. A line longer than max is
// read to its end and dropped: long is true and line is nil.
func readLine(br *bufio.Reader, max int) (line []byte, long bool, err error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if !long {
			if len(line)+len(chunk) > max+1 { // +1: the newline
				long, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		return bytes.TrimRight(line, "\n"), long, err
	}
}

// parseKeyLine reads one line of the file: the user of its key, or the
// reason it is skipped. A blank line or a comment gives neither.
func parseKeyLine(line []byte) (User, gossh.PublicKey, string) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return User{}, nil, ""
	}
	key, comment, opts, rest, err := gossh.ParseAuthorizedKey(line)
	if err != nil {
		return User{}, nil, "not a public key: " + err.Error()
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return User{}, nil, "more than one line"
	}
	if _, ok := key.(*gossh.Certificate); ok {
		return User{}, nil, "certificates are not accepted, only plain keys"
	}
	if bad, why := refusedOption(opts); bad != "" {
		return User{}, nil, fmt.Sprintf("option %q is not supported: %s", termtext.Sanitize(bad), why)
	}
	// Everything after the key is its comment; a key there is a second key
	// on the line, which would otherwise become the first one's name.
	if _, _, _, _, err := gossh.ParseAuthorizedKey([]byte(comment)); err == nil {
		return User{}, nil, "more than one key on the line"
	}
	fp := gossh.FingerprintSHA256(key)
	name := ""
	if f := strings.Fields(termtext.Sanitize(comment)); len(f) > 0 {
		name = f[0]
	}
	if name == "" {
		name = shortFingerprint(fp)
	}
	return User{Fingerprint: fp, Name: name}, key, ""
}

// refusedOption returns the first option thaw serve does not honour and
// why, or "".
func refusedOption(opts []string) (opt, why string) {
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		name = strings.ToLower(name)
		if allowedOptions[name] {
			continue
		}
		if why, ok := optionRefusals[name]; ok {
			return o, why
		}
		return o, "unknown option"
	}
	return "", ""
}
