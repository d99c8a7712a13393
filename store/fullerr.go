package store

import "syscall"

// fullError is a database write that failed for want of space, said as
// the operating system says it: SQLite's own text ("database or disk is
// full (13)") names neither the cause a user can act on nor the errno
// that [IOFailure] and callers test for.
type fullError struct{ err error }

func (e *fullError) Error() string {
	return syscall.ENOSPC.Error() + ": the database cannot grow: " + e.err.Error()
}

// Unwrap gives ENOSPC and the database's error, for errors.Is and As.
func (e *fullError) Unwrap() []error { return []error{syscall.ENOSPC, e.err} }

// storageError returns err, said as a full disk when the database could
// not write for want of space.
func storageError(err error) error {
	if err != nil && isDiskFull(err) {
		return &fullError{err}
	}
	return err
}
