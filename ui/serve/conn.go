package serve

import (
	"errors"
	"io"
	"net"
	"os"

	"charm.land/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// offered is the public-key handler: may this key be used? It is called
// for every key a client offers, before the client has proven that it
// holds the private half, so it decides nothing about who the user is.
func (s *Server) offered(_ ssh.Context, key ssh.PublicKey) bool {
	_, ok := s.keys.lookup(key)
	return ok
}

// serverConfig adds to each connection's x/crypto configuration what
// charm.land/ssh does not set: the callback that runs once a key's
// signature has been verified, the number of attempts, and auth logging.
// Password, keyboard-interactive and "none" authentication stay unset, so
// x/crypto refuses them.
func (s *Server) serverConfig(ctx ssh.Context) *gossh.ServerConfig {
	return &gossh.ServerConfig{
		MaxAuthTries: maxAuthTries,
		// As sshd since 8.8: RSA keys sign with SHA-2 only, never
		// ssh-rsa's SHA-1.
		PublicKeyAuthAlgorithms: gossh.SupportedAlgorithms().PublicKeyAuths,
		VerifiedPublicKeyCallback: func(conn gossh.ConnMetadata, key gossh.PublicKey, perms *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			return s.verified(ctx, conn, key, perms)
		},
		AuthLogCallback: func(conn gossh.ConnMetadata, method string, err error) {
			if err != nil && method != "none" {
				s.log.Debug("authentication attempt failed", "remote", conn.RemoteAddr().String(),
					"method", method, "err", err)
			}
		},
	}
}

// errKeyGone: the key was authorised when offered but no longer is.
var errKeyGone = errors.New("key no longer authorised")

// verified records who the user is, on the Permissions of the key whose
// signature x/crypto has just checked, and frees the connection's
// not-yet-authenticated token. The session reads the identity back from
// the connection's final Permissions, which are these.
func (s *Server) verified(ctx ssh.Context, conn gossh.ConnMetadata, key gossh.PublicKey, perms *gossh.Permissions) (*gossh.Permissions, error) {
	u, ok := s.keys.lookup(key)
	if !ok {
		s.log.Warn("refused", "remote", conn.RemoteAddr().String(), "reason", errKeyGone,
			"fingerprint", gossh.FingerprintSHA256(key))
		return nil, errKeyGone
	}
	if perms == nil {
		perms = &gossh.Permissions{}
	}
	if perms.Extensions == nil {
		perms.Extensions = map[string]string{}
	}
	perms.Extensions[extFingerprint] = u.Fingerprint
	perms.Extensions[extName] = u.Name
	if gc, ok := ctx.Value(ctxKeyGate).(*gatedConn); ok {
		gc.release()
		if s.cfg.KeepAlive > 0 {
			go s.keepAlive(ctx, gc)
		}
	}
	s.log.Info("authenticated", "remote", conn.RemoteAddr().String(), "user", u.Name,
		"fingerprint", u.Fingerprint, "client", string(conn.ClientVersion()))
	return perms, nil
}

// failed logs a connection that ended before it authenticated. One that
// was merely closed (by its client, or by the server because it never sent
// its version line) is a debug line: a flood of them is summed up by the
// admission's counters and warnings instead.
func (s *Server) failed(c net.Conn, err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
		s.log.Debug("refused", "remote", c.RemoteAddr().String(), "reason", err)
		return
	}
	s.log.Info("refused", "remote", c.RemoteAddr().String(), "reason", err)
}

// verifiedUser returns the user of a session: the identity recorded by
// verified, checked against the key charm.land/ssh took from the same
// Permissions. Both come from the key that authenticated; a session
// without them (which cannot happen while only public keys are accepted)
// is refused rather than given a guessed identity.
func verifiedUser(sess ssh.Session) (User, bool) {
	key := sess.PublicKey()
	if key == nil {
		return User{}, false
	}
	ext := sess.Permissions().Extensions
	fp := ext[extFingerprint]
	if fp == "" || fp != gossh.FingerprintSHA256(key) {
		return User{}, false
	}
	return User{Fingerprint: fp, Name: ext[extName]}, true
}
