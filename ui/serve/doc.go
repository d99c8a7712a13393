// Package serve serves the workbench over SSH, one Bubble Tea program per
// session, with charm.land/wish and its Bubble Tea middleware.
//
// Only public-key authentication is offered: password, keyboard-interactive
// and "none" attempts are refused by x/crypto because no callback for them
// is set. The keys allowed in come from an OpenSSH authorized_keys file,
// read again whenever it changes.
//
// Who a session belongs to is decided once the client has proven that it
// holds a key, never when it merely offers one: x/crypto calls the
// public-key callback for every key offered, before any signature is
// checked (the misuse behind CVE-2024-45337), so the identity is written
// by the verified-key callback onto that key's Permissions and read back
// from the connection's final Permissions by the session.
//
// Each session's workbench reaches runs only through its user's view of
// the engine ([Runs.For], engine.UserView): the runs that user may see,
// changes to their own, new runs within the server's limits. Ownership,
// the queue and the limits live in the engine; this package keeps each
// user's files.
//
// The package sits above ui in the dependency order (cmd → ui/serve → ui)
// because it is a front-end of the workbench, as cmd/thaw is; cmd/thaw
// only turns flags into a [Config] and signals into [Server.Shutdown].
package serve
