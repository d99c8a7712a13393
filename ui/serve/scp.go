package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// scpRequest is a command line of OpenSSH's original scp protocol, as a
// client runs it on the server: "scp [-r] [-p] [-d] [-v] -f|-t [--] path…".
type scpRequest struct {
	from, to  bool // -f: copy to the client; -t: copy from it
	recursive bool // -r
	times     bool // -p: send modification and access times
	paths     []string
}

// parseSCP reads an scp command line; ok is false when cmd is not one.
func parseSCP(cmd []string) (req scpRequest, ok bool) {
	if len(cmd) < 2 || cmd[0] != "scp" {
		return req, false
	}
	flags := true
	for _, a := range cmd[1:] {
		if flags && a == "--" {
			flags = false
			continue
		}
		if flags && strings.HasPrefix(a, "-") && len(a) > 1 {
			for _, c := range a[1:] {
				switch c {
				case 'f':
					req.from = true
				case 't':
					req.to = true
				case 'r':
					req.recursive = true
				case 'p':
					req.times = true
				}
			}
			continue
		}
		flags = false
		req.paths = append(req.paths, a)
	}
	return req, req.from || req.to
}

// rootName is what the top of a user's tree is called when it is copied
// whole (`scp -O -r HOST:/ dir`): OpenSSH's scp refuses "." as a name.
const rootName = "files"

// scpSource is the sending side of the scp protocol (OpenSSH's source and
// rsource): it waits for the client's answer after every line and every
// file, as OpenSSH's own does, so the client has acknowledged everything
// before the session ends.
type scpSource struct {
	fsys      fs.FS
	w         io.Writer
	r         *bufio.Reader
	recursive bool
	times     bool
	failed    bool // a path could not be sent: the exit status is 1
}

// errSCPClient: the client answered with an error, or went away; nothing
// more can be sent.
var errSCPClient = errors.New("scp: the client stopped the copy")

// send copies every path of req to the client, reporting each that cannot
// be sent to the client as scp does and going on with the rest. It returns
// the exit status.
func (src *scpSource) send(paths []string) int {
	if err := src.ack(); err != nil {
		return 1
	}
	for _, p := range paths {
		names := []string{cleanPath(p)}
		if strings.ContainsAny(names[0], "*?[") {
			m, err := fs.Glob(src.fsys, names[0])
			if err != nil || len(m) == 0 {
				src.warn(p + ": No such file or directory")
				continue
			}
			names = m
		}
		for _, name := range names {
			if err := src.one(name); errors.Is(err, errSCPClient) {
				return 1
			}
		}
	}
	if src.failed {
		return 1
	}
	return 0
}

// one sends a file, or with -r a folder, at name.
func (src *scpSource) one(name string) error {
	fi, err := fs.Stat(src.fsys, name)
	if err != nil {
		return src.warnErr(name, err)
	}
	if fi.IsDir() {
		if !src.recursive {
			return src.warn(name + ": not a regular file")
		}
		return src.dir(name, fi)
	}
	if !fi.Mode().IsRegular() {
		return src.warn(name + ": not a regular file")
	}
	return src.file(name, fi)
}

func (src *scpSource) file(name string, fi fs.FileInfo) error {
	f, err := src.fsys.Open(name)
	if err != nil {
		return src.warnErr(name, err)
	}
	defer f.Close()
	if err := src.stamp(fi); err != nil {
		return err
	}
	if err := src.line(fmt.Sprintf("C%04o %d %s\n", fi.Mode().Perm(), fi.Size(), baseName(name))); err != nil {
		return err
	}
	n, err := io.CopyN(src.w, f, fi.Size())
	if err != nil && n < fi.Size() {
		// The header promised fi.Size() bytes: pad, then say the file
		// is bad, as OpenSSH's scp does for a file that shrank.
		if _, werr := io.CopyN(src.w, zeros{}, fi.Size()-n); werr != nil {
			return errSCPClient
		}
		if _, werr := src.w.Write([]byte("\x01scp: " + name + ": " + ioMessage(err) + "\n")); werr != nil {
			return errSCPClient
		}
		src.failed = true
		return src.ack()
	}
	if _, err := src.w.Write([]byte{0}); err != nil {
		return errSCPClient
	}
	return src.ack()
}

func (src *scpSource) dir(name string, fi fs.FileInfo) error {
	entries, err := fs.ReadDir(src.fsys, name)
	if err != nil {
		return src.warnErr(name, err)
	}
	if err := src.stamp(fi); err != nil {
		return err
	}
	if err := src.line(fmt.Sprintf("D%04o 0 %s\n", fi.Mode().Perm(), baseName(name))); err != nil {
		return err
	}
	for _, e := range entries {
		if err := src.one(path.Join(name, e.Name())); errors.Is(err, errSCPClient) {
			return err
		}
	}
	return src.line("E\n")
}

// stamp sends a T line when the client asked for times (-p).
func (src *scpSource) stamp(fi fs.FileInfo) error {
	if !src.times {
		return nil
	}
	t := fi.ModTime().Unix()
	return src.line(fmt.Sprintf("T%d 0 %d 0\n", t, t))
}

// line sends one protocol line and waits for the client's answer.
func (src *scpSource) line(s string) error {
	if _, err := io.WriteString(src.w, s); err != nil {
		return errSCPClient
	}
	return src.ack()
}

// ack reads the client's answer: 0, or 1 or 2 and a message.
func (src *scpSource) ack() error {
	b, err := src.r.ReadByte()
	if err != nil {
		return errSCPClient
	}
	if b == 0 {
		return nil
	}
	src.r.ReadString('\n')
	return errSCPClient
}

// warn tells the client a path cannot be sent, and goes on.
func (src *scpSource) warn(msg string) error {
	src.failed = true
	if _, err := io.WriteString(src.w, "\x01scp: "+msg+"\n"); err != nil {
		return errSCPClient
	}
	return nil
}

func (src *scpSource) warnErr(name string, err error) error {
	return src.warn(name + ": " + ioMessage(err))
}

// ioMessage is how OpenSSH's scp words an error: strerror's text.
func ioMessage(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "No such file or directory"
	case errors.Is(err, fs.ErrPermission):
		return "Permission denied"
	}
	return err.Error()
}

// baseName is the name a path is sent under.
func baseName(name string) string {
	if name == "." || name == "" {
		return rootName
	}
	return path.Base(name)
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
