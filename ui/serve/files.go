package serve

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"charm.land/ssh"
	"charm.land/wish/v2"
	"github.com/pkg/sftp"
)

// FileSource returns the files a user may fetch: a read-only tree whose
// root is everything that user may see. It is called once per scp
// session; a tree that is an io.Closer is closed when the session ends. Paths in it are slash-separated and relative; a tree built on
// os.Root (as [os.Root.FS]) also keeps symbolic links from leading out.
type FileSource func(User) (fs.FS, error)

// scp serves `scp -f` (copy to the client) from the user's own tree and
// refuses `scp -t` (copy to the server): files come home, none go in.
func (s *Server) scp() wish.Middleware {
	return func(next ssh.Handler) ssh.Handler {
		return func(sess ssh.Session) {
			req, ok := parseSCP(sess.Command())
			if !ok {
				next(sess)
				return
			}
			u, ok := verifiedUser(sess)
			if !ok {
				s.refuse(sess, "", "no verified key")
				return
			}
			if req.to || !req.from {
				s.refuse(sess, u.String(), "files are read-only here: copy from the server, not to it")
				return
			}
			fsys, err := s.cfg.Files(u)
			if err != nil {
				s.log.Error("scp", "user", u.Name, "fingerprint", u.Fingerprint, "err", err)
				s.refuse(sess, u.String(), "files are not available")
				return
			}
			if c, ok := fsys.(io.Closer); ok {
				defer c.Close()
			}
			s.log.Info("scp", "user", u.Name, "fingerprint", u.Fingerprint, "remote", sess.RemoteAddr().String(),
				"paths", req.paths, "recursive", req.recursive)
			src := &scpSource{fsys: fsys, w: sess, r: bufio.NewReader(sess), recursive: req.recursive, times: req.times}
			_ = sess.Exit(src.send(req.paths))
		}
	}
}

// cleanPath turns what a client asks for ("/run/x.png", "./run", "~/run")
// into a path of the user's tree; anything climbing out of it becomes a
// name that does not exist there.
func cleanPath(p string) string {
	p = strings.TrimPrefix(p, "~")
	p = path.Clean("/" + p)
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return "."
	}
	return p
}

// sftpSubsystem serves the user's tree over SFTP, read-only: what OpenSSH's
// scp speaks by default since 9.0, and sftp itself.
func (s *Server) sftpSubsystem(sess ssh.Session) {
	u, ok := verifiedUser(sess)
	if !ok {
		s.refuse(sess, "", "no verified key")
		return
	}
	fsys, err := s.cfg.Files(u)
	if err != nil {
		s.log.Error("sftp", "user", u.Name, "fingerprint", u.Fingerprint, "err", err)
		s.refuse(sess, u.String(), "files are not available")
		return
	}
	if c, ok := fsys.(io.Closer); ok {
		defer c.Close()
	}
	s.log.Info("sftp", "user", u.Name, "fingerprint", u.Fingerprint, "remote", sess.RemoteAddr().String())
	h := readOnly{fsys}
	srv := sftp.NewRequestServer(sess, sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h},
		sftp.WithStartDirectory("/"))
	if err := srv.Serve(); err != nil && !errors.Is(err, io.EOF) {
		s.log.Warn("sftp", "user", u.Name, "fingerprint", u.Fingerprint, "err", err)
	}
	// The exit status goes before the channel closes: OpenSSH's scp, in
	// its SFTP mode, fails a copy whose channel closed without one.
	// Closing the SFTP server closes the channel.
	_ = sess.Exit(0)
	srv.Close()
}

// readOnly answers SFTP requests from a read-only tree: reads, listings
// and stats; every change is refused.
type readOnly struct{ fsys fs.FS }

// errReadOnly is what a client that tries to change a file is told: SFTP's
// "permission denied".
var errReadOnly = fmt.Errorf("files are read-only here: %w", sftp.ErrSSHFxPermissionDenied)

// sftpError gives err the SFTP status code that says why, where pkg/sftp
// would send only "failure": it recognises a few errors only when they are
// not wrapped.
func sftpError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", sftp.ErrSSHFxNoSuchFile, err)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %w", sftp.ErrSSHFxPermissionDenied, err)
	}
	return err
}

func (h readOnly) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	f, err := h.fsys.Open(cleanPath(r.Filepath))
	if err != nil {
		return nil, sftpError(err)
	}
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%s: not a file: %w", r.Filepath, os.ErrInvalid)
	}
	ra, ok := f.(io.ReaderAt)
	if !ok {
		f.Close()
		return nil, fmt.Errorf("%s: cannot be read at offsets: %w", r.Filepath, os.ErrInvalid)
	}
	return readerAtCloser{ra, f}, nil
}

// readerAtCloser lets the SFTP server close the file when the transfer
// ends.
type readerAtCloser struct {
	io.ReaderAt
	io.Closer
}

func (readOnly) Filewrite(*sftp.Request) (io.WriterAt, error) { return nil, errReadOnly }
func (readOnly) Filecmd(*sftp.Request) error                  { return errReadOnly }

func (h readOnly) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	p := cleanPath(r.Filepath)
	switch r.Method {
	case "List":
		entries, err := fs.ReadDir(h.fsys, p)
		if err != nil {
			return nil, sftpError(err)
		}
		var out listerAt
		for _, e := range entries {
			if fi, err := e.Info(); err == nil {
				out = append(out, fi)
			}
		}
		return out, nil
	case "Stat", "Lstat":
		fi, err := fs.Stat(h.fsys, p)
		if err != nil {
			return nil, sftpError(err)
		}
		return listerAt{fi}, nil
	}
	return nil, fmt.Errorf("%s: %w", r.Method, sftp.ErrSSHFxPermissionDenied)
}

// listerAt is a listing handed out in pieces.
type listerAt []os.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, off int64) (int, error) {
	if off >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[off:])
	if off+int64(n) >= int64(len(l)) {
		return n, io.EOF
	}
	return n, nil
}
