package serve

import (
	"io"
	"io/fs"
	"path"
	"strings"

	"charm.land/ssh"
	"charm.land/wish/v2"
	"charm.land/wish/v2/scp"
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
			info := scp.GetInfo(sess.Command())
			if !info.Ok {
				next(sess)
				return
			}
			u, ok := verifiedUser(sess)
			if !ok {
				s.refuse(sess, "", "no verified key")
				return
			}
			if info.Op != scp.OpCopyToClient {
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
			p := cleanPath(info.Path)
			s.log.Info("scp", "user", u.Name, "fingerprint", u.Fingerprint, "remote", sess.RemoteAddr().String(),
				"path", p, "recursive", info.Recursive)
			cmd := []string{"scp", "-f", p}
			if info.Recursive {
				cmd = []string{"scp", "-r", "-f", p}
			}
			scp.Middleware(scp.NewFSReadHandler(fsys), nil)(next)(commandSession{sess, cmd})
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

// commandSession is a session whose command has been rewritten.
type commandSession struct {
	ssh.Session
	cmd []string
}

func (c commandSession) Command() []string { return c.cmd }
